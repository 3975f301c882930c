"""The camera-roll uploader: walk, hash, ask what the server lacks, upload only that, resume.

Resume state (the tus URL of each unfinished file) lives in a small JSON file in the synced
folder's parent-independent state dir, so a killed client or server picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from camroll.client.tus import RefusedError, raise_for, upload_file

SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
RETRY_DELAYS = [0.5, 1, 2, 4, 8, 15, 30, 30, 30, 30]


@dataclass
class Failure:
    path: str
    reason: str


@dataclass
class SyncReport:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    quarantined: list[Failure] = field(default_factory=list)
    bytes_sent: int = 0

    def to_json(self) -> dict:
        d = asdict(self)
        d["counts"] = {
            "uploaded": len(self.uploaded),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "quarantined": len(self.quarantined),
        }
        return d


class ConsentMissing(Exception):
    pass


def walk(root: Path) -> Iterator[Path]:
    """Every regular file below root, DCIM-style nesting included, hidden files skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name in SKIP_NAMES:
                continue
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def with_retries(fn: Callable[[], httpx.Response | object], what: str, quiet: bool = False):  # type: ignore[no-untyped-def]
    """Retry transient failures with backoff: a restarting server refuses connections for a
    while (retry for about two minutes); a 5xx is retried only a few times."""
    server_errors = 0
    for delay in [*RETRY_DELAYS, None]:
        try:
            return fn()
        except (httpx.TransportError, httpx.HTTPStatusError) as e:
            if isinstance(e, httpx.HTTPStatusError):
                server_errors += 1
            if delay is None or server_errors > 3:
                raise
            if not quiet:
                print(f"  {what}: {e.__class__.__name__}; retrying in {delay}s", file=sys.stderr)
            time.sleep(delay)
    raise AssertionError("unreachable")


