"""Pure SDP helpers for the embedded endpoint: munge aiortc's answers, inspect offered codecs.

Why munge (see docs/ingest.md): aiortc's answer drops the RID header extensions, after which
libwebrtc refuses every later simulcast offer and the publisher silently sends nothing. Copying the
offer's RID extmaps into the answer and accepting exactly one simulcast layer (the top one) makes a
simulcast publisher send that layer as a plain stream, which aiortc routes by payload type.

Everything here works on text only (no aiortc import), so it is table-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RID_EXTENSIONS = (
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
)
DECODABLE_VIDEO = ("VP8", "H264")
"""Video codecs aiortc 1.16 decodes (`aiortc.codecs.get_decoder`)."""

_NON_MEDIA_CODECS = {"RTX", "RED", "ULPFEC", "FLEXFEC-03"}
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/")
_RID_SEND = re.compile(r"^a=rid:(\S+) send\b(.*)$")
_DIM = re.compile(r"max-(?:width|height)=(\d+)")


@dataclass
class MediaSection:
    """One `m=` section: its lines (the `m=` line first)."""

    lines: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.lines[0][2:].split(" ", 1)[0]

    @property
    def port(self) -> int:
        parts = self.lines[0].split()
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    @property
    def payload_types(self) -> list[str]:
        return self.lines[0].split()[3:]

    @property
    def mid(self) -> str | None:
        for line in self.lines:
            if line.startswith("a=mid:"):
                return line[6:].strip()
        return None

    @property
    def direction(self) -> str:
        for line in self.lines:
            if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
                return line[2:]
        return "sendrecv"

    def attributes(self, name: str) -> list[str]:
        prefix = f"a={name}:"
        return [line[len(prefix) :] for line in self.lines if line.startswith(prefix)]

    def codec_names(self) -> list[str]:
        """Codec names in m-line preference order (upper case), without RTX/RED/FEC."""
        names = {}
        for line in self.lines:
            m = _RTPMAP.match(line)
            if m:
                names[m.group(1)] = m.group(2).upper()
        out: list[str] = []
        for pt in self.payload_types:
            name = names.get(pt)
            if name and name not in _NON_MEDIA_CODECS and name not in out:
                out.append(name)
        return out

    def sends_media(self) -> bool:
        return self.port != 0 and self.direction in ("sendrecv", "sendonly")


@dataclass
class SessionDescriptionText:
    head: list[str]
    media: list[MediaSection]
    newline: str = "\r\n"

    @classmethod
    def parse(cls, sdp: str) -> SessionDescriptionText:
        newline = "\r\n" if "\r\n" in sdp else "\n"
        head: list[str] = []
        media: list[MediaSection] = []
        for line in sdp.replace("\r\n", "\n").split("\n"):
            if not line:
                continue
            if line.startswith("m="):
                media.append(MediaSection([line]))
            elif media:
                media[-1].lines.append(line)
            else:
                head.append(line)
        return cls(head, media, newline)

    def render(self) -> str:
        lines = [*self.head]
        for section in self.media:
            lines.extend(section.lines)
        return self.newline.join(lines) + self.newline

    def by_mid(self) -> dict[str, MediaSection]:
        return {s.mid: s for s in self.media if s.mid is not None}


def top_simulcast_rid(section: MediaSection) -> str | None:
    """The rid of the highest simulcast layer a section sends, or None if it does not simulcast.

    LiveKit names layers q/h/f (f = full resolution). Otherwise the layer with the largest
    `max-width`/`max-height` restriction wins, else the last one listed (browsers list low to high).
    """
    if not section.attributes("simulcast"):
        return None
    rids: list[tuple[str, int]] = []
    for line in section.lines:
        m = _RID_SEND.match(line)
        if m:
            dims = [int(d) for d in _DIM.findall(m.group(2))]
            rids.append((m.group(1), max(dims) if dims else -1))
    if not rids:
        return None
    names = [r for r, _ in rids]
    if "f" in names:
        return "f"
    best = max(rids, key=lambda r: r[1])
    return best[0] if best[1] >= 0 else names[-1]


def munge_answer(offer_sdp: str, answer_sdp: str) -> str:
    """Make aiortc's answer safe for libwebrtc publishers (RID extmaps, accept one simulcast layer)."""
    offer = SessionDescriptionText.parse(offer_sdp)
    answer = SessionDescriptionText.parse(answer_sdp)
    offered = offer.by_mid()
    for section in answer.media:
        if section.kind not in ("audio", "video") or section.port == 0:
            continue
        source = offered.get(section.mid or "")
        if source is None:
            continue
        have = {line.split(" ", 1)[1].strip() for line in section.lines if line.startswith("a=extmap:") and " " in line}
        extra = [
            line
            for line in source.lines
            if line.startswith("a=extmap:") and line.split(" ", 1)[-1].strip() in RID_EXTENSIONS
        ]
        extra = [line for line in extra if line.split(" ", 1)[1].strip() not in have]
        _insert_after_last(section, "a=extmap:", extra)
        rid = top_simulcast_rid(source)
        if rid is not None and not section.attributes("simulcast"):
            section.lines.append(f"a=rid:{rid} recv")
            section.lines.append(f"a=simulcast:recv {rid}")
    return answer.render()


def _insert_after_last(section: MediaSection, prefix: str, new_lines: list[str]) -> None:
    if not new_lines:
        return
    at = max((i for i, line in enumerate(section.lines) if line.startswith(prefix)), default=len(section.lines) - 1)
    section.lines[at + 1 : at + 1] = new_lines


def undecodable_video(offer_sdp: str) -> list[str]:
    """For each video section the publisher sends on with no VP8/H264, the codecs it offered instead.

    Empty when every sending video section has a codec aiortc can decode.
    """
    problems: list[str] = []
    for section in SessionDescriptionText.parse(offer_sdp).media:
        if section.kind != "video" or not section.sends_media():
            continue
        names = section.codec_names()
        if not any(n in DECODABLE_VIDEO for n in names):
            problems.append("/".join(names) or "no codec")
    return problems


def video_codec(answer_sdp: str) -> str | None:
    """The codec of the first active video section with media (the one the publisher will send)."""
    for section in SessionDescriptionText.parse(answer_sdp).media:
        if section.kind == "video" and section.port != 0 and section.direction in ("recvonly", "sendrecv"):
            names = section.codec_names()
            if names:
                return names[0]
    return None
