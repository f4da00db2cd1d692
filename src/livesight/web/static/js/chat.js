// Models and chat: GET /v1/models, POST /v1/chat/completions streamed over SSE (CONTRACT §6, §7).

import { ApiError, apiUrl, envelopeMessage, errorFromResponse, explain, request } from "./api.js";
import { sseData } from "./sse.js";

export async function listModels() {
  const body = await request("v1/models");
  return Array.isArray(body && body.data) ? body.data : [];
}

/** The model to select first: the previous choice if still listed, else the first ready one. */
export function pickModel(models, previous) {
  if (previous && models.some((m) => m.id === previous)) return previous;
  const ready = models.find((m) => m.status === "ready");
  return (ready || models[0] || { id: "" }).id;
}

/** "12.0 MB of 500.0 MB (2%) · 3.2 MB/s · about 2:35 left": a model card's `download` in words. */
export function downloadText(d) {
  const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
  const share = d.total_bytes ? ` (${Math.floor((d.done_bytes * 100) / d.total_bytes)}%)` : "";
  let text = `${mb(d.done_bytes)} of ${mb(d.total_bytes)}${share} · ${mb(d.speed_bps)}/s`;
  if (d.eta_s !== null && d.eta_s !== undefined) {
    const s = Math.ceil(d.eta_s);
    text += ` · about ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")} left`;
  }
  return text;
}

/**
 * Stream one chat completion. Calls onDelta(text) per token chunk; resolves with the final text,
 * `usage`, the `overshoot` object (frames used, timing) and the browser's own timings.
 */
export async function askStreaming({ key, body, onDelta, signal }) {
  const started = performance.now();
  let res;
  try {
    res = await fetch(apiUrl("v1/chat/completions"), {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`Cannot reach the livesight server (${err && err.message ? err.message : err}). Is it still running?`);
  }
  if (!res.ok) throw await errorFromResponse(res, "v1/chat/completions");

  let text = "";
  let usage = null;
  let overshoot = null;
  let firstTokenMs = null;
  let finishReason = null;
  const contentType = res.headers.get("content-type") || "";
  if (!contentType.includes("text/event-stream")) {
    // A server that ignored `stream: true`: take the whole completion at once.
    const whole = await res.json();
    text = (whole.choices && whole.choices[0] && whole.choices[0].message && whole.choices[0].message.content) || "";
    onDelta(text);
    return { text, usage: whole.usage || null, overshoot: whole.overshoot || null, finishReason: null, firstTokenMs: performance.now() - started, totalMs: performance.now() - started };
  }
  for await (const data of sseData(res.body)) {
    if (data === "[DONE]") break;
    let chunk;
    try {
      chunk = JSON.parse(data);
    } catch {
      continue;
    }
    if (chunk.error) {
      const { message, code, type } = envelopeMessage(chunk, "the answer failed while streaming");
      throw new ApiError(explain(0, code, message), { code: code || "", type: type || "" });
    }
    for (const choice of chunk.choices || []) {
      const delta = choice.delta && choice.delta.content;
      if (delta) {
        if (firstTokenMs === null) firstTokenMs = performance.now() - started;
        text += delta;
        onDelta(delta);
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
    if (chunk.overshoot) overshoot = chunk.overshoot;
  }
  return { text, usage, overshoot, finishReason, firstTokenMs, totalMs: performance.now() - started };
}
