"""The UDP sockets media arrives on get the receive buffer asked for (capped by the kernel)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import cast

from aiortc import RTCPeerConnection

from livesight.ingest.sockets import enlarge_receive_buffers


class Keeper(asyncio.DatagramProtocol):
    """Keeps its transport as aioice's StunProtocol does."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


def test_the_ice_sockets_get_a_bigger_receive_buffer() -> None:
    async def go() -> tuple[int, int | None, int | None]:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(Keeper, local_addr=("127.0.0.1", 0))
        ice = SimpleNamespace(_connection=SimpleNamespace(_protocols=[protocol]))
        receiver = SimpleNamespace(transport=SimpleNamespace(transport=ice))
        pc = cast(RTCPeerConnection, SimpleNamespace(getTransceivers=lambda: [SimpleNamespace(receiver=receiver)]))
        sock = transport.get_extra_info("socket")
        before = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        granted = enlarge_receive_buffers(pc, 1024 * 1024)
        empty = enlarge_receive_buffers(cast(RTCPeerConnection, SimpleNamespace(getTransceivers=list)), 1024 * 1024)
        transport.close()
        return before, granted, empty

    before, granted, empty = asyncio.run(go())
    with open("/proc/sys/net/core/rmem_max") as fh:
        cap = int(fh.read())
    assert granted == min(1024 * 1024, cap)
    assert granted > before // 2 or cap <= before // 2
    assert empty is None
