// Watching one stream live: POST v1/streams/{id}/viewer-token → livekit-client joins the stream's room
// as a hidden subscribe-only participant → the remote video track is attached to a <video>.
//
// States (onState): connecting, waiting ("no video yet": joined, but no track or no frame for a while),
// live (the <video> presents frames), reconnecting, ended (the stream ended), error.
//
// Tokens live 300 s (`expires_in_seconds`). The page asks for a new one a minute before that and hands it
// to livekit-client the way a server `refresh_token` message would (engine.client.onTokenRefresh), so the
// SDK's own reconnects use a valid token; when the SDK gives up (Disconnected) the page rejoins the room
// itself, with a fresh token whenever the one it holds is near its end.

import { ApiError, request } from "./api.js";

const CONNECT_TIMEOUT_MS = 20000;
const REJOIN_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
const RENEW_BEFORE_S = 60; // ask for a new token this long before the old one runs out
const STALL_MS = 3000; // no new frame for this long while live: "no video yet" again

export class StreamViewer {
  /**
   * @param {{key: string, streamId: string, LK: any, video: HTMLVideoElement,
   *          onState: (s: {state: string, text: string}) => void}} opts
   */
  constructor({ key, streamId, LK, video, onState }) {
    Object.assign(this, { key, streamId, LK, video, onState });
    this.room = null;
    this.token = null;
    this.tokenExpiresAt = 0; // Date.now() ms when the held token runs out (browser clock, from expires_in_seconds)
    this.state = "idle";
    this.closed = false;
    this.track = null;
    this.lastFrameAt = 0;
    this.frames = 0;
    this.timers = new Set();
    this.tokens = 0; // how many viewer tokens this viewer fetched
    this.rejoins = 0; // generation of the page's own rejoin loop
    this.history = []; // the states it went through, oldest first (the last 50)
  }

  setState(state, text) {
    if (this.closed && state !== "ended") return;
    if (state !== this.state) {
      this.history.push(state);
      if (this.history.length > 50) this.history.shift();
    }
    this.state = state;
    this.onState({ state, text });
  }

  /** Join and watch. Never throws: failures end in the `error` or `ended` state with a readable text. */
  async start() {
    this.setState("connecting", "connecting…");
    try {
      await this.join();
    } catch (err) {
      if (this.closed) return;
      if (await this.endedOnServer(err)) return;
      this.setState("error", `Could not watch the stream: ${err && err.message ? err.message : err}`);
      return;
    }
    this.schedule(() => this.watchStall(), 1000);
  }

