"""`WeightStore.pull` against a fake hub on 127.0.0.1 that behaves like huggingface.co (never the internet):
the API listing, a 302 to a CDN on another port, Range resumes, a connection that dies mid-file, checksums,
refusals, an unreachable endpoint and a full disk."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livesight.backends.hub import EVERYTHING, MANIFEST, FileSelection
from livesight.backends.vlm.files import selection
from livesight.backends.weights import Progress, WeightStore, format_bytes
from livesight.core.errors import WeightsUnavailable
from tests.support.fake_hub import COMMIT, FakeHub, FakeRepo, run_fake_hub

REPO = "TinyOrg/tiny-vlm"
WEIGHTS = os.urandom(3 * 1024 * 1024 + 17)
ONNX = os.urandom(200_000)
CONFIG = b'{"model_type": "idefics3"}'


def tiny_repo() -> FakeRepo:
    files = {"config.json": CONFIG, "model.safetensors": WEIGHTS, "onnx/vision.onnx": ONNX, "empty.txt": b""}
    return FakeRepo(files=files, lfs={"model.safetensors", "onnx/vision.onnx"})


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with run_fake_hub(repos={REPO: tiny_repo()}) as fake:
        yield fake


def store(root: Path, hub: FakeHub, token: str | None = None) -> WeightStore:
    return WeightStore(root, hub.base_url, token, report_every_s=0)


def cdn_requests(hub: FakeHub) -> list[Any]:
    return [r for r in hub.requests if r.url.startswith(hub.cdn_url)]


def test_pull_fetches_every_file_through_the_redirect_verified(tmp_path: Path, hub: FakeHub) -> None:
    seen: list[Progress] = []
    model = store(tmp_path, hub, token="hf_secret").pull(REPO, progress=seen.append)
    dest = tmp_path / "TinyOrg--tiny-vlm"
    assert model.path == dest and model.state == "downloaded"
    assert (dest / "config.json").read_bytes() == CONFIG
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    assert (dest / "onnx" / "vision.onnx").read_bytes() == ONNX
    assert (dest / "empty.txt").read_bytes() == b""
    assert not list(dest.rglob("*.part"))
    total = len(CONFIG) + len(WEIGHTS) + len(ONNX)
    assert seen[-1].done == seen[-1].total == total
    finished = [p.file for p in seen if p.file_finished]
    assert finished == ["config.json", "model.safetensors", "onnx/vision.onnx", "empty.txt"]
    assert all(p.speed_bps >= 0 for p in seen)
    # the LFS files came from the CDN (another port) after the hub's 302; the token went only to the hub
    assert {r.url.rsplit("/", 1)[-1] for r in cdn_requests(hub)} == {"model.safetensors", "vision.onnx"}
    assert all("authorization" not in r.headers for r in cdn_requests(hub))
    hub_side = [r for r in hub.requests if r.url.startswith(hub.base_url)]
    assert hub_side and all(r.headers.get("authorization") == "Bearer hf_secret" for r in hub_side)
    assert "blobs=true" in hub_side[0].url
    [listed] = WeightStore(tmp_path, hub.base_url).installed()
    assert (listed.repo, listed.state, listed.size, listed.commit) == (REPO, "downloaded", total, model.commit)
    assert WeightStore(tmp_path).find(REPO) == listed
    assert WeightStore(tmp_path).find("TinyOrg/other") is None


def test_a_second_pull_downloads_nothing(tmp_path: Path, hub: FakeHub) -> None:
    store(tmp_path, hub).pull(REPO)
    before = len(cdn_requests(hub))
    store(tmp_path, hub).pull(REPO)
    assert len(cdn_requests(hub)) == before


def test_a_connection_dropped_mid_file_resumes_with_range_and_verifies(tmp_path: Path, hub: FakeHub) -> None:
    hub.die_after["model.safetensors"] = 1024 * 1024
    with pytest.raises(WeightsUnavailable, match=r"model\.safetensors stopped at 1\.0 MB of 3\.1 MB .* resume"):
        store(tmp_path, hub).pull(REPO)
    dest = tmp_path / "TinyOrg--tiny-vlm"
    part = dest / "model.safetensors.part"
    assert part.stat().st_size == 1024 * 1024
    assert not (dest / "model.safetensors").exists()
    assert [m.state for m in WeightStore(tmp_path, hub.base_url).installed()] == ["incomplete"]
    seen: list[Progress] = []
    store(tmp_path, hub).pull(REPO, progress=seen.append)
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    resumed = [r for r in cdn_requests(hub) if r.url.endswith("model.safetensors")][-1]
    assert resumed.headers["range"] == f"bytes={1024 * 1024}-"
    assert seen[-1].done == seen[-1].total


class Stop(Exception):
    pass


def test_a_progress_callback_that_raises_stops_the_pull_and_it_resumes(tmp_path: Path, hub: FakeHub) -> None:
    def stop_in_the_weights(p: Progress) -> None:
        if p.file == "model.safetensors" and 0 < p.file_done < p.file_total:
            raise Stop

    with pytest.raises(Stop):
        store(tmp_path, hub).pull(REPO, progress=stop_in_the_weights)
    part = tmp_path / "TinyOrg--tiny-vlm" / "model.safetensors.part"
    assert 0 < part.stat().st_size < len(WEIGHTS)
    store(tmp_path, hub).pull(REPO)
    assert (tmp_path / "TinyOrg--tiny-vlm" / "model.safetensors").read_bytes() == WEIGHTS
    resumed = [r for r in cdn_requests(hub) if r.url.endswith("model.safetensors")][-1]
    assert resumed.headers["range"].startswith("bytes=") and resumed.headers["range"] != "bytes=0-"


def test_a_server_that_ignores_range_sends_the_file_whole_again(tmp_path: Path, hub: FakeHub) -> None:
    hub.die_after["model.safetensors"] = 500_000
    with pytest.raises(WeightsUnavailable):
        store(tmp_path, hub).pull(REPO)
    hub.ignore_range = True
    store(tmp_path, hub).pull(REPO)
    assert (tmp_path / "TinyOrg--tiny-vlm" / "model.safetensors").read_bytes() == WEIGHTS


def test_a_wrong_sha256_is_refused_and_not_installed(tmp_path: Path, hub: FakeHub) -> None:
    hub.corrupt.add("model.safetensors")
    with pytest.raises(WeightsUnavailable, match="does not match its checksum"):
        store(tmp_path, hub).pull(REPO)
    dest = tmp_path / "TinyOrg--tiny-vlm"
    assert not (dest / "model.safetensors").exists()
    assert not (dest / "model.safetensors.part").exists()
    assert [m.state for m in WeightStore(tmp_path, hub.base_url).installed()] == ["incomplete"]


def test_a_small_file_is_checked_against_its_git_blob_id(tmp_path: Path, hub: FakeHub) -> None:
    hub.repos[REPO].listed["config.json"] = {"blobId": "0" * 40}
    with pytest.raises(WeightsUnavailable, match=r"config\.json does not match its checksum"):
        store(tmp_path, hub).pull(REPO)
    assert not (tmp_path / "TinyOrg--tiny-vlm" / "config.json").exists()


def test_a_file_name_that_escapes_the_model_directory_is_refused(tmp_path: Path, hub: FakeHub) -> None:
    hub.repos[REPO].files["../../evil.sh"] = b"boom"
    with pytest.raises(WeightsUnavailable, match="unsafe file name"):
        store(tmp_path / "models", hub).pull(REPO)
    assert not list(tmp_path.rglob("evil.sh"))


def test_an_unknown_repo_says_what_to_download_and_where(tmp_path: Path, hub: FakeHub) -> None:
    with pytest.raises(WeightsUnavailable) as info:
        store(tmp_path, hub).pull("TinyOrg/no-such-model")
    message = str(info.value)
    assert "no model 'TinyOrg/no-such-model'" in message and "HF_TOKEN" in message
    assert f"{hub.base_url}/TinyOrg/no-such-model" in message
    assert str(tmp_path / "TinyOrg--no-such-model") in message


def test_a_gated_repo_asks_for_a_token_and_a_refused_token_is_named(tmp_path: Path, hub: FakeHub) -> None:
    hub.gated.add(REPO)
    with pytest.raises(WeightsUnavailable, match=f"{REPO} is gated: accept its terms at .*set HF_TOKEN"):
        store(tmp_path, hub).pull(REPO)
    with pytest.raises(WeightsUnavailable, match="refused the token in HF_TOKEN"):
        store(tmp_path, hub, token="hf_wrong").pull(REPO)


def test_an_unknown_revision_is_named(tmp_path: Path, hub: FakeHub) -> None:
    with pytest.raises(WeightsUnavailable, match="has no revision 'v9'"):
        store(tmp_path, hub).pull(REPO, revision="v9")


def test_an_unreachable_endpoint_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(WeightsUnavailable) as info:
        WeightStore(tmp_path, f"http://127.0.0.1:{port}").pull(REPO)
    message = str(info.value)
    assert f"cannot reach http://127.0.0.1:{port}" in message and "offline" in message
    assert "copy them into" in message


def test_not_enough_disk_space_is_refused_before_any_download(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1_000_000))
    with pytest.raises(WeightsUnavailable, match=r"needs 3\.3 MB more .* only 1\.0 MB is free"):
        store(tmp_path, hub).pull(REPO)
    assert cdn_requests(hub) == []
    assert not (tmp_path / "TinyOrg--tiny-vlm" / "config.json").exists()


def test_a_model_id_must_look_like_one(tmp_path: Path, hub: FakeHub) -> None:
    for bad in ("../etc", "a/b/c", "", "org/..", "/abs"):
        with pytest.raises(WeightsUnavailable, match="not a Hugging Face model id"):
            store(tmp_path, hub).pull(bad)


def test_files_copied_in_by_hand_are_listed_as_such(tmp_path: Path) -> None:
    manual = tmp_path / "Org--manual"
    manual.mkdir()
    (manual / "model.gguf").write_bytes(b"x" * 10)
    [listed] = WeightStore(tmp_path).installed()
    assert (listed.repo, listed.state, listed.size) == ("Org/manual", "copied in", 10)
    assert not (manual / MANIFEST).exists()


# --- pulling one runtime's files (FileSelection) ----------------------------------------------------------

MULTI = "TinyOrg/multi-runtime"
GRAPHS = ("vision_encoder", "embed_tokens", "decoder_model_merged")


def multi_repo() -> FakeRepo:
    """A repository like SmolVLM's: safetensors at the top, the ONNX export under onnx/ in two precisions."""
    files = {
        "config.json": CONFIG,
        "tokenizer.json": b'{"version": "1.0"}',
        "chat_template.jinja": b"{{ messages }}",
        "README.md": b"# multi",
        "model.safetensors": WEIGHTS,
    }
    for graph in GRAPHS:
        files[f"onnx/{graph}.onnx"] = os.urandom(40_000)
        files[f"onnx/{graph}_fp16.onnx"] = os.urandom(20_000)
    files["onnx/decoder_model_merged.onnx_data"] = os.urandom(300_000)
    return FakeRepo(files=files, lfs={p for p in files if p.endswith((".safetensors", ".onnx", ".onnx_data"))})


