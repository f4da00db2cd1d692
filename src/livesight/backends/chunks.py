"""A complete `chat.completion` as the `chat.completion.chunk`s a stream would have carried (issue 8 item 5).

Some OpenAI-compatible servers answer a `stream: true` request with one plain JSON completion (they
ignore `stream`, or a proxy buffered it). Rather than an empty success, livesight streams that answer:
per choice one chunk with the whole message as its delta (role, content, tool_calls with their
`index`, refusal, reasoning_content), then one with its `finish_reason`; then, when the client asked
for `stream_options.include_usage`, one with `choices: []` and the completion's `usage`.
"""

from __future__ import annotations

from livesight.core.jsontypes import JsonObject

Chunk = JsonObject
_DELTA_FIELDS = ("content", "refusal", "reasoning_content")


def completion_chunks(completion: JsonObject, *, include_usage: bool) -> list[Chunk]:
    """The chunks of `completion` (whose `choices` is a list); [] when it holds no choice."""
    base: Chunk = {
        "id": completion.get("id") or "chatcmpl-converted",
        "object": "chat.completion.chunk",
        "created": completion.get("created") if isinstance(completion.get("created"), int) else 0,
        "model": completion.get("model"),
    }
    if completion.get("system_fingerprint") is not None:
        base["system_fingerprint"] = completion["system_fingerprint"]
    chunks: list[Chunk] = []
    choices = completion.get("choices")
    for position, choice in enumerate(choices if isinstance(choices, list) else ()):
        if not isinstance(choice, dict):
            continue
        index = choice.get("index") if isinstance(choice.get("index"), int) else position
        given = choice.get("message")
        message: JsonObject = given if isinstance(given, dict) else {}
        delta: JsonObject = {"role": message.get("role") or "assistant", "content": message.get("content")}
        for name in _DELTA_FIELDS[1:]:
            if message.get(name) is not None:
                delta[name] = message[name]
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls) if isinstance(call, dict)]
        first: JsonObject = {"index": index, "delta": delta, "logprobs": choice.get("logprobs"), "finish_reason": None}
        chunks.append({**base, "choices": [first]})
        finish = choice.get("finish_reason") or "stop"
        last: JsonObject = {"index": index, "delta": {}, "logprobs": None, "finish_reason": finish}
        chunks.append({**base, "choices": [last]})
    if chunks and include_usage and isinstance(completion.get("usage"), dict):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks
