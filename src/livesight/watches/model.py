"""A watch and its result records: what is stored, what the API shows."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from livesight.core.jsontypes import JsonObject
from livesight.watches.results import ResultError, WatchResult
from livesight.watches.triggers import Trigger, TriggerState

WatchState = Literal["active", "paused", "ended"]
EndReason = Literal["deleted", "expired", "stream_ended", "failed", "node_lost"]  # node_lost: its node died (a cluster)
SKIP_REASONS = ("busy", "no_new_frames", "no_change")


def new_watch_id() -> str:
    return "watch_" + secrets.token_hex(12)


def new_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class CountsRecord(TypedDict):
    runs: int
    matches: int
    results: int
    errors: int
    skipped: dict[str, int]
    held_back: int
    deliveries: int
    delivery_failures: int
    deliveries_abandoned: int


class Webhook(TypedDict):
    url: str
    secret: str


class TriggerStateRecord(TypedDict):
    delivered_state: bool | None
    last_delivered_at_ms: int | None


class WatchRecord(TypedDict):
    """Everything a restart needs, as stored (JSON)."""

    id: str
    owner: str
    state: WatchState
    stream_ids: list[str]
    created_at_ms: int
    interval_ms: int
    only_on_new_frames: bool
    min_change: float | None
    trigger: JsonObject | None
    webhook: Webhook | None
    expires_at_ms: int | None
    ended_at_ms: int | None
    end_reason: EndReason | None
    last_error: ResultError | None
    last_run_at_ms: int | None
    last_result: WatchResult | None
    request: JsonObject
    seq: int
    counts: CountsRecord
    trigger_state: TriggerStateRecord
    last_frame_indexes: dict[str, int]


RECORD: TypeAdapter[WatchRecord] = TypeAdapter(WatchRecord)
_PRIVATE = frozenset({"owner", "webhook", "seq", "trigger_state", "last_frame_indexes"})


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

    def to_dict(self) -> CountsRecord:
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
    def from_dict(cls, raw: CountsRecord) -> Counts:
        skipped = dict.fromkeys(SKIP_REASONS, 0)
        skipped.update({k: v for k, v in raw["skipped"].items() if k in SKIP_REASONS})
        return cls(
            runs=raw["runs"],
            matches=raw["matches"],
            results=raw["results"],
            errors=raw["errors"],
            skipped=skipped,
            held_back=raw["held_back"],
            deliveries=raw["deliveries"],
            delivery_failures=raw["delivery_failures"],
            deliveries_abandoned=raw["deliveries_abandoned"],
        )


class WatchPlaces(Protocol):
    """Where a cluster's watches run (store/redis_state.py `WatchRecords`): each watch's node and its API
    view as last published, so every node can find it, list it, and answer for it once its node is lost."""

    async def placed(self, watch_id: str, owner: str, snap: Mapping[str, object]) -> None:
        """Record a new watch as this node's (raises ClusterUnavailable when it cannot)."""
        ...

    async def changed(self, snaps: Sequence[tuple[str, str, Mapping[str, object]]]) -> None:
        """(watch id, owner, API view) of watches that changed."""
        ...

    async def forgotten(self, watches: Sequence[tuple[str, str]]) -> None:
        """(watch id, owner) of watches forgotten here."""
        ...


class WatchQuota(Protocol):
    """Counts watches beyond this process (a cluster: store/redis_state.py `WatchCounts`)."""

    async def admit(self, owner: str, here: int, limit: int) -> bool:
        """True, and counted, when `here` (this node's watches of the owner) plus the other nodes' is under
        `limit`; False at the limit."""
        ...


@dataclass(frozen=True, slots=True)
class WatchLimits:
    max_active_per_owner: int = 20
    results_kept: int = 1000
    results_max_age_ms: int = 86_400_000
    ended_kept_ms: int = 86_400_000


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """A create body's fields beside the request (validated by the API)."""

    interval_ms: int
    only_on_new_frames: bool = True
    min_change: float | None = None
    trigger: JsonObject | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None  # generated when absent
    expires_at_ms: int | None = None


@dataclass(slots=True)
class Watch:
    id: str
    owner: str
    request: JsonObject  # the chat request as sent (validated at create)
    stream_ids: list[str]
    interval_ms: int
    only_on_new_frames: bool
    min_change: float | None
    trigger: JsonObject | None
    webhook: Webhook | None
    expires_at_ms: int | None
    created_at_ms: int
    state: WatchState = "active"
    ended_at_ms: int | None = None
    end_reason: EndReason | None = None
    last_error: ResultError | None = None
    last_result: WatchResult | None = None
    last_run_at_ms: int | None = None
    seq: int = 0
    counts: Counts = field(default_factory=Counts)
    trigger_state: TriggerState = field(default_factory=TriggerState)
    last_frame_indexes: dict[str, int] = field(default_factory=dict)  # newest frame seen at the last run

    @property
    def parsed_trigger(self) -> Trigger | None:
        return Trigger.from_dict(self.trigger)

    @property
    def wants_json(self) -> bool:
        """The request asks for a JSON answer (results then carry it parsed in `data`)."""
        fmt = self.request.get("response_format")
        return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")

    def public(self) -> dict[str, object]:
        """The API's view: the record less what only the server keeps (the webhook secret is never shown
        after create)."""
        shown: dict[str, object] = {k: v for k, v in self.record().items() if k not in _PRIVATE}
        return {
            **shown,
            "object": "watch",
            "webhook": {"url": self.webhook["url"]} if self.webhook else None,
            "last_seq": self.seq,
        }

    def record(self) -> WatchRecord:
        return {
            "id": self.id,
            "owner": self.owner,
            "state": self.state,
            "stream_ids": list(self.stream_ids),
            "created_at_ms": self.created_at_ms,
            "interval_ms": self.interval_ms,
            "only_on_new_frames": self.only_on_new_frames,
            "min_change": self.min_change,
            "trigger": self.trigger,
            "webhook": self.webhook,
            "expires_at_ms": self.expires_at_ms,
            "ended_at_ms": self.ended_at_ms,
            "end_reason": self.end_reason,
            "last_error": self.last_error,
            "last_run_at_ms": self.last_run_at_ms,
            "last_result": self.last_result,
            "request": self.request,
            "seq": self.seq,
            "counts": self.counts.to_dict(),
            "trigger_state": {
                "delivered_state": self.trigger_state.delivered_state,
                "last_delivered_at_ms": self.trigger_state.last_delivered_at_ms,
            },
            "last_frame_indexes": dict(self.last_frame_indexes),
        }

    @classmethod
    def from_record(cls, raw: WatchRecord) -> Watch:
        ts = raw["trigger_state"]
        return cls(
            id=raw["id"],
            owner=raw["owner"],
            request=raw["request"],
            stream_ids=list(raw["stream_ids"]),
            interval_ms=raw["interval_ms"],
            only_on_new_frames=raw["only_on_new_frames"],
            min_change=raw["min_change"],
            trigger=raw["trigger"],
            webhook=raw["webhook"],
            expires_at_ms=raw["expires_at_ms"],
            created_at_ms=raw["created_at_ms"],
            state=raw["state"],
            ended_at_ms=raw["ended_at_ms"],
            end_reason=raw["end_reason"],
            last_error=raw["last_error"],
            last_result=raw["last_result"],
            last_run_at_ms=raw["last_run_at_ms"],
            seq=raw["seq"],
            counts=Counts.from_dict(raw["counts"]),
            trigger_state=TriggerState(ts["delivered_state"], ts["last_delivered_at_ms"]),
            last_frame_indexes=dict(raw["last_frame_indexes"]),
        )