ONNX_FP32 = {f"onnx/{g}.onnx" for g in GRAPHS} | {"onnx/decoder_model_merged.onnx_data"}
COMMON = {"config.json", "tokenizer.json", "chat_template.jinja"}
TORCH = COMMON | {"README.md", "model.safetensors"}


@pytest.fixture
def multi() -> Iterator[FakeHub]:
    with run_fake_hub(repos={MULTI: multi_repo()}) as fake:
        yield fake


def transformers_files(paths: tuple[str, ...]) -> FileSelection:
    return selection("transformers", "fp32", paths)


ONNX_FILES = selection("onnxruntime", "fp32")


def fetched(hub: FakeHub) -> set[str]:
    """The repository paths the store asked the hub for."""
    return {r.url.split(f"/resolve/{COMMIT}/", 1)[1] for r in hub.requests if "/resolve/" in r.url}


def sizes(paths: set[str]) -> int:
    files = multi_repo().files
    return sum(len(files[p]) for p in paths)


def test_a_transformers_pull_fetches_no_onnx_file(tmp_path: Path, multi: FakeHub) -> None:
    seen: list[Progress] = []
    model = store(tmp_path, multi).pull(MULTI, progress=seen.append, select=transformers_files)
    assert fetched(multi) == TORCH
    assert not (model.path / "onnx").exists()
    assert seen[-1].done == seen[-1].total == sizes(TORCH)  # the totals count the selected files only
    assert (model.state, model.selection, model.size) == ("downloaded", "transformers files", sizes(TORCH))
    assert set(model.listed) == set(multi_repo().files)  # every path of the commit, pulled or not
    assert model.has(transformers_files(model.listed)) and not model.has(ONNX_FILES)
    assert WeightStore(tmp_path).find(MULTI) == model
    manifest = json.loads((model.path / MANIFEST).read_text())
    assert manifest["selection"]["name"] == "transformers files" and "*.onnx" in manifest["selection"]["exclude"]
    assert set(manifest["files"]) == TORCH and manifest["complete"] is True


