"""`WeightStore.pull` against a fake hub on 127.0.0.1 that behaves like huggingface.co (never the internet):
the API listing, a 302 to a CDN on another port, Range resumes, a connection that dies mid-file, checksums,
refusals, an unreachable endpoint and a full disk."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livesight.backends.weights import MANIFEST, Progress, WeightStore
from livesight.core.errors import WeightsUnavailable
from tests.support.fake_hub import FakeHub, FakeRepo, run_fake_hub

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
