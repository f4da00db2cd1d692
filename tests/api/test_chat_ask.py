"""`livesight ask`: the CLI client on the openai SDK, against the real server and the fake vLLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livesight.cli import main
from livesight.core.clock import FakeClock
from tests.api.chat_env import chat_env


def test_ask_newest_frame_and_segment(tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    with chat_env(tmp_path, clock) as env:
        args = [env.stream_id, "what is written?", "--model", "qwen", "--server", env.server.base_url]
        assert main(["ask", *args, "--api-key", env.key]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["images"] == [[640, 360]]
        assert "frames used: frame 99 (stream time 9.900 s)" in err

        assert main(["ask", *args, "--api-key", env.key, "--segment", "-2000", "--fps", "2"]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["videos"][0]["frames"] == 5
        assert "5 frames 79..99 (stream time 7.900..9.900 s): 79, 84, 89, 94, 99" in err


def test_ask_errors(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with chat_env(tmp_path, clock) as env:
        monkeypatch.setenv("LIVESIGHT_URL", env.server.base_url)
        monkeypatch.setenv("LIVESIGHT_API_KEY", env.key)
        with pytest.raises(SystemExit) as exit_:
            main(["ask", env.stream_id, "q", "--model", "qwen", "--frame", "100"])
        assert exit_.value.code == 1
        assert "409 frame_not_yet_produced" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["ask", env.stream_id, "q", "--model", "nope"])
        assert "404 model_unavailable" in capsys.readouterr().err
        env.fake.behaviour.mid_stream_error = True
        with pytest.raises(SystemExit):
            main(["ask", env.stream_id, "q", "--model", "qwen"])
        assert "upstream_http_500" in capsys.readouterr().err
        monkeypatch.delenv("LIVESIGHT_API_KEY")
        with pytest.raises(SystemExit) as exit_:
            main(["ask", env.stream_id, "q"])
        assert exit_.value.code == 2
        assert "LIVESIGHT_API_KEY" in capsys.readouterr().err
