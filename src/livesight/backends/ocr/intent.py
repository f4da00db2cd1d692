"""What a question asks about, by keywords: which facts to lead with, and whether it asks for more than
this model can do. Keyword matching, not understanding: it only reorders true facts and adds the
"cannot describe scenes" sentence, so a wrong guess costs the reader a few words, never a false claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Topic(StrEnum):
    TIME = "time"
    TEXT = "text"
    COLOUR = "colour"
    BRIGHTNESS = "brightness"
    MOTION = "motion"
    SIZE = "size"


_WORDS: dict[Topic, str] = {
    Topic.TIME: r"time|times|clock|clocks|o'?clock|timestamp|hour|hours|minute|minutes|date|day of",
    Topic.TEXT: (
        r"text|texts|read|reads|reading|say|says|said|saying|written|write|writing|sign|signs|signage|word|words|"
        r"letter|letters|label|labels|plate|plates|number|numbers|digit|digits|code|title|banner|ocr|spell|"
        r"message|caption text|poster|display|displayed|screen"
    ),
    Topic.COLOUR: (
        r"colou?r|colou?rs|colou?red|hue|red|orange|yellow|green|cyan|blue|purple|violet|magenta|pink|brown|"
        r"black|white|grey|gray"
    ),
    Topic.BRIGHTNESS: r"bright|brightness|dark|darker|darkness|dim|light|lights|lighting|lit|exposure|night|daylight",
    Topic.MOTION: (
        r"move|moves|moved|moving|movement|motion|change|changes|changed|changing|static|activity|"
        r"difference|differences|differ|stable|frozen|motionless|happen|happens|happened|happening"
    ),
    Topic.SIZE: r"size|resolution|dimensions?|width|height|pixels?|how big|how large|aspect",
}
_TOPIC_RE = {topic: re.compile(rf"\b(?:{words})\b") for topic, words in _WORDS.items()}

# Asks for understanding of the scene: objects, people, actions, counts, descriptions.
_SCENE_RE = re.compile(
    r"\b(?:describe|description|caption|scene|doing|happen|happens|happened|happening|going on|"
    r"person|persons|people|man|men|woman|women|child|children|kid|kids|who|someone|anyone|somebody|"
    r"face|faces|wearing|holding|carrying|animal|animals|dog|dogs|cat|cats|bird|car|cars|vehicle|vehicles|"
    r"truck|bike|object|objects|thing|things|how many|count|identify|recogni[sz]e|emotion|mood|why|"
    r"look like|looks like|picture of|image of|"
    r"what is (?:this|that|it|he|she|they)|what's (?:this|that|it|he|she)|what are (?:they|these|those)|"
    r"safe|dangerous)\b"
)


@dataclass(frozen=True, slots=True)
class Intent:
    topics: tuple[Topic, ...]  # in order of first mention
    beyond: bool  # asks for something this model cannot do (scenes, objects, people, actions)

    @property
    def lead(self) -> Topic | None:
        return self.topics[0] if self.topics else None


def classify(question: str) -> Intent:
    q = " ".join(question.lower().split())
    found: list[tuple[int, Topic]] = []
    for topic, pattern in _TOPIC_RE.items():
        match = pattern.search(q)
        if match:
            found.append((match.start(), topic))
    found.sort(key=lambda pair: (pair[0], list(Topic).index(pair[1])))
    topics = tuple(topic for _, topic in found)
    beyond = bool(q) and (bool(_SCENE_RE.search(q)) or not topics)
    return Intent(topics=topics, beyond=beyond)
