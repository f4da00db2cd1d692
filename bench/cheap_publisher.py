"""A cheap WebRTC publisher for the ingest benchmark: aiortc sending PRE-ENCODED frames.

The SDK's publishers cost ~0.06 core-s per stream-s even with pre-encoded frames (libwebrtc's pacer,
threads and stats), so 40 of them cannot share a 2-core box with the server they are meant to load. This
one speaks the same LiveKit signalling as the SDK, against the embedded endpoint (`/rtc`, the v0 path):

    WebSocket /rtc?access_token=<publish token>  <- JoinResponse
    AddTrackRequest (VIDEO, CAMERA, WxH)          <- TrackPublishedResponse
    offer (aiortc, sendonly, one codec)           <- answer
    ping_req every ping_interval                   <- pong_resp

and then the server receives real RTP over DTLS-SRTP over UDP from an aiortc `RTCPeerConnection`. The
track's `recv()` returns `av.Packet`s of a clip encoded once (`bench/clip.py`), paced at the clip's frame
rate, so aiortc only packetises and applies SRTP (`Encoder.pack`); no encoder runs at publish time.

Keyframe requests (PLI/FIR) are answered the only way a pre-encoded clip can: the next frame sent is the
clip's next keyframe (it skips ahead, so the pictures jump but every frame still decodes and still shows its
own number); `--ignore-pli` sends keyframes only every `gop` frames, like a publisher that ignores requests.
Without this, a receiver that asks for a keyframe (after a loss it could not repair) would wait up to `gop`
frames for one (aiortc's sender acts on PLI only when it encodes). Requests and jumps are counted per stream.
REMB is ignored (the bitrate is the clip's). The clip loops: the pixels of the frame at `position` show
`position mod clip length`.

Many streams share one process (one asyncio loop, one peer connection each); `bench/ingest.py` starts as
many processes as needed (`--per-process`). Run alone (inside `scripts/netns`) with a JSON list of
`{"url", "token"}` objects: `python -m bench.cheap_publisher --streams streams.json --out out.json ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import time
from fractions import Fraction
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from livekit.protocol import models, rtc
from websockets.asyncio.client import ClientConnection, connect

from bench.clip import Clip, ClipSpec, load_or_encode

log = logging.getLogger("bench.cheap_publisher")
SIGNAL_TIMEOUT_S = 30
MIME = {"vp8": "video/VP8", "h264": "video/H264"}


class StreamResult(TypedDict):
    sent: int  # frames handed to aiortc
    captured: dict[int, float]  # frame n -> wall time it was handed to aiortc (its pixels show n mod loop)
    loop: int  # the clip's length
    error: str | None
    keyframe_requests: int  # PLI/FIR received
    keyframe_jumps: int  # times the clip skipped ahead to its next keyframe to answer one
    bitrate_bps: int  # encoded bytes sent x 8 / media seconds sent: what keyframe requests cost


class PublishResult(TypedDict):
    streams: list[StreamResult]  # in the order of the streams given
    cpu_s: float  # this process's CPU time while publishing
    elapsed_s: float


class PreEncodedTrack(MediaStreamTrack):
    """A video track whose frames are already encoded: `recv()` paces and returns `av.Packet`s."""

    kind = "video"

    def __init__(self, clip: Clip, fps: int, stop: asyncio.Event, phase: float = 0.0, *, honour_pli: bool) -> None:
        super().__init__()
        self.clip, self.fps, self.stop_event, self.phase = clip, fps, stop, phase
        self.honour_pli = honour_pli
        self.time_base = Fraction(1, fps)
        self.sent = 0  # frames handed to aiortc (their pts)
        self.position = 0  # in an endless loop of the clip: the pixels of frame `position` show `position mod loop`
        self.captured: dict[int, float] = {}  # position -> wall time it was handed to aiortc
        self.keyframe_requests = 0
        self.keyframe_jumps = 0
        self.bytes_sent = 0  # encoded frame bytes (before RTP/SRTP overhead)
        self._keyframe_wanted = False
        self._t0: float | None = None

    def request_keyframe(self) -> None:
        """The receiver sent PLI or FIR: with `honour_pli`, the next frame sent is the clip's next keyframe."""
        self.keyframe_requests += 1
        self._keyframe_wanted = self.honour_pli

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]  # aiortc sends a Packet without encoding
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time() + self.phase
        delay = self._t0 + self.sent / self.fps - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.stop_event.is_set():
            self.stop()
            raise MediaStreamError("stopped")
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            while not self.clip[self.position % len(self.clip)][1]:
                self.position += 1
            self.keyframe_jumps += 1
        data, _ = self.clip[self.position % len(self.clip)]
        packet = av.Packet(data)
        packet.pts, packet.time_base = self.sent, self.time_base
        self.captured[self.position] = time.time()
        self.bytes_sent += len(data)
        self.sent += 1
        self.position += 1
        return packet


async def _recv_signal(ws: ClientConnection, kind: str) -> rtc.SignalResponse:
    """The next signalling message of `kind`, skipping others (refresh tokens, pongs...)."""
    async with asyncio.timeout(SIGNAL_TIMEOUT_S):
        while True:
            response = rtc.SignalResponse()
            response.ParseFromString(await ws.recv(decode=False))
            got = response.WhichOneof("message")
            if got == kind:
                return response
            if got == "leave":
                raise RuntimeError(f"the server sent leave while waiting for {kind}: {response.leave}")


