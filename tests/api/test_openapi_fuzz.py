"""Schemathesis over the app's own OpenAPI document, against the real server, with a valid key: every
operation, every check, every phase (examples, coverage, fuzzing, stateful). Chat requests, plain and
streamed, reach a configured model (a fake vLLM on loopback that answers anything) and `ovs://` frames
and segments of a live stream holding frames (tests/api/fuzz_hooks.py points most positive cases
there). It must find no server error, no response outside the documented statuses, headers and
schemas, no schema-valid request refused and no schema-invalid request accepted.

What is excluded, each by design:
- `use_after_free` on GET /v1/streams/{stream_id} only: an ended stream answers GET with its frozen
  final values for the tombstone window (CONTRACT §3 Decision), which this check calls "use after free".
  Keepalive, frames and chat on an ended stream are 404 and stay checked.
- `positive_data_acceptance` may see a 400 on POST /v1/streams: a schema-valid pulled-source URL can
  still be one the server refuses to open (its scheme does not fit the type, or its host is outside the
  outbound policy, which is runtime configuration), or a `livekit_room` source whose fields do not go
  together (a token or an API key and secret, not both; a room the token grants). Likewise POST
  /v1/watches (its request's ovs:// URIs are parsed and its streams looked up: 400, 404; the key's
  watch limit: 429) and PATCH of a watch that has ended (400). Every other status, and every other
  operation, is checked with schemathesis's defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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

[[operations]]
include-path = "/v1/watches"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "429"]

[[operations]]
include-path = "/v1/watches/{watch_id}"
include-method = "PATCH"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]
"""


class LenientUpstream(FakeUpstream):
    """The fake vLLM answering whatever it is sent, plainly or streamed (the fuzz is of livesight, not of
    what vLLM would accept), counting the requests that carried stream frames (as JPEG data URLs)."""

    with_frames: int = 0

    def summary(self, body: dict[str, Any]) -> dict[str, Any]:
        sent = json.dumps(body)
        if "data:image/jpeg;base64," in sent or "data:video/jpeg;base64," in sent:
            self.with_frames += 1
        self.requests.clear()  # nothing reads them: keep the memory flat
        return {"ok": True}


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_upstream, "FakeUpstream", LenientUpstream)
    with run_fake_upstream() as upstream:
        assert isinstance(upstream, LenientUpstream)
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
