"""Reads what an RTSP server sends to FFmpeg and refuses redirects (see ingest/egress.py).

The server-to-client direction of an RTSP-over-TCP session is a sequence of interleaved binary
frames (`$`, channel, 16-bit length, payload) and RTSP messages (a header block ending in an empty
line, then `Content-Length` bytes of body). A response with a 3xx status would make FFmpeg reconnect
to its `Location` on its own, past the policy. So its Location is handed to `redirect`, which
returns the URL of a new relay to it (policy-checked like the first hop) or None: then the response
becomes `403 Forbidden` without a Location. Either way the session ends there, as FFmpeg reconnects.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

_STATUS = re.compile(rb"^RTSP/\d\.\d\s+(\d{3})")
_REFUSED_STATUS = b"RTSP/1.0 403 Forbidden"


async def relay_rtsp_responses(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, redirect: Callable[[str], Awaitable[str | None]]
) -> None:
    """Copy RTSP messages and interleaved frames from `reader` to `writer` until EOF or a redirect."""
    while True:
        try:
            first = await reader.readexactly(1)
        except asyncio.IncompleteReadError:
            return
        if first == b"$":
            header = await reader.readexactly(3)
            payload = await reader.readexactly(int.from_bytes(header[1:3], "big"))
            writer.write(first + header + payload)
        else:
            head = first + await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            body = await reader.readexactly(length) if length else b""
            status = _STATUS.match(lines[0])
            if status and status.group(1).startswith(b"3"):
                location = next((ln for ln in lines if ln.lower().startswith(b"location:")), b"location:")
                relayed = await redirect(location.partition(b":")[2].strip().decode("latin-1"))
                kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith((b"location:", b"content-length:"))]
                if relayed is None:
                    first = _REFUSED_STATUS
                else:
                    first, kept = lines[0], [*kept, f"Location: {relayed}".encode("latin-1")]
                writer.write(b"\r\n".join([first, *kept, b"Content-Length: 0", b"", b""]))
                await writer.drain()
                return
            writer.write(head + body)
        await writer.drain()
