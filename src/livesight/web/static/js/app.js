// The playground page: wiring between the DOM and the API modules. Everything shown to a person
// goes through textContent (never innerHTML), and every failure ends up in a visible notice.

import { ApiError, apiBase, frameBlobUrl, request } from "./api.js";
import { askStreaming, downloadText, listModels, pickModel } from "./chat.js";
import { countSet, readOptions } from "./options.js";
import { StreamSession } from "./publisher.js";
import { chatRequest, curlSnippet, pythonSnippet } from "./snippets.js";
import { initStreams } from "./streams.js";
import { initWatch } from "./watch.js";

const KEY_STORAGE = "livesight.apiKey";
const PREFS_STORAGE = "livesight.playground";
const PROBE_STREAM = "00000000-0000-4000-8000-000000000000"; // never exists: 404 = key works, 401 = rejected
const MAX_THUMBS = 16;

const $ = (id) => document.getElementById(id);
const el = {
  keyForm: $("key-form"), key: $("api-key"), keyReveal: $("key-reveal"), keyStatus: $("key-status"), keyForget: $("key-forget"),
  banner: $("global-error"),
  streamState: $("stream-state"), stage: $("stage"), preview: $("preview"), stageEmpty: $("stage-empty"),
  stageBadge: $("stage-badge"), stageBadgeText: $("stage-badge-text"), stepKey: $("step-key"),
  actions: $("actions"), startCamera: $("start-camera"), shareScreen: $("share-screen"), stop: $("stop"), cameraNotice: $("camera-notice"),
  tState: $("t-state"), tFps: $("t-fps"), tLast: $("t-last"), tRetained: $("t-retained"), tLease: $("t-lease"),
  tRes: $("t-res"), tPublisher: $("t-publisher"),
  streamIdRow: $("stream-id-row"), streamId: $("stream-id"), copyStreamId: $("copy-stream-id"),
  askHint: $("ask-hint"), model: $("model"), modelStatus: $("model-status"),
  modelDownload: $("model-download"), modelDownloadBar: $("model-download-bar"), modelDownloadText: $("model-download-text"),
  refSeconds: $("ref-seconds"), refN: $("ref-n"), refFps: $("ref-fps"), refSecondsHint: $("ref-seconds-hint"),
  refPick: $("ref-pick"), scrubber: $("scrubber"), scrubPreview: $("scrub-preview"), scrubLabel: $("scrub-label"), scrubLive: $("scrub-live"),
  options: $("options"), optionsSummary: $("options-summary"), optSystem: $("opt-system"),
  optTemperature: $("opt-temperature"), optMaxTokens: $("opt-max-tokens"),
  askForm: $("ask-form"), question: $("question"), ask: $("ask"), chips: $("chips"), askNotice: $("ask-notice"),
  answerBox: $("answer-box"), answer: $("answer"), framesUsed: $("frames-used"), timing: $("timing"),
  snippet: $("snippet"), copySnippet: $("copy-snippet"), snippetHint: $("snippet-hint"), apiBase: $("api-base"),
};

const state = {
  key: "",
  session: null,
  starting: false,
  telemetry: null,
  models: [],
  modelSignature: "",
  lang: "curl",
  followLive: true,
  asking: null, // AbortController of the answer being streamed
  lastStreamId: null,
};

// ---------------------------------------------------------------------------------------------- helpers

function show(node, on = true) {
  node.hidden = !on;
}

function notice(node, message, tone = "error") {
  if (!message) return show(node, false);
  node.textContent = message;
  node.dataset.tone = tone;
  show(node, true);
}

function pill(node, text, tone) {
  node.textContent = text;
  node.dataset.tone = tone;
}

function fmtInt(n) {
  return n == null ? "–" : Number(n).toLocaleString("en-US");
}

function fmtSeconds(ms) {
  if (ms == null) return "–";
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
}

function fmtMs(ms) {
  return ms == null ? "–" : `${Math.round(ms).toLocaleString("en-US")} ms`;
}

function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_STORAGE) || "{}");
  } catch {
    return {};
  }
}

function savePrefs(patch) {
  localStorage.setItem(PREFS_STORAGE, JSON.stringify({ ...loadPrefs(), ...patch }));
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // clipboard API needs a secure context and focus: fall back to a hidden textarea
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const was = button.textContent;
  button.textContent = "Copied";
  button.dataset.done = "1";
  setTimeout(() => {
    button.textContent = was;
    delete button.dataset.done;
  }, 1200);
}

