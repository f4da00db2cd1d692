"""One viewer connection: a subscribe-only participant that watches the stream live (CONTRACT §9).

A viewer token (`POST /streams/{id}/viewer-token`) joins the stream's room over v0 signalling (`/rtc`;
v1 refuses viewers with a 404, and the SDKs fall back to v0). The join says `subscriber_primary=true`,
and the endpoint offers the subscriber PC at once: an `_reliable` data channel (so the PC connects
even before the stream has video) and, once it has, one video track that belongs to the stream's
"source" participant (`source_participant`; LiveKit's msid convention `PA_…|TR_…` ties the track to
it in both SDKs).

Media is forwarded, not re-encoded: the track hands aiortc the stored VP8/H264 frames
(`EncodedPayload`) as `av.Packet`s, which aiortc packetizes as they are. Streams whose frames are
JPEGs (pulled sources in other codecs, `livekit_room` gateways) are decoded and VP8-encoded by
aiortc per viewer. A viewer starts at the current GOP's keyframe (from the stream's `LiveFeed`),
never slows ingest (the feed callback only queues), and falls back to the next keyframe when its
queue is full, a frame is damaged, or it asks for one (PLI; the publisher is asked too).

If the stream's codec changes (its publisher rejoined with another codec), the viewer is told to
rejoin (LeaveRequest RECONNECT): the new connection negotiates the new codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections import deque
from collections.abc import Callable

import av
import numpy as np
import simplejpeg
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.stream import Stream
from livekit.protocol import models, rtc
from numpy.typing import NDArray

from livesight.core.clock import Clock
from livesight.core.feed import LiveFeed, payload_codec
from livesight.core.frame import EncodedPayload, FrameInfo, FramePayload, JpegPayload
from livesight.ingest import signal
from livesight.ingest.options import IngestOptions
from livesight.ingest.signal_session import SignalChannel, SignalSession, add_ice_candidate
from livesight.ingest.tokens import PUBLISHER_IDENTITY

log = logging.getLogger(__name__)
_RTP_CLOCK = fractions.Fraction(1, 90_000)
_MIME = {"vp8": "video/VP8", "h264": "video/H264", "jpeg": "video/VP8"}
MAX_REPLAY_FRAMES = 150
"""A joining viewer replays the current GOP only when it is this short (5 s at 30 fps); a longer
one (a publisher that ignores keyframe requests) is skipped and the viewer waits for the next."""


class ViewerTrack(MediaStreamTrack):
    """The video a viewer receives: the stream's frames from its `LiveFeed`, queued per viewer.

    `offer` runs in the feed's publish (on the event loop, for every frame): it only queues. Encoded
    frames keep GOP order: past `queue_frames` queued the queue is emptied and the track waits for the
    next keyframe; JPEG frames are independent, so only the newest `2` wait and older ones are dropped."""

    kind = "video"

    def __init__(self, track_sid: str, codec: str, *, queue_frames: int, on_codec_change: Callable[[], None]) -> None:
        super().__init__()
        self._id = track_sid  # aiortc writes it into the msid; the SDKs read the TR_ sid from it
        self.codec = codec
        self._queue: deque[tuple[FrameInfo, FramePayload]] = deque()
        self._limit = queue_frames if codec != "jpeg" else 2
        self._ready = asyncio.Event()
        self._on_codec_change = on_codec_change
        self.waiting_keyframe = codec != "jpeg"
        self.paused = False
        self.sent = 0
        self.dropped = 0
        self._ask_keyframe: Callable[[], None] = lambda: None

    def start(self, gop: list[tuple[FrameInfo, FramePayload]], ask_keyframe: Callable[[], None]) -> None:
        """Begin with the current GOP (when short enough), else with the next keyframe (asked for)."""
        self._ask_keyframe = ask_keyframe
        if gop and payload_codec(gop[0][1]) == self.codec and len(gop) <= MAX_REPLAY_FRAMES:
            for info, payload in gop:
                self.offer(info, payload)
        elif self.waiting_keyframe:
            ask_keyframe()

    def offer(self, info: FrameInfo, payload: FramePayload) -> None:
        if self.readyState != "live":
            return
        if payload_codec(payload) != self.codec:
            self._on_codec_change()
            return
        if self.paused:
            self.dropped += 1
            return
        if isinstance(payload, EncodedPayload):
            if payload.damaged:
                self._restart()
                return
            if self.waiting_keyframe:
                if not payload.keyframe:
                    self.dropped += 1
                    return
                self.waiting_keyframe = False
            if len(self._queue) >= self._limit:
                self._restart()
                return
        elif len(self._queue) >= self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((info, payload))
        self._ready.set()

    def want_keyframe(self) -> None:
        """The viewer lost something it cannot repair (PLI/FIR): restart at the next keyframe."""
        if self.codec != "jpeg":
            self._restart()

    def pause(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            self.dropped += len(self._queue)
            self._queue.clear()
        else:
            self._restart()

    def _restart(self) -> None:
        self.dropped += len(self._queue)
        self._queue.clear()
        if not self.waiting_keyframe:
            self.waiting_keyframe = True
            self._ask_keyframe()

    async def recv(self) -> av.Packet[Stream] | av.VideoFrame:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.readyState != "live":
            raise MediaStreamError
        info, payload = self._queue.popleft()
        self.sent += 1
        pts = info.timestamp_ms * 90
        if isinstance(payload, EncodedPayload):
            packet = av.Packet(payload.data)
            packet.pts, packet.time_base = pts, _RTP_CLOCK
            return packet
        data = payload.data if isinstance(payload, JpegPayload) else b""
        rgb = await asyncio.get_running_loop().run_in_executor(None, _decode_rgb, data)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = pts, _RTP_CLOCK
        return frame

    def stop(self) -> None:
        super().stop()
        self._ready.set()


def _decode_rgb(data: bytes) -> NDArray[np.uint8]:
    rgb: NDArray[np.uint8] = simplejpeg.decode_jpeg(data, colorspace="RGB")
    return rgb


class ViewRoom:
    """What every viewer of one stream is shown: the source participant's sid and its track's sid, for
    the stream's current codec (a new codec is a new publication, so a new track sid)."""

    def __init__(self) -> None:
        self.source_sid = signal.new_sid("PA_")
        self._tracks: dict[str, str] = {}

    def track_sid(self, codec: str) -> str:
        sid = self._tracks.get(codec)
        if sid is None:
            sid = self._tracks[codec] = signal.new_sid("TR_")
        return sid

    def source(self, feed: LiveFeed, now_ms: int) -> models.ParticipantInfo | None:
        if feed.codec is None:
            return None
        return signal.source_participant(
            sid=self.source_sid,
            identity=PUBLISHER_IDENTITY,
            track_sid=self.track_sid(feed.codec),
            mime_type=_MIME[feed.codec],
            width=feed.width or 0,
            height=feed.height or 0,
            now_ms=now_ms,
        )


