// Talking to the livesight API: relative URLs (the page works behind any host, port or path prefix),
// the key only ever in the Authorization header, and every failure turned into an ApiError whose
// message a person can act on (CONTRACT §2 envelopes).

/** Absolute URL of an API path, relative to where the page is served (`v1/streams` → /v1/streams). */
export function apiUrl(path) {
  return new URL(path, document.baseURI).toString();
}

/** The base URL that code snippets should use (`http://host:port/v1`). */
export function apiBase() {
  return apiUrl("v1").replace(/\/$/, "");
}

export class ApiError extends Error {
  /**
   * @param {string} message  what went wrong, readable
   * @param {{status?: number, code?: string, type?: string, path?: string}} info
   */
  constructor(message, { status = 0, code = "", type = "", path = "" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.type = type;
    this.path = path;
  }
}

/** The server's own message out of any of the three envelopes (or a short raw body). */
export function envelopeMessage(body, fallback) {
  if (body && typeof body === "object") {
    const detail = body.detail;
    if (typeof detail === "string") return { message: detail };
    if (detail && typeof detail === "object" && detail.error) {
      const e = detail.error;
      return { message: String(e.message ?? fallback), code: e.code, type: e.type };
    }
    if (body.error && typeof body.error === "object") {
      // mid-stream SSE error event: {"error": {...}}
      const e = body.error;
      return { message: String(e.message ?? fallback), code: e.code, type: e.type };
    }
    if (body.error === "validation_error") {
      const parts = (body.details || []).map((d) => `${(d.loc || []).join(".")}: ${d.msg}`);
      return { message: `${body.message}${parts.length ? ": " + parts.join("; ") : ""}`, code: "validation_error" };
    }
  }
  return { message: fallback };
}

/** Turn a non-2xx response into an ApiError, with a hint for the cases people hit first. */
export async function errorFromResponse(res, path) {
  let body = null;
  const text = await res.text().catch(() => "");
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const fallback = text && text.length < 300 && !text.trimStart().startsWith("<")
    ? text.trim()
    : `${res.status} ${res.statusText || "error"}`;
  const { message, code, type } = envelopeMessage(body, fallback);
  return new ApiError(explain(res.status, code, message), { status: res.status, code: code || "", type: type || "", path });
}

/** Readable message for a status/code, keeping the server's own words. */
export function explain(status, code, message) {
  if (status === 401) {
    return "The API key was rejected (401). Paste the key that `livesight serve` printed on first start " +
      "(it starts with ovs-), or create one with `livesight keys create`.";
  }
  if (code === "model_loading") {
    return `Getting the model ready: ${message}. The download shows under the model; ask again once it is ready.`;
  }
  if (code === "model_busy") return `The model is busy with other questions: ${message}`;
  if (code === "model_unavailable" || code === "model_not_ready") {
    return `Model unavailable: ${message}`;
  }
  if (code && code.startsWith("upstream_")) {
    return `The model could not answer (${code}): ${message}`;
  }
  if (code === "stream_not_found" || (status === 404 && /stream .* not found/i.test(message))) {
    return `The stream is gone (expired or deleted): ${message}. Start the camera again.`;
  }
  if (status === 429) return `Too many requests or streams (429): ${message}`;
  if (status >= 500) return `The livesight server failed (${status}): ${message}`;
  return message;
}

/**
 * fetch + JSON + readable errors.
 * @param {string} path  relative API path, e.g. "v1/streams"
 * @param {{key?: string, method?: string, body?: any, signal?: AbortSignal, keepalive?: boolean}} opts
 */
export async function request(path, { key, method = "GET", body, signal, keepalive } = {}) {
  const headers = {};
  if (key) headers["Authorization"] = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      keepalive,
      cache: "no-store",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`Cannot reach the livesight server at ${apiBase()} (${err && err.message ? err.message : err}). Is it still running?`, { path });
  }
  if (!res.ok) throw await errorFromResponse(res, path);
  if (res.status === 204) return null;
  return res.json();
}

/** A frame as an object URL (the endpoint needs the Authorization header, so <img src> can't fetch it). */
export async function frameBlobUrl(key, streamId, frameIndex, maxSide, signal) {
  const path = `v1/streams/${encodeURIComponent(streamId)}/frames/${frameIndex}?max_side=${maxSide}`;
  let res;
  try {
    res = await fetch(apiUrl(path), { headers: { Authorization: `Bearer ${key}` }, signal });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(`Cannot reach the livesight server (${err && err.message ? err.message : err})`, { path });
  }
  if (!res.ok) throw await errorFromResponse(res, path);
  // frames/0 means "the oldest retained frame" (CONTRACT §5.1): when lifetime frame 0 itself is gone,
  // the server answers with another frame; never show it under the wrong number.
  const served = res.headers.get("X-Frame-Index");
  if (frameIndex >= 0 && served !== null && Number(served) !== frameIndex) {
    throw new ApiError(`Frame ${frameIndex} is no longer retained (evicted).`, { status: 410, code: "frame_evicted", path });
  }
  return URL.createObjectURL(await res.blob());
}
