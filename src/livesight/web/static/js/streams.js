// The Streams card: the key's streams (GET v1/streams: active first, then recently ended), whoever
// publishes them (this page's camera, `livesight publish`, any LiveKit SDK, a pulled rtsp/hls/file
// source), and the picked one watched live with a viewer token (js/viewer.js). The picked stream is
// also what the Ask and Watch cards ask about.

import { request } from "./api.js";
import { StreamViewer } from "./viewer.js";

const POLL_MS = 3000;
const MAX_ENDED = 5; // recently ended streams listed under the active ones
const TONES = { connecting: "warn", waiting: "warn", live: "live", reconnecting: "warn", ended: "bad", error: "bad" };
const LABELS = { connecting: "connecting", waiting: "no video yet", live: "live", reconnecting: "reconnecting", ended: "stream ended", error: "error" };

/** What a stream is, in a few words: where its video comes from. */
export function streamOrigin(s, ownId) {
  if (s.id === ownId) return "this page's camera";
  if (s.source && s.source.type) return `pulled · ${s.source.type}`;
  return s.state === "active" && !s.publisher_connected && s.last_frame_index == null ? "waiting for a publisher" : "published";
}

/** Its telemetry in one line. */
export function streamMeta(s) {
  if (s.state === "ended") return `ended (${s.end_reason || "?"})`;
  if (s.last_frame_index == null) return "no frames yet";
  const parts = [`${Number(s.recent_fps || 0).toFixed(1)} fps`];
  if (s.width && s.height) parts.push(`${s.width}×${s.height}${s.codec ? " " + s.codec : ""}`);
  parts.push(`#${Number(s.last_frame_index).toLocaleString("en-US")}`);
  return parts.join(" · ");
}

/**
 * @param {{key: () => string, LK: () => any, ownStreamId: () => string|null,
 *          onPick: (stream: object|null) => void, onChange: () => void}} deps
 */
export function initStreams(deps) {
  const $ = (id) => document.getElementById(id);
  const el = {
    list: $("stream-list"), hint: $("streams-hint"), refresh: $("streams-refresh"),
    stage: $("view-stage"), video: $("live-video"), empty: $("view-empty"), emptyText: $("view-empty-text"),
    state: $("view-state"), idRow: $("view-id-row"), id: $("view-id"), stop: $("view-stop"), notice: $("view-notice"),
  };
  let streams = [];
  let picked = null; // the picked stream's latest status object
  let viewer = null;
  let polling = null;
  let loadedFor = null; // the key the list was loaded with

  const pill = (text, tone) => {
    el.state.textContent = text;
    el.state.dataset.tone = tone;
  };
  const say = (message, tone = "error") => {
    el.notice.hidden = !message;
    el.notice.textContent = message || "";
    el.notice.dataset.tone = tone;
  };

  function showViewState({ state, text }) {
    el.stage.dataset.state = state;
    if (state === "live") el.stage.dataset.video = "1";
    else delete el.stage.dataset.video;
    el.empty.hidden = state === "live";
    el.emptyText.textContent = state === "connecting" ? "Connecting to the stream…" : text.charAt(0).toUpperCase() + text.slice(1);
    pill(LABELS[state] || state, TONES[state] || "muted");
    say(state === "error" ? text : null);
  }

  function render() {
    const active = streams.filter((s) => s.state === "active");
    const ended = streams.filter((s) => s.state !== "active").slice(0, MAX_ENDED);
    const ownId = deps.ownStreamId();
    const rows = [...active, ...ended].map((s) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "stream-row";
      b.dataset.id = s.id;
      b.dataset.state = s.state;
      b.setAttribute("aria-pressed", String(!!picked && picked.id === s.id));
      b.disabled = s.state !== "active";
      b.title = s.state === "active" ? `Watch ${s.id}` : `${s.id} has ended`;
      const id = document.createElement("code");
      id.className = "sr-id";
      id.textContent = s.id.slice(0, 8);
      const what = document.createElement("span");
      what.className = "sr-what";
      what.textContent = streamOrigin(s, ownId);
      const meta = document.createElement("span");
      meta.className = "sr-meta";
      meta.textContent = streamMeta(s);
      b.append(id, what, meta);
      li.append(b);
      return li;
    });
    el.list.replaceChildren(...rows);
    el.hint.textContent = !deps.key()
      ? "Paste your API key to list its streams."
      : active.length
        ? `${active.length} active stream${active.length === 1 ? "" : "s"}: pick one to watch it and ask about it.`
        : "No active streams: start the camera, run `livesight publish`, or create a stream with a source.";
  }

  async function refresh() {
    const key = deps.key();
    if (!key) {
      streams = [];
      loadedFor = null;
      render();
      return;
    }
    try {
      const page = await request("v1/streams?limit=50", { key });
      if (deps.key() !== key) return;
      streams = page.data || [];
      loadedFor = key;
    } catch (err) {
      el.hint.textContent = `Could not list the streams: ${err.message}`;
      return;
    }
    if (picked) {
      const now = streams.find((s) => s.id === picked.id);
      if (now) picked = now;
      if (!now || now.state !== "active") {
        if (now) picked = now;
        else picked = { ...picked, state: "ended" };
        if (viewer) viewer.ended();
      }
      deps.onChange();
    }
    render();
  }

  function pick(id) {
    const stream = streams.find((s) => s.id === id);
    if (!stream || (picked && picked.id === id && viewer && !viewer.closed)) return;
    unpick(false);
    picked = stream;
    el.id.textContent = id;
    el.idRow.hidden = false;
    const LK = deps.LK();
    if (LK && typeof LK.Room === "function") {
      viewer = new StreamViewer({ key: deps.key(), streamId: id, LK, video: el.video, onState: showViewState });
      window.livesightViewer = viewer; // for tests and the curious: its state, frames and token count
      viewer.start();
    } else {
      showViewState({ state: "error", text: "livekit-client is not installed on the server, so the page cannot show video (run `make setup`)." });
    }
    render();
    deps.onPick(stream);
  }

  function unpick(notify = true) {
    if (viewer) viewer.release();
    viewer = null;
    picked = null;
    el.idRow.hidden = true;
    showViewState({ state: "idle", text: "Pick a stream below to watch it live." });
    pill("nothing picked", "muted");
    say(null);
    if (notify) {
      render();
      deps.onPick(null);
    }
  }

  el.list.addEventListener("click", (e) => {
    const b = e.target.closest(".stream-row");
    if (b && !b.disabled) pick(b.dataset.id);
  });
  el.stop.addEventListener("click", () => unpick());
  el.refresh.addEventListener("click", refresh);
  window.addEventListener("pagehide", () => viewer && viewer.release());

  function start() {
    clearInterval(polling);
    polling = setInterval(() => {
      if (document.visibilityState === "visible") refresh();
    }, POLL_MS);
  }

  unpick(false);
  render();
  start();
  return {
    refresh,
    /** The picked stream's latest status (GET v1/streams row), or null. */
    picked: () => picked,
    /** The key changed: forget the picked stream and list the new key's streams. */
    keyChanged() {
      if (loadedFor !== deps.key()) {
        unpick();
        streams = [];
        refresh();
      }
    },
  };
}