// ---------------------------------------------------------------------------------------------- current stream

/** The stream questions are about: the one picked in the Streams card, else this page's camera stream. */
function currentStreamId() {
  const picked = streamsCard && streamsCard.picked();
  if (picked) return picked.id;
  const s = state.session;
  return s && s.id && !s.closed ? s.id : null;
}

/** The current stream's telemetry (GET v1/streams/{id} shape), or null. */
function currentTelemetry() {
  const picked = streamsCard && streamsCard.picked();
  if (picked) return picked;
  return state.session ? state.telemetry : null;
}

function currentIsActive() {
  const t = currentTelemetry();
  if (streamsCard && streamsCard.picked()) return !!t && t.state === "active";
  return !!(state.session && state.session.id && !state.session.closed);
}

// ---------------------------------------------------------------------------------------------- key

async function checkKey() {
  if (!state.key) {
    pill(el.keyStatus, "no key", "muted");
    show(el.keyForget, false);
    el.stepKey.classList.remove("done");
    return;
  }
  show(el.keyForget, true);
  pill(el.keyStatus, "checking…", "muted");
  try {
    await request(`v1/streams/${PROBE_STREAM}`, { key: state.key });
    pill(el.keyStatus, "key works", "ok");
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      pill(el.keyStatus, "key works", "ok");
      el.stepKey.classList.add("done");
      if (el.cameraNotice.dataset.kind === "key") notice(el.cameraNotice, null);
      return;
    }
    if (err instanceof ApiError && err.status === 401) {
      pill(el.keyStatus, "key rejected", "bad");
      el.stepKey.classList.remove("done");
      notice(el.cameraNotice, err.message, "error");
      el.cameraNotice.dataset.kind = "key";
      return;
    }
    pill(el.keyStatus, "can't check", "warn");
    notice(el.cameraNotice, err.message, "error");
  }
}

function saveKey(value) {
  state.key = value.trim();
  if (state.key) localStorage.setItem(KEY_STORAGE, state.key);
  else localStorage.removeItem(KEY_STORAGE);
  checkKey();
  if (streamsCard) streamsCard.keyChanged();
  renderControls();
  renderSnippet();
}

// ---------------------------------------------------------------------------------------------- stream

function LK() {
  return window.LivekitClient;
}

function livekitMissing() {
  return !LK() || typeof LK().Room !== "function";
}

async function startStream(kind) {
  notice(el.cameraNotice, null);
  if (!state.key) {
    notice(el.cameraNotice, "Paste your API key first (top right). `make run` printed it on first start: export LIVESIGHT_API_KEY=ovs-…", "error");
    el.cameraNotice.dataset.kind = "key";
    el.key.focus();
    return;
  }
  if (livekitMissing()) {
    notice(el.cameraNotice, LIVEKIT_MISSING, "error");
    return;
  }
  if (state.session) return;
  const session = new StreamSession({
    key: state.key,
    kind,
    LK: LK(),
    onTrack: (track) => {
      track.attach(el.preview);
      el.stage.dataset.video = "1";
      show(el.stageEmpty, false);
    },
    onStatus: ({ state: s, text }) => {
      pill(el.streamState, s === "live" ? "live" : "starting", s === "live" ? "live" : "warn");
      el.tPublisher.textContent = text;
      el.stage.dataset.state = s;
    },
    onTelemetry: (t) => renderTelemetry(session, t),
    onEnded: (reason, message) => onEnded(session, reason, message),
    // a session that has ended (or been replaced) must not overwrite what the page says now
    onWarning: (message) => { if (state.session === session) notice(el.cameraNotice, message, "warn"); },
  });
  state.session = session;
  state.starting = true;
  state.followLive = true;
  renderControls();
  try {
    await session.start();
    if (session.closed) return;
    state.lastStreamId = session.id;
    el.streamId.textContent = session.id;
    if (watchCard) watchCard.streamStarted(session.id);
    show(el.streamIdRow, true);
    el.stageBadgeText.textContent = kind === "screen" ? "SCREEN" : "LIVE";
    show(el.stageBadge, true);
    if (streamsCard) streamsCard.refresh();
  } catch (err) {
    if (state.session === session) state.session = null;
    pill(el.streamState, "idle", "muted");
    el.stage.dataset.state = "idle";
    releasePreview(session);
    el.tPublisher.textContent = "–";
    notice(el.cameraNotice, err.message, "error");
    if (err instanceof ApiError && err.status === 401) pill(el.keyStatus, "key rejected", "bad");
  } finally {
    state.starting = false;
    renderControls();
    renderSnippet();
  }
}

