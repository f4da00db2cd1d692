"""Sentences about a segment (pure): its span, which frames were read, text over time (what stayed, what
changed, first and last readings of a clock), change between consecutive frames, brightness over time,
and the newest frame's facts; ordered by what the question asks.
"""

from __future__ import annotations

from livesight.backends.ocr import phrases as ph
from livesight.backends.ocr.describe import (
    at,
    brightness_phrase,
    colour_sentence,
    facts_sentence,
    name,
    names,
    ref,
)
from livesight.backends.ocr.facts import FrameFacts, ItemFacts
from livesight.backends.ocr.intent import Intent, Topic
from livesight.backends.ocr.stats import change_word
from livesight.backends.ocr.tracks import Track, follow

MAX_TRACKS = 10
MOVED = 0.2  # a text box whose centre moved this far (fraction of the frame) is said to move
BRIGHTNESS_SWING = 15.0  # mean-luma range worth mentioning unprompted


def describe_segment(item: ItemFacts, intent: Intent) -> str:
    frames = item.frames
    decoded = [f for f in frames if f.stats is not None]
    head = header(frames)
    broken = undecodable_sentence(frames)
    if not decoded:
        return " ".join(s for s in (head, broken, "So there is nothing to read or measure.") if s)
    newest = decoded[-1]
    stats = newest.stats
    assert stats is not None
    r = ref(newest)
    subject = f"The newest frame ({r})" if r else "The newest frame"
    texts = [coverage_sentence(item), *failure_sentences(frames), *text_sentences(item, intent)]
    change = change_sentence(item)
    swing = brightness_sentence(decoded, always=intent.lead is Topic.BRIGHTNESS)
    lead = intent.lead
    if lead is Topic.MOTION:
        body = [change, *texts, swing, facts_sentence(subject, stats)]
    elif lead is Topic.COLOUR:
        body = [colour_sentence(stats), *texts, change, swing, facts_sentence(subject, stats, skip={"colours"})]
    elif lead is Topic.BRIGHTNESS:
        body = [swing, *texts, change, facts_sentence(subject, stats)]
    elif lead is Topic.SIZE:
        body = [size_sentence(decoded), *texts, change, swing, facts_sentence(subject, stats, skip={"size"})]
    elif lead is Topic.TIME and newest.arrived_at_ms is not None:
        arrived = f"The newest frame reached the server at {ph.wall_time(newest.arrived_at_ms)}."
        body = [*texts, arrived, change, swing, facts_sentence(subject, stats)]
    else:
        body = [*texts, change, swing, facts_sentence(subject, stats)]
    return " ".join(s for s in (head, broken, *body) if s)


def header(frames: tuple[FrameFacts, ...]) -> str:
    count = ph.plural(len(frames), "frame")
    first, last = frames[0], frames[-1]
    span = ""
    if first.timestamp_ms is not None and last.timestamp_ms is not None:
        span = (
            f" from stream time {ph.stream_time(first.timestamp_ms)} to {ph.stream_time(last.timestamp_ms)}"
            f" ({ph.duration(last.timestamp_ms - first.timestamp_ms)}"
        )
        if first.index is not None and last.index is not None:
            span += f", frame_index {first.index} to {last.index}"
        span += ")"
    elif first.index is not None and last.index is not None:
        span = f" (frame_index {first.index} to {last.index})"
    return f"This segment has {count}{span}."


