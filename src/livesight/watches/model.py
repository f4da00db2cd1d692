"""A watch and its result records: what is stored, what the API shows."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from livesight.watches.triggers import Trigger, TriggerState

WatchState = Literal["active", "paused", "ended"]
EndReason = Literal["deleted", "expired", "stream_ended", "failed"]
SKIP_REASONS = ("busy", "no_new_frames", "no_change")


def new_watch_id() -> str:
    return "watch_" + secrets.token_hex(12)


def new_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(slots=True)
class Counts:
    runs: int = 0
    matches: int = 0
    results: int = 0  # recorded (delivered to the log, SSE and webhook)
    errors: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    held_back: int = 0  # successful runs a trigger did not deliver (no match, unchanged, cooldown)
    deliveries: int = 0  # webhook deliveries that succeeded
    delivery_failures: int = 0  # failed webhook attempts (each retry counts)
    deliveries_abandoned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "matches": self.matches,
            "results": self.results,
            "errors": self.errors,
            "skipped": dict(self.skipped),
            "held_back": self.held_back,
            "deliveries": self.deliveries,
            "delivery_failures": self.delivery_failures,
            "deliveries_abandoned": self.deliveries_abandoned,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Counts:
        counts = cls()
        for name in ("runs", "matches", "results", "errors", "held_back", "deliveries", "delivery_failures"):
            setattr(counts, name, int(raw.get(name) or 0))
        counts.deliveries_abandoned = int(raw.get("deliveries_abandoned") or 0)
        counts.skipped.update({k: int(v) for k, v in (raw.get("skipped") or {}).items() if k in SKIP_REASONS})
        return counts


@dataclass(slots=True)
class Watch:
    id: str
    owner: str
    request: dict[str, Any]  # the chat request as sent (validated at create)
    stream_ids: list[str]
    interval_ms: int
    only_on_new_frames: bool
    min_change: float | None
    trigger: dict[str, Any] | None
    webhook: dict[str, str] | None  # {"url", "secret"}
    expires_at_ms: int | None
    created_at_ms: int
    state: WatchState = "active"
    ended_at_ms: int | None = None
    end_reason: EndReason | None = None
    last_error: dict[str, str] | None = None
    last_result: dict[str, Any] | None = None
    last_run_at_ms: int | None = None
    seq: int = 0
    counts: Counts = field(default_factory=Counts)
    trigger_state: TriggerState = field(default_factory=TriggerState)
    last_frame_indexes: dict[str, int] = field(default_factory=dict)  # newest frame seen at the last run

    @property
    def parsed_trigger(self) -> Trigger | None:
        return Trigger.from_dict(self.trigger)

    def public(self) -> dict[str, Any]:
        """The API's view (the webhook secret is never shown after create)."""
        return {
            "id": self.id,
            "object": "watch",
            "state": self.state,
            "stream_ids": list(self.stream_ids),
            "created_at_ms": self.created_at_ms,
            "interval_ms": self.interval_ms,
            "only_on_new_frames": self.only_on_new_frames,
            "min_change": self.min_change,
            "trigger": self.trigger,
            "webhook": {"url": self.webhook["url"]} if self.webhook else None,
            "expires_at_ms": self.expires_at_ms,
            "ended_at_ms": self.ended_at_ms,
            "end_reason": self.end_reason,
            "last_error": self.last_error,
            "last_run_at_ms": self.last_run_at_ms,
            "last_seq": self.seq,
            "counts": self.counts.to_dict(),
            "last_result": self.last_result,
            "request": self.request,
        }

    def record(self) -> dict[str, Any]:
        """Everything a restart needs (stored as JSON)."""
        return {
            **{k: v for k, v in self.public().items() if k not in ("object", "webhook", "last_seq", "counts")},
            "owner": self.owner,
            "webhook": self.webhook,
            "seq": self.seq,
            "counts": self.counts.to_dict(),
            "trigger_state": {
                "delivered_state": self.trigger_state.delivered_state,
                "last_delivered_at_ms": self.trigger_state.last_delivered_at_ms,
            },
            "last_frame_indexes": self.last_frame_indexes,
        }

    @classmethod
    def from_record(cls, raw: dict[str, Any]) -> Watch:
        ts = raw.get("trigger_state") or {}
        return cls(
            id=raw["id"],
            owner=raw["owner"],
            request=raw["request"],
            stream_ids=list(raw["stream_ids"]),
            interval_ms=int(raw["interval_ms"]),
            only_on_new_frames=bool(raw["only_on_new_frames"]),
            min_change=raw.get("min_change"),
            trigger=raw.get("trigger"),
            webhook=raw.get("webhook"),
            expires_at_ms=raw.get("expires_at_ms"),
            created_at_ms=int(raw["created_at_ms"]),
            state=raw["state"],
            ended_at_ms=raw.get("ended_at_ms"),
            end_reason=raw.get("end_reason"),
            last_error=raw.get("last_error"),
            last_result=raw.get("last_result"),
            last_run_at_ms=raw.get("last_run_at_ms"),
            seq=int(raw.get("seq") or 0),
            counts=Counts.from_dict(raw.get("counts") or {}),
            trigger_state=TriggerState(ts.get("delivered_state"), ts.get("last_delivered_at_ms")),
            last_frame_indexes={k: int(v) for k, v in (raw.get("last_frame_indexes") or {}).items()},
        )
