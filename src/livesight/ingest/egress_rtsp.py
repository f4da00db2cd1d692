"""Reads what an RTSP server sends to FFmpeg and refuses redirects (see ingest/egress.py).

The server-to-client direction of an RTSP-over-TCP session is a sequence of interleaved binary
frames (`$`, channel, 16-bit length, payload) and RTSP messages (a header block ending in an empty
line, then `Content-Length` bytes of body). Responses with a 3xx status would make FFmpeg reconnect
to their `Location` on its own, past the policy: such a response is rewritten to `403 Forbidden`
without its Location, and the session ends.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

_STATUS = re.compile(rb"^RTSP/\d\.\d\s+(\d{3})")
_REFUSED_STATUS = b"RTSP/1.0 403 Forbidden"


async def relay_rtsp_responses(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refused: Callable[[str], None]
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
                location = next((ln for ln in lines if ln.lower().startswith(b"location:")), b"")
                refused(f"refused an RTSP redirect ({lines[0].decode('latin-1')}, {location.decode('latin-1')!r})")
                kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith((b"location:", b"content-length:"))]
                writer.write(b"\r\n".join([_REFUSED_STATUS, *kept, b"Content-Length: 0", b"", b""]))
                await writer.drain()
                return
            writer.write(head + body)
        await writer.drain()
