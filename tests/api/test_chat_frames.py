"""GET /v1/streams/{stream_id}/frames/{frame_index}: one frame as JPEG, same index rules as image_url."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import simplejpeg

from livesight.core.clock import FakeClock
from tests.support.frames import push_frames, text_jpeg
from tests.support.server import LiveServer, run_server


@pytest.fixture
def srv(tmp_path: Path, clock: FakeClock) -> Iterator[LiveServer]:
    with run_server(tmp_path, clock=clock, retention_seconds=5, builtin_models=[]) as s:
        yield s


def _stream(srv: LiveServer, key: str) -> str:
    with srv.client(key) as c:
        return str(c.post("/v1/streams").json()["id"])


def test_frames_by_index(srv: LiveServer) -> None:
    key = srv.new_key()
    sid = _stream(srv, key)
    push_frames(srv, sid, [i * 100 for i in range(100)], jpeg=lambda i: text_jpeg(f"F{i}", 640, 360))
    with srv.client(key) as c:
        first = c.get(f"/v1/streams/{sid}").json()["first_available_frame_index"]
        for path_index, expected in ((-1, 99), (0, first), (60, 60), (-2, 98)):
            r = c.get(f"/v1/streams/{sid}/frames/{path_index}")
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "image/jpeg"
            assert int(r.headers["x-frame-index"]) == expected
            assert int(r.headers["x-frame-timestamp-ms"]) == expected * 100
            assert r.content == text_jpeg(f"F{expected}", 640, 360)
        small = c.get(f"/v1beta/streams/{sid}/frames/-1", params={"max_side": 160})
        assert small.status_code == 200
        height, width = simplejpeg.decode_jpeg_header(small.content)[:2]
        assert (width, height) == (160, 90)
        cases = [
            (f"/v1/streams/{sid}/frames/3", 410, "evicted"),
            (f"/v1/streams/{sid}/frames/100", 409, "not been produced"),
            (f"/v1/streams/{sid}/frames/-500", 404, None),
            ("/v1/streams/7d9c1f7e-0b7a-4e1b-8d0e-1a2b3c4d5e6f/frames/-1", 404, "not found"),
        ]
        for path, status, words in cases:
            r = c.get(path)
            assert r.status_code == status, (path, r.text)
            assert set(r.json()) == {"detail"}
            assert isinstance(r.json()["detail"], str)
            if words:
                assert words in r.json()["detail"]
        assert c.get(f"/v1/streams/{sid}/frames/x").status_code == 422
        assert c.get(f"/v1/streams/{sid}/frames/-1", params={"max_side": 2}).status_code == 422


def test_frames_no_frame_yet_other_owner_and_auth(srv: LiveServer) -> None:
    key, other = srv.new_key(), srv.new_key("other")
    sid = _stream(srv, key)
    with srv.client(key) as c:
        r = c.get(f"/v1/streams/{sid}/frames/-1")
        assert r.status_code == 404
        assert "no frame has arrived" in r.json()["detail"]
    push_frames(srv, sid, [0])
    with srv.client(other) as c:
        r = c.get(f"/v1/streams/{sid}/frames/-1")
        assert r.status_code == 404
        assert r.json() == {"detail": f"stream {sid} not found"}
    with srv.client() as c:
        assert c.get(f"/v1/streams/{sid}/frames/-1").status_code == 401
    with srv.client(key) as c:
        assert c.delete(f"/v1/streams/{sid}").status_code == 200
        assert c.get(f"/v1/streams/{sid}/frames/-1").status_code == 404
