"""`response_format` json_object / json_schema by constrained decoding, with llguidance.

Why llguidance (docs/local-models.md "Constrained decoding" has the comparison and the numbers): it
compiles a JSON schema to a grammar in milliseconds, wraps any fast Hugging Face tokenizer
(`llguidance.hf.from_tokenizer`) and returns each step's allowed-token mask as bytes, applied here with
one boolean index, so it needs neither torch.compile nor a GPU kernel (its own `llguidance.torch`
helper is a torch.compile kernel: not used).

The guarantee: each token is one the grammar allows, and generation ends only when the grammar accepts
(end-of-sequence is masked until then). What a grammar cannot do alone is finish inside a token budget:
with random or weak weights a string can go on and on. So near the end of the budget the matcher is
steered to close, and when is measured, not guessed: at the first step, and at every step once the
budget left is within twice the last count, a copy of the matcher plays the closing policy out to count
the tokens a close needs now; closing starts when that many (plus a margin of 8) are all that is left.
The closing policy: end-of-sequence when allowed, else the allowed token that leaves the fewest things
open (strings plus nesting depth, read from each token's characters), the shortest (then lowest id)
among equals, so the close is deterministic: it ends a string at its quote, a number after one digit,
an array or object as soon as the schema lets it (required keys are forced by the grammar anyway). If
the budget is smaller than the shortest valid answer, it runs out: finish_reason `length`, as OpenAI's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import llguidance
import llguidance.hf
import numpy as np
import numpy.typing as npt

from livesight.core.errors import RequestInvalid
from livesight.core.jsontypes import JsonObject

_MARGIN = 8  # tokens of slack when closing starts: one token may open more than the last check counted
# where a token starts, for the "how much is open" count: outside a string, inside one, inside after a backslash
_OUT, _IN, _ESCAPED = 0, 1, 2
_JSON_OBJECT: JsonObject = {"type": "object"}
_COMPILE_DEFAULTS: llguidance.JsonCompileOptions = {"whitespace_flexible": False}
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Grammar:
    """What the client asked the answer to be, as a llguidance grammar (None: free text)."""

    kind: str  # "json_object" | "json_schema"
    grammar: str


def grammar_for(model_id: str, response_format: object) -> Grammar | None:
    """The grammar of a `response_format`; 400 when it is not one this backend can follow."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise RequestInvalid(f"model {model_id}: response_format must be an object")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        schema: object = _JSON_OBJECT
    elif kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise RequestInvalid(f"model {model_id}: response_format json_schema needs json_schema.schema, an object")
    else:
        raise RequestInvalid(f"model {model_id}: response_format type {kind!r} is not text, json_object or json_schema")
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=_COMPILE_DEFAULTS)
    except ValueError as exc:
        raise RequestInvalid(f"model {model_id}: response_format schema is not valid: {exc}") from None
    error = llguidance.LLMatcher.validate_grammar(grammar)
    if error:
        raise RequestInvalid(f"model {model_id}: cannot follow this JSON schema: {error[:300]}")
    return Grammar(str(kind), grammar)


class TokenTable:
    """A tokenizer as llguidance sees it, plus each token's text (for steering toward a close). Build
    once per model (about a second for a real vocabulary)."""

    def __init__(self, hf_tokenizer: object, vocab_size: int, eos_ids: Sequence[int]) -> None:
        self.vocab_size = vocab_size
        self.eos_ids = tuple(eos_ids)
        self.ll = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=vocab_size, eos_token=list(self.eos_ids))
        texts = [self.ll.decode_bytes([i]) if i < vocab_size else b"" for i in range(vocab_size)]
        self.blank = np.array([not t.strip() for t in texts])
        self.length = np.array([len(t) for t in texts], dtype=np.int64)
        moves = [[_scan(t, start) for t in texts] for start in (_OUT, _IN, _ESCAPED)]
        self.after = [np.array([m[0] for m in row], dtype=np.int8) for row in moves]  # the state after each token
        self.depth = [np.array([m[1] for m in row], dtype=np.int64) for row in moves]  # its change of nesting

    def matcher(self, grammar: Grammar, budget: int) -> Matcher:
        return Matcher(self, llguidance.LLMatcher(self.ll, grammar.grammar, log_level=0), budget)


