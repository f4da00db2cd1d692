"""Model weights on first use: a Hugging Face model repository fetched over plain HTTP, verified, resumable.

What the hub offers (`hub.py` reads its API), and what this does with it (the same requests `huggingface_hub`
makes, not its code):

- `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`: the commit (`sha`) and its files
  (`siblings`), each with `size`, its git `blobId` and, for LFS files, `lfs.sha256`. Files are then fetched
  at that commit, so a branch that moves during a pull cannot mix two versions.
- `GET {endpoint}/{repo}/resolve/{commit}/{path}`: the bytes; the hub redirects LFS files to a CDN on
  another host (httpx drops the `Authorization` header when a redirect leaves the origin).
- Each file goes to `<file>.part` first; a pull that stopped resumes it with `Range: bytes=N-` (a server
  that answers 200 instead of 206 sends it whole again). A file is renamed into place only when its size
  and hash match the listing: LFS files by `lfs.sha256`, the others by their git blob id
  (sha1 of `blob <size>\\0<bytes>`). A mismatch deletes the part: it is never installed.
- Free disk space is checked before the first byte (the bytes still missing, against `shutil.disk_usage`).
- A pull fetches the files a `FileSelection` wants (`hub.py`; default every file): a runtime needs only its
  own copy of the model, not the repository's other precisions and formats. Files an earlier pull verified
  are kept when this one does not want them, so pulls with different selections add up in one directory.
- `<dir>/.livesight-model.json` records the commit, every path of its listing (`listed`), the last pull's
  selection and what was verified, file by file, as the pull goes; `complete` is set once every file that
  selection wants is in place. A directory without it was copied in by hand (listed, never verified).
- One pull of a model at a time (an `flock` on `<root>/.<dir>.lock`); errors are `WeightsUnavailable`, whose
  message names what to download and where to put it when the hub cannot be used.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from livesight.backends.hub import (
    EVERYTHING,
    MANIFEST,
    FileSelection,
    Hash,
    RemoteFile,
    RepoListing,
    check_repo_id,
    file_url,
    listing_url,
    parse_listing,
    refusal,
    transport_why,
)
from livesight.core.errors import WeightsUnavailable

CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a pull stands: the file being fetched and the whole pull (bytes, bytes/s, seconds left)."""

    file: str
    file_done: int
    file_total: int
    done: int
    total: int
    speed_bps: float
    eta_s: float | None
    file_finished: bool = False


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A model directory under the weights root, as `livesight models list` shows it.

    `state` "downloaded" means every file the last pull's `selection` wanted is verified, not every file of
    the repository: ask `has(...)` whether the files a runtime needs are here. `listed` is every path of the
    pulled commit (what `vlm.files.choose_runtime` reads, even for files not pulled); for a directory copied
    in by hand, the files present."""

    repo: str
    path: Path
    size: int
    state: str  # "downloaded" | "incomplete" | "copied in"
    revision: str | None = None
    commit: str | None = None
    listed: tuple[str, ...] = ()
    selection: str | None = None  # the name of the last pull's FileSelection

    def has(self, select: FileSelection) -> bool:
        """Whether the files `select` wants are all here, looked at on disk when called (a pull may have
        run since this was described). Pulled: it picks at least one listed path and each is verified by a
        pull (its record in the manifest) and present at that size. Copied in by hand (nothing verified):
        it picks at least one file present, and none of them is still a `.part`."""
        manifest = _read_manifest(self.path)
        if not manifest:
            names = local_paths(self.path) if self.path.is_dir() else []
            partial = {n.removesuffix(".part") for n in names if n.endswith(".part")}
            picked = select.pick({n for n in names if not n.endswith(".part")} | partial)
            return bool(picked) and not partial.intersection(picked)
        verified = _verified(manifest)
        picked = select.pick(_listed(manifest))
        return bool(picked) and all(_present(self.path, p, verified.get(p)) for p in picked)


ProgressFn = Callable[[Progress], None]
Select = FileSelection | Callable[[tuple[str, ...]], FileSelection]


class WeightStore:
    """Model repositories under `root` (`<data_dir>/models`), fetched from a hub at `endpoint`."""

    def __init__(
        self,
        root: Path,
        endpoint: str = "https://huggingface.co",
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        report_every_s: float = 0.2,
    ) -> None:
        self.root = root
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._monotonic = monotonic
        self._report_every_s = report_every_s

    def model_dir(self, repo: str) -> Path:
        return self.root / check_repo_id(repo).replace("/", "--")

    # --- what is here -------------------------------------------------------------------------------

    def installed(self) -> list[LocalModel]:
        """Every model directory under the root, downloaded or not (yet)."""
        if not self.root.is_dir():
            return []
        dirs = sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        return [_describe(d) for d in dirs]

    def find(self, repo: str) -> LocalModel | None:
        """`repo` as it is here (`state` "downloaded" when a pull verified every file), or None."""
        directory = self.model_dir(repo)
        return _describe(directory) if directory.is_dir() else None

    # --- fetching -----------------------------------------------------------------------------------

    def listing(self, repo: str, revision: str = "main") -> RepoListing:
        """The commit `revision` names and its files, from the hub's API."""
        with self._client() as client:
            return self._listing(client, check_repo_id(repo), revision)

    def pull(
        self, repo: str, revision: str = "main", progress: ProgressFn | None = None, select: Select = EVERYTHING
    ) -> LocalModel:
        """The files of `repo` at `revision` that `select` wants into `model_dir(repo)`, verified; resumes an
        earlier pull. `select` may be a function of the listing's paths (every file of the commit), for a
        caller that picks the runtime by what the repository has; it is called once the listing arrives.

        Only the selected files are fetched, counted against the free disk space and in the progress
        totals. Files an earlier pull verified that `select` does not want stay, with their records: a
        pull with another selection adds to the directory. Removed are only files an earlier commit had
        and this one does not, or has with other bytes (so the directory never mixes two commits). A
        selection that picks no file is an error, before anything is fetched or written.

        `progress` is called as bytes arrive (at most every `report_every_s`) and when each file is in
        place; an exception it raises stops the pull there (a server cancelling a pull does that), and
        what arrived is kept for the next pull."""
        dest = self.model_dir(repo)
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / f".{dest.name}.lock", repo), self._client() as client:
            listing = self._listing(client, repo, revision)
            chosen = select if isinstance(select, FileSelection) else select(tuple(f.path for f in listing.files))
            wanted = [f for f in listing.files if chosen.wants(f.path)]
            if not wanted:
                raise WeightsUnavailable(f"{repo} has no {chosen.name} ({_none_match(chosen, listing)})")
            verified = _verified(_read_manifest(dest))
            todo = [f for f in wanted if not _in_place(dest, f, verified)]
            self._check_space(dest, todo, repo)
            kept = {f.path: f.record() for f in listing.files if _in_place(dest, f, verified)}
            _remove_stale(dest, verified, listing)
            _remove_outdated(dest, verified, listing)
            self._write_manifest(dest, listing, chosen, kept, complete=not todo)
            here = sum(f.size for f in wanted if f not in todo) + sum(_part_size(dest, f) for f in todo)
            meter = _Meter(self._monotonic, sum(f.size for f in wanted), here)
            for n, remote in enumerate(todo, 1):
                self._fetch(client, listing, remote, dest, meter, progress)
                kept[remote.path] = remote.record()
                self._write_manifest(dest, listing, chosen, kept, complete=n == len(todo))
            return _describe(dest)

    def _client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        return httpx.Client(headers=headers, timeout=self._timeout, follow_redirects=True)

    def _listing(self, client: httpx.Client, repo: str, revision: str) -> RepoListing:
        try:
            response = client.get(listing_url(self.endpoint, repo, revision), params={"blobs": "true"})
        except httpx.HTTPError as exc:
            raise self._unavailable(repo, revision, f"cannot reach {self.endpoint} ({transport_why(exc)})") from None
        if not response.is_success:
            raise self._unavailable(repo, revision, self._refusal(response, repo, revision))
        try:
            return parse_listing(repo, revision, response.json())
        except (ValueError, KeyError, TypeError) as exc:
            why = f"{self.endpoint} sent a file list this cannot read ({exc})"
            raise self._unavailable(repo, revision, why) from None

    def _refusal(self, response: httpx.Response, repo: str, revision: str) -> str:
        return refusal(response, self.endpoint, repo, revision, token_sent=self._token is not None)

    def _unavailable(self, repo: str, revision: str, why: str) -> WeightsUnavailable:
        return WeightsUnavailable(
            f"cannot download {repo} (revision {revision}): {why}. To install it by hand, download every file of "
            f"{self.endpoint}/{repo} at that revision where you can, and copy them into {self.model_dir(repo)}"
        )

    def _check_space(self, dest: Path, todo: list[RemoteFile], repo: str) -> None:
        needed = sum(max(0, f.size - _part_size(dest, f)) for f in todo)
        probe = dest if dest.exists() else self.root
        free = shutil.disk_usage(probe).free
        if needed > free:
            raise WeightsUnavailable(
                f"not enough disk space for {repo}: it needs {format_bytes(needed)} more in {probe}, and only "
                f"{format_bytes(free)} is free there; free some space, or set data_dir to a bigger disk"
            )

    def _fetch(
        self,
        client: httpx.Client,
        listing: RepoListing,
        remote: RemoteFile,
        dest: Path,
        meter: _Meter,
        progress: ProgressFn | None,
    ) -> None:
        final = dest / remote.path
        part = final.with_name(final.name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        have = _part_size(dest, remote)
        if have > remote.size:
            part.unlink()
            have = 0
        hasher = _hash_existing(part, remote, have)
        url = file_url(self.endpoint, listing, remote.path)

        def failed() -> str:
            got = format_bytes(_part_size(dest, remote))
            return f"the download of {remote.path} stopped at {got} of {format_bytes(remote.size)}"

        if have < remote.size or not part.is_file():
            try:
                with client.stream("GET", url, headers={"Range": f"bytes={have}-"} if have else {}) as response:
                    if response.status_code == 200 and have:
                        meter.done -= have
                        have, hasher = 0, remote.hasher()  # the range was not honoured: it comes whole
                    elif response.status_code == 206 and not _starts_at(response, have):
                        part.unlink()
                        raise WeightsUnavailable(f"{failed()}: the server resumed it at the wrong place; run again")
                    elif response.status_code not in (200, 206):
                        why = self._refusal(response, listing.repo, listing.revision)
                        if response.status_code == 416:
                            part.unlink()
                            why = "the server refused to resume it (HTTP 416); run the same pull again"
                        raise self._unavailable(listing.repo, listing.revision, f"{remote.path}: {why}")
                    have = self._write(response, part, have, remote, hasher, meter, progress)
            except httpx.HTTPError as exc:
                raise WeightsUnavailable(
                    f"{failed()} ({transport_why(exc)}); run the same pull again to resume it: what arrived is kept"
                ) from None
        if have != remote.size:
            raise WeightsUnavailable(f"{failed()}: the server sent no more; run the same pull again to resume it")
        if hasher is not None and hasher.hexdigest() != remote.expected:
            part.unlink()
            raise WeightsUnavailable(
                f"{listing.repo}: {remote.path} does not match its checksum ({hasher.hexdigest()} instead of "
                f"{remote.expected}); it was deleted, not installed. Run the pull again; if it fails again, the "
                f"server at {self.endpoint} sends damaged files"
            )
        os.replace(part, final)
        meter.report(progress, remote, remote.size, finished=True)

    def _write(
        self,
        response: httpx.Response,
        part: Path,
        have: int,
        remote: RemoteFile,
        hasher: Hash | None,
        meter: _Meter,
        progress: ProgressFn | None,
    ) -> int:
        next_report = 0.0
        with part.open("ab" if have else "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                if have + len(chunk) > remote.size:
                    part.unlink()
                    raise WeightsUnavailable(
                        f"{remote.path}: the server sent more than the {format_bytes(remote.size)} its listing says"
                    )
                out.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                have += len(chunk)
                meter.add(len(chunk))
                if self._monotonic() >= next_report:
                    meter.report(progress, remote, have)
                    next_report = self._monotonic() + self._report_every_s
            out.flush()
            os.fsync(out.fileno())
        return have

    def _write_manifest(
        self,
        dest: Path,
        listing: RepoListing,
        chosen: FileSelection,
        files: Mapping[str, object],
        *,
        complete: bool,
    ) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        record = {
            "repo": listing.repo,
            "revision": listing.revision,
            "commit": listing.commit,
            "endpoint": self.endpoint,
            "complete": complete,
            "files": files,
            "listed": [f.path for f in listing.files],
            "selection": {"name": chosen.name, "include": list(chosen.include), "exclude": list(chosen.exclude)},
        }
        tmp = dest / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, dest / MANIFEST)


class _Meter:
    """Bytes of the whole pull, and the speed of this run (bytes fetched now / seconds since it began)."""

    def __init__(self, monotonic: Callable[[], float], total: int, done: int) -> None:
        self._monotonic = monotonic
        self._started = monotonic()
        self.total = total
        self.done = done
        self._fetched = 0

    def add(self, n: int) -> None:
        self.done += n
        self._fetched += n

    def report(
        self, progress: ProgressFn | None, remote: RemoteFile, file_done: int, *, finished: bool = False
    ) -> None:
        if progress is None:
            return
        elapsed = self._monotonic() - self._started
        speed = self._fetched / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / speed if speed > 0 else None
        progress(Progress(remote.path, file_done, remote.size, self.done, self.total, speed, eta, finished))


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _describe(directory: Path) -> LocalModel:
    files = [p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST]
    size = sum(p.stat().st_size for p in files if not p.name.endswith(".part"))
    manifest = _read_manifest(directory)
    repo = str(manifest.get("repo") or directory.name.replace("--", "/", 1))
    if not manifest:
        state = "incomplete" if any(p.name.endswith(".part") for p in files) else "copied in"
        present = tuple(p for p in local_paths(directory) if not p.endswith(".part"))
        return LocalModel(repo, directory, size, state, listed=present)
    state = "downloaded" if manifest.get("complete") else "incomplete"
    chosen = manifest.get("selection")
    name = _str(chosen.get("name")) if isinstance(chosen, dict) else None
    revision, commit = _str(manifest.get("revision")), _str(manifest.get("commit"))
    return LocalModel(repo, directory, size, state, revision, commit, _listed(manifest), name)


def local_paths(directory: Path) -> list[str]:
    """A model directory's files as repository paths (what `vlm.files.choose_runtime` reads for a local one)."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def _verified(manifest: Mapping[str, object]) -> dict[str, object]:
    """The manifest's records of verified files, by path."""
    recorded = manifest.get("files")
    return recorded if isinstance(recorded, dict) else {}


def _listed(manifest: Mapping[str, object]) -> tuple[str, ...]:
    """Every path of the pulled commit; a manifest from before `listed` was recorded (every file was
    pulled then) has its verified files."""
    listed = manifest.get("listed")
    names = listed if isinstance(listed, list) else list(_verified(manifest))
    return tuple(n for n in names if isinstance(n, str))


def _present(directory: Path, name: str, record: object) -> bool:
    """A verified file (its manifest record) still there at the size it was verified at."""
    size = record.get("size") if isinstance(record, dict) else None
    path = directory / name
    return isinstance(size, int) and ".." not in name and path.is_file() and path.stat().st_size == size


def _none_match(chosen: FileSelection, listing: RepoListing) -> str:
    """Why a selection picked nothing, for its error: what it looks for, and what the commit has."""
    looks = ", ".join(chosen.include) + (f" but not {', '.join(chosen.exclude)}" if chosen.exclude else "")
    return f"revision {listing.revision}: none of its {len(listing.files)} files matches {looks}"


def _starts_at(response: httpx.Response, offset: int) -> bool:
    """A 206 answer's `Content-Range: bytes START-END/SIZE` starts where the part ends."""
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return match is not None and int(match.group(1)) == offset


def _in_place(dest: Path, remote: RemoteFile, verified: dict[str, object]) -> bool:
    """Verified by an earlier pull with the same content, and still there at its size."""
    path = dest / remote.path
    return verified.get(remote.path) == remote.record() and path.is_file() and path.stat().st_size == remote.size


def _part_size(dest: Path, remote: RemoteFile) -> int:
    part = dest / (remote.path + ".part")
    return part.stat().st_size if part.is_file() else 0


def _hash_existing(part: Path, remote: RemoteFile, have: int) -> Hash | None:
    hasher = remote.hasher()
    if hasher is not None and have:
        with part.open("rb") as f:
            while block := f.read(CHUNK):
                hasher.update(block)
    return hasher


def _remove_outdated(dest: Path, verified: dict[str, object], listing: RepoListing) -> None:
    """Files an earlier commit had with other bytes than this one: their records go (they are not in
    `kept`), and so do they, wanted by this pull or not, so a directory holds one commit's files."""
    for remote in listing.files:
        if remote.path in verified and verified[remote.path] != remote.record():
            with contextlib.suppress(FileNotFoundError):
                (dest / remote.path).unlink()


def _remove_stale(dest: Path, verified: dict[str, object], listing: RepoListing) -> None:
    """Files an earlier revision had and this one does not (only ones this code installed)."""
    wanted = {f.path for f in listing.files}
    for name in verified:
        if name not in wanted and isinstance(name, str) and ".." not in name:
            with contextlib.suppress(FileNotFoundError):
                (dest / name).unlink()


def _read_manifest(directory: Path) -> dict[str, object]:
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@contextlib.contextmanager
def _locked(path: Path, repo: str) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WeightsUnavailable(f"another pull of {repo} is running; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
