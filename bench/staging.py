"""Upload staging: the blob-store staging with its database lease against the old local-file
staging with its fcntl lock, on the same photos, in one run.

    .venv/bin/python bench/staging.py [--n 60] [--old REV] [--s3]

Each variant runs in its own process with its own data folder (SQLite, local blob store), with
the code of its tree on PYTHONPATH: the working tree, and the old tree exported with `git
archive REV` into bench/work/. Per variant it times, in-process through the real app
(TestClient, no worker): POST + PATCH of every photo in 8 MiB PATCHes (the sync client's), then
the staging's first use by a worker (`ingest.process._write_plaintext`: read the staging,
store the original encrypted, delete the staging). `--s3` adds the new code on a moto S3
server. Prints a Markdown table; nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROLL = REPO.parent / "shared" / "data" / "camera-roll"
WORK = REPO / "bench" / "work"
CHUNK = 8 * 1024 * 1024


def photos(n: int) -> list[Path]:
    found = sorted(
        p
        for p in ROLL.rglob("*")
        if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".heic") and p.stat().st_size
    )
    if len(found) < n:
        raise SystemExit(f"only {len(found)} photos under {ROLL}")
    return found[:n]


def child(files: list[Path]) -> dict:
    """Runs inside the variant's process: its tree is first on sys.path."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from camroll.accounts import create_token, create_user
    from camroll.app import create_app
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.migrate import upgrade
    from camroll.db.models import Asset
    from camroll.ingest.process import _write_plaintext

    upgrade()
    with session_scope() as s:
        user = create_user(s, "bench@example.org")
        set_scopes(s, user.id, {"cloud_processing": True}, client="bench")
        token = create_token(s, user, "bench")
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    out = {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    with TestClient(create_app(embedded_worker=False)) as http:
        wall, cpu = time.perf_counter(), time.process_time()
        for f in files:
            data = f.read_bytes()
            meta = ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}"
                for k, v in (("filename", f.name), ("filetype", "image/jpeg"))
            )
            r = http.post(
                "/api/uploads",
                headers={**auth, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
            )
            if "Location" not in r.headers:
                continue  # a duplicate in the roll
            location = r.headers["Location"]
            for offset in range(0, len(data), CHUNK):
                r = http.patch(
                    location,
                    content=data[offset : offset + CHUNK],
                    headers={
                        **auth,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                )
                assert r.status_code == 204, r.text
        out["upload_wall_s"] = time.perf_counter() - wall
        out["upload_cpu_s"] = time.process_time() - cpu
    with session_scope() as s:
        ids = list(s.scalars(select(Asset.id)))
    out["assets"] = len(ids)
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        for asset_id in ids:
            with session_scope() as s:
                _write_plaintext(s, s.get(Asset, asset_id), Path(tmp) / "original")
    out["first_read_wall_s"] = time.perf_counter() - wall
    out["first_read_cpu_s"] = time.process_time() - cpu
    return out


def run_variant(name: str, tree: Path, files: list[Path], extra: dict[str, str]) -> dict:
    data = Path(tempfile.mkdtemp(prefix=f"staging-{name}-", dir=WORK))
    env = {
        **os.environ,
        **extra,
        "PYTHONPATH": str(tree),
        "CAMROLL_DATA_DIR": str(data),
        "CAMROLL_DATABASE_URL": "",
        "CAMROLL_QUEUE_URL": "",
    }
    cmd = [sys.executable, __file__, "--child", *map(str, files)]
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_tree(rev: str) -> Path:
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = WORK / f"tree-{sha}"
    if not (dest / "camroll").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha], cwd=REPO, capture_output=True, check=True
        ).stdout
        tar_path = dest.with_suffix(".tar")
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(dest, filter="data")
        tar_path.unlink()
    return dest


def moto() -> tuple[subprocess.Popen, dict[str, str]]:
    import socket

    import boto3
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    creds = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    os.environ.update(creds)
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket="bench")
    return proc, {
        **creds,
        "CAMROLL_STORAGE_URL": "s3://bench/camroll",
        "CAMROLL_S3_ENDPOINT_URL": url,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--old", default="7922647^", help="the commit before blob-store staging")
    ap.add_argument("--s3", action="store_true", help="also the new code on a moto S3 server")
    ap.add_argument("--child", nargs="*")
    args = ap.parse_args()
    if args.child is not None:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(child([Path(p) for p in args.child])))
        return

    WORK.mkdir(parents=True, exist_ok=True)
    files = photos(args.n)
    runs = [("old: local file + fcntl lock", export_tree(args.old), {})]
    runs.append(("new: blob store + database lease", REPO, {}))
    server = None
    if args.s3:
        server, s3_env = moto()
        runs.append(("new, on S3 (moto, same machine)", REPO, s3_env))
    rows = []
    try:
        for name, tree, extra in runs:
            print(f"[{time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)
            rows.append((name, run_variant(name.split(":")[0].split(",")[0], tree, files, extra)))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    mb = rows[0][1]["bytes"] / 1e6
    print(
        f"{args.n} photos ({mb:.0f} MB) from the shared roll; {datetime.now(UTC):%Y-%m-%d %H:%M} "
        f"UTC; commit {head}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        " (shared machine)\n"
    )
    print(
        "| variant | assets | upload wall ms/photo | upload CPU ms/photo | first read wall "
        "ms/photo | first read CPU ms/photo |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        n = max(r["assets"], 1)
        print(
            f"| {name} | {r['assets']} | {1000 * r['upload_wall_s'] / n:.1f} | "
            f"{1000 * r['upload_cpu_s'] / n:.1f} | {1000 * r['first_read_wall_s'] / n:.1f} | "
            f"{1000 * r['first_read_cpu_s'] / n:.1f} |"
        )
    base = rows[0][1]
    for name, r in rows[1:]:
        print(
            f"\n{name} / old: upload CPU {r['upload_cpu_s'] / base['upload_cpu_s']:.2f}x, "
            f"first read CPU {r['first_read_cpu_s'] / base['first_read_cpu_s']:.2f}x"
        )


if __name__ == "__main__":
    main()
