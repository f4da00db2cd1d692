"""ovs:// URI parsing (CONTRACT §5): table-driven cases and a property test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livesight.core.errors import QueryParamInvalid, StreamUrlInvalid
from livesight.resolve.uri import Anchor, FrameRef, SegmentRef, parse_frame_uri, parse_segment_uri

SID = "0b7e3c1e-8f5a-4d3b-9a61-2f0c8d7e6a51"
BASE = f"ovs://streams/{SID}"


@pytest.mark.parametrize(
    ("query", "anchor", "tolerance", "direction"),
    [
        ("frame_index=-1", Anchor("frame_index", -1, "frame_index"), 100, "nearest"),
        ("frame_index=0", Anchor("frame_index", 0, "frame_index"), 100, "nearest"),
        ("frame_index=42", Anchor("frame_index", 42, "frame_index"), 100, "nearest"),
        ("timestamp_ms=1500&tolerance_ms=40", Anchor("timestamp_ms", 1500, "timestamp_ms"), 40, "nearest"),
        ("offset_ms=-5000&direction=backward", Anchor("offset_ms", -5000, "offset_ms"), 100, "backward"),
        ("offset_ms=250&direction=forward", Anchor("offset_ms", 250, "offset_ms"), 100, "forward"),
        ("frame_index=%2D3", Anchor("frame_index", -3, "frame_index"), 100, "nearest"),
        ("frame_index=3&direction=forward&tolerance_ms=5", Anchor("frame_index", 3, "frame_index"), 5, "forward"),
    ],
)
def test_image_anchors(query: str, anchor: Anchor, tolerance: int, direction: str) -> None:
    ref = parse_frame_uri(f"{BASE}?{query}")
    assert ref == FrameRef(f"{BASE}?{query}", SID, anchor, tolerance, direction)  # type: ignore[arg-type]


def test_stream_id_is_canonicalised() -> None:
    assert parse_frame_uri(f"OVS://streams/{SID.upper()}?frame_index=1").stream_id == SID


@pytest.mark.parametrize(
    ("query", "start", "end", "fps"),
    [
        ("start_offset_ms=-5000", Anchor("offset_ms", -5000, "start_offset_ms"), None, 1.0),
        (
            "start_frame_index=10&end_frame_index=20&max_fps=2.5",
            Anchor("frame_index", 10, "start_frame_index"),
            Anchor("frame_index", 20, "end_frame_index"),
            2.5,
        ),
        (
            "start_timestamp_ms=0&end_offset_ms=-1000",
            Anchor("timestamp_ms", 0, "start_timestamp_ms"),
            Anchor("offset_ms", -1000, "end_offset_ms"),
            1.0,
        ),
        ("start_frame_index=-30&max_fps=.5", Anchor("frame_index", -30, "start_frame_index"), None, 0.5),
    ],
)
def test_video_anchors(query: str, start: Anchor, end: Anchor | None, fps: float) -> None:
    assert parse_segment_uri(f"{BASE}?{query}") == SegmentRef(f"{BASE}?{query}", SID, start, end, fps)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/x.jpg",
        "ovs://stream/" + SID + "?frame_index=1",
        "ovs://streams/not-a-uuid?frame_index=1",
        "ovs://streams/?frame_index=1",
        "ovs://streams",
        f"ovs://streams/{SID}/frames?frame_index=1",
        f"ovs://streams/{SID}?frame_index=1#frag",
        f"ovs:/streams/{SID}?frame_index=1",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(StreamUrlInvalid) as err:
        parse_frame_uri(url)
    assert url[:40] in err.value.message
    assert err.value.status == 400
    assert err.value.code == "stream_url_invalid"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("", "frame_index"),  # missing anchor
        ("frame_index=1&frame_index=2", "frame_index"),  # duplicate
        ("frame_index=1&offset_ms=3", "offset_ms"),  # conflicting
        ("frame_index=x", "frame_index"),  # malformed
        ("frame_index=1.5", "frame_index"),
        ("frame_index=", "frame_index"),
        ("frame_index", "frame_index"),
        ("frame_index=1&color=red", "color"),  # unknown
        ("start_offset_ms=-5000", "start_offset_ms"),  # a video param in an image_url
        ("timestamp_ms=-1", "timestamp_ms"),
        ("timestamp_ms=10&tolerance_ms=0", "tolerance_ms"),
        ("timestamp_ms=10&tolerance_ms=-5", "tolerance_ms"),
        ("timestamp_ms=10&direction=sideways", "direction"),
        ("frame_index=99999999999999999999", "frame_index"),
    ],
)
def test_bad_image_params(query: str, param: str) -> None:
    url = f"{BASE}?{query}"
    with pytest.raises(QueryParamInvalid) as err:
        parse_frame_uri(url)
    assert url in err.value.message
    assert param in err.value.message
    assert err.value.status == 400
    assert err.value.code == "query_param_invalid"


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("", "start_"),
        ("end_offset_ms=-1000", "start_"),
        ("start_offset_ms=-1&start_frame_index=3", "start_frame_index"),
        ("start_offset_ms=-1&end_offset_ms=0&end_frame_index=3", "end_frame_index"),
        ("start_offset_ms=-1&start_offset_ms=-2", "start_offset_ms"),
        ("start_offset_ms=-1&max_fps=0", "max_fps"),
        ("start_offset_ms=-1&max_fps=-2", "max_fps"),
        ("start_offset_ms=-1&max_fps=nan", "max_fps"),
        ("start_offset_ms=-1&max_fps=inf", "max_fps"),
        ("start_offset_ms=-1&max_fps=5000", "max_fps"),
        ("start_offset_ms=-1&frame_index=-1", "frame_index"),
        ("start_offset_ms=-1&tolerance_ms=5", "tolerance_ms"),
        ("start_timestamp_ms=-4", "start_timestamp_ms"),
        ("start_offset_ms=abc", "start_offset_ms"),
        ("start_offset_ms=-1&fps=2", "fps"),
    ],
)
def test_bad_video_params(query: str, param: str) -> None:
    url = f"{BASE}?{query}"
    with pytest.raises(QueryParamInvalid) as err:
        parse_segment_uri(url)
    assert url in err.value.message
    assert param in err.value.message


_PARAM_NAMES = st.sampled_from(
    [
        "frame_index",
        "timestamp_ms",
        "offset_ms",
        "tolerance_ms",
        "direction",
        "start_frame_index",
        "start_timestamp_ms",
        "start_offset_ms",
        "end_frame_index",
        "end_timestamp_ms",
        "end_offset_ms",
        "max_fps",
        "x",
    ]
)
_VALUES = st.one_of(
    st.integers(-(10**16), 10**16).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["nearest", "backward", "forward", "", "%", "%2", "1e3", "+4", "-0"]),
    st.text(max_size=8),
)
_QUERIES = st.lists(st.tuples(_PARAM_NAMES, _VALUES), max_size=5).map(lambda ps: "&".join(f"{k}={v}" for k, v in ps))
_PREFIXES = st.sampled_from([BASE, f"ovs://streams/{SID}/", "ovs://streams/x", "ovs://", "OVS://STREAMS/" + SID])


@settings(max_examples=400, deadline=None)
@given(prefix=_PREFIXES, query=_QUERIES, raw=st.text(max_size=60))
def test_any_input_gives_a_reference_or_a_typed_error(prefix: str, query: str, raw: str) -> None:
    for url in (f"{prefix}?{query}", raw, f"{prefix}?{raw}"):
        for parse in (parse_frame_uri, parse_segment_uri):
            try:
                ref = parse(url)
            except (StreamUrlInvalid, QueryParamInvalid) as exc:
                assert exc.message  # noqa: PT017
            else:
                assert ref.stream_id == SID
                if isinstance(ref, SegmentRef):
                    assert ref.max_fps > 0
