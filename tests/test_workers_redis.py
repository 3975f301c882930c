"""Scale-out: two `camroll worker` processes drain one Redis queue filled by `camroll serve`.

Each process has a data folder of its own; they share the database, the queue, a blob folder
(`CAMROLL_STORAGE_URL=file://...`, as a network mount would be) and the master key.

What is proved: with CAMROLL_QUEUE_URL=redis://..., uploads queue work that a server without a
worker does not do; two worker processes share it (both do some), every task runs exactly once,
every asset ends ready or quarantined with exactly one metadata row and its two renditions, and
sending every task again (some after a simulated crash) changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import func, select, update

from tests.conftest import ROLL, free_port, make_user, run_cli

REDIS_URL = "redis://127.0.0.1:6379/11"
PHOTOS = ROLL / "exif-samples" / "jpg"
EXECUTED = re.compile(r"Executing camroll\.jobs\.tasks\.process_asset_task: ")


@pytest.fixture
def queue_env(env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    from camroll.config import get_settings
    from camroll.storage import _cached

    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    shared = {
        "CAMROLL_QUEUE_URL": REDIS_URL,
        "CAMROLL_STORAGE_URL": f"file://{tmp_path / 'shared-blobs'}",
        "CAMROLL_MASTER_KEY": secrets.token_hex(32),
    }
    for k, v in shared.items():  # this test process reads the same store and keys
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    _cached.cache_clear()
    yield {**env, **shared}
    r.flushdb()
    get_settings.cache_clear()
    _cached.cache_clear()


def _node(queue_env: dict, folder: Path) -> dict:
    """One process's own data folder; everything else shared."""
    return {**queue_env, "CAMROLL_DATA_DIR": str(folder)}


def _roll(dest: Path) -> list[Path]:
    """~30 real photos: the loose exif-samples JPEGs (one of them corrupted) and the GPS set."""
    dest.mkdir()
    files = sorted(PHOTOS.glob("*.jpg")) + sorted((PHOTOS / "gps").glob("*.jpg"))
    for f in files:
        shutil.copy(f, dest / f.name)
    return files