function releasePreview(session) {
  if (session.track) session.track.detach(el.preview);
  el.preview.srcObject = null;
  delete el.stage.dataset.video;
  show(el.stageEmpty, true);
}

function onEnded(session, reason, message) {
  if (state.session === session) state.session = null;
  releasePreview(session);
  show(el.stageBadge, false);
  el.stage.dataset.state = "ended";
  const label = reason === "expired" ? "expired" : reason === "gone" ? "gone" : "ended";
  pill(el.streamState, label, reason === "deleted" ? "muted" : "bad");
  el.tState.textContent = label;
  el.tLease.textContent = "–";
  el.tPublisher.textContent = "disconnected";
  if (message) notice(el.cameraNotice, message, reason === "deleted" && !message.includes("fail") ? "info" : "error");
  else notice(el.cameraNotice, "Stream stopped. Its frames are gone; Start camera makes a new one.", "info");
  if (streamsCard) streamsCard.refresh();
  renderControls();
  renderSnippet();
}

function renderTelemetry(session, t) {
  state.telemetry = t;
  el.tState.textContent = t.state === "ended" ? `ended (${t.end_reason || "?"})` : t.last_frame_index == null ? "active · waiting for frames" : "active";
  el.tFps.textContent = t.recent_fps != null ? Number(t.recent_fps).toFixed(1) : "–";
  el.tLast.textContent = t.last_frame_index == null ? "none yet" : `#${fmtInt(t.last_frame_index)}`;
  const span = t.first_available_frame_at_ms != null && t.last_frame_at_ms != null ? t.last_frame_at_ms - t.first_available_frame_at_ms : null;
  el.tRetained.textContent = span == null ? "–" : `${fmtSeconds(span)} · ${fmtInt(t.retained_frame_count)} frames`;
  el.tRes.textContent = t.width && t.height ? `${t.width}×${t.height}${t.codec ? " " + t.codec : ""}` : "–";
  let pub = session.publisherState;
  if (t.publisher_connected === false && t.state === "active" && pub === "connected") pub = "connecting (the server has not seen the publisher yet)";
  if (t.last_error) pub = `${pub} · error: ${t.last_error}`;
  el.tPublisher.textContent = pub;
  el.tPublisher.dataset.tone = t.last_error ? "bad" : "";
  if (t.state === "active" && t.last_frame_index != null && state.session === session) {
    pill(el.streamState, "live", "live");
  }
  renderScrubber();
  renderControls();
}

function tickLease() {
  const s = state.session;
  if (!s || s.closed) return;
  const left = s.leaseLeftMs();
  if (left == null) return;
  el.tLease.textContent = left <= 0 ? "expiring…" : `${fmtSeconds(left)} left`;
  el.tLease.dataset.tone = left < 15000 ? "warn" : "";
}

// ---------------------------------------------------------------------------------------------- models

async function refreshModels() {
  try {
    state.models = await listModels();
  } catch (err) {
    pill(el.modelStatus, "error", "bad");
    notice(el.askNotice, `Could not list models: ${err.message}`, "error");
    return;
  }
  renderDownload();
  const signature = JSON.stringify(state.models.map((m) => [m.id, m.status]));
  if (signature === state.modelSignature) return;
  state.modelSignature = signature;
  const previous = el.model.value || loadPrefs().model;
  el.model.replaceChildren(
    ...state.models.map((m) => {
      const o = document.createElement("option");
      o.value = m.id;
      o.textContent = m.status === "ready" ? m.id : `${m.id} (${m.status})`;
      return o;
    }),
  );
  if (!state.models.length) {
    const o = document.createElement("option");
    o.value = "";
    o.textContent = "no models configured";
    el.model.append(o);
  }
  el.model.value = pickModel(state.models, previous);
  renderModel();
}

