// One published stream: camera or screen → POST /v1/streams → livekit-client publish → Keepalive loop
// (with publish-token refresh) → telemetry polling → DELETE on Stop or page unload.
//
// Long sessions: the Lease is renewed every ttl/4 (at most every 30 s), long before `expires_at_ms`.
// Every Keepalive returns a fresh publish token. It is handed to livekit-client through the same hook
// its signalling uses for a server `refresh_token` message (engine.client.onTokenRefresh), so the SDK's
// own reconnects use a valid token; if the SDK gives up (Disconnected) while the stream is still
// active, the page rejoins the room itself with the newest token.

import { ApiError, request } from "./api.js";

const POLL_MS = 1000;
const CONNECT_TIMEOUT_MS = 20000;
const REJOIN_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

/** The readable reason for a getUserMedia / getDisplayMedia failure. */
export function mediaErrorMessage(err, kind) {
  const what = kind === "screen" ? "Screen sharing" : "Camera access";
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return kind === "screen"
      ? "Screen sharing was cancelled or denied. Click Share screen again and pick a screen, window or tab."
      : "Camera access was denied. Allow the camera for this site (the camera icon in the address bar) and click Start camera again.";
  }
  if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
    return kind === "screen" ? "Nothing to share was found." : "No camera was found. Plug one in, or use Share screen instead.";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return `${what} failed: the device is busy (another app may be using it). Close it and try again.`;
  }
  return `${what} failed: ${err && err.message ? err.message : String(err)}`;
}

export class StreamSession {
  /**
   * @param {{key: string, kind: "camera"|"screen", LK: any, onTrack: (track: any) => void,
   *          onTelemetry: (t: object) => void, onStatus: (s: {state: string, text: string, tone?: string}) => void,
   *          onEnded: (reason: string, message: string) => void, onWarning: (msg: string|null) => void}} opts
   */
  constructor({ key, kind, LK, onTrack, onTelemetry, onStatus, onEnded, onWarning }) {
    Object.assign(this, { key, kind, LK, onTrack, onTelemetry, onStatus, onEnded, onWarning });
    this.stream = null; // POST /v1/streams answer
    this.token = null; // newest publish token
    this.track = null;
    this.room = null;
    this.serverOffsetMs = 0; // server clock minus browser clock, from lease answers
    this.expiresAtMs = null;
    this.ttlSeconds = null;
    this.telemetry = null;
    this.publisherState = "connecting";
    this.closed = false;
    this.timers = new Set();
  }

  get id() {
    return this.stream ? this.stream.id : null;
  }

  /** ms left on the Lease by the server's clock (null when unknown). */
  leaseLeftMs() {
    if (this.expiresAtMs == null) return null;
    return this.expiresAtMs - (Date.now() + this.serverOffsetMs);
  }