def test_an_onnxruntime_pull_fetches_its_variant_and_the_configs_only(tmp_path: Path, multi: FakeHub) -> None:
    seen: list[Progress] = []
    model = store(tmp_path, multi).pull(MULTI, progress=seen.append, select=ONNX_FILES)
    assert fetched(multi) == COMMON | ONNX_FP32  # neither model.safetensors nor the fp16 graphs
    assert {p.file for p in seen if p.file_finished} == COMMON | ONNX_FP32
    assert seen[-1].total == sizes(COMMON | ONNX_FP32)
    assert model.has(ONNX_FILES) and not model.has(selection("onnxruntime", "fp16"))
    assert not model.has(EVERYTHING)
    assert (model.state, model.selection) == ("downloaded", "onnxruntime fp32 files")


def test_a_pull_with_another_selection_adds_files_and_keeps_the_first(tmp_path: Path, multi: FakeHub) -> None:
    store(tmp_path, multi).pull(MULTI, select=ONNX_FILES)
    multi.requests.clear()
    model = store(tmp_path, multi).pull(MULTI, select=transformers_files)
    assert fetched(multi) == TORCH - COMMON  # the configs were verified by the first pull
    assert model.has(ONNX_FILES) and model.has(transformers_files(model.listed))
    assert model.selection == "transformers files" and model.state == "downloaded"
    assert set(json.loads((model.path / MANIFEST).read_text())["files"]) == TORCH | ONNX_FP32
    assert all((model.path / p).is_file() for p in ONNX_FP32)
    multi.requests.clear()
    store(tmp_path, multi).pull(MULTI, select=ONNX_FILES)  # everything it wants is here already
    assert fetched(multi) == set()


