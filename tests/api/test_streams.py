"""Stream lifecycle over real HTTP (CONTRACT §3)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from livekit import api as lkapi

from livesight.core.clock import FakeClock
from tests.support.polling import wait_for
from tests.support.server import LiveServer


def create(c: httpx.Client) -> dict[str, Any]:
    r = c.post("/v1/streams")
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_create_returns_contract_fields_and_a_publish_only_token(server: LiveServer, clock: FakeClock) -> None:
    with server.client(server.new_key()) as c:
        body = create(c)
    assert set(body) == {"id", "state", "publish", "expires_at_ms", "ttl_seconds"}
    assert uuid.UUID(body["id"]).version == 4
    assert body["state"] == "active"
    assert body["ttl_seconds"] == 300
    assert body["expires_at_ms"] == clock.now_ms() + 300_000
    publish = body["publish"]
    assert publish["type"] == "livekit"
    assert publish["url"] == f"ws://127.0.0.1:{server.port}"
    tokens = server.components.tokens
    claims = lkapi.TokenVerifier(tokens.api_key, tokens._secret).verify(publish["token"])
    assert claims.video.room == body["id"]
    assert claims.video.room_join and claims.video.can_publish
    assert claims.video.can_subscribe is False and claims.video.can_publish_data is False
    assert claims.identity
    # a short expiry (default 10 min), not livekit-api's 6 h default
    import jwt

    raw = jwt.decode(publish["token"], options={"verify_signature": False})
    assert 590 <= raw["exp"] - time.time() <= 610


@pytest.mark.parametrize("body", [None, b"", b"{}", b'{"unknown": 1}'])
def test_create_accepts_empty_bodies(server: LiveServer, body: bytes | None) -> None:
    headers = {"content-type": "application/json"} if body else {}
    with server.client(server.new_key()) as c:
        r = c.post("/v1/streams", content=body, headers=headers)
    assert r.status_code == 201, r.text


def test_get_before_any_frame(server: LiveServer, clock: FakeClock) -> None:
    with server.client(server.new_key()) as c:
        sid = create(c)["id"]
        body = c.get(f"/v1/streams/{sid}").json()
    assert body["state"] == "active"
    assert body["stream_time_ms"] == 0
    assert body["last_frame_index"] is None and body["first_available_frame_index"] is None
    assert body["retained_frame_count"] == 0 and body["evicted_frame_count"] == 0
    assert body["created_at_ms"] == clock.now_ms()
    assert body["end_reason"] is None and body["ended_at_ms"] is None
    assert body["audio"] is False


def test_keepalive_renews_lease_and_token(server: LiveServer, clock: FakeClock) -> None:
    with server.client(server.new_key()) as c:
        created = create(c)
        sid = created["id"]
        clock.advance(200_000)
        r = c.post(f"/v1/streams/{sid}/keepalive")
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"id", "expires_at_ms", "ttl_seconds", "stream_time_ms", "publish"}
        assert body["expires_at_ms"] == clock.now_ms() + 300_000
        assert body["publish"]["token"]
        assert c.get(f"/v1/streams/{sid}").json()["expires_at_ms"] == body["expires_at_ms"]
        # still alive after the original deadline thanks to the keepalive
        clock.advance(150_000)
        assert server.call(server.components.registry.reap) == []  # a reaper tick at this time ends nothing
        assert c.get(f"/v1/streams/{sid}").json()["state"] == "active"


def test_lease_expires_on_its_own(server: LiveServer, clock: FakeClock) -> None:
    with server.client(server.new_key()) as c:
        sid = create(c)["id"]
        clock.advance(299_999)
        assert server.call(server.components.registry.reap) == []  # one ms early: a reaper tick ends nothing
        assert c.get(f"/v1/streams/{sid}").json()["state"] == "active"
        clock.advance(1)
        # the background reaper (every reaper_interval_ms = 200 ms of real time) ends it; the wait is a
        # generous correctness bound, not a timing claim
        ended = wait_for(
            lambda: (b := c.get(f"/v1/streams/{sid}").json())["state"] == "ended" and b, timeout=5, what="expiry"
        )
        assert ended["end_reason"] == "expired"
        assert ended["ended_at_ms"] == clock.now_ms()
        assert ended["expires_at_ms"] is None
        # an expired stream cannot be revived
        r = c.post(f"/v1/streams/{sid}/keepalive")
        assert r.status_code == 404 and "ended" in r.json()["detail"]
        # delete inside the tombstone window is idempotent
        r = c.delete(f"/v1/streams/{sid}")
        assert r.status_code == 200 and r.json() == {"id": sid, "deleted": True}
        assert c.get(f"/v1/streams/{sid}").json()["end_reason"] == "expired"


def test_delete_ends_then_tombstone_then_gone(server: LiveServer, clock: FakeClock) -> None:
    with server.client(server.new_key()) as c:
        sid = create(c)["id"]
        r = c.delete(f"/v1/streams/{sid}")
        assert r.status_code == 200 and r.json() == {"id": sid, "deleted": True}
        body = c.get(f"/v1/streams/{sid}").json()
        assert body["state"] == "ended" and body["end_reason"] == "deleted"
        assert c.delete(f"/v1/streams/{sid}").status_code == 200
        assert c.post(f"/v1/streams/{sid}/keepalive").status_code == 404
        clock.advance(3_600_000)
        wait_for(lambda: c.get(f"/v1/streams/{sid}").status_code == 404, what="tombstone removal")
        r = c.delete(f"/v1/streams/{sid}")
        assert r.status_code == 404 and r.json() == {"detail": f"stream {sid} not found"}


def test_v1beta_serves_the_same_streams(server: LiveServer) -> None:
    with server.client(server.new_key()) as c:
        sid = c.post("/v1beta/streams").json()["id"]
        assert c.get(f"/v1/streams/{sid}").status_code == 200
        assert c.post(f"/v1beta/streams/{sid}/keepalive").status_code == 200
        assert c.delete(f"/v1beta/streams/{sid}").status_code == 200


def test_other_owners_streams_are_invisible(server: LiveServer) -> None:
    alice, bob = server.client(server.new_key("alice")), server.client(server.new_key("bob"))
    with alice, bob:
        sid = create(alice)["id"]
        unknown = str(uuid.uuid4())
        for method, path in [("GET", ""), ("POST", "/keepalive"), ("DELETE", "")]:
            theirs = bob.request(method, f"/v1/streams/{sid}{path}")
            missing = bob.request(method, f"/v1/streams/{unknown}{path}")
            assert theirs.status_code == missing.status_code == 404
            assert theirs.json() == {"detail": f"stream {sid} not found"}
            assert missing.json() == {"detail": f"stream {unknown} not found"}
        # bob's attempts changed nothing for alice
        body = alice.get(f"/v1/streams/{sid}").json()
        assert body["state"] == "active"


def test_per_key_stream_limit(tmp_path: Any) -> None:
    from tests.support.server import run_server

    with run_server(tmp_path, max_active_streams_per_key=2) as srv:
        a, b = srv.client(srv.new_key()), srv.client(srv.new_key())
        with a, b:
            first = create(a)["id"]
            create(a)
            r = a.post("/v1/streams")
            assert r.status_code == 429
            assert "2 active streams" in r.json()["detail"]
            assert set(r.json()) == {"detail"}
            create(b)  # another key is not affected
            a.delete(f"/v1/streams/{first}")
            create(a)


def test_concurrent_deletes_are_idempotent_and_isolated(server: LiveServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = server.new_key()
    with server.client(key) as c:
        victim, bystander = create(c)["id"], create(c)["id"]

    def delete(_: int) -> int:
        with server.client(key) as cc:
            return cc.delete(f"/v1/streams/{victim}").status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(delete, range(16)))
    assert codes == [200] * 16
    with server.client(key) as c:
        assert c.get(f"/v1/streams/{victim}").json()["end_reason"] == "deleted"
        assert c.get(f"/v1/streams/{bystander}").json()["state"] == "active"


# --- GET /streams (CONTRACT §9) -------------------------------------------------------------------


def list_all(c: httpx.Client, limit: int, prefix: str = "/v1") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        r = c.get(f"{prefix}/streams", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"object", "data", "has_more", "next_after"} and page["object"] == "list"
        assert len(page["data"]) <= limit
        items += page["data"]
        if not page["has_more"]:
            assert page["next_after"] is None
            return items
        after = page["next_after"]


def test_list_is_owner_scoped_active_first_newest_first_each_item_the_get_object(
    server: LiveServer, clock: FakeClock
) -> None:
    alice, bob = server.client(server.new_key("alice")), server.client(server.new_key("bob"))
    with alice, bob:
        assert alice.get("/v1/streams").json() == {"object": "list", "data": [], "has_more": False, "next_after": None}
        ids = []
        for _ in range(5):
            clock.advance(10)
            ids.append(create(alice)["id"])
        theirs = create(bob)["id"]
        clock.advance(10)
        alice.delete(f"/v1/streams/{ids[1]}")
        clock.advance(10)
        alice.delete(f"/v1/streams/{ids[3]}")
        listed = alice.get("/v1/streams").json()["data"]
        assert [s["id"] for s in listed] == [ids[4], ids[2], ids[0], ids[3], ids[1]]
        assert [s["state"] for s in listed] == ["active"] * 3 + ["ended"] * 2
        for item in listed:
            assert item == alice.get(f"/v1/streams/{item['id']}").json()
        assert [s["id"] for s in bob.get("/v1beta/streams").json()["data"]] == [theirs]
        assert theirs not in {s["id"] for s in listed}


def test_list_pagination_is_stable_while_streams_end(server: LiveServer, clock: FakeClock) -> None:
    with server.client(server.new_key()) as c:
        ids = []
        for _ in range(7):
            clock.advance(10)
            ids.append(create(c)["id"])
        assert [s["id"] for s in list_all(c, 3)] == ids[::-1]
        assert [s["id"] for s in list_all(c, 1, "/v1beta")] == ids[::-1]
        first = c.get("/v1/streams", params={"limit": 2}).json()
        assert [s["id"] for s in first["data"]] == [ids[6], ids[5]] and first["has_more"]
        c.delete(f"/v1/streams/{ids[5]}")  # the page boundary ends: nothing is skipped
        rest = c.get("/v1/streams", params={"limit": 200, "after": first["next_after"]}).json()
        assert [s["id"] for s in rest["data"]] == [ids[4], ids[3], ids[2], ids[1], ids[0], ids[5]]
        assert rest["has_more"] is False


@pytest.mark.parametrize(
    ("params", "status"),
    [({"limit": 0}, 422), ({"limit": 201}, 422), ({"limit": "x"}, 422), ({"after": "not a cursor!"}, 400)],
)
def test_list_rejects_bad_parameters(server: LiveServer, params: dict[str, Any], status: int) -> None:
    with server.client(server.new_key()) as c:
        r = c.get("/v1/streams", params=params)
    assert r.status_code == status, r.text
    if status == 400:
        assert "after" in r.json()["detail"]


def test_list_default_limit_is_50_and_needs_a_key(tmp_path: Any, clock: FakeClock) -> None:
    from tests.support.server import run_server

    with run_server(tmp_path, clock=clock, max_active_streams_per_key=60) as srv:
        assert srv.client().get("/v1/streams").status_code == 401
        with srv.client(srv.new_key()) as c:
            for _ in range(51):
                clock.advance(1)
                create(c)
            page = c.get("/v1/streams").json()
            assert len(page["data"]) == 50 and page["has_more"]
            assert len(c.get("/v1/streams", params={"after": page["next_after"]}).json()["data"]) == 1


def test_tombstones_are_capped_by_count(tmp_path: Any, clock: FakeClock) -> None:
    from tests.support.server import run_server

    with run_server(tmp_path, clock=clock, max_tombstones=2) as srv, srv.client(srv.new_key()) as c:
        ids = [create(c)["id"] for _ in range(4)]
        for sid in ids:
            clock.advance(10)
            c.delete(f"/v1/streams/{sid}")
        assert [c.get(f"/v1/streams/{sid}").status_code for sid in ids] == [404, 404, 200, 200]
        assert [s["id"] for s in c.get("/v1/streams").json()["data"]] == [ids[3], ids[2]]


def test_a_clean_restart_keeps_streams_unless_persistence_is_off(tmp_path: Any, clock: FakeClock) -> None:
    from tests.support.server import run_server

    for persist in (True, False):
        data = tmp_path / str(persist)
        data.mkdir()
        with run_server(data, clock=clock, persist_streams=persist) as first, first.client(first.new_key()) as c:
            key = c.headers["Authorization"]
            sid = create(c)["id"]
            lease = c.post(f"/v1/streams/{sid}/keepalive").json()["expires_at_ms"]
        with run_server(data, clock=clock, persist_streams=persist) as second:
            r = second.client().get(f"/v1/streams/{sid}", headers={"Authorization": key})
            if persist:
                assert r.status_code == 200 and r.json()["state"] == "active"
                assert r.json()["expires_at_ms"] == lease
            else:
                assert r.status_code == 404