class ViewerSession(SignalSession):
    role = "viewer"

    def __init__(
        self,
        *,
        channel: SignalChannel,
        stream_id: str,
        feed: LiveFeed,
        room: ViewRoom,
        identity: str,
        name: str,
        options: IngestOptions,
        clock: Clock,
        mint_token: Callable[[], str],
        ask_keyframe: Callable[[], None],
        auto_subscribe: bool = True,
    ) -> None:
        super().__init__(
            channel=channel,
            stream_id=stream_id,
            identity=identity,
            name=name,
            options=options,
            clock=clock,
            mint_token=mint_token,
        )
        self.feed = feed
        self.room = room
        self._ask_keyframe = ask_keyframe
        self._subscribed = auto_subscribe
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track: ViewerTrack | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._offer_id = 0
        self._awaiting_answer = False
        self._renegotiate = False
        self._rejoin_sent = False
        self._announced = False

    @property
    def frames_sent(self) -> int:
        return self.track.sent if self.track else 0

    async def run(self) -> None:
        self._fail_with(self.pc, "the viewer's media connection (ICE/DTLS) failed")
        try:
            source = self.room.source(self.feed, self.clock.now_ms())
            await self._join(viewer=True, others=[source] if source else [])
            self.pc.createDataChannel("_reliable")  # the PC has something to connect before any video
            self._unsubscribe = self.feed.subscribe(self._on_frame)
            self._announced = source is not None
            if source is not None and self._subscribed:
                self._add_track()
            await self._negotiate()
            await self._serve()
        finally:
            await self._teardown()

    async def _teardown(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.track is not None:
            self.track.stop()
        await self._cancel_tasks()
        with contextlib.suppress(Exception):
            await self.pc.close()
        await self.channel.close(1000, "")
        log.info(
            "viewer %s left stream %s (%s): %d frames sent, %d dropped",
            self.identity,
            self.stream_id,
            self._stop_reason or "normal",
            self.frames_sent,
            self.track.dropped if self.track else 0,
        )

    # --- media ------------------------------------------------------------------------------------

    def _on_frame(self, info: FrameInfo, payload: FramePayload) -> None:
        if self.track is not None:
            self.track.offer(info, payload)
        elif not self._announced and not self._stop.is_set():
            self._announced = True  # the stream's first frame since this viewer joined
            self._spawn(self._announce_source())

    async def _announce_source(self) -> None:
        source = self.room.source(self.feed, self.clock.now_ms())
        if source is None:
            return
        await self._send(signal.participant_update([source]))
        if self._subscribed:
            await self._publish_track()

    async def _publish_track(self) -> None:
        if self.track is not None or self._stop.is_set():
            return
        self._add_track()
        await self._negotiate()

    def _add_track(self) -> None:
        codec = self.feed.codec or "vp8"
        track = ViewerTrack(
            self.room.track_sid(codec),
            codec,
            queue_frames=self.options.viewer_queue_frames,
            on_codec_change=self._codec_changed,
        )
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        sender = transceiver.sender
        sender._stream_id = f"{self.room.source_sid}|{track.id}"  # LiveKit's msid: participant|track
        mime = _MIME[codec].lower()
        preferred = [
            c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in (mime, "video/rtx")
        ]
        transceiver.setCodecPreferences(preferred)
        if codec != "jpeg":
            # aiortc would set a flag its encoder never reads for pre-encoded frames: restart at a keyframe
            sender._send_keyframe = track.want_keyframe  # type: ignore[method-assign]
        self.track = track
        track.start(self.feed.current_gop(), self._ask_keyframe)

    def _codec_changed(self) -> None:
        if self._rejoin_sent or self._stop.is_set():
            return
        self._rejoin_sent = True
        log.info("stream %s changed codec: viewer %s rejoins", self.stream_id, self.identity)

        async def rejoin() -> None:
            await self._send(signal.leave(models.DisconnectReason.STATE_MISMATCH, reconnect=True))
            self._finish(None)

        self._spawn(rejoin())

    # --- signalling -------------------------------------------------------------------------------

    async def _negotiate(self) -> None:
        if self._awaiting_answer:
            self._renegotiate = True
            return
        self._renegotiate = False
        self._awaiting_answer = True  # before the awaits: a second negotiation waits for this one's answer
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._offer_id += 1
        await self._send(signal.offer(self.pc.localDescription.sdp, self._offer_id))

    async def _handle(self, request: rtc.SignalRequest) -> None:
        kind = request.WhichOneof("message")
        if kind == "answer":
            await self._on_answer(request.answer)
        elif kind == "trickle":
            await self._on_trickle(request.trickle)
        elif kind == "subscription":
            await self._on_subscription(request.subscription)
        elif kind == "track_setting":
            if self.track is not None and self.track.id in request.track_setting.track_sids:
                self.track.pause(request.track_setting.disabled)
        elif kind in ("offer", "add_track"):
            log.info(
                "stream %s: viewer %s tried to publish (%s); a viewer token cannot", self.stream_id, self.identity, kind
            )
            if kind == "add_track":
                await self._send(signal.request_refused(0, "a viewer token cannot publish"))
        else:
            await super()._handle(request)

    async def _on_answer(self, answer: rtc.SessionDescription) -> None:
        if not self._awaiting_answer or answer.id not in (0, self._offer_id):
            log.debug("stream %s: ignoring a stale answer %d", self.stream_id, answer.id)
            return
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        except Exception as exc:
            log.warning("stream %s: viewer %s: cannot use its answer: %r", self.stream_id, self.identity, exc)
            await self.kick(models.DisconnectReason.MEDIA_FAILURE, f"cannot negotiate the viewer's media: {exc}")
            return
        self._awaiting_answer = False
        if self._renegotiate:
            await self._negotiate()

    async def _on_trickle(self, trickle: rtc.TrickleRequest) -> None:
        if trickle.target != rtc.SignalTarget.SUBSCRIBER:
            return  # a viewer has no publisher PC here
        await add_ice_candidate(self.pc, trickle, self.stream_id)

    async def _on_subscription(self, update: rtc.UpdateSubscription) -> None:
        sids = set(update.track_sids) | {sid for pt in update.participant_tracks for sid in pt.track_sids}
        current = self.room.track_sid(self.feed.codec) if self.feed.codec else None
        if current is None or current not in sids:
            return
        if update.subscribe and not self._subscribed:
            self._subscribed = True
            if self.track is None:
                await self._publish_track()
            else:
                self.track.pause(False)
        elif not update.subscribe and self._subscribed:
            self._subscribed = False
            if self.track is not None:
                self.track.pause(True)
