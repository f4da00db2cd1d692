"""Sentences about one frame (pure): the text read in it, where, and its facts (size, time, brightness,
colours), ordered by what the question asks. Shared by `segment.py`; `compose.py` assembles the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from livesight.backends.ocr import phrases as ph
from livesight.backends.ocr.facts import FrameFacts
from livesight.backends.ocr.intent import Intent, Topic
from livesight.backends.ocr.reader import TextLine
from livesight.backends.ocr.stats import FrameStats, brightness_word

MODEL_ID = "livesight/ocr"
CAN_DO = (
    f"{MODEL_ID} is an offline model that only reads text and measures simple image statistics "
    "(size, brightness, colours and how much changes between frames)"
)
MAX_LINES = 12
CONFIDENT = 0.95  # below this, the answer says how sure the reading is


def ref(frame: FrameFacts) -> str:
    """'frame_index 120, stream time 4.0 s' (what is known of it), or ''."""
    parts = []
    if frame.index is not None:
        parts.append(f"frame_index {frame.index}")
    if frame.timestamp_ms is not None:
        parts.append(f"stream time {ph.stream_time(frame.timestamp_ms)}")
    return ", ".join(parts)


def at(frame: FrameFacts) -> str:
    """'at stream time 4.0 s (frame_index 120)', 'in frame_index 120' or 'in frame 3'."""
    if frame.timestamp_ms is not None:
        extra = f" (frame_index {frame.index})" if frame.index is not None else ""
        return f"at stream time {ph.stream_time(frame.timestamp_ms)}{extra}"
    if frame.index is not None:
        return f"in frame_index {frame.index}"
    return f"in frame {frame.position + 1}"


def name(frame: FrameFacts) -> str:
    """How to point at a frame in a list: 'frame_index 120' or 'frame 3'."""
    return f"frame_index {frame.index}" if frame.index is not None else f"frame {frame.position + 1}"


def names(frames: Sequence[FrameFacts]) -> str:
    """A list of frames: 'frame_index 300, 390 and 480' or 'frames 1, 4 and 7'."""
    if all(f.index is not None for f in frames):
        return f"frame_index {ph.join([str(f.index) for f in frames])}"
    return f"frame{'s' if len(frames) > 1 else ''} {ph.join([str(f.position + 1) for f in frames])}"


def describe_frame(frame: FrameFacts, intent: Intent, *, noun: str = "image") -> str:
    r = ref(frame)
    subject = f"The {noun} ({r})" if r else f"The {noun}"
    if frame.stats is None:
        return (
            f"{subject} could not be decoded: {frame.problem or 'unknown error'}. "
            "I can only read JPEG, PNG and other common image formats."
        )
    stats = frame.stats
    text = text_sentence(frame, stats, intent, noun=noun)
    lead = intent.lead
    sentences: list[str]
    if lead is Topic.TIME:
        sentences = [time_sentence(frame, noun=noun), text, facts_sentence(subject, stats)]
    elif lead is Topic.COLOUR:
        sentences = [colour_sentence(stats), text, facts_sentence(subject, stats, skip={"colours"})]
    elif lead is Topic.BRIGHTNESS:
        sentences = [
            f"{subject} is {brightness_phrase(stats)}.",
            text,
            facts_sentence(subject, stats, skip={"brightness"}),
        ]
    elif lead is Topic.SIZE:
        sentences = [
            f"{subject} is {stats.width}×{stats.height} pixels.",
            text,
            facts_sentence(subject, stats, skip={"size"}),
        ]
    elif lead is Topic.MOTION:
        sentences = [
            "A single image cannot show motion or change; ask about a segment (a video_url such as "
            "ovs://streams/<stream_id>?start_offset_ms=-5000) and I will measure how much changes between frames.",
            text,
            facts_sentence(subject, stats),
        ]
    else:
        sentences = [text, facts_sentence(subject, stats)]
    return " ".join(s for s in sentences if s)


def order_lines(lines: Sequence[TextLine], intent: Intent) -> list[TextLine]:
    """Largest text first (then most confident, then reading order); time-like text first for time questions."""
    ranked = sorted(enumerate(lines), key=lambda p: (-p[1].height, -round(p[1].score, 3), p[0]))
    ordered = [line for _, line in ranked]
    if intent.lead is Topic.TIME:
        ordered.sort(key=lambda line: not ph.is_time_like(line.text))  # stable
    return ordered


def line_phrase(line: TextLine, width: int, height: int) -> str:
    x, y = line.centre(width, height)
    sure = f" (read with {line.score * 100:.0f}% confidence)" if line.score < CONFIDENT else ""
    return f"{ph.quote(line.text)} {ph.where(x, y)}{sure}"


def text_sentence(frame: FrameFacts, stats: FrameStats, intent: Intent, *, noun: str) -> str:
    if frame.lines is None:
        reason = frame.read_problem or "it was not among the frames chosen for reading"
        return f"I did not read text in this {noun}: {reason}."
    if not frame.lines:
        if stats.blank:
            return f"I found no text: the {noun} is blank (a single flat {flat_colour(stats)} colour)."
        return f"I found no readable text in this {noun}."
    ordered = order_lines(frame.lines, intent)
    if intent.lead is Topic.TIME:  # time_sentence already quoted the time-like lines
        others = [line for line in ordered if not ph.is_time_like(line.text)]
        if len(others) < len(ordered):
            listed = [line_phrase(line, stats.width, stats.height) for line in others[:MAX_LINES]]
            return f"Other text in the {noun}: {ph.join(listed)}." if listed else ""
    shown = [line_phrase(line, stats.width, stats.height) for line in ordered[:MAX_LINES]]
    if len(ordered) > 1 and intent.lead is not Topic.TIME and ordered[0].height > ordered[1].height:
        shown[0] += " (the largest)"
    more = len(ordered) - len(shown)
    if more:
        shown.append(ph.plural(more, "more line"))
    if len(ordered) == 1:
        return f"I read one line of text: {shown[0]}."
    return f"I read {len(ordered)} lines of text: {ph.join(shown)}."


def time_sentence(frame: FrameFacts, *, noun: str) -> str:
    clocks = [line for line in frame.lines or () if ph.is_time_like(line.text)]
    if frame.lines is None:
        shown = ""
    elif clocks:
        stats = frame.stats
        w, h = (stats.width, stats.height) if stats else (1, 1)
        shown = f"Time-like text in the {noun}: {ph.join([line_phrase(line, w, h) for line in clocks])}."
    else:
        shown = f"I found no clock or time-like text in the {noun}."
    when = []
    if frame.timestamp_ms is not None:
        when.append(f"was taken at stream time {ph.stream_time(frame.timestamp_ms)}")
    if frame.arrived_at_ms is not None:
        when.append(f"reached the server at {ph.wall_time(frame.arrived_at_ms)}")
    if when:
        shown += f" The {noun} {ph.join(when)}."
    return shown.strip()


def flat_colour(stats: FrameStats) -> str:
    return stats.colours[0][0] if stats.colours else "grey"


def brightness_phrase(stats: FrameStats) -> str:
    return f"{brightness_word(stats.brightness)} (mean luma {stats.brightness:.0f} of 255)"


def colours_phrase(stats: FrameStats) -> str:
    if not stats.colours:
        return "with no dominant colour"
    (first, share), rest = stats.colours[0], stats.colours[1:]
    head = f"{'mostly' if share >= 0.5 else 'mainly'} {first} ({share * 100:.0f}%)"
    if not rest:
        return head
    return f"{head} with {ph.join([f'{n} ({s * 100:.0f}%)' for n, s in rest])}"


def colour_sentence(stats: FrameStats) -> str:
    if not stats.colours:
        return "No single colour dominates the frame."
    listed = ph.join([f"{n} ({s * 100:.0f}% of the frame)" for n, s in stats.colours])
    word = "colour is" if len(stats.colours) == 1 else "colours are"
    return f"The dominant {word} {listed}."


def facts_sentence(subject: str, stats: FrameStats, *, skip: frozenset[str] | set[str] = frozenset()) -> str:
    if stats.blank:
        size = "" if "size" in skip else f"{stats.width}×{stats.height} and "
        flat = f"a single flat {flat_colour(stats)} colour (mean luma {stats.brightness:.0f} of 255)"
        return f"{subject} is {size}blank: {flat}."
    parts = {
        "size": f"{stats.width}×{stats.height}",
        "brightness": brightness_phrase(stats),
        "colours": colours_phrase(stats),
    }
    parts = {key: phrase for key, phrase in parts.items() if key not in skip}
    return f"{subject} is {', '.join(parts.values())}." if parts else ""