  /** Camera → stream → publish. Throws an Error with a readable message; cleans up after itself. */
  async start() {
    const { LK } = this;
    if (!navigator.mediaDevices) {
      throw new Error("This page is not a secure context, so the browser offers no camera. Open it as http://localhost:PORT " +
        "or http://127.0.0.1:PORT on the machine running livesight, or serve it over https.");
    }
    this.onStatus({ state: "starting", text: this.kind === "screen" ? "waiting for the screen…" : "waiting for the camera…" });
    try {
      if (this.kind === "screen") {
        const tracks = await LK.createLocalScreenTracks({ audio: false, resolution: LK.VideoPresets.h1080.resolution });
        this.track = tracks.find((t) => t.kind === "video");
        for (const t of tracks) if (t !== this.track) t.stop();
      } else {
        this.track = await LK.createLocalVideoTrack({ resolution: LK.VideoPresets.h720.resolution });
      }
    } catch (err) {
      throw new Error(mediaErrorMessage(err, this.kind));
    }
    if (this.closed) return this.release();
    this.onTrack(this.track);
    this.track.mediaStreamTrack.addEventListener("ended", () => {
      if (!this.closed) this.stop(this.kind === "screen" ? "Screen sharing ended." : "The camera stopped.");
    });

    this.onStatus({ state: "starting", text: "creating the stream…" });
    try {
      this.stream = await request("v1/streams", { key: this.key, method: "POST", body: {} });
    } catch (err) {
      this.release();
      throw err;
    }
    if (this.closed) {
      // Stopped while the stream was being created: delete it again.
      await request(`v1/streams/${this.id}`, { key: this.key, method: "DELETE" }).catch(() => {});
      return;
    }
    this.token = this.stream.publish && this.stream.publish.token;
    this.noteLease(this.stream);
    if (!this.stream.publish) {
      await this.discard();
      throw new Error("The server gave no publish URL for this stream.");
    }

    const publishUrl = this.stream.publish.url;
    if (location.protocol === "https:" && publishUrl.startsWith("ws://")) {
      await this.discard();
      throw new Error(`This page is served over https but the server's publish URL is ${publishUrl}, which the browser ` +
        "blocks as mixed content. Set livesight's public_url to the wss:// address of this server.");
    }
    this.onStatus({ state: "starting", text: "connecting the publisher…" });
    try {
      await this.join();
    } catch (err) {
      if (this.closed) return; // stopped while connecting: stop() already cleaned up
      const url = this.stream.publish.url;
      await this.discard();
      throw new Error(`Could not publish to ${url}: ${err && err.message ? err.message : err}`);
    }
    if (this.closed) return;
    this.onStatus({ state: "live", text: "publishing; waiting for the first frame…" });
    this.schedule(() => this.keepaliveLoop(), this.keepaliveEveryMs());
    this.schedule(() => this.pollLoop(), 0);
  }

