// The Watch card: a server-side watch (POST v1/watches) asking the Ask card's question about the newest
// frame at an interval; its results stream in from v1/watches/{id}/events (fetch + SSE, so the key stays
// in the Authorization header), each with a thumbnail of the frame it used. Stop deletes the watch.

import { apiUrl, errorFromResponse, request } from "./api.js";
import { sseData } from "./sse.js";

const MAX_ROWS = 20;

/**
 * @param {{key: () => string, model: () => string, question: () => string,
 *          thumb: (streamId: string, index: number, timestampMs: number) => HTMLElement}} deps
 */
export function initWatch(deps) {
  const $ = (id) => document.getElementById(id);
  const el = {
    form: $("watch-form"), stream: $("watch-stream"), every: $("watch-every"), start: $("watch-start"),
    stop: $("watch-stop"), state: $("watch-state"), notice: $("watch-notice"), results: $("watch-results"),
  };
  let current = null; // {id, abort}

  const setState = (text, tone) => {
    el.state.textContent = text;
    el.state.dataset.tone = tone;
  };
  const say = (message) => {
    el.notice.hidden = !message;
    el.notice.textContent = message || "";
  };
  const running = (on) => {
    el.start.disabled = on;
    el.stop.disabled = !on;
  };

  function row(result, streamId) {
    const li = document.createElement("li");
    li.className = "watch-result";
    li.dataset.seq = String(result.seq);
    const frames = (result.frames || []).flatMap((f) => (f.frame_indexes || []).map((i, n) => [f.stream_id || streamId, i, (f.timestamps_ms || [])[n]]));
    const text = document.createElement("p");
    const where = frames.length ? `frame #${frames[frames.length - 1][1]}` : "no frame";
    const mark = result.matched === true ? " · match" : result.matched === false ? " · no match" : "";
    text.textContent = result.error
      ? `#${result.seq} · ${where} · error ${result.error.code}: ${result.error.message}`
      : `#${result.seq} · ${where}${mark}: ${result.output}`;
    if (frames.length) li.append(deps.thumb(...frames[frames.length - 1]));
    li.append(text);
    return li;
  }

  async function follow(watch) {
    const res = await fetch(apiUrl(`v1/watches/${encodeURIComponent(watch.id)}/events`), {
      headers: { Authorization: `Bearer ${deps.key()}` },
      signal: current.abort.signal,
      cache: "no-store",
    });
    if (!res.ok) throw await errorFromResponse(res, "v1/watches/{id}/events");
    for await (const data of sseData(res.body)) {
      const payload = JSON.parse(data);
      if (payload.object === "watch") {
        setState(`ended (${payload.end_reason})`, "muted");
        break;
      }
      el.results.prepend(row(payload, watch.stream_ids[0]));
      while (el.results.children.length > MAX_ROWS) el.results.lastElementChild.remove();
    }
  }

  async function start() {
    say("");
    const streamId = el.stream.value.trim();
    if (!deps.key()) return say("Paste your API key first (top right).");
    if (!streamId) return say("Start the camera (or paste a stream_id) to watch it.");
    const question = deps.question().trim() || "What do you see?";
    const url = `ovs://streams/${streamId}?frame_index=-1`;
    const body = {
      request: {
        model: deps.model(),
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url } }, { type: "text", text: question }] }],
      },
      interval_ms: Math.max(250, Math.round(Number(el.every.value || 2) * 1000)),
    };
    running(true);
    try {
      const watch = await request("v1/watches", { key: deps.key(), method: "POST", body });
      current = { id: watch.id, abort: new AbortController() };
      el.results.replaceChildren();
      setState("watching", "ok");
      await follow(watch);
    } catch (err) {
      if (!err || err.name !== "AbortError") {
        say(err && err.message ? err.message : String(err));
        setState("failed", "error");
      }
    } finally {
      running(false);
    }
  }

  async function stop() {
    const watch = current;
    if (!watch) return;
    current = null;
    watch.abort.abort();
    try {
      await request(`v1/watches/${encodeURIComponent(watch.id)}`, { key: deps.key(), method: "DELETE" });
      setState("stopped", "muted");
    } catch (err) {
      say(err && err.message ? err.message : String(err));
    }
  }

  el.form.addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
  el.stop.addEventListener("click", stop);
  return {
    /** The camera's stream, offered when the field is empty or still holds the previous one. */
    streamStarted(id) {
      if (!el.stream.value || el.stream.dataset.auto === "1") {
        el.stream.value = id;
        el.stream.dataset.auto = "1";
      }
    },
  };
}
