"""The signalling relay of livekit_room sources (ingest/room_relay.py): what the server sends is filtered
by the outbound policy; over real sockets, a `websockets` server upstream and client downstream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import websockets
from livekit.protocol import rtc
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from livesight.core.outbound import OutboundPolicy
from livesight.ingest.room_relay import SignalRelay, filter_signal

pytestmark = pytest.mark.timeout(30)
LOOPBACK_ONLY = OutboundPolicy.build(allow=["127.0.0.0/8"])


def allowed(ip: str, port: int) -> bool:
    try:
        LOOPBACK_ONLY.check_address(ip, port)
    except Exception:
        return False
    return True


def trickle(candidate: str) -> bytes:
    message = rtc.SignalResponse(trickle=rtc.TrickleRequest(candidateInit=json.dumps({"candidate": candidate})))
    return message.SerializeToString()


@pytest.mark.parametrize(
    ("candidate", "kept"),
    [
        ("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", True),
        ("candidate:1 1 udp 2122260223 10.0.0.7 50000 typ host", False),  # outside the allowed networks
        ("candidate:1 1 udp 2122260223 169.254.169.254 80 typ host", False),
        ("candidate:1 1 udp 2122260223 0f6e-4b.local 50000 typ host", False),  # a name: not resolved here
        ("candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active", True),
        ("", True),  # end of candidates
    ],
)
def test_trickled_candidates(candidate: str, kept: bool) -> None:
    data, dropped = filter_signal(trickle(candidate), allowed)
    assert (data is not None, dropped) == (kept, 0 if kept else 1)


def test_sdp_candidates_ice_servers_and_other_urls() -> None:
    sdp = "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            "a=candidate:2 1 udp 1686052607 203.0.113.9 50001 typ srflx",
            "a=end-of-candidates",
        ]
    )
    offer = rtc.SignalResponse(offer=rtc.SessionDescription(type="offer", sdp=sdp)).SerializeToString()
    data, dropped = filter_signal(offer, allowed)
    assert dropped == 1 and data is not None
    kept = rtc.SignalResponse.FromString(data).offer.sdp
    assert "127.0.0.1 50000" in kept and "203.0.113.9" not in kept and kept.endswith("a=end-of-candidates")

    join = rtc.SignalResponse(
        join=rtc.JoinResponse(
            alternative_url="wss://elsewhere.example",
            ice_servers=[
                rtc.ICEServer(urls=["turn:127.0.0.1:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"]),
                rtc.ICEServer(urls=["stun:10.1.2.3"]),
            ],
        )
    )
    data, dropped = filter_signal(join.SerializeToString(), allowed)
    assert data is not None and dropped == 3
    out = rtc.SignalResponse.FromString(data).join
    assert [list(s.urls) for s in out.ice_servers] == [["turn:127.0.0.1:3478?transport=udp"]]
    assert out.alternative_url == ""

    other = rtc.SignalResponse(pong=5).SerializeToString()
    assert filter_signal(other, allowed) == (other, 0)
    assert filter_signal(b"\xff\xfe not protobuf", allowed)[1] == 0


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[int, list[str]]]:
    """A signalling server on loopback: sends a refused candidate, an allowed one, then echoes."""
    seen: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        seen.append(
            f"{request.path} host={request.headers.get('Host')} ext={request.headers.get('Sec-WebSocket-Extensions')}"
        )
        await ws.send(trickle("candidate:1 1 udp 2122260223 10.9.9.9 50000 typ host"))
        await ws.send(trickle("candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"))
        await ws.send(b"x" * 70000)  # a long message (64-bit length), not protobuf: passes as it is
        async for message in ws:
            await ws.send(message)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield port, seen


async def test_the_relay_filters_what_the_server_sends(upstream: tuple[int, list[str]]) -> None:
    port, seen = upstream
    relay = SignalRelay(LOOPBACK_ONLY, f"ws://127.0.0.1:{port}/lk", "stream test")
    url = await relay.start()
    try:
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/lk")
        async with connect(f"{url}/rtc?access_token=abc") as ws:
            first = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(first, bytes)
            candidate = json.loads(rtc.SignalResponse.FromString(first).trickle.candidateInit)["candidate"]
            assert "127.0.0.1" in candidate  # the refused one never reached the client
            assert await asyncio.wait_for(ws.recv(), 5) == b"x" * 70000
            await ws.send(b"ping from the client")
            assert await asyncio.wait_for(ws.recv(), 5) == b"ping from the client"
        assert relay.dropped == 1
        assert seen == [f"/lk/rtc?access_token=abc host=127.0.0.1:{port} ext=None"]  # no compression upstream
        with pytest.raises(websockets.InvalidStatus) as v1:
            async with connect(f"{url}/rtc/v1?access_token=abc"):
                pass
        assert v1.value.response.status_code == 404  # the SDK falls back to v0
    finally:
        await relay.close()


async def test_a_refused_server_is_never_connected_to(upstream: tuple[int, list[str]]) -> None:
    port, seen = upstream
    relay = SignalRelay(OutboundPolicy.build(), f"ws://127.0.0.1:{port}", "stream test")  # loopback refused
    url = await relay.start()
    try:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(f"{url}/rtc"):
                pass
        assert refused.value.response.status_code == 403
        assert seen == []
    finally:
        await relay.close()
