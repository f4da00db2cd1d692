"""Following lines of text across the frames of a segment (pure).

A line read in a later frame continues a track when it has the same text (the nearest such track), or
else when its box overlaps the track's last box (IoU ≥ 0.3): the same place with new text, as a clock
that ticks. Boxes are compared as fractions of their frame's size, so a resolution change does not
break a track. Exact-text matches are made before overlap matches, so a static sign next to a ticking
clock keeps its own track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from livesight.backends.ocr.reader import TextLine

MIN_IOU = 0.3

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Sighting:
    position: int  # frame position within the item
    line: TextLine
    box: Box  # normalised to 0..1

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


@dataclass(slots=True)
class Track:
    sightings: list[Sighting] = field(default_factory=list)

    @property
    def last(self) -> Sighting:
        return self.sightings[-1]

    @property
    def first(self) -> Sighting:
        return self.sightings[0]

    @property
    def readings(self) -> list[str]:
        """Distinct texts in order of first appearance."""
        seen: dict[str, None] = {}
        for s in self.sightings:
            seen.setdefault(s.line.text, None)
        return list(seen)

    @property
    def changed(self) -> bool:
        return len(self.readings) > 1

    @property
    def height(self) -> float:
        """Largest normalised text height seen: how big the text is on screen."""
        return max(s.box[3] - s.box[1] for s in self.sightings)

    @property
    def score(self) -> float:
        return min(s.line.score for s in self.sightings)


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def normalise(line: TextLine, width: int, height: int) -> Box:
    w, h = max(1, width), max(1, height)
    return (line.box[0] / w, line.box[1] / h, line.box[2] / w, line.box[3] / h)


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def follow(frames: Sequence[tuple[int, int, int, Sequence[TextLine]]]) -> list[Track]:
    """Tracks from (position, width, height, lines) per read frame, oldest first; tracks in order of
    first appearance (then reading order)."""
    tracks: list[Track] = []
    for position, width, height, lines in frames:
        sightings = [Sighting(position, line, normalise(line, width, height)) for line in lines]
        open_tracks = [t for t in tracks if t.last.position < position]
        taken: set[int] = set()
        placed: dict[int, Track] = {}
        for i, sighting in enumerate(sightings):  # pass 1: same text
            same = [t for t in open_tracks if id(t) not in taken and t.last.line.text == sighting.line.text]
            if same:
                best = min(same, key=lambda t: _distance(t.last.centre, sighting.centre))
                taken.add(id(best))
                placed[i] = best
        for i, sighting in enumerate(sightings):  # pass 2: same place
            if i in placed:
                continue
            overlapping = [
                (iou(t.last.box, sighting.box), n)
                for n, t in enumerate(open_tracks)
                if id(t) not in taken and iou(t.last.box, sighting.box) >= MIN_IOU
            ]
            if overlapping:
                _, n = max(overlapping, key=lambda pair: (pair[0], -pair[1]))
                taken.add(id(open_tracks[n]))
                placed[i] = open_tracks[n]
        for i, sighting in enumerate(sightings):
            track = placed.get(i)
            if track is None:
                track = Track()
                tracks.append(track)
            track.sightings.append(sighting)
    return tracks
