"""Shared fixtures: an isolated camroll on SQLite or PostgreSQL, and a real server process.

Tests talk to camroll the way users do: through `camroll serve` over HTTP, the CLI, or the
service functions. Every test gets its own data folder and its own database.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

# Before anything imports camroll: the queue is built at import time from CAMROLL_DATA_DIR, and
# must never land in the working tree.
os.environ["CAMROLL_DATA_DIR"] = tempfile.mkdtemp(prefix="camroll-test-")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
ROLL = SHARED / "camera-roll"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def pytest_sessionstart(session: pytest.Session) -> None:
    # Tests fail, never skip, for missing data: CI always has ../shared beside the clone.
    if not ROLL.is_dir() or not (SHARED / "faces").is_dir():
        raise pytest.UsageError(f"the shared test data is missing: expected {SHARED}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run long variants too")
    parser.addoption(
        "--backend",
        action="append",
        choices=["sqlite", "postgresql"],
        help="database backends to run on (default: both)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long variant: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend") or ["sqlite", "postgresql"]
        # @pytest.mark.backends("sqlite") narrows a test whose subject is not the database.
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:
            chosen = [b for b in chosen if b in only.args] or list(only.args)
        metafunc.parametrize("backend", chosen)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'camroll.db'}"
        return
    name = f"camroll_t_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        drop_test_database(name)


def drop_test_database(name: str) -> None:
    """Drop a test's PostgreSQL database, after writing the access-log events this process
    still queues for it: left queued, the flusher thread retries a database that is gone
    (and, on Python 3.11, formatting its warnings raced another thread's ast.parse)."""
    from camroll.db.engine import _engine_for
    from camroll.privacy import audit

    audit.flush()
    _engine_for.cache_clear()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def env(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """An isolated camroll configuration, applied to this process and handed to subprocesses."""
    values = {**isolated_env(tmp_path), "CAMROLL_DATABASE_URL": database_url}
    _apply(values, monkeypatch)
    yield values
    clear_caches()


def isolated_env(root: Path) -> dict[str, str]:
    data = root / "data"
    data.mkdir(parents=True)
    return {
        "CAMROLL_DATA_DIR": str(data),
        "CAMROLL_DATABASE_URL": f"sqlite:///{data / 'camroll.db'}",
        "XDG_STATE_HOME": str(root / "state"),
    }


def _apply(values: dict[str, str], patch: pytest.MonkeyPatch) -> None:
    """Point this process at `values` (and a migrated database) instead of what it read."""
    for k, v in values.items():
        patch.setenv(k, v)
    clear_caches()
    from camroll.db.migrate import upgrade

    upgrade()


def clear_caches() -> None:
    from camroll.config import get_settings
    from camroll.db.engine import _factory
    from camroll.storage import _cached

    for cache in (get_settings, _factory, _cached):
        cache.cache_clear()


@pytest.fixture(scope="module")
def module_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The `env` fixture, once per module: this process reads the same database."""
    values = isolated_env(tmp_path_factory.mktemp("module"))
    with pytest.MonkeyPatch.context() as mp:
        _apply(values, mp)
        yield values
    clear_caches()


@pytest.fixture(scope="module")
def module_server(module_env: dict) -> Iterator[Server]:
    """The `server` fixture, once per module, on `module_env`."""
    server = Server(module_env).start()
    yield server
    server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """`camroll serve` in a subprocess: the real API, web app and embedded worker."""

    env: dict
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.log = Path(self.env["CAMROLL_DATA_DIR"]) / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camroll", "serve", "--port", str(self.port)],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server died:\n{self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as in a crash or power cut."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )


@pytest.fixture
def server(env: dict) -> Iterator[Server]:
    srv = Server(env).start()
    yield srv
    srv.stop()


def make_user(email: str, consent: bool = True, password: str | None = None) -> str:
    """A user with a token (and cloud_processing granted unless consent=False)."""
    from camroll.accounts import create_token, create_user, set_password
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope

    with session_scope() as s:
        user = create_user(s, email)
        if password:
            set_password(user, password)
        if consent:
            set_scopes(s, user.id, {"cloud_processing": True}, client="test")
        return create_token(s, user, "test")


def run_cli(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "camroll", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def app_client(env: dict) -> Iterator[httpx.Client]:
    """The real app in-process (no embedded worker): fast protocol-level API tests."""
    from fastapi.testclient import TestClient

    from camroll.app import create_app

    with TestClient(create_app(embedded_worker=False)) as client:
        yield client