  /** Connect a Room with the newest token and publish the track (simulcast off, maintain resolution, VP8). */
  async join() {
    const { LK } = this;
    const room = new LK.Room({
      adaptiveStream: false,
      dynacast: false,
      disconnectOnPageLeave: false, // the page deletes the stream itself on pagehide
      publishDefaults: { simulcast: false, videoCodec: "vp8", backupCodec: false, degradationPreference: "maintain-resolution" },
    });
    room.on(LK.RoomEvent.Reconnecting, () => this.setPublisher("reconnecting"));
    room.on(LK.RoomEvent.SignalReconnecting, () => this.setPublisher("reconnecting"));
    room.on(LK.RoomEvent.Reconnected, () => this.setPublisher("connected"));
    room.on(LK.RoomEvent.Disconnected, (reason) => this.onRoomDisconnected(room, reason));
    this.room = room;
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection after ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    });
    try {
      await Promise.race([room.connect(this.stream.publish.url, this.token, { autoSubscribe: false }), timeout]);
    } catch (err) {
      room.disconnect().catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (this.closed) {
      await room.disconnect();
      return;
    }
    await room.localParticipant.publishTrack(this.track, {
      source: this.kind === "screen" ? LK.Track.Source.ScreenShare : LK.Track.Source.Camera,
      simulcast: false,
      videoCodec: "vp8",
      backupCodec: false,
      degradationPreference: "maintain-resolution",
    });
    this.setPublisher("connected");
  }

  setPublisher(state) {
    this.publisherState = state;
    if (this.telemetry) this.onTelemetry(this.telemetry);
  }

  async onRoomDisconnected(room, reason) {
    if (this.closed || room !== this.room) return;
    this.setPublisher("disconnected");
    const { DisconnectReason } = this.LK;
    if (reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.PARTICIPANT_REMOVED) {
      // the server ends the room when the stream ends: say why instead of trying to rejoin
      await this.pollOnce();
      if (this.closed || room !== this.room) return;
    }
    for (const delay of REJOIN_DELAYS_MS) {
      this.onWarning(`The publisher lost its connection (reason ${reason ?? "unknown"}); reconnecting…`);
      await new Promise((r) => setTimeout(r, delay));
      if (this.closed || room !== this.room) return;
      try {
        await this.join();
        this.onWarning(null);
        return;
      } catch (err) {
        this.onWarning(`Reconnecting the publisher failed: ${err && err.message ? err.message : err}`);
      }
    }
    if (!this.closed) this.stop("The publisher could not reconnect; the stream was stopped.");
  }

  keepaliveEveryMs() {
    const ttlMs = (this.ttlSeconds ?? 300) * 1000;
    return Math.max(1000, Math.min(30000, ttlMs / 4));
  }

  noteLease(answer) {
    if (answer.expires_at_ms != null && answer.ttl_seconds != null) {
      this.expiresAtMs = answer.expires_at_ms;
      this.ttlSeconds = answer.ttl_seconds;
      // The lease was just set to server-now + ttl: that gives the server's clock to within one round trip.
      this.serverOffsetMs = answer.expires_at_ms - answer.ttl_seconds * 1000 - Date.now();
    }
  }

  async keepaliveLoop() {
    if (this.closed) return;
    let next = this.keepaliveEveryMs();
    try {
      const ka = await request(`v1/streams/${this.id}/keepalive`, { key: this.key, method: "POST" });
      this.noteLease(ka);
      if (ka.publish && ka.publish.token) this.refreshToken(ka.publish.token);
      next = this.keepaliveEveryMs();
    } catch (err) {
      if (this.closed) return;
      if (err instanceof ApiError && err.status === 404) {
        return this.ended("gone", "The stream ended on the server (expired or deleted elsewhere).");
      }
      if (err instanceof ApiError && err.status === 401) {
        return this.stop(err.message);
      }
      this.onWarning(`Keepalive failed, retrying: ${err.message}`);
      next = 2000;
    }
    this.schedule(() => this.keepaliveLoop(), next);
  }

  /** Give livekit-client the new publish token the way a server `refresh_token` signal message would. */
  refreshToken(token) {
    this.token = token;
    const client = this.room && this.room.engine && this.room.engine.client;
    if (client && typeof client.onTokenRefresh === "function") client.onTokenRefresh(token);
  }

  async pollLoop() {
    if (this.closed) return;
    if (await this.pollOnce()) this.schedule(() => this.pollLoop(), POLL_MS);
  }

  /** Read the stream's telemetry once; false when the stream turned out to have ended. */
  async pollOnce() {
    try {
      const t = await request(`v1/streams/${this.id}`, { key: this.key });
      if (this.closed) return;
      this.telemetry = t;
      this.onTelemetry(t);
      if (t.state === "ended") {
        const why = t.end_reason === "expired"
          ? "The stream expired: its lease ran out (no keepalive reached the server in time)."
          : "The stream was deleted.";
        this.ended(t.end_reason || "ended", why);
        return false;
      }
    } catch (err) {
      if (this.closed) return false;
      if (err instanceof ApiError && err.status === 404) {
        this.ended("gone", "The stream no longer exists on the server.");
        return false;
      }
      this.onWarning(`Could not read the stream's telemetry: ${err.message}`);
    }
    return !this.closed;
  }

  schedule(fn, ms) {
    const id = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
  }

  /** Release camera and room, stop timers (no server call). */
  release() {
    this.closed = true;
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
    const room = this.room;
    this.room = null;
    if (room) room.disconnect().catch(() => {});
    if (this.track) this.track.stop();
  }

  /** The server ended the stream (expired, deleted elsewhere): clean up and say why. */
  ended(reason, message) {
    if (this.closed) return;
    this.release();
    this.onEnded(reason, message);
  }

  /** Release everything and DELETE the stream (idempotent); returns its final telemetry when it can. */
  async discard() {
    this.release();
    if (!this.stream) return null;
    try {
      await request(`v1/streams/${this.id}`, { key: this.key, method: "DELETE" });
      return await request(`v1/streams/${this.id}`, { key: this.key }).catch(() => null);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        this.onWarning(`Deleting the stream failed: ${err.message}`);
      }
      return null;
    }
  }

  /** Stop: DELETE the stream, release everything. `why` is shown when it was not the user's click. */
  async stop(why) {
    if (this.closed) return;
    const final = await this.discard();
    if (final) {
      this.telemetry = final;
      this.onTelemetry(final);
    }
    this.onEnded("deleted", why || "");
  }

  /** Page is going away: best-effort DELETE that outlives the page. */
  abandon() {
    if (this.closed) return;
    this.release();
    if (this.stream) {
      request(`v1/streams/${this.id}`, { key: this.key, method: "DELETE", keepalive: true }).catch(() => {});
    }
  }
}