def test_has_is_false_for_a_missing_or_truncated_file_and_a_pull_mends_it(tmp_path: Path, multi: FakeHub) -> None:
    model = store(tmp_path, multi).pull(MULTI, select=ONNX_FILES)
    (model.path / "onnx" / "embed_tokens.onnx").unlink()
    assert not model.has(ONNX_FILES)
    store(tmp_path, multi).pull(MULTI, select=ONNX_FILES)
    assert model.has(ONNX_FILES)
    data = model.path / "onnx" / "decoder_model_merged.onnx_data"
    data.write_bytes(data.read_bytes()[:1000])
    assert not model.has(ONNX_FILES)
    assert not model.has(FileSelection("gguf files", include=("*.gguf",)))  # it picks nothing listed
    multi.requests.clear()
    store(tmp_path, multi).pull(MULTI, select=ONNX_FILES)
    assert fetched(multi) == {"onnx/decoder_model_merged.onnx_data"} and model.has(ONNX_FILES)


def test_has_on_a_directory_copied_in_by_hand(tmp_path: Path) -> None:
    manual = tmp_path / "Org--manual"
    (manual / "onnx").mkdir(parents=True)
    (manual / "config.json").write_bytes(CONFIG)
    (manual / "model.safetensors.part").write_bytes(b"half")
    for graph in GRAPHS:
        (manual / "onnx" / f"{graph}.onnx").write_bytes(b"graph")
    model = WeightStore(tmp_path).find("Org/manual")
    assert model is not None and model.state == "incomplete" and model.selection is None
    assert set(model.listed) == {"config.json"} | {f"onnx/{g}.onnx" for g in GRAPHS}  # not the .part
    assert model.has(ONNX_FILES)
    assert not model.has(transformers_files(model.listed))  # model.safetensors is still a part
    (manual / "model.safetensors.part").rename(manual / "model.safetensors")
    assert model.has(transformers_files(model.listed))
    assert not model.has(FileSelection("gguf files", include=("*.gguf",)))


