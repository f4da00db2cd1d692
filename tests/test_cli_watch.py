"""`livesight watch`: creates a watch, prints its results live from the SSE endpoint, deletes it on exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livesight.cli import main
from livesight.cli.watch import duration_ms
from livesight.core.clock import FakeClock
from tests.api.chat_env import chat_env


@pytest.mark.parametrize(("text", "ms"), [("2s", 2000), ("500ms", 500), ("1.5s", 1500), ("1m", 60000), ("3", 3000)])
def test_durations(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


def test_watch_prints_results_and_deletes_the_watch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"texts": {"type": "array"}}}))
    with chat_env(tmp_path, FakeClock()) as env:
        argv = ["watch", env.stream_id, "Is the door open?", "--every", "250ms", "--model", "qwen"]
        argv += ["--json-schema", str(schema), "--contains", "door", "--count", "1"]
        argv += ["--server", env.server.base_url, "--api-key", env.key]
        assert main(argv) == 0
        with env.server.client(env.key) as c:
            (watch,) = c.get("/v1/watches").json()["data"]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"watching {env.stream_id} every 0.25 s as watch_")
    assert out[1].startswith("[1] frame 99 (match): ") and "Is the door open?" in out[1]
    assert len(out) == 2 and watch["state"] == "ended" and watch["end_reason"] == "deleted"
    assert watch["request"]["response_format"]["type"] == "json_schema"
