"""Property-based request validation over real HTTP: any body or id gets a documented answer, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.server import LiveServer, run_server

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"source": json_values}),
    st.fixed_dictionaries(
        {
            "source": st.fixed_dictionaries(
                {"type": st.sampled_from(["rtsp", "hls", "file", "x", 1]), "url": json_values}
            )
        }
    ),
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, httpx.Client]]:
    path: Path = tmp_path_factory.mktemp("props")
    with run_server(path, max_active_streams_per_key=10_000) as live, live.client(live.new_key()) as client:
        yield live, client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_any_create_body_is_201_or_a_validation_envelope(srv: tuple[LiveServer, httpx.Client], body: object) -> None:
    _, c = srv
    r = c.post("/v1/streams", content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code in (201, 400, 422), r.text
    out = r.json()
    if r.status_code == 201:
        assert out["state"] == "active"
        assert c.delete(f"/v1/streams/{out['id']}").status_code == 200
    elif r.status_code == 422:
        assert out["error"] == "validation_error" and out["details"]
    else:
        assert set(out) == {"detail"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream_id=st.text(min_size=1, max_size=80).filter(lambda s: s not in (".", "..")))
def test_any_stream_id_is_a_404_detail(srv: tuple[LiveServer, httpx.Client], stream_id: str) -> None:
    _, c = srv
    from urllib.parse import quote

    r = c.get("/v1/streams/" + quote(stream_id, safe=""))
    assert r.status_code == 404, (stream_id, r.text)
    assert set(r.json()) == {"detail"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_any_raw_bytes_are_rejected_cleanly(srv: tuple[LiveServer, httpx.Client], raw: bytes) -> None:
    _, c = srv
    r = c.post("/v1/streams", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (201, 422), r.text
    if r.status_code == 201:
        c.delete(f"/v1/streams/{r.json()['id']}")
