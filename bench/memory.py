"""What a camroll server (API + embedded worker) holds in memory, and at its peak, on a roll.

A real `camroll serve` on a fresh data folder (SQLite, 2 worker threads), a user with every
scope granted, then `camroll sync --wait` of the shared camera roll (or its first `--limit`
files). Resident memory (VmRSS) and the peak (VmHWM) of the server process are read from /proc
after each phase, with the decode helpers (`python -m camroll.media.deadline`) and ExifTool
counted apart (they are its children):

1. started, idle (no model loaded: they load on first use);
2. after the roll is processed and analysed (faces, tags, places, quality) and ideas made;
3. after the first search (the MiniLM text model);
4. after `--idle` seconds with nothing to do (what stays once the decode helpers have gone).

  .venv/bin/python bench/memory.py [--limit N] [--idle 130] [--out FILE]
  .venv/bin/python bench/memory.py --helper 30    # one decode helper, the 30 largest photos
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import PY, REPO, WORK, configure, free_port, loadavg, walk

ROLL = REPO.parent / "shared" / "data" / "camera-roll"


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) // 1024
    return out


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmd))
    return found


def snapshot(pid: int, phase: str) -> dict:
    me = _status(pid)
    helpers = [c for c in _children(pid) if "camroll.media.deadline" in c[1]]
    others = [c for c in _children(pid) if "camroll.media.deadline" not in c[1]]
    row = {
        "phase": phase,
        "rss": me["VmRSS"],
        "peak": me["VmHWM"],
        "helpers": len(helpers),
        "helpers_rss": sum(_status(p).get("VmRSS", 0) for p, _ in helpers),
        "others_rss": sum(_status(p).get("VmRSS", 0) for p, _ in others),
        "load": loadavg(),
    }
    print(row, flush=True)
    return row


def helper_only(n: int) -> str:
    """The `n` largest JPEG and HEIC photos of the roll through one decode helper: its peak
    and what it holds afterwards."""
    from camroll.media import deadline

    photos = [f for f in walk(ROLL) if f.suffix.lower() in (".jpg", ".jpeg", ".heic")]
    photos = sorted(photos, key=lambda f: f.stat().st_size)[-n:]
    for f in photos:
        try:
            deadline.render_within(f, "image", seconds=120)
        except Exception as e:  # a bench reports, it does not stop
            print(f.name, type(e).__name__)
    pid = deadline._idle[0].proc.pid
    mem = _status(pid)
    return (
        f"one decode helper after the roll's {n} largest photos: peak {mem['VmHWM']} MiB, "
        f"holds {mem['VmRSS']} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--helper", type=int, default=0, help="only: N largest photos, one helper")
    ap.add_argument("--limit", type=int, default=0, help="sync only the first N files")
    ap.add_argument("--idle", type=float, default=130.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.helper:
        print(helper_only(args.helper))
        return
    base = WORK / "memory"
    shutil.rmtree(base, ignore_errors=True)
    data = base / "data"
    data.mkdir(parents=True)
    roll = ROLL
    if args.limit:
        roll = base / "roll"
        for f in walk(ROLL)[: args.limit]:
            dest = roll / f.relative_to(ROLL)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
    env = {
        "CAMROLL_DATA_DIR": str(data),
        "CAMROLL_DATABASE_URL": f"sqlite:///{data / 'camroll.db'}",
        "XDG_STATE_HOME": str(base / "state"),
    }
    configure(env)
    from camroll.accounts import create_token, create_user
    from camroll.consent.gate import set_scopes
    from camroll.consent.scopes import SCOPES
    from camroll.db.engine import session_scope
    from camroll.db.migrate import upgrade

    upgrade()
    with session_scope() as s:
        user = create_user(s, "memory@camroll.local")
        set_scopes(s, user.id, dict.fromkeys(SCOPES, True), client="bench")
        token = create_token(s, user, "bench")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [PY, "-m", "camroll", "serve", "--port", str(port)],
        env={**os.environ, **env},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=(base / "server.log").open("ab"),
    )
    rows = []
    started = datetime.now(UTC)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.3)
        rows.append(snapshot(server.pid, "started, idle"))
        t = time.monotonic()
        subprocess.run(
            [PY, "-m", "camroll", "sync", str(roll), "--server", url, "--token", token, "--wait"],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        synced_s = time.monotonic() - t
        n = len(walk(roll))
        rows.append(snapshot(server.pid, f"roll of {n} files processed and analysed"))
        headers = {"Authorization": f"Bearer {token}"}
        r = httpx.get(f"{url}/api/search", params={"q": "beach"}, headers=headers, timeout=300)
        assert r.status_code == 200, r.text
        rows.append(snapshot(server.pid, "+ first search (MiniLM)"))
        time.sleep(args.idle)
        rows.append(snapshot(server.pid, f"+ {args.idle:.0f} s idle"))
    finally:
        server.terminate()
        server.wait(30)
    lines = [
        f"- date: {started:%Y-%m-%d %H:%M} UTC; sync and processing took {synced_s:.0f} s",
        "",
        "| phase | server RSS | server peak (VmHWM) | decode helpers (RSS, count) | "
        "other children (ExifTool) | load average |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['phase']} | {r['rss']} MiB | {r['peak']} MiB | {r['helpers_rss']} MiB "
            f"({r['helpers']}) | {r['others_rss']} MiB | {r['load']} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
