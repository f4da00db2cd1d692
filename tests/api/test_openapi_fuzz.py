"""Schemathesis over the app's own OpenAPI document, against the real server, with a valid key: every
operation, every check, every phase (examples, coverage, fuzzing, stateful). Chat requests reach a
configured model (a fake vLLM on loopback that answers anything) and `ovs://` frames and segments of a
live stream holding frames (tests/api/fuzz_hooks.py points most positive cases there). It must find no
server error, no response outside the documented statuses, headers and schemas, no schema-valid request
refused and no schema-invalid request accepted.

What is excluded, each by design:
- `use_after_free` on GET /v1/streams/{stream_id} only: an ended stream answers GET with its frozen
  final values for the tombstone window (CONTRACT §3 Decision), which this check calls "use after free".
  Keepalive, frames and chat on an ended stream are 404 and stay checked.
- `positive_data_acceptance` may see a 400 on POST /v1/streams only: a schema-valid pulled-source URL can
  still be one the server refuses to open (its scheme does not fit the type, or its host is outside the
  outbound policy, which is runtime configuration). Every other status, and every other operation, is
  checked with schemathesis's defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from livesight.settings import ModelConfig
from tests.support import fake_upstream
from tests.support.fake_upstream import MODEL, FakeUpstream, run_fake_upstream
from tests.support.frames import push_frames
from tests.support.server import run_server

REPO = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 25  # per operation and phase: about 700 requests, a minute of CPU (time pytest <this file>)

# Every check is on by default; none is named on the command line, where it would override these.
CONFIG = """
[[operations]]
include-path = "/v1/streams/{stream_id}"
include-method = "GET"
checks.use_after_free.enabled = false

[[operations]]
include-path = "/v1/streams"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
"""


class CountingUpstream(FakeUpstream):
    """The fake vLLM, counting the requests that carried frames of a stream (as JPEG data URLs)."""

    with_frames: int = 0

    async def _chat(self, request: Request) -> Response:
        body = await request.body()
        if b"data:image/jpeg;base64," in body or b"data:video/jpeg;base64," in body:
            self.with_frames += 1
        return await super()._chat(request)


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_upstream, "FakeUpstream", CountingUpstream)
    # validate=False: it answers anything; the fuzz is of livesight, not of what vLLM would accept
    with run_fake_upstream(validate=False) as upstream:
        assert isinstance(upstream, CountingUpstream)
        model = ModelConfig(id="fuzz", base_url=upstream.base_url, upstream_model=MODEL, profile="vllm", max_frames=32)
        with run_server(tmp_path, models=[model], builtin_models=[], max_active_streams_per_key=100_000) as srv:
            key = srv.new_key()
            with srv.client(key) as c:
                stream_id = c.post("/v1/streams").json()["id"]
            push_frames(srv, stream_id, [i * 100 for i in range(50)])  # frames 0..49, 5 s of stream time
            config = tmp_path / "schemathesis.toml"
            config.write_text(CONFIG)
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                "SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks",
                "LIVESIGHT_FUZZ_STREAM": stream_id,
                "LIVESIGHT_FUZZ_MODEL": model.id,
            }
            result = subprocess.run(
                [
                    str(Path(sys.executable).with_name("st")),
                    "--config-file",
                    str(config),
                    "run",
                    f"{srv.base_url}/openapi.json",
                    "--header",
                    f"Authorization: Bearer {key}",
                    "--max-examples",
                    str(MAX_EXAMPLES),
                    "--seed",
                    "1",
                    "--generation-database",
                    "none",
                    "--no-color",
                ],
                capture_output=True,
                text=True,
                timeout=560,
                check=False,
                env=env,
                cwd=tmp_path,
            )
            with srv.client(key) as c:
                still = c.get(f"/v1/streams/{stream_id}").json()
                paths = c.get("/openapi.json").json()["paths"].values()
    operations = sum(len(methods) for methods in paths)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-8000:]
    assert f"Selected: {operations}/{operations}" in out and f"Tested: {operations}\n" in out, out[-3000:]
    assert upstream.with_frames > 0, "no chat request reached the model with frames of the live stream"
    assert still["state"] == "active" and still["last_frame_index"] == 49
