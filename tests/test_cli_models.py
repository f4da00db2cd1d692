"""`livesight models pull|list` as a user runs them, against the fake hub on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from livesight.backends.weights import Progress
from livesight.cli import main
from livesight.cli.models import ProgressPrinter
from tests.support.fake_hub import FakeHub, FakeRepo, run_fake_hub

WEIGHTS = os.urandom(2_500_000)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    repo = FakeRepo(files={"config.json": b"{}", "model.safetensors": WEIGHTS}, lfs={"model.safetensors"})
    with run_fake_hub(repos={"Org/tiny": repo}) as fake:
        monkeypatch.setenv("LIVESIGHT_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("LIVESIGHT_HF_ENDPOINT", fake.base_url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("LIVESIGHT_HF_TOKEN", raising=False)
        yield fake


def test_pull_then_list(tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    assert "no models in" in capsys.readouterr().out
    assert main(["models", "pull", "Org/tiny"]) == 0
    out = capsys.readouterr().out
    dest = tmp_path / "models" / "Org--tiny"
    assert f"Org/tiny: 2.5 MB in {dest}" in out
    assert "model.safetensors done  2.5 MB / 2.5 MB (100%)" in out  # plain lines: stdout is not a terminal
    assert "\r" not in out
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["MODEL", "SIZE", "STATE", "PATH"]
    assert listing[1].split() == ["Org/tiny", "2.5", "MB", "downloaded", str(dest)]


def test_hf_token_is_sent_to_the_hub(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert main(["models", "pull", "Org/tiny"]) == 0
    assert hub.requests[0].headers["authorization"] == "Bearer hf_from_env"


def test_a_failed_pull_is_a_one_line_error(hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", "pull", "Org/missing", "--revision", "main"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("livesight: error: cannot download Org/missing") and err.count("\n") == 1


def test_the_terminal_line_is_rewritten_in_place() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out, tty=True)
    printer(Progress("w.bin", 500_000, 2_000_000, 500_000, 2_000_000, 1_000_000.0, 1.5))
    printer(Progress("w.bin", 2_000_000, 2_000_000, 2_000_000, 2_000_000, 1_000_000.0, 0.0, file_finished=True))
    text = out.getvalue()
    assert text.startswith("\r\x1b[Kw.bin  500.0 kB / 2.0 MB (25%)  1.0 MB/s  ETA 0:02")
    assert text.endswith("\r\x1b[Kw.bin done  2.0 MB / 2.0 MB (100%)  1.0 MB/s\n")
