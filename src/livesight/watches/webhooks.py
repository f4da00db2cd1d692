"""Webhook delivery per the Standard Webhooks specification (https://www.standardwebhooks.com/).

Each result is POSTed as JSON with `webhook-id` (`msg_<watch>_<seq>`: the same id on every retry, so a
receiver can drop duplicates), `webhook-timestamp` (Unix seconds of the attempt) and
`webhook-signature: v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>`, where the secret is
the bytes of the base64 after `whsec_`. The timestamp is real wall-clock time, not the server's
injected Clock: receivers check it against their own clock (±5 min), as LiveKit clients do with tokens.

At-least-once: an attempt succeeds on a 2xx; anything else (another status, a connection error, no
answer within `timeout_s`) is retried after 1 s, 2 s, 4 s, … at most `max_backoff_s` apart, until
`give_up_s` after the first attempt, or once the watch has ended. Every connection goes through the
outbound-address policy: the host is resolved once, every address checked, and the request is sent to
the checked address (Host header and TLS SNI carry the name), never resolving the name again. A refused
destination is given up at once. The service keeps each delivery not yet done in the store, so a restart
sends it again (same `webhook-id`; the give-up clock starts again then).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from livesight.core.outbound import OutboundPolicy, OutboundRefused
from livesight.ingest.egress import resolve_checked

log = logging.getLogger("livesight.watches")
SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)


def secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for this message."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
        "user-agent": "livesight-webhooks",
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery came to, for the watch's counters."""

    delivered: bool
    attempts: int
    error: str | None = None
    final: bool = True  # False: a failed attempt that will be retried

    @property
    def kind(self) -> str:
        """`delivered`, `failed` (it will be retried) or `abandoned` (given up): the metric's label."""
        return "delivered" if self.delivered else "abandoned" if self.final else "failed"


async def post_checked(
    client: httpx.AsyncClient, policy: OutboundPolicy, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POST `body` to `url` at an address the policy checked (OutboundRefused, or httpx errors)."""
    target = httpx.URL(url)
    host = target.host
    port = target.port or (443 if target.scheme == "https" else 80)
    addresses = await resolve_checked(policy, host, port)
    failure: Exception = httpx.ConnectError(f"no address for {host}")
    for ip in addresses:
        direct = target.copy_with(host=ip)
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        try:
            return await client.post(
                direct, content=body, headers={**headers, "host": target.netloc.decode()}, extensions=extensions
            )
        except httpx.ConnectError as exc:
            failure = exc
    raise failure


class Deliverer:
    """Delivers results to webhooks in background tasks (one per result, retried as described above)."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        timeout_s: float = 10.0,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        give_up_s: float = 86_400.0,
    ) -> None:
        self.policy = policy
        self.timeout_s = timeout_s
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.give_up_s = give_up_s
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False)
        self._tasks: set[asyncio.Task[None]] = set()

    def deliver(
        self,
        url: str,
        secret: str,
        msg_id: str,
        payload: Mapping[str, object],
        still_wanted: Callable[[], bool],
        done: Callable[[Outcome], None],
    ) -> None:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        task = asyncio.create_task(self._run(url, secret, msg_id, body, still_wanted, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _run(
        self,
        url: str,
        secret: str,
        msg_id: str,
        body: bytes,
        still_wanted: Callable[[], bool],
        done: Callable[[Outcome], None],
    ) -> None:
        started = time.monotonic()
        backoff = self.first_backoff_s
        attempts = 0
        while True:
            attempts += 1
            try:
                headers = signed_headers(secret, msg_id, body)
                response = await post_checked(self._client, self.policy, url, body, headers)
                if 200 <= response.status_code < 300:
                    done(Outcome(True, attempts))
                    return
                error = f"webhook answered HTTP {response.status_code}"
            except OutboundRefused as exc:
                log.warning("webhook %s refused by the outbound policy: %s", msg_id, exc.message)
                done(Outcome(False, attempts, "the webhook destination is not allowed by the outbound policy"))
                return
            except (httpx.HTTPError, OSError) as exc:
                error = f"webhook request failed: {type(exc).__name__}"
            if not still_wanted() or time.monotonic() - started + backoff > self.give_up_s:
                done(Outcome(False, attempts, error + " (gave up)"))
                return
            done(Outcome(False, attempts, error, final=False))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
