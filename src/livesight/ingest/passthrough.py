"""Keep received video encoded: aiortc hands us each depayloaded frame instead of decoding it.

aiortc reassembles every frame in its jitter buffer and passes it to a decoder from
`rtcrtpreceiver.get_decoder`, in a thread of its own per receiver, whose results it queues for
`track.recv()` without looking at them. `install()` (once per process) swaps that factory: VP8 and
H264 get a `Passthrough` decoder whose "decoded frames" are the `Received` bitstream chunks themselves,
so `track.recv()` returns them and nothing is decoded at ingest (the store decodes on demand). Other
codecs (audio) keep aiortc's decoders.

It also swaps the jitter buffer for one that marks the first frame it emits after giving up on
packets (`pli_flag`: a gap it will never fill, whose frames it dropped). Without a decoder nothing
else would notice the loss: the store must not decode the frames after such a gap to wrong pixels.

Both are module globals of `aiortc.rtcrtpreceiver` (looked up at call time, aiortc 1.16 and
earlier). `install()` checks they exist and the tap checks the type of every frame it gets, so a
future aiortc that moved them fails loudly (a stream error), never silently decodes again.

`deliver_directly(receiver, sink)` goes one step further for a video receiver: it replaces the
receiver's decoder queue (`_RTCRtpReceiver__decoder_queue`, private) with one whose `put` hands each
frame to `sink` right there, on the event loop, as the jitter buffer releases it. The frame then skips
the hop to the decoder thread and back (a `queue.Queue` get, `run_coroutine_threadsafe`, a task and
an asyncio.Queue per frame): measured, that hop made the GIL the limit at ~20 streams (frames dropped in
the kernel's UDP buffers while the loop waited for it). The end-of-track marker still goes to the
thread, so the track ends as before. If the attribute is not there, frames take the thread path.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from av.frame import Frame

from livesight.codec.bitstream import CODECS

log = logging.getLogger(__name__)
_lock = threading.Lock()
_installed = False
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
Sink = Callable[["Received"], None]


@dataclass(frozen=True, slots=True)
class Received:
    """One depayloaded video frame as it left the jitter buffer. `timestamp` is aiortc's 90 kHz media
    time (rebased to 0 per track); `after_loss` says frames before it were lost for good."""

    codec: str  # "vp8" | "h264"
    data: bytes
    timestamp: int
    after_loss: bool


class _MarkedFrame(JitterFrame):
    after_loss = False


class _LossMarkingJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, plus two things for video:

    - the next frame out after a gap it gave up on is marked (`after_loss`);
    - a frame is released as soon as its last packet (the RTP marker bit, RFC 7741 / RFC 6184) has
      arrived with every packet before it, instead of when the next frame's first packet arrives:
      aiortc's own rule holds every frame back one frame interval (33 ms at 30 fps);
    - a "frame" of padding only (libwebrtc's bandwidth probes, sent after a frame's marker packet with
      its timestamp) is not a frame: aiortc's rule used to glue such packets to the frame before.
    """

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch, is_video)
        self._lost = False
        self._early = is_video and prefetch == 0

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        frame = super()._remove_frame(sequence_number)
        while frame is not None and not frame.data:  # padding only: drop it and look again
            frame = super()._remove_frame(sequence_number)
        if frame is not None or not self._early or self._origin is None:
            return frame
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                return None  # a hole, or a frame without its marker: aiortc's rule decides
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(b"".join(p._data for p in packets), packets[0].timestamp)  # type: ignore[attr-defined]
        return None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        self._lost = self._lost or pli_flag
        if frame is not None and not frame.data:
            return pli_flag, None  # only padding (bandwidth probes carry the previous frame's timestamp)
        if frame is not None and self._lost:
            marked = _MarkedFrame(frame.data, frame.timestamp)
            marked.after_loss = True
            self._lost = False
            return pli_flag, marked
        return pli_flag, frame


class Passthrough(Decoder):
    """An aiortc `Decoder` that decodes nothing: it returns the frame it was given, as `Received`."""

    def __init__(self, codec: str) -> None:
        self.codec = codec

    def decode(self, encoded_frame: JitterFrame) -> list[Frame]:
        received = Received(
            self.codec, encoded_frame.data, encoded_frame.timestamp, getattr(encoded_frame, "after_loss", False)
        )
        return [received]  # type: ignore[list-item]  # aiortc queues it for track.recv() untouched


def install() -> None:
    """Swap aiortc's decoder factory and jitter buffer (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        namespace = vars(rtcrtpreceiver)  # the names RTCRtpReceiver looks up at call time
        missing = [name for name in ("get_decoder", "JitterBuffer") if name not in namespace]
        if missing:
            raise RuntimeError(
                f"aiortc.rtcrtpreceiver has no {', '.join(missing)}: this aiortc version cannot keep video "
                "encoded (livesight pins aiortc~=1.16)"
            )
        original: Callable[[RTCRtpCodecParameters], Decoder] = namespace["get_decoder"]

        def get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
            name = str(codec.name).lower()
            return Passthrough(name) if name in CODECS else original(codec)

        namespace["get_decoder"] = get_decoder
        namespace["JitterBuffer"] = _LossMarkingJitterBuffer
        _installed = True


class _Direct:
    """Stands in for a receiver's decoder queue: video frames go to `sink` at once, on the event loop."""

    def __init__(self, original: queue.Queue[object], sink: Sink) -> None:
        self._original = original
        self._sink = sink

    def get(self) -> object:
        """For a decoder thread started after the swap (aiortc may start it after the `track` event): it
        waits on the original queue, which gets the end-of-track marker and any frame not kept here."""
        return self._original.get()

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:  # the receiver stops: the decoder thread ends the track
            self._original.put(None)
            return
        codec, frame = item
        name = str(codec.name).lower()
        if name not in CODECS:
            self._original.put(item)
            return
        try:
            self._sink(Received(name, frame.data, frame.timestamp, getattr(frame, "after_loss", False)))
        except Exception:  # never into aiortc's RTP handling: that would stop the receiver
            log.exception("the frame sink of a video receiver failed")


def deliver_directly(receiver: object, sink: Sink) -> bool:
    """Hand `receiver`'s frames to `sink` on the event loop (see the module doc); False if this aiortc has
    no decoder queue to replace (frames then come through `track.recv()`)."""
    original = getattr(receiver, _DECODER_QUEUE, None)
    if not isinstance(original, queue.Queue):
        return False
    setattr(receiver, _DECODER_QUEUE, _Direct(original, sink))
    return True