function currentModel() {
  return state.models.find((m) => m.id === el.model.value) || null;
}

/** The chosen model's weights download (an in-process model's first request starts it): a progress bar. */
function renderDownload() {
  const m = currentModel();
  const d = m && m.status === "downloading" ? m.download : null;
  el.modelDownload.hidden = !d;
  if (!d) return;
  el.modelDownloadBar.value = d.total_bytes ? d.done_bytes / d.total_bytes : 0;
  el.modelDownloadText.textContent = `Downloading ${m.id}: ${downloadText(d)}`;
}

const WAITING = new Set(["not downloaded", "downloading", "downloaded", "loading"]);

function renderModel() {
  const m = currentModel();
  if (!m) pill(el.modelStatus, "none", "muted");
  else pill(el.modelStatus, m.status, m.status === "ready" ? "ok" : WAITING.has(m.status) ? "warn" : "bad");
  renderDownload();
  const video = !m || !m.capabilities || m.capabilities.video !== false;
  const secondsInput = document.querySelector('input[name="ref"][value="seconds"]');
  secondsInput.disabled = !video;
  secondsInput.parentElement.title = video ? "" : `${m.id} takes single frames only`;
  if (!video && refMode() === "seconds") setRefMode("latest");
  renderControls();
  renderSnippet();
}

// ---------------------------------------------------------------------------------------------- reference

function refMode() {
  return document.querySelector('input[name="ref"]:checked').value;
}

function setRefMode(mode) {
  const input = document.querySelector(`input[name="ref"][value="${mode}"]`);
  if (input && !input.disabled) input.checked = true;
  onRefChange();
}

function currentRef() {
  const mode = refMode();
  if (mode === "seconds") return { mode, seconds: Number(el.refN.value) || 5, fps: Number(el.refFps.value) || 1 };
  if (mode === "pick") return { mode, frameIndex: Number(el.scrubber.value) };
  return { mode: "latest" };
}

function onRefChange() {
  const mode = refMode();
  show(el.refSeconds, mode === "seconds");
  show(el.refPick, mode === "pick");
  if (mode === "pick") {
    renderScrubber();
    loadScrubPreview();
  }
  savePrefs({ ref: mode });
  renderSnippet();
}

function renderScrubber() {
  const t = currentTelemetry();
  const live = currentIsActive() && t && t.state === "active" && t.last_frame_index != null;
  el.scrubber.disabled = !live;
  if (!live) {
    el.scrubLabel.textContent = currentStreamId() ? "waiting for frames…" : "start the camera (or pick a stream) to pick a frame";
    return;
  }
  const lo = t.first_available_frame_index;
  const hi = t.last_frame_index;
  el.scrubber.min = String(lo);
  el.scrubber.max = String(hi);
  if (state.followLive || Number(el.scrubber.value) < lo) el.scrubber.value = String(hi);
  renderScrubLabel();
  if (refMode() === "pick" && state.followLive) loadScrubPreview();
}

function renderScrubLabel() {
  const t = currentTelemetry();
  const i = Number(el.scrubber.value);
  if (!t || t.last_frame_index == null) return;
  const behind = t.last_frame_index - i;
  const approxS = t.recent_fps > 0 ? behind / t.recent_fps : null;
  el.scrubLabel.textContent = behind === 0
    ? `frame #${fmtInt(i)} · live edge`
    : `frame #${fmtInt(i)} · ${fmtInt(behind)} frames${approxS != null ? ` (≈${fmtSeconds(approxS * 1000)})` : ""} before live`;
  el.scrubLive.hidden = behind === 0;
}

let scrubTimer = null;
let scrubAbort = null;
let scrubShown = null;
function loadScrubPreview() {
  clearTimeout(scrubTimer);
  scrubTimer = setTimeout(async () => {
    const id = currentStreamId();
    const i = Number(el.scrubber.value);
    if (!id || el.scrubber.disabled || scrubShown === `${id}/${i}`) return;
    if (scrubAbort) scrubAbort.abort();
    scrubAbort = new AbortController();
    try {
      const url = await frameBlobUrl(state.key, id, i, 480, scrubAbort.signal);
      const img = new Image();
      img.alt = `frame ${i}`;
      img.src = url;
      img.onload = () => URL.revokeObjectURL(url);
      el.scrubPreview.replaceChildren(img);
      scrubShown = `${id}/${i}`;
    } catch (err) {
      if (err.name === "AbortError") return;
      const span = document.createElement("span");
      span.className = "hint";
      span.textContent = `preview unavailable: ${err.message}`;
      el.scrubPreview.replaceChildren(span);
    }
  }, 120);
}