def test_a_selection_that_picks_nothing_is_an_error_before_anything_is_written(tmp_path: Path, multi: FakeHub) -> None:
    gguf = FileSelection("gguf files", include=("*.gguf",))
    n = len(multi_repo().files)
    with pytest.raises(
        WeightsUnavailable,
        match=rf"^{MULTI} has no gguf files \(revision main: none of its {n} files matches \*\.gguf\)$",
    ):
        store(tmp_path, multi).pull(MULTI, select=gguf)
    assert fetched(multi) == set()
    assert not (tmp_path / "TinyOrg--multi-runtime").exists()


def test_the_disk_space_check_counts_the_selected_files_only(
    tmp_path: Path, multi: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.disk_usage
    free = sizes(COMMON | ONNX_FP32) + 1000  # room for the ONNX export, not for the safetensors too
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=free))
    with pytest.raises(
        WeightsUnavailable,
        match=f"not enough disk space .* needs {re.escape(format_bytes(sizes(set(multi_repo().files))))} more",
    ):
        store(tmp_path, multi).pull(MULTI)
    assert fetched(multi) == set()
    assert store(tmp_path, multi).pull(MULTI, select=ONNX_FILES).has(ONNX_FILES)


def test_an_old_manifest_without_listed_still_reads(tmp_path: Path, hub: FakeHub) -> None:
    model = store(tmp_path, hub).pull(REPO)
    manifest = json.loads((model.path / MANIFEST).read_text())
    del manifest["listed"], manifest["selection"]
    (model.path / MANIFEST).write_text(json.dumps(manifest))
    old = WeightStore(tmp_path).find(REPO)
    assert old is not None and old.state == "downloaded" and old.selection is None
    assert set(old.listed) == set(tiny_repo().files) and old.has(EVERYTHING)
    before = len(cdn_requests(hub))
    assert store(tmp_path, hub).pull(REPO).selection == "all files"
    assert len(cdn_requests(hub)) == before


def test_a_new_commit_removes_an_unwanted_file_it_changed(tmp_path: Path, multi: FakeHub) -> None:
    store(tmp_path, multi).pull(MULTI, select=ONNX_FILES)
    repo = multi.repos[MULTI]
    repo.files["onnx/vision_encoder.onnx"] = b"a new graph"
    del repo.files["onnx/embed_tokens.onnx"]
    model = store(tmp_path, multi).pull(MULTI, select=transformers_files)
    assert not (model.path / "onnx" / "vision_encoder.onnx").exists()  # outdated: not kept
    assert not (model.path / "onnx" / "embed_tokens.onnx").exists()  # stale: gone from the commit
    assert (model.path / "onnx" / "decoder_model_merged.onnx").is_file()  # unchanged: kept, still verified
    assert not model.has(ONNX_FILES)
    assert model.has(FileSelection("decoder", include=("onnx/decoder_model_merged.onnx",)))
