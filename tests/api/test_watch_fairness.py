"""Interactive /chat/completions requests go before watch model calls (ModelGate, wired in create_app)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import openai
import pytest

from livesight.settings import ModelConfig
from tests.api.chat_env import STAMPS, image_message
from tests.support.fake_upstream import MODEL, run_fake_upstream
from tests.support.frames import push_frames
from tests.support.polling import wait_for
from tests.support.server import run_server


def test_watches_wait_while_an_interactive_request_runs(tmp_path: Path) -> None:
    with run_fake_upstream() as fast, run_fake_upstream() as slow:
        slow.behaviour.delay_s = 2.0
        models = [
            ModelConfig(id="fast", base_url=fast.base_url, upstream_model=MODEL, profile="vllm"),
            ModelConfig(id="slow", base_url=slow.base_url, upstream_model=MODEL, profile="vllm"),
        ]
        with run_server(tmp_path, models=models, builtin_models=[]) as srv:
            key = srv.new_key()
            with srv.client(key) as c:
                stream_id = c.post("/v1/streams").json()["id"]
                push_frames(srv, stream_id, STAMPS[:5])
                url = f"ovs://streams/{stream_id}?frame_index=-1"
                request = {"model": "fast", "messages": image_message(url)}
                body = {"request": request, "interval_ms": 250, "only_on_new_frames": False}
                watch_id = c.post("/v1/watches", json=body).json()["id"]

                def runs() -> int:
                    return int(c.get(f"/v1/watches/{watch_id}").json()["counts"]["runs"])

                wait_for(lambda: runs() >= 2, timeout=10, what="watch runs")
                client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key=key, max_retries=0, timeout=20)
                done = threading.Event()

                def interactive() -> None:
                    client.chat.completions.create(model="slow", messages=image_message(url))  # type: ignore[arg-type]
                    done.set()

                thread = threading.Thread(target=interactive)
                thread.start()
                wait_for(lambda: slow.requests, timeout=10, what="the interactive request upstream")
                before = runs()
                time.sleep(1.0)  # the interactive call is still in flight (2 s upstream delay)
                during = runs()
                assert not done.is_set()
                thread.join(20)
                assert during - before <= 1  # at most the run already started; ~4 would run without the gate
                wait_for(lambda: runs() >= during + 2, timeout=10, what="watch runs after the interactive call")
                skipped = c.get(f"/v1/watches/{watch_id}").json()["counts"]["skipped"]["busy"]
                assert skipped >= 2  # ticks while its run waited at the gate


def test_priority_is_held_for_a_whole_stream_and_released_however_it_ends(tmp_path: Path) -> None:
    """The chat route holds ModelGate.interactive() until a streamed answer's last event, and lets go when
    the stream completes, when the client leaves mid-stream, and when the upstream refuses it."""
    with run_fake_upstream() as upstream:
        upstream.behaviour.chunk_delay_s = 0.3
        models = [ModelConfig(id="m", base_url=upstream.base_url, upstream_model=MODEL, profile="vllm")]
        with run_server(tmp_path, models=models, builtin_models=[]) as srv:
            key = srv.new_key()
            with srv.client(key) as c:
                stream_id = c.post("/v1/streams").json()["id"]
            push_frames(srv, stream_id, STAMPS[:3])
            messages = image_message(f"ovs://streams/{stream_id}?frame_index=-1")
            client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key=key, max_retries=0, timeout=20)

            def held() -> int:
                return int(srv.call(lambda: srv.components.watches.gate.interactive_running))

            stream = client.chat.completions.create(model="m", messages=messages, stream=True)  # type: ignore[arg-type]
            next(iter(stream))
            assert held() == 1, "held while the answer streams"
            assert list(stream)
            wait_for(lambda: held() == 0, timeout=5, what="priority released after the last event")

            stream = client.chat.completions.create(model="m", messages=messages, stream=True)  # type: ignore[arg-type]
            next(iter(stream))
            assert held() == 1
            stream.close()  # the client leaves mid-stream
            wait_for(lambda: held() == 0, timeout=5, what="priority released when the client left")

            upstream.behaviour.fail_status = 500
            with pytest.raises(openai.APIStatusError) as refused:
                client.chat.completions.create(model="m", messages=messages, stream=True)  # type: ignore[arg-type]
            assert refused.value.status_code == 502
            assert held() == 0, "released when the request failed before its answer began"
