// The chat panel's "Options": a system prompt, temperature and max tokens. Empty means "not sent" (the
// model's own defaults apply). Pure: `readOptions` turns the three raw input values into the request's
// fields and a list of problems; the page refuses to ask while there are problems.

export const LIMITS = { temperature: [0, 2], maxTokens: [1, 1_000_000] };

/**
 * @param {{system: string, temperature: string, maxTokens: string}} raw
 * @returns {{system: string|null, fields: {temperature?: number, max_tokens?: number}, problems: string[]}}
 */
export function readOptions(raw) {
  const problems = [];
  const fields = {};
  const system = String(raw.system ?? "").trim() || null;
  const t = String(raw.temperature ?? "").trim();
  if (t !== "") {
    const value = Number(t);
    const [lo, hi] = LIMITS.temperature;
    if (!Number.isFinite(value) || value < lo || value > hi) problems.push(`Temperature must be a number from ${lo} to ${hi}.`);
    else fields.temperature = value;
  }
  const m = String(raw.maxTokens ?? "").trim();
  if (m !== "") {
    const value = Number(m);
    const [lo, hi] = LIMITS.maxTokens;
    if (!Number.isInteger(value) || value < lo || value > hi) problems.push(`Max tokens must be a whole number from ${lo} to ${hi.toLocaleString("en")}.`);
    else fields.max_tokens = value;
  }
  return { system, fields, problems };
}

/** How many options are set, for the collapsed summary ("Options · 2 set"). */
export function countSet(options) {
  return (options.system ? 1 : 0) + Object.keys(options.fields).length;
}