async def _send(ws: ClientConnection, request: rtc.SignalRequest) -> None:
    await ws.send(request.SerializeToString())


class Publisher:
    """One stream: its signalling WebSocket and its aiortc peer connection."""

    def __init__(
        self, url: str, token: str, spec: ClipSpec, clip: Clip, stop: asyncio.Event, *, honour_pli: bool = True
    ) -> None:
        self.url, self.token, self.spec, self.stop = url, token, spec, stop
        # cameras are not in phase: without this, the streams of a process would send their frames together
        phase = random.Random(token).random() / spec.fps
        self.track = PreEncodedTrack(clip, spec.fps, stop, phase, honour_pli=honour_pli)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no default STUN: nothing leaves
        self.error: str | None = None
        self.connected_at: float | None = None

    async def run(self) -> None:
        target = f"{self.url.rstrip('/')}/rtc?access_token={quote(self.token)}&auto_subscribe=0&protocol=16"
        try:
            async with connect(target, proxy=None, max_size=None, open_timeout=30) as ws:
                await self._negotiate(ws)
                await self._serve(ws)
        except Exception as exc:  # reported per stream, the others go on
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("publisher %s failed: %s", self.url, self.error)
        finally:
            await self.pc.close()

    async def _negotiate(self, ws: ClientConnection) -> None:
        join = (await _recv_signal(ws, "join")).join
        self.ping_interval = max(1, join.ping_interval)
        add = rtc.AddTrackRequest(
            cid="bench-camera",
            name="camera",
            type=models.TrackType.VIDEO,
            source=models.TrackSource.CAMERA,
            width=self.spec.width,
            height=self.spec.height,
        )
        await _send(ws, rtc.SignalRequest(add_track=add))
        await _recv_signal(ws, "track_published")
        transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
        # aiortc's sender calls `_send_keyframe` on PLI/FIR but only acts on it when it encodes: tell the track
        sender, track = transceiver.sender, self.track
        original = sender._send_keyframe

        def send_keyframe() -> None:
            track.request_keyframe()
            original()

        sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
        mime = MIME[self.spec.codec].lower()
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in (mime, "video/rtx")])
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = rtc.SessionDescription(type="offer", sdp=self.pc.localDescription.sdp, id=1)
        await _send(ws, rtc.SignalRequest(offer=offer))
        answer = (await _recv_signal(ws, "answer")).answer
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        self.connected_at = time.time()

    async def _serve(self, ws: ClientConnection) -> None:
        async def pings() -> None:
            while True:
                ping = rtc.Ping(timestamp=int(time.time() * 1000))
                await _send(ws, rtc.SignalRequest(ping_req=ping))
                await asyncio.sleep(self.ping_interval)

        async def drain() -> None:
            async for message in ws:
                response = rtc.SignalResponse()
                response.ParseFromString(message if isinstance(message, bytes) else message.encode())
                if response.WhichOneof("message") == "leave":
                    self.error = "the server sent leave"
                    return

        tasks = [asyncio.create_task(c) for c in (pings(), drain(), self.stop.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await _send(ws, rtc.SignalRequest(leave=rtc.LeaveRequest(reason=models.DisconnectReason.CLIENT_INITIATED)))

    def result(self) -> StreamResult:
        return {
            "sent": self.track.sent,
            "captured": self.track.captured,
            "loop": len(self.track.clip),
            "error": self.error,
            "keyframe_requests": self.track.keyframe_requests,
            "keyframe_jumps": self.track.keyframe_jumps,
            "bitrate_bps": round(self.track.bytes_sent * 8 * self.spec.fps / max(1, self.track.sent)),
        }


def cpu_seconds() -> float:
    return time.process_time()


async def publish_all(
    streams: list[dict[str, str]],
    spec: ClipSpec,
    seconds: float,
    stop_file: Path | None,
    *,
    honour_pli: bool = True,
) -> PublishResult:
    """Publish every stream until `seconds` pass or `stop_file` appears; per-stream results."""
    clip = load_or_encode(spec)
    stop = asyncio.Event()
    publishers = [Publisher(s["url"], s["token"], spec, clip, stop, honour_pli=honour_pli) for s in streams]
    cpu0, t0 = cpu_seconds(), time.monotonic()
    runs = [asyncio.create_task(p.run()) for p in publishers]
    while time.monotonic() - t0 < seconds and not (stop_file and stop_file.exists()):  # noqa: ASYNC240, ASYNC110 (another process signals)
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*runs)
    elapsed = time.monotonic() - t0
    return {
        "streams": [p.result() for p in publishers],
        "cpu_s": cpu_seconds() - cpu0,
        "elapsed_s": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", required=True, type=Path, help='JSON list of {"url", "token"}')
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--codec", default="vp8", choices=tuple(MIME))
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--stop-file", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2_000_000)
    parser.add_argument("--gop", type=int, default=60)
    parser.add_argument("--ignore-pli", action="store_true", help="keyframes only every --gop frames")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spec = ClipSpec(args.codec, args.width, args.height, args.fps, args.bitrate, args.gop)
    streams = json.loads(args.streams.read_text())
    result = asyncio.run(publish_all(streams, spec, args.seconds, args.stop_file, honour_pli=not args.ignore_pli))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
