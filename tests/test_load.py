"""Load (--runslow): three users upload and browse while a fourth uploads the 78 MB metadata
flood of issue 12; none of their requests fails, and their p95 latency is compared with the
same run where the fourth user uploads nothing. Figures go to bench/RESULTS.md."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, make_user
from tests.hostile.make_corpus import Entry, _jpeg, make_corpus
from tests.test_hostile import _upload

pytestmark = [pytest.mark.slow, pytest.mark.backends("sqlite")]
FILES_PER_USER = 12
MAX_P95_RATIO = 3.0


def _user_work(
    server: Server, token: str, folder: Path, seed: int, out: list, errors: list
) -> None:
    with server.client(token) as client:
        for i in range(FILES_PER_USER):
            path = folder / f"u{seed}-{i}.jpg"
            path.write_bytes(_jpeg(seed * 1000 + i, (640, 480)))
            t = time.monotonic()
            try:
                _upload(client, Entry(path, path.name, "ready", "load"), [])
                out.append(time.monotonic() - t)
                t = time.monotonic()
                r = client.get("/api/assets", params={"limit": 50})
                out.append(time.monotonic() - t)
                if r.status_code != 200:
                    errors.append(r.status_code)
            except (AssertionError, httpx.HTTPError) as e:
                errors.append(repr(e)[:200])


def _phase(server: Server, folder: Path, tag: str, flood: Entry | None) -> tuple[list, list, float]:
    tokens = [make_user(f"{tag}-{i}@example.org") for i in range(3)]
    latencies: list[float] = []
    errors: list = []
    threads = [
        threading.Thread(
            target=_user_work,
            args=(server, t, folder, n + (7 if flood else 0) * 10, latencies, errors),
        )
        for n, t in enumerate(tokens)
    ]
    flood_s = 0.0
    start = time.monotonic()
    if flood is not None:
        bad = server.client(make_user(f"{tag}-flood@example.org"))

        def send() -> None:
            nonlocal flood_s
            t = time.monotonic()
            _upload(bad, flood, [])
            flood_s = time.monotonic() - t

        threads.append(threading.Thread(target=send))
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    print(f"\n{tag}: {len(latencies)} requests in {time.monotonic() - start:.1f} s")
    return latencies, errors, flood_s


def test_a_metadata_flood_does_not_slow_other_users(env: dict, tmp_path: Path) -> None:
    flood = next(e for e in make_corpus(tmp_path / "c", flood_mb=78) if e.group == "exif-flood-big")
    server = Server(env).start()
    try:
        base, base_errors, _ = _phase(server, tmp_path, "calm", None)
        loaded, loaded_errors, flood_s = _phase(server, tmp_path, "flood", flood)
    finally:
        server.stop()
    assert not base_errors and not loaded_errors, (base_errors, loaded_errors)
    p95 = [statistics.quantiles(x, n=20)[-1] for x in (base, loaded)]
    ratio = p95[1] / p95[0]
    print(
        f"others' p95 {p95[0] * 1000:.0f} ms calm, {p95[1] * 1000:.0f} ms beside the flood: "
        f"ratio {ratio:.2f}; the 78 MB flood uploaded in {flood_s:.1f} s"
    )
    assert ratio < MAX_P95_RATIO, p95
