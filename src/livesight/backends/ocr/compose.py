"""The answer text (pure): plain sentences built from what was observed, ordered by what the question asks.

It quotes text exactly as read and says where it is; it states frame facts (size, time, brightness,
colours); for segments it adds text over time and change between frames. It never describes a scene:
when asked for more than it can do, it says so first, then gives what it has.
"""

from __future__ import annotations

from collections.abc import Sequence

from livesight.backends.ocr.describe import CAN_DO, describe_frame
from livesight.backends.ocr.facts import ItemFacts
from livesight.backends.ocr.intent import classify
from livesight.backends.ocr.segment import describe_segment


def compose(question: str, items: Sequence[ItemFacts]) -> str:
    intent = classify(question)
    if not items:
        return (
            "No image or video was attached, so there is nothing for me to read. "
            f"{CAN_DO}. Attach a frame as an image_url part, e.g. ovs://streams/<stream_id>?frame_index=-1, "
            "or a segment as a video_url part, e.g. ovs://streams/<stream_id>?start_offset_ms=-5000."
        )
    paragraphs: list[str] = []
    if intent.beyond:
        paragraphs.append(f"I cannot describe scenes, objects, people or actions: {CAN_DO}. Here is what I can tell.")
    for n, item in enumerate(items, 1):
        if not item.frames:
            body = f"The {'image' if item.kind == 'image' else 'segment'} has no frames, so there is nothing to read."
        elif item.kind == "image" or len(item.frames) == 1:
            body = describe_frame(item.frames[0], intent, noun="image" if item.kind == "image" else "frame")
            if item.kind == "video":
                body = "This segment has a single frame. " + body
        else:
            body = describe_segment(item, intent)
        if len(items) > 1:
            body = f"{'Image' if item.kind == 'image' else 'Segment'} {n}: {body}"
        paragraphs.append(body)
    return "\n\n".join(paragraphs)