def undecodable_sentence(frames: tuple[FrameFacts, ...]) -> str:
    bad = [f for f in frames if f.stats is None]
    if not bad:
        return ""
    if len(bad) == len(frames):
        return f"None of its frames could be decoded: {bad[0].problem or 'unknown error'}."
    listed = names(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
    verb = "was" if len(bad) == 1 else "were"
    return f"{ph.plural(len(bad), 'frame')} could not be decoded and {verb} skipped ({listed}): {bad[0].problem}."


def coverage_sentence(item: ItemFacts) -> str:
    decoded = [f for f in item.frames if f.stats is not None]
    chosen = [item.frames[p] for p in item.chosen]
    if not chosen:
        return "I did not read text in any frame of this segment (the limit on frames read per request was reached)."
    if len(chosen) == len(decoded):
        return "I read text in both frames." if len(chosen) == 2 else f"I read text in all {len(chosen)} frames."
    limit = f" ({item.ocr_limit})" if item.ocr_limit else ""
    if len(chosen) == 1:
        return f"To stay fast I read text in 1 of the {len(decoded)} frames{limit}: the newest, {name(chosen[0])}."
    return (
        f"To stay fast I read text in {len(chosen)} of the {len(decoded)} frames{limit}, spread evenly over the "
        f"segment: {names(chosen)}."
    )


def failure_sentences(frames: tuple[FrameFacts, ...]) -> list[str]:
    failed = [f for f in frames if f.stats is not None and f.lines is None and f.read_problem]
    return [f"I could not read text in {name(f)}: {f.read_problem}." for f in failed]


def track_where(track: Track) -> str:
    first = ph.region(*track.first.centre)
    last = ph.region(*track.last.centre)
    dx = track.first.centre[0] - track.last.centre[0]
    dy = track.first.centre[1] - track.last.centre[1]
    if first != last and (dx * dx + dy * dy) ** 0.5 >= MOVED:
        return f"moving from {first} to {last}"
    return ph.where(*track.last.centre)


def track_sentence(item: ItemFacts, track: Track, read_count: int) -> str:
    where = track_where(track)
    first, last = item.frames[track.first.position], item.frames[track.last.position]
    sure = min(s.line.score for s in track.sightings)
    note = f" (read with {sure * 100:.0f}% confidence)" if sure < 0.95 else ""
    if not track.changed:
        text = ph.quote(track.first.line.text)
        seen = len(track.sightings)
        if seen == read_count:
            every = "both frames I read" if seen == 2 else f"all {seen} frames I read"
            return f"{text}{note} is visible {where} in {every}."
        if seen == 1:
            return f"{text}{note} is visible {where} only {at(first)}."
        return (
            f"{text}{note} is visible {where} in {seen} of the {read_count} frames I read, "
            f"from {at(first).removeprefix('at ')} to {at(last).removeprefix('at ')}."
        )
    readings = track.readings
    start, end = track.first.line.text, track.last.line.text
    sentence = (
        f"The text {where} changed: {ph.quote(start)} {at(first)} became {ph.quote(end)} {at(last)}"
        f" ({len(readings)} different readings in {ph.plural(len(track.sightings), 'frame')}){note}."
    )
    if start == end:  # it changed and came back
        sentence = (
            f"The text {where} changed between readings ({ph.join([ph.quote(t) for t in readings[:6]])}) and read "
            f"{ph.quote(end)} again {at(last)}{note}."
        )
    a, b = ph.clock_seconds(start), ph.clock_seconds(end)
    if a is not None and b is not None and first.timestamp_ms is not None and last.timestamp_ms is not None:
        advanced = (b - a) % 86_400
        sentence += (
            f" As a clock it advanced {advanced} s while {ph.duration(last.timestamp_ms - first.timestamp_ms)} "
            "of stream time passed."
        )
    return sentence


def text_sentences(item: ItemFacts, intent: Intent) -> list[str]:
    read = [f for f in item.frames if f.lines is not None and f.stats is not None]
    if not read:
        return []
    tracks = follow([(f.position, f.stats.width, f.stats.height, f.lines) for f in read if f.stats and f.lines])
    if not tracks:
        return ["I found no readable text in the frames I read."]
    order = sorted(
        enumerate(tracks),
        key=lambda p: (
            intent.lead is Topic.TIME and not any(ph.is_time_like(t) for t in p[1].readings),
            -round(p[1].height, 3),
            -round(p[1].score, 3),
            p[0],
        ),
    )
    shown = [track_sentence(item, t, len(read)) for _, t in order[:MAX_TRACKS]]
    more = len(tracks) - len(shown)
    if more:
        shown.append(f"I also read {ph.plural(more, 'more piece')} of text.")
    return shown


def change_sentence(item: ItemFacts) -> str:
    changes = item.changes
    if not changes:
        return "With only one decodable frame I cannot measure change between frames."
    mean = sum(c.percent for c in changes) / len(changes)
    big = max(changes, key=lambda c: (c.percent, -c.after))
    if big.percent < 0.5:
        return (
            f"The picture barely changed between consecutive frames ({ph.percent(mean)} on average, at most "
            f"{ph.percent(big.percent)}): it looks static."
        )
    before, after = item.frames[big.before], item.frames[big.after]
    if before.timestamp_ms is not None and after.timestamp_ms is not None:
        when = f"between stream time {ph.stream_time(before.timestamp_ms)} and {ph.stream_time(after.timestamp_ms)}"
        if before.index is not None and after.index is not None:
            when += f" (frame_index {before.index} → {after.index})"
    else:
        when = f"between {name(before)} and {name(after)}"
    return (
        f"Between consecutive frames the picture changed by {ph.percent(mean)} on average ({change_word(mean)}); "
        f"the largest change, {ph.percent(big.percent)}, was {when}, mostly {ph.where(*big.centre)}."
    )


def brightness_sentence(decoded: list[FrameFacts], *, always: bool) -> str:
    values = [(f.stats.brightness, f) for f in decoded if f.stats is not None]
    low = min(values, key=lambda p: (p[0], p[1].position))
    high = max(values, key=lambda p: (p[0], -p[1].position))
    if high[0] - low[0] < BRIGHTNESS_SWING:
        if not always:
            return ""
        newest = decoded[-1].stats
        assert newest is not None
        return (
            f"Brightness stayed about the same over the segment (mean luma {low[0]:.0f} to {high[0]:.0f} of 255); "
            f"the newest frame is {brightness_phrase(newest)}."
        )
    return (
        f"Brightness varied over the segment: darkest {at(low[1])} (mean luma {low[0]:.0f} of 255), "
        f"brightest {at(high[1])} (mean luma {high[0]:.0f})."
    )


def size_sentence(decoded: list[FrameFacts]) -> str:
    sizes: dict[tuple[int, int], None] = {}
    for f in decoded:
        if f.stats is not None:
            sizes.setdefault((f.stats.width, f.stats.height), None)
    listed = [f"{w}×{h}" for w, h in sizes]
    if len(listed) == 1:
        return f"Its frames are {listed[0]} pixels."
    return f"Its frames change size: {ph.join(listed)} pixels."