class Syncer:
    def __init__(
        self,
        server: str,
        token: str,
        state_file: Path,
        console_progress: bool,
        parallel: int = 4,
    ) -> None:
        self.parallel = max(1, parallel)
        self._lock = threading.RLock()
        self.client = httpx.Client(
            base_url=server.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "camroll-sync/0.1"},
            timeout=httpx.Timeout(60.0, connect=10.0),
        )
        self.state_file = state_file
        self.progress_on = console_progress
        self.state: dict[str, dict] = {}
        if state_file.exists():
            try:
                self.state = json.loads(state_file.read_text())
            except ValueError:
                self.state = {}

    def _save(self) -> None:
        with self._lock:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            tmp.replace(self.state_file)

    def check_consent(self) -> None:
        r = with_retries(lambda: self.client.get("/api/consent"), "consent")
        raise_for(r)
        if not r.json()["scopes"].get("cloud_processing"):
            raise ConsentMissing(
                "This account has not opted in to cloud processing, so nothing will be uploaded.\n"
                "Opt in on the server's web page, or with:\n"
                "  curl -X PUT -H 'Authorization: Bearer <token>' -H 'Content-Type: "
                "application/json' \\\n"
                '    -d \'{"scopes": {"cloud_processing": true}}\' <server>/api/consent'
            )

    def sync(self, root: Path, report: SyncReport | None = None) -> SyncReport:
        report = report or SyncReport()
        self.check_consent()
        files = list(walk(root))
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            disable=not self.progress_on,
            transient=False,
        )
        with progress:
            hashing = progress.add_task(
                "Hashing", total=sum(p.stat().st_size for p in files), files=f"0/{len(files)} files"
            )
            hashes: dict[Path, str] = {}
            for i, p in enumerate(files, 1):
                try:
                    hashes[p] = sha256_file(p)
                except OSError as e:
                    report.failed.append(Failure(str(p), f"cannot read: {e.strerror}"))
                progress.update(
                    hashing,
                    advance=p.stat().st_size if p.exists() else 0,
                    files=f"{i}/{len(files)} files",
                )
            missing: set[str] = set()
            unique = list(dict.fromkeys(hashes.values()))
            for i in range(0, len(unique), 5000):
                batch = unique[i : i + 5000]
                r = with_retries(
                    lambda b=batch: self.client.post("/api/assets/check", json={"checksums": b}),
                    "check",
                )
                raise_for(r)
                missing.update(r.json()["missing"])
            todo = []
            seen: set[str] = set()
            for p, h in hashes.items():
                if h in missing and h not in seen:
                    todo.append(p)
                    seen.add(h)
                else:
                    report.skipped.append(str(p))
            total = sum(p.stat().st_size for p in todo)
            up = progress.add_task("Uploading", total=total or 1, files=f"0/{len(todo)} files")
            sent: dict[Path, int] = {}
            finished: set[Path] = set()
            stop = threading.Event()

            def one(p: Path) -> None:
                if stop.is_set():
                    return
                rel = p.relative_to(root).as_posix()

                def moved(n: int, p: Path = p) -> None:
                    with self._lock:
                        sent[p] = n
                        progress.update(up, completed=sum(sent.values()))

                try:
                    outcome = with_retries(
                        lambda: self._upload_one(p, hashes[p], rel, moved),
                        rel,
                        quiet=self.progress_on,
                    )
                except RefusedError as e:
                    with self._lock:
                        report.failed.append(Failure(str(p), str(e)))
                    if str(e).startswith("403"):
                        stop.set()  # consent withdrawn meanwhile: stop at once
                except (httpx.TransportError, httpx.HTTPStatusError) as e:
                    with self._lock:
                        report.failed.append(Failure(str(p), f"server unreachable: {e}"))
                else:
                    with self._lock:
                        kind = report.uploaded if outcome.status == "created" else report.skipped
                        kind.append(str(p))
                        report.bytes_sent += p.stat().st_size
                with self._lock:
                    finished.add(p)
                    progress.update(up, files=f"{len(finished)}/{len(todo)} files")
                moved(p.stat().st_size)

            # A few files in flight hide each file's round trips; the server's workers keep up.
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                list(pool.map(one, todo))
        return report

    def _upload_one(self, path: Path, checksum: str, rel: str, on_progress) -> object:  # type: ignore[no-untyped-def]
        with self._lock:
            entry = self.state.get(checksum)

        def remember(url: str) -> None:
            with self._lock:
                self.state[checksum] = {"url": url, "path": rel}
                self._save()

        outcome = upload_file(
            self.client,
            path,
            checksum=checksum,
            relative_path=rel,
            filetype=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            resume_url=entry["url"] if entry else None,
            on_url=remember,
            on_progress=on_progress,
        )
        with self._lock:
            if self.state.pop(checksum, None) is not None:
                self._save()
        return outcome

    def wait(self, timeout: float = 3600, on_tick: Callable[[dict], None] | None = None) -> dict:
        """Block until the server has no pending or running jobs for this user."""
        deadline = time.monotonic() + timeout
        while True:
            r = with_retries(lambda: self.client.get("/api/jobs"), "jobs", quiet=True)
            raise_for(r)
            counts = r.json()
            if on_tick:
                on_tick(counts)
            if counts["pending"] == 0 and counts["running"] == 0:
                return counts
            if time.monotonic() > deadline:
                raise TimeoutError(f"server still busy after {timeout:.0f}s: {counts}")
            time.sleep(0.5)

    def quarantined(self) -> list[Failure]:
        out: list[Failure] = []
        cursor = None
        while True:
            params = {"status": "quarantined", "limit": 500} | (
                {"cursor": cursor} if cursor else {}
            )
            r = with_retries(lambda p=params: self.client.get("/api/assets", params=p), "assets")
            raise_for(r)
            page = r.json()
            out += [
                Failure(
                    a["device_path"] or a["filename"],
                    f"{a['quarantine_reason']}: {a['quarantine_detail']}",
                )
                for a in page["items"]
            ]
            cursor = page["next_cursor"]
            if not cursor:
                return out