// ---------------------------------------------------------------------------------------------- ask

function requestBody() {
  const streamId = currentStreamId() || "STREAM_ID";
  return chatRequest({
    model: el.model.value || "MODEL",
    question: el.question.value.trim() || el.question.placeholder,
    streamId,
    ref: currentRef(),
    options: currentOptions(),
  });
}

function currentOptions() {
  return readOptions({ system: el.optSystem.value, temperature: el.optTemperature.value, maxTokens: el.optMaxTokens.value });
}

function onOptionsInput() {
  const options = currentOptions();
  const set = countSet(options);
  el.optionsSummary.textContent = options.problems.length ? "check the values" : set ? `${set} set` : "model defaults";
  el.optionsSummary.dataset.tone = options.problems.length ? "error" : "";
  renderSnippet();
}

function renderSnippet() {
  const base = apiBase();
  const body = requestBody();
  el.snippet.textContent = state.lang === "python" ? pythonSnippet(base, body) : curlSnippet(base, body);
  el.snippet.dataset.lang = state.lang;
  const live = currentStreamId() && currentIsActive();
  el.snippetHint.textContent = live
    ? "Ready to run while this stream is live: export LIVESIGHT_API_KEY=… first. Your key is never put into the snippet."
    : "Start the camera to fill in a real stream_id. Your key is never put into the snippet (export LIVESIGHT_API_KEY=… first).";
}

function renderControls() {
  const live = currentIsActive();
  const picked = streamsCard && streamsCard.picked();
  el.startCamera.disabled = !!state.session || state.starting;
  el.shareScreen.disabled = !!state.session || state.starting;
  el.stop.disabled = !state.session;
  el.actions.toggleAttribute("data-live", !!state.session);
  el.stop.lastChild.textContent = state.starting ? " Cancel" : " Stop";
  const t = currentTelemetry();
  const hasFrames = live && t && t.last_frame_index != null;
  const canAsk = live && !!el.model.value;
  el.ask.disabled = !canAsk && !state.asking;
  el.ask.textContent = state.asking ? "Stop answer" : "Ask";
  el.ask.dataset.mode = state.asking ? "cancel" : "ask";
  el.askHint.textContent = !state.key
    ? "Paste your API key to start"
    : !live
      ? picked ? "The picked stream has ended: pick another" : "Start the camera (or pick a stream) to ask about it"
      : !hasFrames
        ? "Waiting for the first frame…"
        : picked ? `Ask about stream ${picked.id.slice(0, 8)} (picked under Streams)` : "Ask about what the camera shows";
}

async function ask() {
  if (state.asking) {
    state.asking.abort();
    return;
  }
  const { problems } = currentOptions();
  if (problems.length) {
    el.options.open = true;
    notice(el.askNotice, problems.join(" "), "error");
    return;
  }
  const currentId = currentStreamId();
  if (!currentId || !currentIsActive()) {
    notice(el.askNotice, "Start the camera (or pick an active stream) first: questions are about its frames.", "error");
    return;
  }
  const body = requestBody();
  const model = currentModel();
  notice(el.askNotice, null);
  if (model && model.status !== "ready") {
    notice(el.askNotice, `${model.id} is marked unavailable by the server; asking anyway…`, "warn");
  }
  state.asking = new AbortController();
  renderControls();
  show(el.answerBox, true);
  el.answer.textContent = "";
  el.answer.dataset.state = "streaming";
  el.framesUsed.replaceChildren();
  el.timing.replaceChildren();
  const streamId = currentId;
  try {
    const result = await askStreaming({
      key: state.key,
      body,
      signal: state.asking.signal,
      onDelta: (d) => {
        el.answer.textContent += d;
      },
    });
    if (!result.text) el.answer.textContent = "(the model returned an empty answer)";
    notice(el.askNotice, null);
    renderFramesUsed(streamId, result.overshoot);
    renderTiming(result);
  } catch (err) {
    if (err.name === "AbortError") {
      el.answer.textContent += " [stopped]";
    } else {
      if (!el.answer.textContent) show(el.answerBox, false);
      notice(el.askNotice, err.message, "error");
    }
  } finally {
    el.answer.dataset.state = "done";
    state.asking = null;
    renderControls();
  }
}

