"""The stream clock: ms since the stream's first frame, from media timestamps, never backwards.

Media timestamps only mean something within one publication (`session`). When a publisher
reconnects, its timestamps restart from an arbitrary value, so the new session is anchored where
the wall clock says it is: the last stream time plus the wall time that passed since the last frame.
A media timestamp that disagrees with the wall clock by more than `max_skew_ms` (a wrap, a jump, a
publisher that stalled its clock) re-anchors the same way. Stream times are strictly increasing.

After a server restart, `resume` continues a stream's clock from a persisted high-water mark: the
next frame is anchored like a reconnect, after that mark, so stream time never goes back.
"""

from __future__ import annotations


class StreamClock:
    def __init__(self, max_skew_ms: int = 5_000) -> None:
        self._max_skew_ms = max_skew_ms
        self._session: str | None = None
        self._offset_ms = 0.0  # stream time = media time + offset, within the current session
        self._last_ts: int | None = None
        self._last_media_ms = 0.0
        self._last_arrival_ms = 0

    @property
    def last_ms(self) -> int | None:
        return self._last_ts

    def resume(self, after_ms: int, at_wall_ms: int) -> None:
        """Continue after a restart: the next frame gets a stream time > `after_ms` (a new session)."""
        self._session = None
        self._last_ts = after_ms
        self._last_arrival_ms = at_wall_ms

    def stamp(self, session: str, media_ms: float, arrived_at_ms: int) -> int:
        """Stream time for a frame; call once per frame, in arrival order."""
        last = self._last_ts
        if last is None:
            self._anchor(session, media_ms, 0.0)
            ts = 0
        else:
            wall_gap = max(0, arrived_at_ms - self._last_arrival_ms)
            if session != self._session:
                self._anchor(session, media_ms, last + max(1, wall_gap))
            else:
                media_gap = media_ms - self._last_media_ms
                if media_gap < -1.0 or abs(media_gap - wall_gap) > self._max_skew_ms:
                    self._anchor(session, media_ms, last + max(1, wall_gap))
            ts = max(last + 1, round(media_ms + self._offset_ms))
        self._last_ts = ts
        self._last_media_ms = media_ms
        self._last_arrival_ms = arrived_at_ms
        return ts

    def _anchor(self, session: str, media_ms: float, at_stream_ms: float) -> None:
        self._session = session
        self._offset_ms = at_stream_ms - media_ms