class Proc:
    def __init__(self, args: list[str], env: dict, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camroll", *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_for(what: str, check, timeout: float, procs: list[Proc]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        for p in procs:
            assert p.alive(), f"{p.log.name} died:\n{p.text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def _jobs(http: httpx.Client) -> dict:
    return http.get("/api/jobs").raise_for_status().json()


def _snapshot() -> dict:
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, AssetMetadata, JobRun, Rendition

    with session_scope() as s:
        assets = {a.id: a.status for a in s.scalars(select(Asset))}
        meta = Counter(s.scalars(select(AssetMetadata.asset_id)))
        rends = Counter(s.scalars(select(Rendition.asset_id)))
        kinds = {(r.asset_id, r.kind) for r in s.scalars(select(Rendition))}
        runs = {r.subject_id: (r.state, r.attempts) for r in s.scalars(select(JobRun))}
        rows = s.scalar(select(func.count()).select_from(Rendition))
    return {
        "assets": assets,
        "meta": meta,
        "rends": rends,
        "kinds": kinds,
        "runs": runs,
        "rendition_rows": rows,
    }


def _check_processed_once_each(snap: dict, n: int) -> None:
    assets = snap["assets"]
    assert len(assets) == n
    assert set(assets.values()) <= {"ready", "quarantined"}, Counter(assets.values())
    for asset_id, status in assets.items():
        assert snap["meta"][asset_id] == 1, f"{asset_id}: {snap['meta'][asset_id]} metadata rows"
        want = 2 if status == "ready" else 0
        assert snap["rends"][asset_id] == want, f"{asset_id} ({status}): renditions"
        if status == "ready":
            assert {(asset_id, "thumbnail"), (asset_id, "preview")} <= snap["kinds"]
    assert set(snap["runs"]) == set(assets)


def test_two_workers_drain_one_redis_queue(queue_env: dict, tmp_path: Path) -> None:
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset
    from camroll.storage import get_store

    files = _roll(tmp_path / "roll")
    n = len(files)
    assert n >= 30
    token = make_user("fleet@example.org")
    logs = tmp_path / "logs"
    logs.mkdir()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = Proc(
        ["serve", "--no-worker", "--port", str(port)],
        _node(queue_env, tmp_path / "node-api"),
        logs / "server.log",
    )
    workers: list[Proc] = []
    http = httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )

    def up() -> bool:
        try:
            return http.get("/api/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait_for("the server", up, 60, [server])
        sent = run_cli(
            "sync", str(tmp_path / "roll"), "--server", url,
            "--token", token, "--json",
            env=queue_env, timeout=120,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr + sent.stdout
        assert json.loads(sent.stdout)["counts"]["uploaded"] == n

        # Nobody has touched the queue yet: the server runs no worker.
        time.sleep(1)
        assert _jobs(http)["pending"] == n
        with session_scope() as s:
            assert set(s.scalars(select(Asset.status))) == {"pending"}

        workers = [
            Proc(
                ["worker", "--workers", "2"],
                _node(queue_env, tmp_path / f"node-w{i}"),
                logs / f"worker{i}.log",
            )
            for i in (1, 2)
        ]
        every = [server, *workers]

        def drained() -> bool:
            j = _jobs(http)
            return j["pending"] + j["running"] == 0

        _wait_for("the queue to drain", drained, 120, every)
        done = {"pending": 0, "running": 0, "done": n, "failed": 0, "failures": []}
        assert _jobs(http) == done

        snap = _snapshot()
        _check_processed_once_each(snap, n)
        assert set(snap["runs"].values()) == {("done", 1)}  # every task ran exactly once
        statuses = Counter(snap["assets"].values())
        assert statuses["ready"] >= n - 2, statuses  # the corrupted sample may be quarantined

        # Both processes worked, and between them ran each task once.
        runs = [len(EXECUTED.findall(w.text())) for w in workers]
        assert all(r >= 1 for r in runs), f"executions per worker: {runs}"
        assert sum(runs) == n
        for w in workers:  # each log is that process's own
            assert f"PID {w.proc.pid}" in w.text()

        # Send every task again; for every other ready asset, first undo its final status as if
        # a worker had died after writing the renditions but before marking it ready.
        ready = sorted(a for a, st in snap["assets"].items() if st == "ready")
        rerun = ready[::2]
        with session_scope() as s:
            s.execute(update(Asset).where(Asset.id.in_(rerun)).values(status="pending"))
        ids = sorted(snap["assets"])
        script = (
            "import sys\n"
            "from camroll.db.engine import session_scope\n"
            "from camroll.db.models import Asset\n"
            "from camroll.jobs.tasks import enqueue_process\n"
            "ids = set(sys.argv[1:])\n"
            "with session_scope() as s:\n"
            "    pairs = [(a.id, a.user_id) for a in s.query(Asset) if a.id in ids]\n"
            "for asset_id, user_id in pairs:\n"
            "    enqueue_process(asset_id, user_id)\n"
        )  # fmt: skip
        again = subprocess.run(
            [sys.executable, "-c", script, *ids],
            env={**os.environ, **queue_env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 0, again.stderr

        def executed_twice() -> bool:
            return sum(len(EXECUTED.findall(w.text())) for w in workers) >= 2 * n and drained()

        _wait_for("the resent tasks", executed_twice, 120, every)
        after = _snapshot()
        _check_processed_once_each(after, n)
        assert after["assets"] == snap["assets"]
        assert after["rendition_rows"] == snap["rendition_rows"] == 2 * len(ready)
        assert set(after["runs"].values()) == {("done", 2)}
        assert sum(len(EXECUTED.findall(w.text())) for w in workers) == 2 * n

        # The blob store holds exactly one original per asset and two renditions per ready one.
        kinds = Counter(k.rsplit("/", 1)[1] for k in get_store().keys("u/"))
        assert kinds == {"original": n, "thumbnail": len(ready), "preview": len(ready)}
        assert list(get_store().keys("staging/")) == []
        for node in ("node-api", "node-w1", "node-w2"):  # nothing kept in a node's own folder
            assert not (tmp_path / node / "blobs").exists(), node
            assert not (tmp_path / node / "master.key").exists(), node
        for w in workers:
            assert "Traceback" not in w.text(), w.text()[-3000:]
    finally:
        http.close()
        for p in [*workers, server]:
            p.stop()