function renderFramesUsed(streamId, overshoot) {
  const entries = (overshoot && overshoot.frames) || [];
  const tiles = [];
  let total = 0;
  for (const entry of entries) {
    const indexes = entry.frame_indexes || [];
    const stamps = entry.timestamps_ms || [];
    total += indexes.length;
    indexes.forEach((idx, n) => {
      if (tiles.length >= MAX_THUMBS) return;
      tiles.push(thumbTile(entry.stream_id || streamId, idx, stamps[n]));
    });
  }
  if (!total) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = overshoot ? "No frames were sent to the model." : "The server did not say which frames it used.";
    el.framesUsed.replaceChildren(p);
    return;
  }
  const head = document.createElement("div");
  head.className = "frames-head";
  head.textContent = `${total} frame${total === 1 ? "" : "s"} sent to the model${total > tiles.length ? ` (first ${tiles.length} shown)` : ""}`;
  const row = document.createElement("div");
  row.className = "thumbs";
  row.append(...tiles);
  el.framesUsed.replaceChildren(head, row);
}

function thumbTile(streamId, index, timestampMs) {
  const fig = document.createElement("figure");
  fig.className = "thumb loading";
  const cap = document.createElement("figcaption");
  cap.textContent = `#${fmtInt(index)}${timestampMs != null ? ` · ${fmtSeconds(timestampMs)}` : ""}`;
  fig.append(cap);
  frameBlobUrl(state.key, streamId, index, 240)
    .then((url) => {
      const img = new Image();
      img.alt = `frame ${index}`;
      img.src = url;
      img.onload = () => {
        fig.classList.remove("loading");
        URL.revokeObjectURL(url);
      };
      fig.prepend(img);
      fig.title = `frame_index ${index}` + (timestampMs != null ? `, timestamp_ms ${timestampMs}` : "");
    })
    .catch((err) => {
      fig.classList.remove("loading");
      fig.classList.add("gone");
      fig.title = err.message;
      const span = document.createElement("span");
      span.className = "gone-label";
      span.textContent = err.status === 410 ? "evicted" : err.status === 404 ? "gone" : "unavailable";
      fig.prepend(span);
    });
  return fig;
}

function renderTiming(result) {
  const t = (result.overshoot && result.overshoot.timing) || {};
  const items = [
    ["resolve", t.resolve_ms],
    ["first token", t.upstream_first_token_ms],
    ["total", t.total_ms],
    ["newest frame age", t.newest_frame_age_ms],
  ].filter(([, v]) => v != null);
  items.push(["in the browser", result.totalMs]);
  const chips = items.map(([label, v]) => chip(label, fmtMs(v)));
  if (result.usage) chips.push(chip("tokens", `${fmtInt(result.usage.prompt_tokens)} in · ${fmtInt(result.usage.completion_tokens)} out`));
  el.timing.replaceChildren(...chips);
}

function chip(label, value) {
  const span = document.createElement("span");
  span.className = "tchip";
  const b = document.createElement("b");
  b.textContent = value;
  span.append(`${label} `, b);
  return span;
}

// ---------------------------------------------------------------------------------------------- init

const LIVEKIT_MISSING = "livekit-client is not installed on the server, so the page cannot publish video. " +
  "Run `make setup` (it runs `npm ci --prefix src/livesight/web`) in the livesight checkout, then reload this page.";

