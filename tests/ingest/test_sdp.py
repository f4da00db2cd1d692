"""SDP munging and codec inspection (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livesight.ingest import sdp

RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
RRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"


def offer(video_codecs: list[tuple[int, str]], *, simulcast: str | None = None, direction: str = "sendonly") -> str:
    pts = " ".join(str(pt) for pt, _ in video_codecs)
    lines = [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:0",
        f"m=video 9 UDP/TLS/RTP/SAVPF {pts}",
        "a=mid:1",
        f"a={direction}",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        f"a=extmap:10 {RID}",
        f"a=extmap:11 {RRID}",
    ]
    lines += [f"a=rtpmap:{pt} {name}/90000" for pt, name in video_codecs]
    if simulcast:
        rids = simulcast.split(";")
        lines += [f"a=rid:{r} send" for r in rids]
        lines.append(f"a=simulcast:send {simulcast}")
    return "\r\n".join(lines) + "\r\n"


def aiortc_like_answer(codec: tuple[int, str] = (96, "VP8")) -> str:
    lines = [
        "v=0",
        "o=- 3 4 IN IP4 10.77.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:0",
        f"m=video 9 UDP/TLS/RTP/SAVPF {codec[0]}",
        "a=mid:1",
        "a=recvonly",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        f"a=rtpmap:{codec[0]} {codec[1]}/90000",
    ]
    return "\r\n".join(lines) + "\r\n"


def test_munge_copies_rid_extmaps_and_accepts_the_top_layer() -> None:
    out = sdp.munge_answer(offer([(96, "VP8")], simulcast="q;h;f"), aiortc_like_answer())
    video = sdp.SessionDescriptionText.parse(out).by_mid()["1"]
    assert f"a=extmap:10 {RID}" in video.lines
    assert f"a=extmap:11 {RRID}" in video.lines
    assert "a=rid:f recv" in video.lines
    assert "a=simulcast:recv f" in video.lines
    assert out.endswith("\r\n")
    assert "\r\n\r\n" not in out


def test_munge_without_simulcast_adds_no_rid_lines() -> None:
    out = sdp.munge_answer(offer([(96, "VP8")]), aiortc_like_answer())
    assert "a=rid:" not in out
    assert "a=simulcast" not in out
    assert f"a=extmap:10 {RID}" in out


def test_munge_is_idempotent() -> None:
    once = sdp.munge_answer(offer([(96, "VP8")], simulcast="f;h;q"), aiortc_like_answer())
    assert sdp.munge_answer(offer([(96, "VP8")], simulcast="f;h;q"), once) == once


@pytest.mark.parametrize(
    ("rid_lines", "expected"),
    [
        (["a=rid:q send", "a=rid:h send", "a=rid:f send"], "f"),
        (["a=rid:lo send max-width=320", "a=rid:hi send max-width=1280", "a=rid:mid send max-width=640"], "hi"),
        (["a=rid:a send", "a=rid:b send"], "b"),
        ([], None),
    ],
)
def test_top_simulcast_rid(rid_lines: list[str], expected: str | None) -> None:
    lines = ["m=video 9 UDP/TLS/RTP/SAVPF 96", *rid_lines]
    if rid_lines:
        lines.append("a=simulcast:send " + ";".join(line.split()[0][6:] for line in rid_lines))
    assert sdp.top_simulcast_rid(sdp.MediaSection(lines)) == expected


@pytest.mark.parametrize(
    ("codecs", "direction", "problems"),
    [
        ([(96, "VP8"), (97, "rtx")], "sendonly", []),
        ([(102, "H264")], "sendonly", []),
        ([(98, "VP9"), (99, "rtx")], "sendonly", ["VP9"]),
        ([(45, "AV1"), (98, "VP9")], "sendonly", ["AV1/VP9"]),
        ([(98, "VP9")], "recvonly", []),  # not sending: nothing to decode
        ([(98, "VP9"), (96, "VP8")], "sendonly", []),  # aiortc will pick VP8
    ],
)
def test_undecodable_video(codecs: list[tuple[int, str]], direction: str, problems: list[str]) -> None:
    assert sdp.undecodable_video(offer(codecs, direction=direction)) == problems


@pytest.mark.parametrize(("codec", "expected"), [((96, "VP8"), "VP8"), ((102, "H264"), "H264")])
def test_video_codec_of_the_answer(codec: tuple[int, str], expected: str) -> None:
    assert sdp.video_codec(aiortc_like_answer(codec)) == expected


def test_render_round_trips() -> None:
    text = offer([(96, "VP8")], simulcast="q;h;f")
    assert sdp.SessionDescriptionText.parse(text).render() == text


@given(st.lists(st.sampled_from(["q", "h", "f", "x1", "x2"]), min_size=1, max_size=4, unique=True))
def test_munge_always_accepts_exactly_one_offered_layer(rids: list[str]) -> None:
    out = sdp.munge_answer(offer([(96, "VP8")], simulcast=";".join(rids)), aiortc_like_answer())
    video = sdp.SessionDescriptionText.parse(out).by_mid()["1"]
    accepted = video.attributes("simulcast")
    assert len(accepted) == 1
    layer = accepted[0].removeprefix("recv ")
    assert layer in rids
    assert video.lines.count(f"a=rid:{layer} recv") == 1
