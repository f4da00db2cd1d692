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


def test_ask_sends_system_prompt_and_sampling_fields(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    with chat_env(tmp_path, clock) as env:
        args = ["ask", env.stream_id, "what is written?", "--model", "qwen", "--server", env.server.base_url]
        options = ["--system", "Answer in one word.", "--temperature", "0.2", "--max-tokens", "64"]
        options += ["--top-p", "0.9", "--seed", "7"]
        assert main([*args, "--api-key", env.key, *options]) == 0
        sent = env.fake.requests[-1]
        assert sent["messages"][0] == {"role": "system", "content": "Answer in one word."}
        assert sent["messages"][1]["role"] == "user"
        assert (sent["temperature"], sent["max_tokens"], sent["top_p"], sent["seed"]) == (0.2, 64, 0.9, 7)
        assert json.loads(capsys.readouterr().out)["images"] == [[640, 360]]

        assert main([*args, "--api-key", env.key]) == 0  # left out: not sent, the model's defaults apply
        sent = env.fake.requests[-1]
        assert [m["role"] for m in sent["messages"]] == ["user"]
        assert not {"temperature", "max_tokens", "top_p", "seed"} & set(sent)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--temperature", "2.5", "2.5 is out of range; --temperature takes a number in [0, 2]"),
        ("--temperature", "-1", "out of range"),
        ("--temperature", "nan", "out of range"),
        ("--temperature", "warm", "'warm' is not a number"),
        ("--max-tokens", "0", "0 is too small; --max-tokens takes a whole number of at least 1"),
        ("--max-tokens", "1.5", "'1.5' is not a whole number"),
        ("--top-p", "0", "--top-p takes a number in (0, 1]"),
        ("--top-p", "1.01", "out of range"),
        ("--seed", "x", "--seed takes a whole number"),
    ],
)
def test_ask_refuses_out_of_range_options(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:  # refused before any request: no server needed
        main(["ask", "sid", "q", "--api-key", "k", "--server", "http://127.0.0.1:9", option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