function init() {
  el.apiBase.textContent = apiBase();
  state.key = localStorage.getItem(KEY_STORAGE) || "";
  el.key.value = state.key;
  const prefs = loadPrefs();
  if (prefs.question) el.question.value = prefs.question;
  if (prefs.lang === "python") state.lang = "python";
  if (prefs.ref) {
    const input = document.querySelector(`input[name="ref"][value="${prefs.ref}"]`);
    if (input) input.checked = true;
  }
  for (const b of document.querySelectorAll(".tab")) b.setAttribute("aria-selected", String(b.dataset.lang === state.lang));

  if (livekitMissing()) {
    el.banner.textContent = LIVEKIT_MISSING;
    show(el.banner, true);
  } else {
    LK().setLogLevel("warn");
  }

  el.keyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    saveKey(el.key.value);
  });
  el.key.addEventListener("change", () => saveKey(el.key.value));
  el.key.addEventListener("paste", () => setTimeout(() => saveKey(el.key.value), 0));
  el.keyReveal.addEventListener("click", () => {
    el.key.type = el.key.type === "password" ? "text" : "password";
  });
  el.keyForget.addEventListener("click", () => {
    el.key.value = "";
    saveKey("");
  });

  el.startCamera.addEventListener("click", () => startStream("camera"));
  el.shareScreen.addEventListener("click", () => startStream("screen"));
  el.stop.addEventListener("click", () => state.session && state.session.stop());
  el.copyStreamId.addEventListener("click", () => copyText(el.streamId.textContent, el.copyStreamId));

  el.model.addEventListener("change", () => {
    savePrefs({ model: el.model.value });
    renderModel();
  });
  el.model.addEventListener("focus", refreshModels);
  for (const r of document.querySelectorAll('input[name="ref"]')) r.addEventListener("change", onRefChange);
  for (const input of [el.refN, el.refFps]) input.addEventListener("input", renderSnippet);
  for (const input of [el.optSystem, el.optTemperature, el.optMaxTokens]) input.addEventListener("input", onOptionsInput);
  el.scrubber.addEventListener("input", () => {
    state.followLive = Number(el.scrubber.value) >= Number(el.scrubber.max);
    renderScrubLabel();
    loadScrubPreview();
    renderSnippet();
  });
  el.scrubLive.addEventListener("click", () => {
    state.followLive = true;
    renderScrubber();
    loadScrubPreview();
    renderSnippet();
  });

  el.question.addEventListener("input", () => {
    savePrefs({ question: el.question.value });
    renderSnippet();
  });
  el.question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (!el.ask.disabled) ask();
    }
  });
  el.askForm.addEventListener("submit", (e) => {
    e.preventDefault();
    ask();
  });
  el.chips.addEventListener("click", (e) => {
    const b = e.target.closest(".chip");
    if (!b) return;
    el.question.value = b.dataset.q;
    savePrefs({ question: el.question.value });
    if (b.dataset.ref) setRefMode(b.dataset.ref);
    renderSnippet();
    el.question.focus();
  });

  for (const b of document.querySelectorAll(".tab")) {
    b.addEventListener("click", () => {
      state.lang = b.dataset.lang;
      savePrefs({ lang: state.lang });
      for (const x of document.querySelectorAll(".tab")) x.setAttribute("aria-selected", String(x === b));
      renderSnippet();
    });
  }
  el.copySnippet.addEventListener("click", () => copyText(el.snippet.textContent, el.copySnippet));

  // Leaving the page ends the stream (best effort) and releases the camera.
  window.addEventListener("pagehide", () => state.session && state.session.abandon());

  setInterval(tickLease, 250);
  // Poll models: every 3 s while the chosen one is not ready (a built-in model may still be loading), else 15 s.
  let lastModelPoll = 0;
  setInterval(() => {
    const m = currentModel();
    const every = m && m.status === "ready" ? 15000 : 3000;
    if (document.visibilityState === "visible" && Date.now() - lastModelPoll >= every) {
      lastModelPoll = Date.now();
      refreshModels();
    }
  }, 1000);

  streamsCard = initStreams({
    key: () => state.key,
    LK: () => (livekitMissing() ? null : LK()),
    ownStreamId: () => (state.session ? state.session.id : null),
    onPick: (stream) => {
      if (stream && watchCard) watchCard.streamStarted(stream.id);
      state.followLive = true;
      scrubShown = null;
      renderScrubber();
      renderControls();
      renderSnippet();
    },
    onChange: () => {
      renderScrubber();
      renderControls();
    },
  });
  watchCard = initWatch({
    key: () => state.key,
    model: () => el.model.value,
    question: () => el.question.value,
    thumb: thumbTile,
  });
  onRefChange();
  renderControls();
  checkKey();
  refreshModels();
  streamsCard.refresh();
  document.body.dataset.ready = "1";
}

let watchCard = null; // the Watch card (js/watch.js), once init() made it
let streamsCard = null; // the Streams card (js/streams.js), once init() made it

init();
