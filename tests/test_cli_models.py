"""`livesight models pull|list` as a user runs them, against the fake hub on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from livesight.backends.vlm import files
from livesight.backends.weights import Progress
from livesight.cli import main
from livesight.cli.models import ProgressPrinter
from tests.support.fake_hub import FakeHub, FakeRepo, run_fake_hub

WEIGHTS = os.urandom(2_500_000)
GRAPHS = tuple(f"onnx/{g}.onnx" for g in ("vision_encoder", "embed_tokens", "decoder_model_merged"))


def both_runtimes() -> FakeRepo:
    """safetensors for transformers and the fp32 ONNX export for onnxruntime, side by side."""
    files = {"config.json": b"{}", "model.safetensors": WEIGHTS} | {g: os.urandom(30_000) for g in GRAPHS}
    return FakeRepo(files=files, lfs={"model.safetensors", *GRAPHS})


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    repo = FakeRepo(files={"config.json": b"{}", "model.safetensors": WEIGHTS}, lfs={"model.safetensors"})
    repos = {"Org/tiny": repo, "Org/both": both_runtimes(), "HuggingFaceTB/SmolVLM-256M-Instruct": both_runtimes()}
    with run_fake_hub(repos=repos) as fake:
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
    assert f"pulling Org/tiny (revision main, transformers files) from {hub.base_url}" in out  # auto: no ONNX
    assert f"Org/tiny: 2.5 MB in {dest}" in out
    assert "model.safetensors done  2.5 MB / 2.5 MB (100%)" in out  # plain lines: stdout is not a terminal
    assert "\r" not in out
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["MODEL", "SIZE", "STATE", "FILES", "PATH"]
    assert listing[1].split() == ["Org/tiny", "2.5", "MB", "downloaded", "transformers", "files", str(dest)]


def resolved(hub: FakeHub) -> set[str]:
    return {r.url.split("/resolve/", 1)[1].split("/", 1)[1] for r in hub.requests if "/resolve/" in r.url}


def test_files_onnxruntime_pulls_the_export_and_not_the_safetensors(
    tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "pull", "Org/both", "--files", "onnxruntime"]) == 0
    out = capsys.readouterr().out
    assert f"pulling Org/both (revision main, onnxruntime fp32 files) from {hub.base_url}" in out
    assert resolved(hub) == {"config.json", *GRAPHS}
    dest = tmp_path / "models" / "Org--both"
    assert not (dest / "model.safetensors").exists()
    (tmp_path / "models" / "Org--manual").mkdir()
    assert main(["models", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[1][3:7] == ["downloaded", "onnxruntime", "fp32", "files"] and rows[1][0] == "Org/both"
    assert rows[2][0] == "Org/manual" and rows[2][-2:] == ["-", str(tmp_path / "models" / "Org--manual")]


def test_files_transformers_pulls_no_onnx_file(
    tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "pull", "Org/both", "--files", "transformers"]) == 0
    assert "(revision main, transformers files)" in capsys.readouterr().out
    assert resolved(hub) == {"config.json", "model.safetensors"}
    assert not (tmp_path / "models" / "Org--both" / "onnx").exists()


@pytest.mark.parametrize(("cpu", "picked"), [(True, "onnxruntime fp32 files"), (False, "transformers files")])
def test_files_auto_picks_the_runtime_this_machine_would_run(
    hub: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cpu: bool, picked: str
) -> None:
    monkeypatch.setattr(files, "on_cpu", lambda device: cpu)
    assert main(["models", "pull", "Org/both"]) == 0
    assert f"(revision main, {picked})" in capsys.readouterr().out
    assert ("model.safetensors" in resolved(hub)) is not cpu


def test_files_all_pulls_every_file(hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "Org/both", "--files", "all"]) == 0
    assert "(revision main, all files)" in capsys.readouterr().out
    assert resolved(hub) == set(both_runtimes().files)


def test_an_onnx_variant_the_repo_lacks_is_a_one_line_error(hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["models", "pull", "Org/both", "--files", "onnxruntime", "--onnx-variant", "q4"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("livesight: error: Org/both has no ONNX export in q4 (onnx/vision_encoder_q4.onnx")
    assert err.count("\n") == 1 and resolved(hub) == set()


def test_a_ready_id_pulls_its_repository(
    tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "on_cpu", lambda device: True)
    assert main(["models", "pull", "livesight/smolvlm-256m"]) == 0
    out = capsys.readouterr().out
    assert "livesight/smolvlm-256m is HuggingFaceTB/SmolVLM-256M-Instruct" in out
    assert "pulling HuggingFaceTB/SmolVLM-256M-Instruct (revision main, onnxruntime fp32 files)" in out
    assert (tmp_path / "models" / "HuggingFaceTB--SmolVLM-256M-Instruct" / GRAPHS[2]).is_file()


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