  /** A fresh viewer token (POST v1/streams/{id}/viewer-token); the renewal is scheduled before it runs out. */
  async fetchToken() {
    const answer = await request(`v1/streams/${encodeURIComponent(this.streamId)}/viewer-token`, { key: this.key, method: "POST" });
    const view = answer.view;
    this.token = view.token;
    this.url = view.url;
    this.tokens += 1;
    const ttlS = Number(view.expires_in_seconds) || 300;
    this.tokenExpiresAt = Date.now() + ttlS * 1000;
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => this.renewToken(), Math.max(1000, (ttlS - RENEW_BEFORE_S) * 1000));
    return view;
  }

  async renewToken() {
    if (this.closed) return;
    try {
      await this.fetchToken();
      const client = this.room && this.room.engine && this.room.engine.client;
      if (client && typeof client.onTokenRefresh === "function") client.onTokenRefresh(this.token);
    } catch (err) {
      if (this.closed) return;
      if (await this.endedOnServer(err)) return;
      this.renewTimer = setTimeout(() => this.renewToken(), 5000);
    }
  }

  tokenFresh() {
    return this.token && this.tokenExpiresAt - Date.now() > RENEW_BEFORE_S * 1000;
  }

  async join() {
    const { LK } = this;
    if (!this.tokenFresh()) await this.fetchToken();
    if (this.closed) return;
    if (location.protocol === "https:" && this.url.startsWith("ws://")) {
      throw new Error(`this page is served over https but the stream's URL is ${this.url}, which the browser blocks ` +
        "as mixed content (set livesight's public_url to its wss:// address)");
    }
    // Viewers use v0 signalling (/rtc): the server answers /rtc/v1 with a 404 for viewer tokens, so ask for
    // the two-PC mode at once instead of letting the SDK find that out on every (re)connect.
    const room = new LK.Room({ adaptiveStream: false, dynacast: false, disconnectOnPageLeave: true, singlePeerConnection: false });
    room.on(LK.RoomEvent.TrackSubscribed, (track) => this.onTrack(room, track));
    room.on(LK.RoomEvent.TrackUnsubscribed, (track) => this.onTrackGone(room, track));
    room.on(LK.RoomEvent.Reconnecting, () => room === this.room && this.setState("reconnecting", "reconnecting…"));
    room.on(LK.RoomEvent.SignalReconnecting, () => room === this.room && this.setState("reconnecting", "reconnecting…"));
    room.on(LK.RoomEvent.Reconnected, () => room === this.room && this.showWaitingOrLive());
    room.on(LK.RoomEvent.Disconnected, (reason) => this.onDisconnected(room, reason));
    this.room = room;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection after ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    });
    try {
      await Promise.race([room.connect(this.url, this.token, { autoSubscribe: true, rtcConfig: { iceServers: [] } }), timeout]);
    } catch (err) {
      if (this.room === room) this.room = null; // its Disconnected event must not start another rejoin
      room.disconnect().catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) {
      await room.disconnect();
      return;
    }
    if (!this.track) this.setState("waiting", "no video yet: the stream has no frames");
  }

  onTrack(room, track) {
    if (room !== this.room || this.closed || track.kind !== "video") return;
    if (this.track && this.track !== track) this.track.detach(this.video);
    this.track = track;
    track.attach(this.video);
    this.setState("waiting", "no video yet: waiting for the first frame…");
    const onFrame = () => {
      if (this.track !== track || this.closed) return;
      this.frames += 1;
      this.lastFrameAt = performance.now();
      if (this.state !== "live") this.setState("live", "live");
      this.video.requestVideoFrameCallback(onFrame);
    };
    if (typeof this.video.requestVideoFrameCallback === "function") this.video.requestVideoFrameCallback(onFrame);
    else this.video.addEventListener("playing", () => onFrame(), { once: true });
  }

  onTrackGone(room, track) {
    if (room !== this.room || track !== this.track) return;
    track.detach(this.video);
    this.track = null;
    if (!this.closed) this.setState("waiting", "no video yet: the stream's video went away");
  }

  showWaitingOrLive() {
    if (this.track && performance.now() - this.lastFrameAt < STALL_MS) this.setState("live", "live");
    else this.setState("waiting", "no video yet");
  }

  watchStall() {
    if (this.closed) return;
    if (this.state === "live" && performance.now() - this.lastFrameAt > STALL_MS) {
      this.setState("waiting", "no video yet: no new frames for a few seconds");
    }
    this.schedule(() => this.watchStall(), 1000);
  }

  /** Has the stream ended on the server? Then say so (state `ended`) and return true. */
  async endedOnServer(err) {
    if (err instanceof ApiError && err.status === 401) {
      this.setState("error", err.message);
      return true;
    }
    let ended = err instanceof ApiError && (err.status === 404 || err.status === 410);
    if (!ended) {
      try {
        const t = await request(`v1/streams/${encodeURIComponent(this.streamId)}`, { key: this.key });
        ended = t.state === "ended";
      } catch (e) {
        ended = e instanceof ApiError && e.status === 404;
      }
    }
    if (ended) this.ended();
    return ended;
  }

  async onDisconnected(room, reason) {
    if (this.closed || room !== this.room) return;
    if (this.track) this.track.detach(this.video);
    this.track = null;
    this.room = null;
    const gen = ++this.rejoins;
    if (await this.endedOnServer(null)) return;
    for (const delay of REJOIN_DELAYS_MS) {
      if (this.closed || gen !== this.rejoins) return;
      this.setState("reconnecting", `the connection dropped (reason ${reason ?? "unknown"}); reconnecting…`);
      await new Promise((r) => setTimeout(r, delay));
      if (this.closed || gen !== this.rejoins) return;
      try {
        await this.join();
        return;
      } catch (err) {
        if (this.closed) return;
        if (await this.endedOnServer(err)) return;
      }
    }
    if (!this.closed) this.setState("error", "The viewer could not reconnect. Pick the stream again to retry.");
  }

  /** The stream ended: release everything and say so. */
  ended() {
    if (this.state === "ended") return;
    this.release();
    this.setState("ended", "stream ended");
  }

  schedule(fn, ms) {
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
  }

  /** Leave the room and free the <video> (no server call: a viewer token needs no cleanup). */
  release() {
    this.closed = true;
    clearTimeout(this.renewTimer);
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
    if (this.track) this.track.detach(this.video);
    this.track = null;
    this.video.srcObject = null;
    const room = this.room;
    this.room = null;
    if (room) room.disconnect().catch(() => {});
  }
}
