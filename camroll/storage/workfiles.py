"""Private work files: the only place plaintext may touch a disk, and never for long.

ExifTool, the video decoder and the recap encoder need real files. They get them in
`<data dir>/work/<host>-<pid>/` (0700, the process umask is 0o077), each in its own folder that is
removed in `finally`. A process killed mid-task cannot run its `finally`, so `sweep` removes the
folders of processes that are no longer alive (at startup and in the periodic cleanup), together
with half-written `.tmp-*` blobs the local store abandoned.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from camroll.config import get_settings

log = logging.getLogger(__name__)
UMASK = 0o077
# A local blob write refreshes its .tmp- file's mtime with every chunk: older is abandoned.
STALE_PARTIAL_S = 300.0


def _private_mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)  # mkdir's mode is masked, and an existing folder keeps its old mode
    return path


def work_root() -> Path:
    return _private_mkdir(get_settings().data_dir / "work")


def _owner_tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def process_dir() -> Path:
    """This process's folder: its name says whose it is, so a sweep can tell a dead one."""
    _private_mkdir(get_settings().data_dir)
    return _private_mkdir(work_root() / _owner_tag())


@contextmanager
def private_dir(prefix: str) -> Iterator[Path]:
    """A fresh 0700 folder under this process's work folder, removed however the block ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=process_dir()))
    os.chmod(path, 0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM  # exists, but not ours to signal
    return True


def sweep_work(*, current: bool = False) -> int:
    """Remove the work folders of dead processes on this host (and this process's own with
    `current`, for a fresh start); returns how many folders went."""
    root = get_settings().data_dir / "work"
    if not root.is_dir():
        return 0
    host = socket.gethostname()
    removed = 0
    for folder in root.iterdir():
        owner_host, _, pid = folder.name.rpartition("-")
        if owner_host != host or not pid.isdigit():
            continue  # another machine's (a shared data dir): only it knows whether it is alive
        if int(pid) == os.getpid() and not current:
            continue
        if int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def sweep_partial_blobs(older_than_s: float = STALE_PARTIAL_S) -> int:
    """Remove abandoned half-written blobs of the local store (S3 uploads are atomic)."""
    from camroll.storage import get_store
    from camroll.storage.local import LocalBlobStore

    store = get_store()
    if not isinstance(store, LocalBlobStore):
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for path in store.root.rglob(".tmp-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # finished (renamed) or removed meanwhile
    return removed


def sweep() -> dict[str, int]:
    """The periodic cleanup's part: dead processes' work folders and stale partial blobs."""
    return {"work_folders": sweep_work(), "partial_blobs": sweep_partial_blobs()}


def secure_data_dir() -> None:
    """Modes for what earlier versions (or another umask) left readable: the data dir and its
    folders 0700, databases, their WAL/SHM and key files 0600."""
    data = _private_mkdir(get_settings().data_dir)
    for path in data.iterdir():
        try:
            if path.is_dir() and not path.is_symlink():
                os.chmod(path, 0o700)
            elif path.is_file() and (path.suffix == ".key" or ".db" in path.name):
                os.chmod(path, 0o600)
        except FileNotFoundError:
            continue


def prepare_process() -> dict[str, int]:
    """At the start of `serve` and `worker`: private modes for everything this process
    creates, the data dir's modes fixed, crashed processes' leftovers swept, and any library's
    temp files (`tempfile`) sent to this process's private work folder."""
    os.umask(UMASK)
    secure_data_dir()
    swept = {"work_folders": sweep_work(current=True), "partial_blobs": sweep_partial_blobs()}
    tempfile.tempdir = str(process_dir())
    if any(swept.values()):
        log.info("swept leftovers of earlier processes: %s", swept)
    return swept
