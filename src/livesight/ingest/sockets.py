"""Bigger kernel receive buffers for the UDP sockets a publisher's media arrives on.

A keyframe arrives as a burst (a 720p VP8 keyframe is ~90 KB, 70-80 packets at once), and the event
loop reads each socket once per turn. With the default buffer (`net.core.rmem_default`, often 208 KB,
which the kernel charges at ~2x per packet) a turn of the loop that runs long while such bursts land
makes the kernel drop packets (`RcvbufErrors` in /proc/net/snmp); the jitter buffer then gives up on
them, the GOP is damaged and a keyframe is requested: another burst. The buffer size is a setting
(`ingest_udp_receive_buffer_kb`); the kernel caps it at `net.core.rmem_max`, and the session logs the
size it got when that is less than asked.

The sockets are aioice's (one per host candidate of the peer connection's ICE transport): reached
through `RTCIceTransport._connection._protocols` (private; aiortc is pinned, and aioice comes with it). If
they are not there, nothing changes (a log line says so).
"""

from __future__ import annotations

import logging
import socket

from aiortc import RTCPeerConnection

log = logging.getLogger(__name__)


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int) -> int | None:
    """Set SO_RCVBUF on the peer connection's UDP sockets; the smallest size the kernel granted, or None
    when no socket could be reached."""
    granted: list[int] = []
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        protocols = getattr(getattr(ice, "_connection", None), "_protocols", None) or []
        for protocol in protocols:
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is None:
                continue
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            granted.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2)  # Linux reports double
    return min(granted) if granted else None
