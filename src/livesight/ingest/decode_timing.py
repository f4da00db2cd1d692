"""How long WebRTC video decoding takes, per frame and codec (`livesight_ingest_frame_decode_seconds`).

aiortc decodes in a thread of its own per receiver (`rtcrtpreceiver.decoder_worker`), which asks
`rtcrtpreceiver.get_decoder` for its decoder: no hook of ours runs there. `install` wraps that one
factory (once per process) so that every decoder it makes times its `decode` calls. The time goes to
the recorder of the session that owns the decoding thread: a session names its receiver's thread with
`attach` once the first frame arrives (the thread starts with the connection, after the `track`
event) and `detach`es it when it closes; decodes on threads nobody attached (another app in the same
process before its first frame) are timed for nobody. The receiver's thread is a private attribute of
aiortc's `RTCRtpReceiver`: if a future aiortc renames it, `attach` returns False and decode time is
simply not recorded (logged once), never misattributed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aiortc import RTCRtpReceiver, rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame

log = logging.getLogger(__name__)
Sink = Callable[[str | None, float], None]  # (codec, seconds)
_sinks: dict[int, Sink] = {}  # decoding thread id → where its decode times go
_lock = threading.Lock()
_installed = False
_warned = False


class _TimedDecoder(Decoder):
    """An aiortc `Decoder` that times each `decode`."""

    def __init__(self, inner: Decoder, codec: str) -> None:
        self._inner = inner
        self._codec = codec

    def decode(self, encoded_frame: JitterFrame) -> list[Frame]:
        started = time.perf_counter()
        frames = self._inner.decode(encoded_frame)
        sink = _sinks.get(threading.get_ident())
        if sink is not None:
            sink(self._codec, time.perf_counter() - started)
        return frames


def install() -> None:
    """Wrap aiortc's decoder factory (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        namespace = vars(rtcrtpreceiver)  # the name decoder_worker looks up (aiortc does not export it)
        original: Callable[[RTCRtpCodecParameters], Decoder] = namespace["get_decoder"]

        def get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
            return _TimedDecoder(original(codec), str(codec.name))

        namespace["get_decoder"] = get_decoder
        _installed = True


def _thread(receiver: RTCRtpReceiver) -> threading.Thread | None:
    thread = getattr(receiver, "_RTCRtpReceiver__decoder_thread", None)
    return thread if isinstance(thread, threading.Thread) else None


def attach(receiver: RTCRtpReceiver, sink: Sink) -> bool:
    """Send the decode times of `receiver`'s decoding thread to `sink`; False when it has none (yet)."""
    global _warned
    thread = _thread(receiver)
    if thread is None or thread.ident is None:
        if not _warned:
            _warned = True
            log.info("aiortc receiver has no decoder thread to time: decode time is not recorded")
        return False
    _sinks[thread.ident] = sink
    return True


def detach(receiver: RTCRtpReceiver) -> None:
    thread = _thread(receiver)
    if thread is not None and thread.ident is not None:
        _sinks.pop(thread.ident, None)