class Matcher:
    """One answer's grammar state: `allowed()` before each step, `consume(token)` after it."""

    def __init__(self, table: TokenTable, matcher: llguidance.LLMatcher, budget: int) -> None:
        self._table = table
        self._m = matcher
        self._state = _OUT
        self._depth = 0
        self.budget = budget  # tokens this answer may still take, end-of-sequence included
        self.closing = False
        self._close_needs: int | None = None

    @property
    def accepting(self) -> bool:
        return bool(self._m.is_accepting())

    @property
    def done(self) -> bool:
        return bool(self._m.is_stopped())

    def allowed(self) -> Mask:
        """The tokens the grammar allows next (end-of-sequence only once it accepts); near the end of the
        budget, only those that finish the value soonest (see the module docstring)."""
        if not self.closing and self.budget <= self._watch_from():
            self._close_needs = self._copy().close_length(self.budget)
            self.closing = self._close_needs + 1 + _MARGIN >= self.budget
        return self._allowed(closing=self.closing)

    def _watch_from(self) -> int:
        if self._close_needs is None:
            return self.budget  # the first step: measure once, then again when it gets near
        return 2 * self._close_needs + 2 * _MARGIN

    def _copy(self) -> Matcher:
        twin = Matcher(self._table, self._m.deep_copy(), self.budget)
        twin._state, twin._depth = self._state, self._depth
        return twin

    def close_length(self, limit: int) -> int:
        """Tokens the closing policy takes from here until the grammar accepts (`limit` if it does not
        within it). Changes this matcher: call it on a copy."""
        for used in range(limit):
            if self._m.is_accepting():
                return used
            self.consume(int(np.flatnonzero(self._allowed(closing=True))[0]))
        return limit

    def _allowed(self, *, closing: bool) -> Mask:
        if self._m.is_error():
            raise RuntimeError(f"grammar matcher failed: {self._m.get_error()}")
        bits = np.frombuffer(self._m.compute_bitmask(), dtype=np.uint8)
        mask: Mask = np.unpackbits(bits, bitorder="little")[: self._table.vocab_size].astype(bool)
        if not closing:
            return mask
        t = self._table
        eos = np.zeros_like(mask)
        eos[list(t.eos_ids)] = True
        if (mask & eos).any():
            return mask & eos
        candidates = mask & ~t.blank if (mask & ~t.blank).any() else mask
        open_after = t.depth[self._state] + (t.after[self._state] != _OUT)
        least = open_after[candidates].min()
        candidates &= open_after == least
        first = int(np.flatnonzero(candidates & (t.length == t.length[candidates].min()))[0])
        only = np.zeros_like(mask)
        only[first] = True  # one token: the close played out by `close_length` is exactly the one taken
        return only

    def consume(self, token: int) -> None:
        self.budget -= 1
        if token in self._table.eos_ids and self._m.is_accepting():
            return
        if not self._m.consume_token(token):
            raise RuntimeError(f"grammar matcher refused token {token}: {self._m.get_error()}")
        if token < self._table.vocab_size:
            self._depth += int(self._table.depth[self._state][token])
            self._state = int(self._table.after[self._state][token])


def _scan(text: bytes, state: int) -> tuple[int, int]:
    """The string state after `text` from `state`, and how much it opened (+) or closed (-) brackets."""
    depth = 0
    for byte in text:
        if state == _ESCAPED:
            state = _IN
        elif state == _IN:
            state = _ESCAPED if byte == 0x5C else _OUT if byte == 0x22 else _IN
        elif byte == 0x22:
            state = _IN
        elif byte in b"[{":
            depth += 1
        elif byte in b"]}":
            depth -= 1
    return state, depth
