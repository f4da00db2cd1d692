// Server-sent events from a fetch() body: yields each event's `data` (multi-line data joined by "\n").

/** @param {ReadableStream<Uint8Array>} body */
export async function* sseData(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      for (;;) {
        const m = /\r\n\r\n|\n\n|\r\r/.exec(buf);
        if (!m) break;
        const block = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        const data = parseEvent(block);
        if (data !== null) yield data;
      }
    }
    const tail = parseEvent(buf);
    if (tail !== null) yield tail;
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** The data of one event block, or null for comments / blocks without data. */
export function parseEvent(block) {
  const data = [];
  for (const line of block.split(/\r\n|\n|\r/)) {
    if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
  }
  return data.length ? data.join("\n") : null;
}
