"""`livesight/ocr` end to end through the openai SDK: frames that show known text, put into the buffer;
the answer quotes what the frames the server resolved actually show."""

from __future__ import annotations

import re
from collections.abc import Iterator

import openai
import pytest

from livesight.core.clock import FakeClock
from tests.support.frames import push_frames
from tests.support.server import LiveServer, run_server

pytest.importorskip("rapidocr")
pytest.importorskip("livesight.backends.ocr")


@pytest.fixture(scope="module")
def ocr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, openai.OpenAI, str]]:
    with run_server(tmp_path_factory.mktemp("ocr"), clock=FakeClock()) as srv:
        key = srv.new_key()
        with srv.client(key) as c:
            sid = c.post("/v1/streams").json()["id"]
        push_frames(srv, sid, [i * 500 for i in range(20)], label="GATE")  # frame i shows "GATE i", t = i*0.5 s
        client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key=key, max_retries=0, timeout=120)
        yield srv, client, sid


def _ask(client: openai.OpenAI, part: dict[str, object], question: str) -> tuple[str, list[int]]:
    reply = client.chat.completions.create(
        model="livesight/ocr",
        messages=[{"role": "user", "content": [part, {"type": "text", "text": question}]}],  # type: ignore[list-item, misc]
    )
    frames = (reply.model_extra or {})["overshoot"]["frames"]
    return reply.choices[0].message.content or "", frames[0]["frame_indexes"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("query", "expected"), [("frame_index=-1", 19), ("frame_index=7", 7), ("timestamp_ms=6000", 12)]
)
def test_ocr_reads_the_resolved_frame(ocr: tuple[LiveServer, openai.OpenAI, str], query: str, expected: int) -> None:
    _, client, sid = ocr
    part = {"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?{query}"}}
    text, indexes = _ask(client, part, "What text is visible?")
    assert indexes == [expected]
    assert re.search(rf"GATE {expected}\b", text), text


@pytest.mark.timeout(300)
def test_ocr_segment_quotes_the_sampled_frames(ocr: tuple[LiveServer, openai.OpenAI, str]) -> None:
    _, client, sid = ocr
    part = {"type": "video_url", "video_url": {"url": f"ovs://streams/{sid}?start_offset_ms=-3000&max_fps=1"}}
    text, indexes = _ask(client, part, "What text appears?")
    assert indexes == [13, 15, 17, 19]
    assert re.search(r"GATE 19\b", text), text


@pytest.mark.timeout(300)
def test_ocr_streams_and_is_listed_ready(ocr: tuple[LiveServer, openai.OpenAI, str]) -> None:
    srv, client, sid = ocr
    stream = client.chat.completions.create(
        model="livesight/ocr",
        messages=[
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": f"ovs://streams/{sid}?frame_index=3"}}],
            }
        ],  # type: ignore[list-item, misc]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert re.search(r"GATE 3\b", text), text
    assert chunks[-1].usage is not None
    assert (chunks[-1].model_extra or {})["overshoot"]["frames"][0]["frame_indexes"] == [3]
    with srv.client() as c:
        card = next(m for m in c.get("/v1/models").json()["data"] if m["id"] == "livesight/ocr")
    assert card["status"] == "ready"
