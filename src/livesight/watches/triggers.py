"""When a result counts as a match, and whether it is delivered (pure; table-tested).

`json_path` is the small subset of JSONPath a boolean check needs: `$`, `.name`, `['name']`, `[index]`.
Delivery (`on`): `always` delivers every result; `match` delivers results that match; `change`
delivers a result whose matched state differs from the last delivered state (the first result always
does). `cooldown_ms` holds back a match (or a change) that comes sooner than that after the previous
delivered one; a held-back change is delivered at a later tick if the state still differs then.
Error results are always recorded; they never change the matched state.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from livesight.core.jsontypes import JsonObject, JsonValue

Deliver = Literal["always", "match", "change"]
_DELIVER: tuple[Deliver, ...] = ("always", "match", "change")


class _Missing(Enum):
    MISSING = "missing"  # no value there (a JSON null is a value)


_MISSING = _Missing.MISSING
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_json_path(path: str) -> list[str | int]:
    """The steps of `path` (ValueError naming what is wrong)."""
    if not path.startswith("$"):
        raise ValueError(f"json_path {path!r} must start with $")
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise ValueError(
                f"json_path {path!r}: unsupported syntax at {path[pos:]!r} (use $.name, $['name'] or $[0])"
            )
        name, index, quoted, dquoted = m.groups()
        steps.append(int(index) if index is not None else (name or quoted or dquoted or ""))
        pos = m.end()
    return steps


def lookup(data: JsonValue, steps: list[str | int]) -> JsonValue | _Missing:
    """The value at `steps` in `data`, or _MISSING."""
    value = data
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return _MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
    return value


@dataclass(frozen=True, slots=True)
class Trigger:
    on: Deliver = "always"
    cooldown_ms: int = 0
    json_path: str | None = None
    equals: JsonValue | _Missing = _MISSING  # absent: the value must be truthy
    contains: str | None = None

    @classmethod
    def from_dict(cls, raw: JsonObject | None) -> Trigger | None:
        """The trigger of a create body (validated by the API's schema; anything else reads as absent)."""
        if raw is None:
            return None
        on: Deliver = next((d for d in _DELIVER if d == raw.get("on")), "always")
        cooldown, path, contains = raw.get("cooldown_ms"), raw.get("json_path"), raw.get("contains")
        return cls(
            on=on,
            cooldown_ms=cooldown if isinstance(cooldown, int) else 0,
            json_path=path if isinstance(path, str) else None,
            equals=raw.get("equals", _MISSING),
            contains=contains if isinstance(contains, str) else None,
        )

    def matches(self, output: str, data: JsonValue) -> bool:
        if self.contains is not None:
            return self.contains.casefold() in output.casefold()
        if self.json_path is None:
            return True
        if data is None:
            try:
                data = json.loads(output)
            except ValueError:
                return False
        value = lookup(data, parse_json_path(self.json_path))
        if value is _MISSING:
            return False
        if self.equals is _MISSING:
            return bool(value)
        if isinstance(value, bool) or isinstance(self.equals, bool):
            return value is self.equals  # true is not 1
        return bool(value == self.equals)


@dataclass(slots=True)
class TriggerState:
    """What delivery decisions remember (durable with the watch)."""

    delivered_state: bool | None = None  # the matched state of the last delivered result
    last_delivered_at_ms: int | None = None


Decision = Literal["deliver", "no_match", "unchanged", "cooldown"]


def decide(trigger: Trigger | None, matched: bool | None, state: TriggerState, now_ms: int) -> Decision:
    """Whether a successful result is delivered; updates `state` when it is."""
    if trigger is None or trigger.on == "always":
        decision: Decision = "deliver"
    elif trigger.on == "match":
        decision = "deliver" if matched else "no_match"
    else:
        decision = "deliver" if matched != state.delivered_state else "unchanged"
    if (
        decision == "deliver"
        and trigger is not None
        and trigger.on != "always"
        and trigger.cooldown_ms > 0
        and state.last_delivered_at_ms is not None
        and now_ms - state.last_delivered_at_ms < trigger.cooldown_ms
    ):
        decision = "cooldown"
    if decision == "deliver":
        state.delivered_state = matched
        state.last_delivered_at_ms = now_ms
    return decision
