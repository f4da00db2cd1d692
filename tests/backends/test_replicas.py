"""A model served by several upstream replicas: a stream's requests stick to one (rendezvous hashing on the
stream id), a replica that fails is marked down and its streams move, and come back when it recovers.

Real HTTP fake vLLMs on loopback (one may be stopped and started again on its port), the real server, the
openai SDK.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import ValidationError

from livesight.backends.replicas import failure_kind, hrw_score, rank, stream_key, text_key
from livesight.core.clock import FakeClock
from livesight.core.errors import UpstreamHTTPError, UpstreamRequestFailed, UpstreamTimeout
from livesight.core.media import MediaFrame, MediaItem
from livesight.settings import ModelConfig, ReplicaConfig, load_settings
from tests.support.chat import chat_request
from tests.support.fake_upstream import MODEL, FakeUpstream, run_fake_upstream
from tests.support.frames import push_frames
from tests.support.polling import wait_for
from tests.support.server import LiveServer, run_server

NAMES = ["gpu-a", "gpu-b", "gpu-c"]
DOWN_S = 10
SECRET = "sk-replica-secret-not-to-be-shown"


# --- the assignment is a pure function -----------------------------------------------------------------


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"stream-{i}")) for i in range(n)]


def test_rendezvous_spreads_streams_over_every_replica_as_a_pure_function() -> None:
    ids = _ids(300)
    owners = {sid: rank(sid, NAMES)[0] for sid in ids}
    counts = {name: sum(1 for o in owners.values() if o == name) for name in NAMES}
    assert all(c > 0 for c in counts.values()), counts
    assert owners == {sid: rank(sid, list(reversed(NAMES)))[0] for sid in ids}, "the listing order does not matter"
    assert owners == {sid: rank(sid, NAMES)[0] for sid in ids}, "the same answer every time"
    documented = hashlib.blake2b(f"gpu-a\x00{ids[0]}".encode(), digest_size=8).digest()
    assert hrw_score("gpu-a", ids[0]) == int.from_bytes(documented, "big"), "any node computes the same assignment"


def test_losing_a_replica_moves_only_its_own_streams_to_their_second_choice() -> None:
    ids = _ids(300)
    before = {sid: rank(sid, NAMES) for sid in ids}
    after = {sid: rank(sid, ["gpu-a", "gpu-c"])[0] for sid in ids}
    for sid in ids:
        if before[sid][0] != "gpu-b":
            assert after[sid] == before[sid][0], "streams of the replicas still up stay where they were"
        else:
            assert after[sid] == before[sid][1], "a lost replica's streams go to their next replica"


def test_a_request_is_routed_by_the_first_stream_it_references() -> None:
    frame = MediaFrame(b"jpeg", 1, 1, index=3, timestamp_ms=0)
    a = MediaItem("image", "ovs://a", (frame,), stream_id="stream-a")
    b = MediaItem("image", "ovs://b", (frame,), stream_id="stream-b")
    both = chat_request([{"role": "user", "content": [{"type": "text", "text": "compare"}, b, a]}])
    assert stream_key(both) == "stream-b"
    plain = chat_request([{"role": "user", "content": "hello"}])
    assert stream_key(plain) is None
    assert text_key(plain) == text_key(chat_request([{"role": "user", "content": "hello"}])) != text_key(both)


def test_only_connection_errors_and_5xx_count_against_a_replica() -> None:
    assert failure_kind(UpstreamRequestFailed("x", provider="p")) == "connection"
    assert failure_kind(UpstreamRequestFailed("not json", provider="p", upstream_status=200)) is None
    assert failure_kind(UpstreamHTTPError("x", provider="p", upstream_status=503)) == "5xx"
    assert failure_kind(UpstreamHTTPError("x", provider="p", upstream_status=400)) is None
    assert failure_kind(UpstreamHTTPError("x", provider="p", upstream_status=429)) is None
    assert failure_kind(UpstreamTimeout("x", provider="p")) is None


def test_replica_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="base_url or replicas"):
        ModelConfig(id="m", base_url="http://a/v1", replicas=[ReplicaConfig(base_url="http://b/v1")])
    with pytest.raises(ValidationError, match="both named"):
        ModelConfig(id="m", replicas=[ReplicaConfig(base_url="http://a:1/v1"), ReplicaConfig(base_url="http://a:1/x")])
    with pytest.raises(ValidationError, match="backend 'openai'"):
        ModelConfig(id="m", backend="transformers", replicas=[ReplicaConfig(base_url="http://a/v1")])
    assert ReplicaConfig(base_url="http://user:pw@gpu:8000/v1").label == "gpu:8000", "never the user info"


def test_the_documented_toml_loads(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs/backends.md").read_text()
    block = text.split("### Several GPUs", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    (tmp_path / "c.toml").write_text(block)
    (model,) = load_settings(tmp_path / "c.toml").models
    assert [r.label for r in model.replicas] == ["gpu1", "gpu2", "gpu3"]
    assert model.replicas[2].api_key_env == "GPU3_KEY" and model.replica_down_s == 10


# --- through the server ------------------------------------------------------------------------------


@dataclass
class Replica:
    name: str
    port: int
    fake: FakeUpstream
    stack: contextlib.ExitStack

    def stop(self) -> None:
        self.stack.close()

    def start(self) -> None:
        self.stack = contextlib.ExitStack()
        self.fake = self.stack.enter_context(run_fake_upstream(port=self.port))


@dataclass
class Env:
    server: LiveServer
    clock: FakeClock
    key: str
    replicas: dict[str, Replica]
    streams: list[str] = field(default_factory=list)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base_url + "/v1", api_key=self.key, max_retries=0, timeout=20)

    def ask(self, stream_id: str | None, *, stream: bool = False, model: str = "qwen") -> str:
        """Ask about the newest frame of `stream_id` (or a plain question); which replica answered."""
        before = {n: len(r.fake.requests) for n, r in self.replicas.items()}
        content: list[dict[str, Any]] = [{"type": "text", "text": "What does it show?"}]
        if stream_id is not None:
            content.append({"type": "image_url", "image_url": {"url": f"ovs://streams/{stream_id}?frame_index=-1"}})
        messages: Any = [{"role": "user", "content": content}]
        if stream:
            text = "".join(
                c.choices[0].delta.content or ""
                for c in self.client().chat.completions.create(model=model, messages=messages, stream=True)
                if c.choices
            )
        else:
            text = (
                self.client().chat.completions.create(model=model, messages=messages).choices[0].message.content or ""
            )
        seen = json.loads(text)
        answered = [n for n, r in self.replicas.items() if len(r.fake.requests) > before[n]]
        # the replica whose answer came back (another one may have seen the request and failed it)
        last = [n for n in answered if r_ok(self.replicas[n].fake)]
        assert len(last) == 1, (answered, last)
        if stream_id is not None:
            assert seen["uuids"] == [f"{stream_id}:1"], "every frame carries its stable {stream_id}:{frame_index}"
        return last[0]

    def models(self) -> dict[str, Any]:
        with self.server.client() as c:
            reply = c.get("/v1/models")
        assert reply.status_code == 200
        assert SECRET not in reply.text and "127.0.0.1" not in reply.text, "names only: no URL, no key"
        (card,) = [m for m in reply.json()["data"] if m["id"] == "qwen"]
        return {r["name"]: r for r in card["replicas"]}


def r_ok(fake: FakeUpstream) -> bool:
    return fake.behaviour.fail_status is None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock) -> Iterator[Env]:
    replicas: dict[str, Replica] = {}
    try:
        for name in NAMES:
            replica = Replica(name, _free_port(), FakeUpstream(), contextlib.ExitStack())
            replica.start()
            replicas[name] = replica
        config = ModelConfig(
            id="qwen",
            upstream_model=MODEL,
            profile="vllm",
            replicas=[ReplicaConfig(base_url=r.fake.base_url, name=r.name, api_key=SECRET) for r in replicas.values()],
            replica_down_s=DOWN_S,
        )
        with run_server(tmp_path, clock=clock, models=[config], builtin_models=[]) as server:
            e = Env(server, clock, server.new_key(), replicas)
            for _ in range(6):
                with server.client(e.key) as c:
                    created = c.post("/v1/streams")
                assert created.status_code == 201, created.text
                e.streams.append(created.json()["id"])
                push_frames(server, e.streams[-1], [0, 100])
            yield e
    finally:
        for replica in replicas.values():
            replica.stop()


def test_each_streams_requests_stick_to_its_replica(env: Env) -> None:
    for sid in env.streams:
        expected = rank(sid, NAMES)[0]
        assert {env.ask(sid, stream=i % 2 == 1) for i in range(4)} == {expected}, sid
    assert all(r["status"] == "up" and r["in_flight"] == 0 for r in env.models().values())
    assert env.ask(None) in NAMES, "a request without a stream is answered by one of them"


def test_requests_without_a_stream_go_to_the_least_loaded_replica(env: Env) -> None:
    for replica in env.replicas.values():
        replica.fake.behaviour.delay_s = 60  # held until released below
    messages: Any = [{"role": "user", "content": "hello"}]  # the same text: the hash alone would pick one

    def plain() -> str:
        return env.client().chat.completions.create(model="qwen", messages=messages).choices[0].message.content or ""

    with ThreadPoolExecutor(3) as pool:
        asked = [pool.submit(plain) for _ in range(3)]

        def all_in_flight() -> dict[str, int] | None:
            loads = {n: r["in_flight"] for n, r in env.models().items()}
            return loads if sum(loads.values()) == 3 else None

        loads = wait_for(all_in_flight, timeout=30, what="three requests in flight")
        assert loads == dict.fromkeys(NAMES, 1), "each went to a replica with nothing in flight"
        for replica in env.replicas.values():
            replica.fake.behaviour.delay_s = 0
        assert all(json.loads(f.result())["texts"] == ["hello"] for f in asked)
    assert [len(r.fake.requests) for r in env.replicas.values()] == [1, 1, 1]


def test_a_killed_replica_fails_over_then_gets_its_streams_back(env: Env) -> None:
    sid = env.streams[0]
    owner, second, _ = rank(sid, NAMES)
    assert env.ask(sid) == owner
    env.replicas[owner].stop()  # connection refused from now on
    assert env.ask(sid, stream=True) == second, "the request that found it dead is answered by the next replica"
    assert env.ask(sid) == second
    view = env.models()
    assert view[owner]["status"] == "down" and view[owner]["last_error"] == "connection error"
    assert 0 < view[owner]["down_for_s"] <= DOWN_S
    assert {n: v["status"] for n, v in view.items() if n != owner} == {n: "up" for n in NAMES if n != owner}
    others = [s for s in env.streams if rank(s, NAMES)[0] != owner]
    for other in others:  # streams of the replicas still up do not move
        assert env.ask(other) == rank(other, NAMES)[0]

    env.replicas[owner].start()  # back on its port, but still marked down: its streams stay where they went
    assert env.ask(sid) == second
    env.clock.advance(DOWN_S * 1000 + 1)  # the mark expires (the health probe runs again, and passes)
    assert env.ask(sid) == owner
    assert env.models()[owner]["status"] == "up"


def test_a_5xx_moves_the_request_and_a_4xx_does_not(env: Env) -> None:
    sid = env.streams[1]
    owner, second, _ = rank(sid, NAMES)
    env.replicas[owner].fake.behaviour.fail_status = 500
    assert env.ask(sid) == second
    assert env.models()[owner] | {"down_for_s": None} == {
        "name": owner,
        "status": "down",
        "in_flight": 0,
        "down_for_s": None,
        "last_error": "HTTP 500",
    }
    env.replicas[owner].fake.behaviour.fail_status = None
    env.clock.advance(DOWN_S * 1000 + 1)
    assert env.ask(sid) == owner
    env.replicas[owner].fake.behaviour.fail_status = 503  # a streamed request moves too (nothing was sent yet)
    assert env.ask(sid, stream=True) == second
    env.replicas[owner].fake.behaviour.fail_status = None
    env.clock.advance(DOWN_S * 1000 + 1)
    assert env.ask(sid) == owner

    env.replicas[owner].fake.behaviour.fail_status = 400  # the request's fault: the client hears it, as is
    with pytest.raises(openai.APIStatusError) as caught:
        env.ask(sid)
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["code"] == "upstream_http_400"
    assert env.models()[owner]["status"] == "up"


def test_every_replica_down_is_a_typed_error(env: Env) -> None:
    env.ask(None)  # the health probe passed (and is reused until the clock moves)
    for replica in env.replicas.values():
        replica.stop()

    def chat() -> httpx.Response:
        with httpx.Client(base_url=env.server.base_url, headers={"Authorization": f"Bearer {env.key}"}) as c:
            return c.post(
                "/v1/chat/completions",
                json={"model": "qwen", "messages": [{"role": "user", "content": "hi"}]},
                timeout=20,
            )

    reply = chat()  # every replica tried in turn
    assert reply.status_code == 502 and reply.json()["error"]["code"] == "upstream_request_failed"
    assert SECRET not in reply.text
    assert {r["status"] for r in env.models().values()} == {"down"}
    env.clock.advance(DOWN_S * 1000 + 1)  # the next probe finds none of them
    reply = chat()
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "model_not_ready"
    assert all(name in reply.json()["error"]["message"] for name in NAMES)


def test_a_replica_failing_mid_stream_is_marked_down_and_the_client_hears_it(env: Env) -> None:
    sid = env.streams[2]
    owner, second, _ = rank(sid, NAMES)
    env.replicas[owner].fake.behaviour.mid_stream_error = True  # part of the answer is already sent: no retry
    with pytest.raises(openai.APIError):
        env.ask(sid, stream=True)
    assert env.models()[owner]["status"] == "down"
    assert len(env.replicas[second].fake.requests) == 0, "a half-sent answer is never restarted elsewhere"
    assert env.ask(sid) == second
