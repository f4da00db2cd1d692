"""Triggers and delivery decisions (watches/triggers.py): table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from livesight.watches.triggers import Trigger, TriggerState, decide, lookup, parse_json_path


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("$", []),
        ("$.gate_open", ["gate_open"]),
        ("$.a.b[0]", ["a", "b", 0]),
        ("$['a b'][-1]", ["a b", -1]),
        ('$["x"]', ["x"]),
    ],
)
def test_json_path_steps(path: str, steps: list[Any]) -> None:
    assert parse_json_path(path) == steps


@pytest.mark.parametrize("path", ["gate_open", "$gate", "$.", "$[a]", "$..x"])
def test_json_path_refuses(path: str) -> None:
    with pytest.raises(ValueError, match="json_path"):
        parse_json_path(path)


def test_lookup_misses_are_not_values() -> None:
    data = {"a": [1, {"b": None}]}
    assert lookup(data, ["a", 1, "b"]) is None
    assert lookup(data, ["a", 5]) is not None and lookup(data, ["a", 5]) != 1  # the missing marker


@pytest.mark.parametrize(
    ("trigger", "output", "data", "matched"),
    [
        ({"contains": "YES"}, "yes, it is open", None, True),
        ({"contains": "open"}, "closed", None, False),
        ({"json_path": "$.gate_open", "equals": True}, "", {"gate_open": True}, True),
        ({"json_path": "$.gate_open", "equals": True}, "", {"gate_open": 1}, False),  # 1 is not true
        ({"json_path": "$.gate_open", "equals": False}, "", {"gate_open": False}, True),
        ({"json_path": "$.count", "equals": 3}, "", {"count": 3}, True),
        ({"json_path": "$.gate_open"}, "", {"gate_open": "yes"}, True),  # no equals: truthy
        ({"json_path": "$.gate_open"}, "", {"gate_open": 0}, False),
        ({"json_path": "$.gate_open", "equals": None}, "", {}, False),  # missing is not null
        ({"json_path": "$.gate_open", "equals": None}, "", {"gate_open": None}, True),
        ({"json_path": "$.n", "equals": 2}, '{"n": 2}', None, True),  # data parsed from the text
        ({"json_path": "$.n", "equals": 2}, "not json", None, False),
    ],
)
def test_matches(trigger: dict[str, Any], output: str, data: Any, matched: bool) -> None:
    parsed = Trigger.from_dict(trigger)
    assert parsed is not None
    assert parsed.matches(output, data) is matched


def run(trigger: dict[str, Any] | None, seq: list[tuple[bool | None, int]]) -> list[str]:
    parsed = Trigger.from_dict(trigger)
    state = TriggerState()
    return [decide(parsed, matched, state, at) for matched, at in seq]


def test_always_delivers_everything() -> None:
    assert run(None, [(None, 0), (None, 1)]) == ["deliver", "deliver"]
    assert run({"contains": "x", "cooldown_ms": 1000}, [(True, 0), (False, 1)]) == ["deliver", "deliver"]


def test_match_delivers_matches_and_honours_cooldown() -> None:
    got = run(
        {"contains": "x", "on": "match", "cooldown_ms": 1000},
        [(False, 0), (True, 100), (True, 600), (True, 1099), (True, 1100), (False, 1200), (True, 5000)],
    )
    assert got == ["no_match", "deliver", "cooldown", "cooldown", "deliver", "no_match", "deliver"]


def test_change_delivers_flips_and_cooldown_defers_them() -> None:
    got = run(
        {"contains": "x", "on": "change", "cooldown_ms": 500},
        [(False, 0), (False, 100), (True, 200), (True, 600), (False, 1000), (True, 1100), (True, 1600)],
    )
    # The first result is a change. The flip at 200 comes 200 ms after that delivery: held back, and delivered
    # at 600 as the state still differs. The flip back at 1000 is 400 ms after 600: held back; by 1100 the state
    # is true again, as last delivered: nothing to say.
    assert got == ["deliver", "unchanged", "cooldown", "deliver", "cooldown", "unchanged", "unchanged"]
