// Pure functions: the chat request the page sends, and the same request as curl and Python `openai`
// code. The key is never in a snippet: `$LIVESIGHT_API_KEY` / `os.environ["LIVESIGHT_API_KEY"]`.

/**
 * The ovs:// URI for what to reference (CONTRACT §5).
 * @param {string} streamId
 * @param {{mode: "latest"|"seconds"|"pick", seconds?: number, fps?: number, frameIndex?: number}} ref
 */
export function ovsUri(streamId, ref) {
  const base = `ovs://streams/${streamId}`;
  switch (ref.mode) {
    case "seconds": {
      const ms = Math.round(Number(ref.seconds) * 1000);
      return `${base}?start_offset_ms=${-Math.abs(ms)}&max_fps=${Number(ref.fps)}`;
    }
    case "pick":
      return `${base}?frame_index=${Math.trunc(Number(ref.frameIndex))}`;
    default:
      return `${base}?frame_index=-1`;
  }
}

/**
 * One user message: the question, then the frame(s); `stream` with usage so the final chunk has `overshoot`.
 * `options` (from options.js): a system message first, and sampling fields such as `temperature`.
 */
export function chatRequest({ model, question, streamId, ref, options }) {
  const content = [{ type: "text", text: question }];
  if (streamId) {
    const url = ovsUri(streamId, ref);
    content.push(ref.mode === "seconds"
      ? { type: "video_url", video_url: { url } }
      : { type: "image_url", image_url: { url } });
  }
  const messages = [{ role: "user", content }];
  if (options && options.system) messages.unshift({ role: "system", content: options.system });
  return {
    model,
    messages,
    ...(options ? options.fields : {}),
    stream: true,
    stream_options: { include_usage: true },
  };
}

/** A string as a POSIX shell single-quoted word. */
export function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

export function curlSnippet(baseUrl, body) {
  const json = prettyJson(body);
  return [
    `curl -N ${baseUrl}/chat/completions \\`,
    `  -H "Authorization: Bearer $LIVESIGHT_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d ${shellQuote(json)}`,
  ].join("\n");
}

/**
 * Pretty-print a JSON value: a container stays on one line when it fits in `width` columns, else its
 * items go one per line. `scalar` renders strings, numbers, booleans and null (JSON or Python spelling).
 */
function layout(value, scalar, step, indent = 0, prefix = 0, width = 78) {
  const flat = inline(value, scalar);
  if (value === null || typeof value !== "object" || indent + prefix + flat.length <= width) return flat;
  const pad = " ".repeat(indent);
  const inner = " ".repeat(indent + step);
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => inner + layout(v, scalar, step, indent + step, 0, width)).join(",\n")}\n${pad}]`;
  }
  const items = Object.entries(value).map(([k, v]) => {
    const key = `${scalar(k)}: `;
    return inner + key + layout(v, scalar, step, indent + step, key.length, width);
  });
  return `{\n${items.join(",\n")}\n${pad}}`;
}

function inline(value, scalar) {
  if (Array.isArray(value)) return `[${value.map((v) => inline(v, scalar)).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value).map(([k, v]) => `${scalar(k)}: ${inline(v, scalar)}`).join(", ")}}`;
  }
  return scalar(value);
}

function jsonScalar(v) {
  return JSON.stringify(v === undefined ? null : v);
}

function pyScalar(v) {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "None";
  // JSON string escapes (\" \\ \n \uXXXX ...) are valid Python escapes too.
  return JSON.stringify(String(v));
}

/** A JSON value as pretty JSON text. */
export function prettyJson(value, indent = 0, prefix = 0) {
  return layout(value, jsonScalar, 2, indent, prefix);
}

/** A JSON value as a Python literal (True/False/None). */
export function pyLiteral(value, indent = 0, prefix = 0) {
  return layout(value, pyScalar, 4, indent, prefix);
}

export function pythonSnippet(baseUrl, body) {
  const { model, messages, stream, stream_options: streamOptions, ...rest } = body;
  const extra = Object.entries(rest).map(([k, v]) => `    ${k}=${pyLiteral(v, 4, k.length + 1)},`);
  const lines = [
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${pyScalar(baseUrl)}, api_key=os.environ["LIVESIGHT_API_KEY"])`,
    "",
    `${stream ? "stream" : "completion"} = client.chat.completions.create(`,
    `    model=${pyScalar(model)},`,
    `    messages=${pyLiteral(messages, 4, 9)},`,
    ...extra,
  ];
  if (stream) {
    lines.push(
      "    stream=True,",
      `    stream_options=${pyLiteral(streamOptions ?? { include_usage: true }, 4, 15)},`,
      ")",
      "for chunk in stream:",
      "    if chunk.choices:",
      "        print(chunk.choices[0].delta.content or \"\", end=\"\", flush=True)",
      "    if chunk.usage:  # the last chunk: usage, and the frames livesight sent to the model",
      "        print()",
      "        print(chunk.model_extra[\"overshoot\"][\"frames\"])",
    );
  } else {
    lines.push(")", "print(completion.choices[0].message.content)");
  }
  return lines.join("\n");
}
