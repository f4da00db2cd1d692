"""One publisher connection: LiveKit signalling over a WebSocket, one aiortc peer connection.

Publish-only: the endpoint never offers, never subscribes, never trickles (aiortc puts all its
candidates into the answer). v0 (`/rtc`, the publisher PC of the dual-PC layout) and v1 (`/rtc/v1`,
single PC, first offer inside the join request) differ only in where the first offer comes from.

Silent failures are made loud: an offer whose video has no VP8/H264, a negotiation aiortc rejects,
or a published video track that delivers no frame within `no_frame_timeout_s` each set the stream's
`last_error`; the first two also send a LeaveRequest (reason MEDIA_FAILURE) so the client stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from livekit.protocol import models, rtc

from livesight.core.clock import Clock
from livesight.core.frame import IngestTarget
from livesight.ingest import passthrough, sdp, signal
from livesight.ingest.options import IngestOptions
from livesight.ingest.remb import install_fixed_remb
from livesight.ingest.signal_session import SignalChannel, SignalSession, add_ice_candidate
from livesight.ingest.sockets import enlarge_receive_buffers
from livesight.ingest.tap import FrameTap

log = logging.getLogger(__name__)


class PublisherSession(SignalSession):
    role = "publisher"

    def __init__(
        self,
        *,
        channel: SignalChannel,
        target: IngestTarget,
        identity: str,
        name: str,
        options: IngestOptions,
        clock: Clock,
        mint_token: Callable[[], str],
    ) -> None:
        super().__init__(
            channel=channel,
            stream_id=target.stream_id,
            identity=identity,
            name=name,
            options=options,
            clock=clock,
            mint_token=mint_token,
        )
        self.target = target
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.codec: str | None = None
        self.frames = 0
        self.taps: list[FrameTap] = []
        self._pending: dict[str, deque[tuple[rtc.AddTrackRequest, str]]] = {"audio": deque(), "video": deque()}
        self._video_tracks = 0
        self._video_receiver: RTCRtpReceiver | None = None  # where keyframe requests (PLI) go
        self.keyframe_requests = 0
        self._keyframe_wanted = False  # a viewer asked (request_keyframe)
        passthrough.install()
        self._watchdog_error: str | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def run(self, join_request: rtc.JoinRequest | None = None) -> None:
        """Serve the connection until the client leaves, goes silent, fails, or is kicked."""

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._on_track(track)

        self._fail_with(self.pc, "the media connection (ICE/DTLS) failed")
        try:
            await self._join()
            self.target.publisher_connected(self.identity, codec=None)
            if join_request is not None:
                for request in join_request.add_track_requests:
                    await self._on_add_track(request)
                if join_request.publisher_offer.sdp:
                    await self._on_offer(join_request.publisher_offer)
            await self._serve()
        finally:
            await self._teardown()

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe soon (a viewer needs one); sent by `_keyframes`, rate-limited."""
        self._keyframe_wanted = True

    def drop_signal_later(self, delay_s: float) -> None:
        """Test knob: close the WebSocket abruptly after `delay_s` (the client resumes, then rejoins)."""

        async def drop() -> None:
            await asyncio.sleep(delay_s)
            log.info("dropping the signal connection of stream %s (test knob)", self.stream_id)
            await self.channel.close(1011, "dropped for a reconnect test")

        self._spawn(drop())

    async def _teardown(self) -> None:
        await self._cancel_tasks()
        with contextlib.suppress(Exception):
            await self.pc.close()
        if self.target.active:
            self.target.publisher_disconnected(self._stop_reason)
        await self.channel.close(1000, "")
        log.info(
            "publisher left stream %s (%s): %d frames",
            self.stream_id,
            self._stop_reason or "normal",
            self.frames,
        )

    # --- signalling -------------------------------------------------------------------------------

    async def _handle(self, request: rtc.SignalRequest) -> None:
        kind = request.WhichOneof("message")
        if kind == "offer":
            await self._on_offer(request.offer)
        elif kind == "trickle":
            await self._on_trickle(request.trickle)
        elif kind == "add_track":
            await self._on_add_track(request.add_track)
        else:
            await super()._handle(request)

    async def _on_offer(self, offer: rtc.SessionDescription) -> None:
        problems = sdp.undecodable_video(offer.sdp)
        if problems:
            await self._refuse_media(
                f"the publisher offered video codec {', '.join(problems)}; livesight decodes only VP8 and "
                "H264: publish with VP8 or H264 (e.g. video_codec=VP8)"
            )
            return
        simulcast = any(sdp.top_simulcast_rid(s) for s in sdp.SessionDescriptionText.parse(offer.sdp).media)
        if simulcast and self.options.simulcast == "reject":
            await self._refuse_media("simulcast publishing is disabled on this server: publish with simulcast off")
            return
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            if self.options.remb_bps:
                for transceiver in self.pc.getTransceivers():
                    if transceiver.kind == "video":
                        install_fixed_remb(transceiver.receiver, self.options.remb_bps)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self._enlarge_buffers()
        except Exception as exc:
            log.warning("stream %s: negotiation failed: %r", self.stream_id, exc)
            await self._refuse_media(f"cannot negotiate the publisher's media: {exc}")
            return
        local = self.pc.localDescription
        answer = sdp.munge_answer(offer.sdp, local.sdp)
        codec = sdp.video_codec(answer)
        if codec and codec != self.codec:
            self.codec = codec
            self.target.publisher_connected(self.identity, codec=codec)
        await self._send(signal.answer(answer, offer.id))

    def _enlarge_buffers(self) -> None:
        wanted = self.options.udp_receive_buffer_bytes
        if not wanted:
            return
        granted = enlarge_receive_buffers(self.pc, wanted)
        if granted is None:
            log.info("stream %s: no UDP socket to enlarge the receive buffer of", self.stream_id)
        elif granted < wanted:
            log.info(
                "stream %s: UDP receive buffer %d KB, not the %d KB asked (raise net.core.rmem_max)",
                self.stream_id, granted // 1024, wanted // 1024,
            )  # fmt: skip

    async def _refuse_media(self, message: str) -> None:
        self.target.report_error(message)
        await self.kick(models.DisconnectReason.MEDIA_FAILURE, message)

    async def _on_trickle(self, trickle: rtc.TrickleRequest) -> None:
        await add_ice_candidate(self.pc, trickle, self.stream_id)

    async def _on_add_track(self, request: rtc.AddTrackRequest) -> None:
        track_sid = signal.new_sid("TR_")
        if request.type == models.TrackType.VIDEO:
            wanted = [c.codec.upper() for c in request.simulcast_codecs if c.codec]
            decodable = [c for c in wanted if c in sdp.DECODABLE_VIDEO]
            if wanted and not decodable:
                await self._refuse_media(
                    f"the publisher asked to publish video as {', '.join(wanted)}; livesight decodes only VP8 "
                    "and H264: publish with VP8 or H264 (e.g. video_codec=VP8)"
                )
                return
            mime = signal.mime_for(decodable[0] if decodable else "VP8", request.type)
            self._pending["video"].append((request, track_sid))
            await self._send(signal.track_published(request, track_sid, mime))
            self._spawn(self._watchdog(track_sid))
        else:
            self._pending["audio"].append((request, track_sid))
            await self._send(signal.track_published(request, track_sid, "audio/opus"))

    # --- media ------------------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        pending = self._pending.get(track.kind)
        request, track_sid = pending.popleft() if pending else (None, signal.new_sid("TR_"))
        if track.kind != "video":
            self._spawn(self._drain(track))
            return
        self._video_tracks += 1
        if self._video_tracks > 1:
            self.target.report_error("the publisher sent a second video track; livesight keeps only the first")
            self._spawn(self._drain(track))
            return
        self._video_receiver = next((t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track), None)
        tap = FrameTap(
            self.target, session=f"{self.sid}/{track_sid}", max_side=self.options.max_side, on_frame=self._on_frame
        )
        self.taps.append(tap)
        log.info(
            "stream %s: receiving video %s (%s, %sx%s)",
            self.stream_id,
            track_sid,
            self.codec,
            request.width if request else "?",
            request.height if request else "?",
        )
        if self._video_receiver is not None and not passthrough.deliver_directly(self._video_receiver, tap.offer):
            log.info(
                "stream %s: frames come through aiortc's decoder thread (no decoder queue to replace)", self.stream_id
            )
        self._spawn(tap.run(track.recv))  # frames (on the thread path) and the end of the track
        if self._video_receiver is not None:
            self._spawn(self._keyframes(self._video_receiver, tap))

    async def _drain(self, track: MediaStreamTrack) -> None:
        """Consume a track we do not keep, so aiortc's unbounded queue never grows."""
        with contextlib.suppress(MediaStreamError):  # the track ended
            while True:
                await track.recv()

    def _on_frame(self, width: int, height: int) -> None:
        self.frames += 1
        if self.frames == 1 and self._watchdog_error is not None:
            self.target.report_error(None)
            self._watchdog_error = None

    async def _watchdog(self, track_sid: str) -> None:
        before = self.frames
        await asyncio.sleep(self.options.no_frame_timeout_s)
        if self.frames == before and not self._stop.is_set() and not any(t.received for t in self.taps):
            message = (
                f"video track {track_sid} was published {self.options.no_frame_timeout_s:g} s ago but no frame "
                "has arrived: check that the publisher sends VP8 or H264 and that UDP reaches this server"
            )
            self._watchdog_error = message
            self.target.report_error(message)

    async def _keyframes(self, receiver: RTCRtpReceiver, tap: FrameTap) -> None:
        """Keep GOPs short: ask for a keyframe (RTCP PLI) when the last one is `keyframe_interval_s` old, or
        at once while the track waits for its first keyframe or a damaged GOP waits for its end (at most one
        request per `min_gap`). Say so in `last_error` when video arrives but no keyframe ever does."""
        interval = self.options.keyframe_interval_s
        min_gap = min(0.5, interval / 2)
        last_request = 0.0
        reported = False
        send = getattr(receiver, "_send_rtcp_pli", None)  # aiortc's own PLI sender (private, stable for years)
        if send is None:
            log.warning(
                "stream %s: aiortc cannot send keyframe requests: GOPs are as long as the publisher makes them",
                self.stream_id,
            )
            return
        while True:
            await asyncio.sleep(min(0.1, interval / 4))
            now = time.monotonic()
            age = now - tap.last_keyframe_at if tap.last_keyframe_at is not None else None
            due = tap.wants_keyframe or self._keyframe_wanted or (age is not None and age >= interval * 0.9)
            if due and now - last_request >= min_gap and tap.received:
                sources = receiver.getSynchronizationSources()
                if sources:
                    last_request = now
                    self._keyframe_wanted = False
                    self.keyframe_requests += 1
                    await send(sources[0].source)
            waited = now - tap.first_received_at if tap.first_received_at is not None else 0.0
            if not tap.keyframes and waited >= self.options.no_frame_timeout_s and not reported:
                reported = True
                self._watchdog_error = (
                    f"video has arrived for {waited:.0f} s but no keyframe yet ({tap.dropped} frames dropped): the "
                    "publisher ignores keyframe requests (RTCP PLI), so no frame can be decoded"
                )
                self.target.report_error(self._watchdog_error)
