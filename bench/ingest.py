"""Ingest throughput benchmark: camroll end to end vs the floor, on the same files, in one run.

    .venv/bin/python bench/ingest.py [--large N] [--out bench/RESULTS.md]

See bench/README.md for what each number means. Everything this writes goes under bench/work/
(gitignored) except the report (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_ROLL = REPO.parent / "shared" / "data" / "camera-roll"
WORK = REPO / "bench" / "work"
PY = sys.executable
EXIFTOOL = shutil.which("exiftool") or "/usr/bin/exiftool"

# Variants used to make every re-encoded file distinct: (JPEG/HEIC quality, scale).
VARIANTS = [(q, s) for s in (1.0, 0.95, 0.9, 0.85) for q in (92, 84, 76, 68)]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- file discovery -------------------------------------------------------------------------------


def walk(root: Path) -> list[Path]:
    """The same file list the sync client uploads (camroll.client.sync.walk)."""
    from camroll.client.sync import walk as sync_walk

    return list(sync_walk(root))


def magic_kind(path: Path) -> str | None:
    """'jpeg' or 'heic' by content (extensions lie in the shared roll), else None."""
    try:
        with path.open("rb") as f:
            head = f.read(32)
    except OSError:
        return None
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[4:8] == b"ftyp" and head[8:12] in (
        b"heic",
        b"heix",
        b"mif1",
        b"msf1",
        b"heim",
        b"heis",
    ):
        return "heic"
    return None


# -- building the large roll ----------------------------------------------------------------------


def _probe_source(path_s: str) -> tuple[str, str, int, int] | None:
    """A source photo for the large roll: decodes fully, has a real size."""
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    path = Path(path_s)
    kind = magic_kind(path)
    if kind is None:
        return None
    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception:
        return None
    if w * h < 300_000:  # thumbnails and maker-note stubs are not camera photos
        return None
    return (path_s, kind, w, h)


def _make_variants(job: tuple[str, str, list[tuple[str, int, float]]]) -> list[str]:
    """Decode one source once, write each (dst, quality, scale) variant of it."""
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    src, kind, variants = job
    made = []
    try:
        with Image.open(src) as im0:
            exif = im0.info.get("exif")
            icc = im0.info.get("icc_profile")
            im0.load()
            base = im0 if im0.mode in ("RGB", "L") else im0.convert("RGB")
            for dst, quality, scale in variants:
                im = base
                if scale != 1.0:
                    im = base.resize(
                        (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
                    )
                kw: dict = {"quality": quality}
                if exif:
                    kw["exif"] = exif
                if icc:
                    kw["icc_profile"] = icc
                im.save(dst, "HEIF" if kind == "heic" else "JPEG", **kw)
                made.append(dst)
    except Exception as e:  # a source that fails to re-encode is just skipped
        log(f"  could not re-encode {src}: {e}")
    return made


def build_large_roll(n: int, jpeg_only: bool = False) -> tuple[Path, dict]:
    """`jpeg_only`: JPEG sources only (HEIC's x265 encoding can take an hour on a loaded
    2-core machine), built into its own folder."""
    out = WORK / (f"large-roll-{n}-jpeg" if jpeg_only else f"large-roll-{n}")
    marker = out / ".complete.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        log(f"reusing {out} ({info['files']} files, built earlier)")
        return out, info
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    candidates = [str(p) for p in walk(SHARED_ROLL) if magic_kind(p)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        sources = [s for s in ex.map(_probe_source, candidates, chunksize=4) if s]
    sources.sort()
    if jpeg_only:
        sources = [src for src in sources if src[1] == "jpeg"]
    if not sources:
        raise SystemExit("no decodable JPEG/HEIC in the shared roll")
    jobs = []
    # HEIC (x265) encoding takes seconds per 12 MP photo on a small machine, so each HEIC source
    # gives one variant; the JPEG sources fill the rest of the roll.
    n_heic = sum(1 for s in sources if s[1] == "heic")
    n_jpeg = max(1, len(sources) - n_heic)
    per_jpeg = -(-max(0, n - n_heic) // n_jpeg)
    rng = random.Random(1)
    for i, (src, kind, _w, _h) in enumerate(sources):
        variants = VARIANTS[:]
        rng.shuffle(variants)
        per = 1 if kind == "heic" else per_jpeg
        for j, (q, s) in enumerate(variants[: min(per, len(variants))]):
            ext = ".jpg" if kind == "jpeg" else ".heic"
            dst = out / f"DCIM/{100 + i // 50:03d}CAMRL/IMG_{i:04d}_{j:02d}{ext}"
            jobs.append((src, kind, str(dst), q, s))
    rng.shuffle(jobs)
    jobs = jobs[:n]
    by_src: dict[tuple[str, str], list] = defaultdict(list)
    for src, kind, dst, q, s in jobs:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        by_src[(src, kind)].append((dst, q, s))
    # Slowest (HEIC) first so the pool's tail is short.
    work = sorted(((k[0], k[1], v) for k, v in by_src.items()), key=lambda j: j[1] != "heic")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        made = [d for ds in ex.map(_make_variants, work) for d in ds]
    # Distinct bytes: drop any accidental duplicate.
    seen: set[str] = set()
    for d in sorted(made):
        h = hashlib.sha256(Path(d).read_bytes()).hexdigest()
        if h in seen:
            os.unlink(d)
        seen.add(h)
    files = walk(out)
    kinds = Counter(magic_kind(p) for p in files)
    info = {
        "files": len(files),
        "sources": len(sources),
        "jpeg": kinds.get("jpeg", 0),
        "heic": kinds.get("heic", 0),
        "bytes": sum(p.stat().st_size for p in files),
        "build_s": round(time.perf_counter() - t0, 1),
    }
    marker.write_text(json.dumps(info))
    log(f"built {out}: {info}")
    return out, info


# -- camroll end to end ---------------------------------------------------------------------------


def loadavg() -> str:
    """1/5/15-minute load averages: other work on the machine skews every number here."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(env: dict) -> None:
    """Point this process's camroll at `env` (as tests/conftest.py's `env` fixture does)."""
    from camroll.config import get_settings
    from camroll.db.engine import _engine_for, _factory
    from camroll.storage import _cached

    os.environ.update(env)
    for cache in (get_settings, _factory, _cached, _engine_for):
        cache.cache_clear()


def proc_cpu_s(pid: int) -> float:
    """utime+stime of a live process and its live descendants (ExifTool), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                stack += [int(k) for k in kids]
        except (OSError, IndexError, ValueError):
            pass
    return total


@dataclass
class E2E:
    name: str
    files: int
    wall_s: float
    upload_done_s: float | None  # from sync start to the last asset row created
    photos: int
    videos: int
    quarantined: int
    other: int
    failed_jobs: int
    sync_cpu_s: float
    server_cpu_s: float
    by_kind: dict = field(default_factory=dict)
    quarantine_reasons: dict = field(default_factory=dict)
    data_dir: str = ""
    env: dict = field(default_factory=dict)
    load_before: str = ""
    load_after: str = ""


def old_tree(commit: str) -> Path:
    """The code at `commit`, unpacked under bench/work/ (`git archive`: the checkout and its
    index are not touched), so the old path runs in the same benchmark as the new one."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", commit], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if not sha:
        raise SystemExit(f"unknown commit {commit!r}")
    tree = WORK / f"old-{sha}"
    if not (tree / "camroll" / "__main__.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


# Run in the tree under test (its own migrations and accounts code): the new database, one user
# with cloud_processing only, and the user's sync token on stdout.
_SETUP = """
from camroll.db.migrate import upgrade
from camroll.accounts import create_token, create_user
from camroll.consent.gate import set_scopes
from camroll.db.engine import session_scope
upgrade()
with session_scope() as s:
    user = create_user(s, EMAIL)
    set_scopes(s, user.id, {"cloud_processing": True}, client="bench")
    print(create_token(s, user, "bench"))
"""


def run_e2e(name: str, roll: Path, settings: dict | None = None, tree: Path = REPO) -> E2E:
    """One end-to-end sync of `roll` into a fresh server; `settings` adds CAMROLL_* variables
    (the Pillow run turns libvips renditions off); `tree` is the code that serves and syncs
    (an `old_tree` for the old path)."""
    base = WORK / f"run-{name}"
    shutil.rmtree(base, ignore_errors=True)
    data = base / "data"
    data.mkdir(parents=True)
    env = {
        "CAMROLL_DATA_DIR": str(data),
        "CAMROLL_DATABASE_URL": f"sqlite:///{data / 'camroll.db'}",
        "XDG_STATE_HOME": str(base / "state"),
        **(settings or {}),
    }
    if tree != REPO:  # the tree's own package wins over the editable install
        env["PYTHONPATH"] = str(tree)
    # Never into os.environ: one run's settings (CAMROLL_PREVIEWS_LIBVIPS=false) must not
    # leak into the next run's server, as they did before 2026-11-30 17:40.
    setup = subprocess.run(
        [PY, "-c", f"EMAIL = 'bench-{name}@camroll.local'\n{_SETUP}"],
        env={**os.environ, **env},
        cwd=tree,
        capture_output=True,
        text=True,
    )
    if setup.returncode != 0:
        raise SystemExit(f"setup in {tree} failed:\n{setup.stderr[-3000:]}")
    token = setup.stdout.strip().splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = base / "server.log"
    server = subprocess.Popen(
        [PY, "-m", "camroll", "serve", "--port", str(port)],
        env={**os.environ, **env},
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=server_log.open("ab"),
    )
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise SystemExit(f"server died:\n{server_log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start within 60 s")
            time.sleep(0.2)
        files = walk(roll)
        load_before = loadavg()
        log(f"e2e {name}: syncing {len(files)} files from {roll}")
        cpu0 = proc_cpu_s(server.pid)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t_start_wall = datetime.now(UTC)
        t0 = time.perf_counter()
        res = subprocess.run(
            [
                PY,
                "-m",
                "camroll",
                "sync",
                str(roll),
                "--server",
                url,
                "--token",
                token,
                "--wait",
                "--json",
            ],
            env={**os.environ, **env},
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=3000,
        )
        wall = time.perf_counter() - t0
        load_after = loadavg()
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_cpu = proc_cpu_s(server.pid) - cpu0
        (base / "sync.json").write_text(res.stdout)
        (base / "sync.stderr").write_text(res.stderr)
        if res.returncode not in (0, 1):
            raise SystemExit(f"sync exited {res.returncode}:\n{res.stderr[-3000:]}")
        log(f"e2e {name}: done in {wall:.1f} s (sync exit {res.returncode})")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # Plain SQL: the old tree's schema may lack columns today's models have.
    import sqlite3

    with contextlib.closing(sqlite3.connect(data / "camroll.db")) as db:
        rows = db.execute("SELECT status, kind, quarantine_reason FROM assets").fetchall()
        last = db.execute("SELECT max(uploaded_at) FROM assets").fetchone()[0]
        failed = db.execute("SELECT count(*) FROM job_runs WHERE state = 'failed'").fetchone()[0]
    by = Counter((st, k) for st, k, _r in rows)
    reasons = Counter(r for st, _k, r in rows if st == "quarantined")
    last_upload = datetime.fromisoformat(last) if last else None
    photos = sum(n for (st, k), n in by.items() if st == "ready" and k in ("image", "raw"))
    videos = sum(n for (st, k), n in by.items() if st == "ready" and k == "video")
    quarantined = sum(n for (st, _k), n in by.items() if st == "quarantined")
    upload_done = None
    if last_upload is not None:
        lu = last_upload if last_upload.tzinfo else last_upload.replace(tzinfo=UTC)
        upload_done = (lu - t_start_wall).total_seconds()
    return E2E(
        name=name,
        files=len(files),
        wall_s=wall,
        upload_done_s=upload_done,
        photos=photos,
        videos=videos,
        quarantined=quarantined,
        other=len(rows) - photos - videos - quarantined,
        failed_jobs=failed or 0,
        sync_cpu_s=(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
        server_cpu_s=server_cpu,
        by_kind={f"{st}/{k}": n for (st, k), n in sorted(by.items(), key=str)},
        quarantine_reasons=dict(reasons),
        data_dir=str(data),
        env=env,
        load_before=load_before,
        load_after=load_after,
    )


# -- the floor ------------------------------------------------------------------------------------


@dataclass
class Floor:
    what: str
    files: int
    seconds: float
    note: str = ""
    extrapolated_from: int | None = None

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else float("inf")


def floor_read(files: list[Path]) -> Floor:
    for p in files:  # warm the page cache first
        p.read_bytes()
    t0 = time.perf_counter()
    n = sum(len(p.read_bytes()) for p in files)
    return Floor(
        "read all bytes (warm page cache)",
        len(files),
        time.perf_counter() - t0,
        f"{n / 1e6:.0f} MB",
    )


def floor_sha(files: list[Path]) -> Floor:
    from camroll.client.sync import sha256_file

    t0 = time.perf_counter()
    for p in files:
        sha256_file(p)
    return Floor("SHA-256 (hashlib, 1 MiB chunks, as sync)", len(files), time.perf_counter() - t0)


def floor_decode(files: list[Path], kind: str, max_side: int = 1440) -> Floor:
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    chosen = [p for p in files if magic_kind(p) == kind]
    ok = bad = 0
    t0 = time.perf_counter()
    for p in chosen:
        try:
            with Image.open(p) as im:
                if kind == "jpeg":
                    w, h = im.size
                    scale = max_side / max(w, h)
                    if scale < 1:
                        im.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
                im.load()
            ok += 1
        except Exception:
            bad += 1
    dt = time.perf_counter() - t0
    what = (
        "JPEG draft decode to <=1440 px (Pillow)"
        if kind == "jpeg"
        else "HEIC full decode (pillow-heif)"
    )
    return Floor(what, len(chosen), dt, f"{bad} failed to decode" if bad else "")


def floor_exiftool_per_process(files: list[Path], sample: int) -> Floor:
    chosen = files if len(files) <= sample else random.Random(2).sample(files, sample)
    t0 = time.perf_counter()
    for p in chosen:
        subprocess.run([EXIFTOOL, "-json", "-n", str(p)], capture_output=True, check=False)
    dt = time.perf_counter() - t0
    return Floor(
        "exiftool -json -n FILE, one process per file",
        len(chosen),
        dt,
        extrapolated_from=len(chosen) if len(chosen) < len(files) else None,
    )


def floor_exiftool_stay_open(files: list[Path], batch: int | None) -> Floor:
    from camroll.media.exiftool import ExifTool

    with ExifTool() as et:
        et.version()  # process started and warm before the clock starts
        t0 = time.perf_counter()
        if batch is None:
            for p in files:
                et.read([p])
        else:
            for i in range(0, len(files), batch):
                et.read(files[i : i + batch])
        dt = time.perf_counter() - t0
    what = (
        "ExifTool.read([f]) stay_open, one file per call (as the pipeline)"
        if batch is None
        else f"ExifTool.read(batch of {batch}) stay_open"
    )
    return Floor(what, len(files), dt)


def floor_pipeline_metadata(files: list[Path]) -> Floor:
    """What process_asset actually does per file: read_metadata([path]) + exiftool_version()."""
    from camroll.media.exiftool import exiftool_version
    from camroll.media.metadata import read_metadata

    exiftool_version()
    t0 = time.perf_counter()
    for p in files:
        read_metadata([p])
        exiftool_version()
    return Floor(
        "read_metadata([f]) + exiftool_version() per file (process_asset's calls)",
        len(files),
        time.perf_counter() - t0,
    )


def floors_for(files: list[Path], et_sample: int) -> list[Floor]:
    jpeg, heic = floor_decode(files, "jpeg"), floor_decode(files, "heic")
    both = Floor(
        "decode, all JPEG+HEIC photos (the two rows above together)",
        jpeg.files + heic.files,
        jpeg.seconds + heic.seconds,
    )
    out = [floor_read(files), floor_sha(files), jpeg, heic, both]
    out += [
        floor_exiftool_per_process(files, et_sample),
        floor_exiftool_stay_open(files, None),
        floor_exiftool_stay_open(files, 50),
        floor_exiftool_stay_open(files, len(files)),
        floor_pipeline_metadata(files),
    ]
    return out


# -- in-process stage profile ---------------------------------------------------------------------


def stage_profile(run: E2E, sample: int) -> dict:
    """Re-run process_asset in this process on a sample of the run's ready photos, with each
    step timed. The originals are already stored, so the copy step is a decrypt (the first run
    also encrypted the staged upload: see `encrypt_original` below, measured separately)."""
    configure(run.env)
    from sqlalchemy import select

    import camroll.ingest.process as proc
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset

    with session_scope() as s:
        ids = s.scalars(
            select(Asset.id)
            .where(Asset.status == "ready", Asset.kind.in_(["image", "raw"]))
            .order_by(Asset.id)
        ).all()
    ids = random.Random(3).sample(list(ids), min(sample, len(ids)))
    with session_scope() as s:
        for a in s.scalars(select(Asset).where(Asset.id.in_(ids))):
            a.status = "pending"

    times: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                times[name] += time.perf_counter() - t

        return wrapper

    orig_copy = proc.plaintext_copy

    @contextlib.contextmanager
    def timed_copy(session, asset):
        t = time.perf_counter()
        cm = orig_copy(session, asset)
        path = cm.__enter__()
        times["decrypt original to temp file"] += time.perf_counter() - t
        try:
            yield path
        finally:
            t = time.perf_counter()
            cm.__exit__(None, None, None)
            times["remove temp file"] += time.perf_counter() - t

    patches = {
        "plaintext_copy": timed_copy,
        "read_metadata": timed("exiftool read_metadata([f])", proc.read_metadata),
        "exiftool_version": timed("exiftool_version() (per asset!)", proc.exiftool_version),
        "classify": timed("classify(): sniff + headers", proc.classify),
        "render_within": timed(
            "render_within(): the one decode + both renditions, in the helper process",
            proc.render_within,
        ),
        "put_encrypted": timed("encrypt + store renditions", proc.put_encrypted),
    }
    saved = {k: getattr(proc, k) for k in patches}
    for k, v in patches.items():
        setattr(proc, k, v)
    try:
        t0 = time.perf_counter()
        statuses = Counter(proc.process_asset(i) for i in ids)
        total = time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            setattr(proc, k, v)

    # Sub-steps of render_previews, timed directly on plaintext copies of the same sample.
    from PIL import Image

    from camroll.config import get_settings
    from camroll.media import previews
    from camroll.media.metadata import read_metadata
    from camroll.media.validate import classify, decode_image, sniff
    from camroll.storage.blobs import read_decrypted

    sub: dict[str, float] = defaultdict(float)
    tmp = WORK / "profile-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    px = get_settings().preview_px
    with session_scope() as s:
        assets = s.scalars(select(Asset).where(Asset.id.in_(ids))).all()
        paths = []
        for a in assets:
            p = tmp / a.id
            t = time.perf_counter()
            with p.open("wb") as f:
                for chunk in read_decrypted(s, a.user_id, a.original_key):
                    f.write(chunk)
            sub["decrypt original"] += time.perf_counter() - t
            paths.append((p, a.kind))
        # Encrypting an original (what the first run does with the staged upload).
        from camroll.crypto.stream import encrypt_stream
        from camroll.keyring import user_data_key

        key = user_data_key(s, assets[0].user_id)
        t = time.perf_counter()
        for p, _k in paths:
            with p.open("rb") as f:
                for _chunk in encrypt_stream(key, "bench", f):
                    pass
        sub["encrypt original (stream, discarded)"] += time.perf_counter() - t
    for p, kind in paths:
        meta = read_metadata([p])[0]
        t = time.perf_counter()
        classify(p, meta.mime, decode=False)
        sub["classify(decode=False): headers only"] += time.perf_counter() - t
        if kind != "image":
            continue
        mime = sniff(p) or "image/jpeg"
        t = time.perf_counter()
        with decode_image(p, mime, px) as im:
            t1 = time.perf_counter()
            sub["decode_image (draft for JPEG)"] += t1 - t
            up = previews._upright(im, meta.orientation)
            up.info.setdefault("icc_profile", im.info.get("icc_profile"))
        t2 = time.perf_counter()
        sub["exif_transpose / orientation"] += t2 - t1
        icc = up.info.get("icc_profile") or None
        image = previews._eight_bit(up)
        target = previews._fit(image.size, px)
        if target != image.size:
            image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        t3 = time.perf_counter()
        sub["LANCZOS resize to 1440"] += t3 - t2
        preview = previews._to_srgb(image, icc)
        t4 = time.perf_counter()
        sub["ICC -> sRGB"] += t4 - t3
        buf = io.BytesIO()
        preview.save(buf, "JPEG", quality=85, progressive=True, optimize=True)
        t5 = time.perf_counter()
        sub["preview JPEG encode (progressive, optimize)"] += t5 - t4
        buf2 = io.BytesIO()
        preview.save(buf2, "JPEG", quality=85)
        t6 = time.perf_counter()
        sub["(alt) preview JPEG baseline, no optimize"] += t6 - t5
        thumb = preview.resize(previews._fit(preview.size, 256), Image.Resampling.LANCZOS)
        t7 = time.perf_counter()
        sub["thumbnail resize"] += t7 - t6
        thumb.save(io.BytesIO(), "WEBP", quality=80, method=4)
        t8 = time.perf_counter()
        sub["thumbnail WebP encode (method=4)"] += t8 - t7
        if mime == "image/jpeg":
            from camroll.media.vips_renditions import render_jpeg

            t9 = time.perf_counter()
            render_jpeg(p, px, 256, meta.orientation)
            sub["(new) libvips render_jpeg: decode + both renditions"] += time.perf_counter() - t9
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "n": len(ids),
        "statuses": dict(statuses),
        "total_s": total,
        "steps": dict(times),
        "sub": dict(sub),
        "sub_n": len(paths),
        "sub_images": sum(1 for _p, k in paths if k == "image"),
    }


# -- report ---------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, IndexError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.strip()
    et = subprocess.run([EXIFTOOL, "-ver"], capture_output=True, text=True).stdout.strip()
    import PIL
    import pillow_heif

    return {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram": mem,
        "commit": commit + (" (working tree has uncommitted changes)" if dirty else ""),
        "python": platform.python_version(),
        "versions": f"Pillow {PIL.__version__}, pillow-heif {pillow_heif.__version__}, "
        f"ExifTool {et}",
    }


def fmt_rate(x: float) -> str:
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def report(
    m: dict, runs: list[tuple[E2E, list[Floor], dict]], profile: dict | None, large_info: dict, args
) -> str:
    L: list[str] = []
    L.append("# Ingest throughput: camroll end to end vs the floor")
    L.append("")
    L.append(f"- date: {m['date']}")
    L.append(f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, no GPU")
    L.append(f"- commit: {m['commit']}")
    L.append(f"- Python {m['python']}; {m['versions']}")
    L.append(f"- command: `.venv/bin/python bench/ingest.py --large {args.large}`")
    L.append(
        "- camroll: `camroll serve` (embedded SQLite + SqliteHuey, CAMROLL_WORKERS threads, default 4) "
        "in a subprocess; `camroll sync DIR --wait --json` in another."
    )
    L.append(
        "- every floor number is single-threaded, in one process, on the same files, "
        "with a warm page cache."
    )
    L.append("")
    for e, floors, meta in runs:
        L.append(f"## {meta['title']}")
        L.append("")
        L.append(f"{meta['desc']}")
        L.append("")
        L.append(
            f"Files: {e.files} ({meta['mb']:.0f} MB), of which JPEG {meta['jpeg']}, "
            f"HEIC {meta['heic']} by content. After ingest: **{e.photos} photos ready** "
            f"(image/raw), {e.videos} videos ready, {e.quarantined} quarantined, "
            f"{e.other} other, {e.failed_jobs} failed jobs."
        )
        if e.quarantine_reasons:
            L.append(
                f"Quarantine reasons: {', '.join(f'{k} {v}' for k, v in sorted(e.quarantine_reasons.items()))}."
            )
        L.append("")
        up = (
            f"{e.upload_done_s:.1f} s ({100 * e.upload_done_s / e.wall_s:.0f}% of the wall time)"
            if e.upload_done_s
            else "n/a"
        )
        L.append("| camroll end to end | value |")
        L.append("|---|---|")
        L.append(f"| wall time, sync start to end of `--wait` | **{e.wall_s:.1f} s** |")
        L.append(f"| photos/s (ready photos / wall) | **{fmt_rate(e.photos / e.wall_s)}** |")
        L.append(f"| files/s (all files / wall) | {fmt_rate(e.files / e.wall_s)} |")
        L.append(f"| last file uploaded (hash + check + upload done) | {up} |")
        L.append(f"| sync client CPU (hashing, HTTP, tus, polling) | {e.sync_cpu_s:.1f} s |")
        L.append(
            f"| server CPU (API + workers + decode helpers + ExifTool) | {e.server_cpu_s:.1f} s "
            f"= {e.server_cpu_s / max(e.photos + e.videos + e.quarantined, 1) * 1000:.0f} ms per asset |"
        )
        L.append(
            f"| load average before / after the sync (1, 5, 15 min) | {e.load_before} / {e.load_after} |"
        )
        L.append(
            f"| CPU utilisation (client+server CPU / wall / {m['nproc']} cores) | "
            f"{100 * (e.sync_cpu_s + e.server_cpu_s) / e.wall_s / (m['nproc'] or 1):.0f}% |"
        )
        L.append("")
        cam_rate = e.photos / e.wall_s
        L.append(
            "| floor (same files, same run) | files | time | files/s | camroll photos/s ÷ floor files/s |"
        )
        L.append("|---|---:|---:|---:|---:|")
        for f in floors:
            t = f"{f.seconds:.2f} s" + (
                f" (sample of {f.extrapolated_from})" if f.extrapolated_from else ""
            )
            note = f" — {f.note}" if f.note else ""
            ratio = f"{cam_rate / f.rate:.3f}×" if f.files and f.seconds > 0 else "n/a"
            L.append(
                f"| {f.what}{note} | {f.files} | {t} | {fmt_rate(f.rate) if f.files else '-'} | {ratio} |"
            )
        L.append("")
        sha = next(f for f in floors if f.what.startswith("SHA"))
        dec = next(f for f in floors if f.what.startswith("JPEG"))
        both = next(f for f in floors if f.what.startswith("decode, all"))
        L.append(
            f"In words: camroll ingests this roll at **{cam_rate / dec.rate:.2f}× the speed of "
            f"JPEG draft decode alone**, {cam_rate / both.rate:.2f}× the speed of decoding "
            f"its JPEG+HEIC photos once (draft JPEG, full HEIC), "
            f"and {cam_rate / sha.rate:.3f}× the speed of SHA-256 "
            f"alone (single-threaded floors; the server had {m['nproc']} cores)."
        )
        L.append("")
    if profile:
        L.append("## Where the time goes: process_asset stages, in-process")
        L.append("")
        L.append(
            f"`process_asset` re-run serially in the benchmark process on {profile['n']} random "
            f"ready photos of the large roll (status reset to pending; originals already "
            f"stored, so the first step is a decrypt), with each call timed "
            f"(statuses: {profile['statuses']}). Total **{profile['total_s']:.2f} s = "
            f"{1000 * profile['total_s'] / profile['n']:.0f} ms per photo** "
            f"(= {profile['n'] / profile['total_s']:.1f} photos/s on one thread)."
        )
        L.append("")
        L.append("| step (inside process_asset) | total | per photo | share |")
        L.append("|---|---:|---:|---:|")
        accounted = 0.0
        for k, v in sorted(profile["steps"].items(), key=lambda kv: -kv[1]):
            accounted += v
            L.append(
                f"| {k} | {v:.2f} s | {1000 * v / profile['n']:.1f} ms | "
                f"{100 * v / profile['total_s']:.0f}% |"
            )
        rest = profile["total_s"] - accounted
        L.append(
            f"| rest: DB session, queries, commit, Image.open of renditions | {rest:.2f} s | "
            f"{1000 * rest / profile['n']:.1f} ms | {100 * rest / profile['total_s']:.0f}% |"
        )
        L.append("")
        n = profile["sub_images"] or 1
        L.append(
            f"Sub-steps, timed directly on plaintext copies of the same sample "
            f"({profile['sub_n']} files, {profile['sub_images']} decoded as images):"
        )
        L.append("")
        L.append("| sub-step | total | per photo |")
        L.append("|---|---:|---:|")
        for k, v in profile["sub"].items():
            L.append(f"| {k} | {v:.2f} s | {1000 * v / n:.1f} ms |")
        L.append("")
    return "\n".join(L) + "\n"


def renditions_compare(files: list[Path], rounds: int = 1) -> dict:
    """`render_previews` per photo, Pillow (old) then libvips (new), alternating file by file,
    one thread, in this process: CPU seconds of each, and how many took the libvips path."""
    from camroll.config import get_settings
    from camroll.media.previews import render_previews
    from camroll.media.validate import Quarantined

    cpu = {"old": 0.0, "new": 0.0}
    done = 0
    for _ in range(rounds):
        for path in files:
            try:
                for which, flag in (("old", "false"), ("new", "true")):
                    os.environ["CAMROLL_PREVIEWS_LIBVIPS"] = flag
                    get_settings.cache_clear()
                    t = time.process_time()
                    render_previews(path, "image")
                    cpu[which] += time.process_time() - t
                done += 1
            except Quarantined:
                continue
    os.environ.pop("CAMROLL_PREVIEWS_LIBVIPS", None)
    get_settings.cache_clear()
    return {"photos": done, **cpu}


def old_vs_new(
    olds: list[tuple[str, E2E]], new: E2E, renditions: dict, extra: list[tuple[str, E2E]]
) -> str:
    """The large roll through the old code (Pillow, then libvips renditions) and the new, in
    one run, each in a fresh server."""

    def per_asset(e: E2E) -> float:
        return e.server_cpu_s / max(e.photos + e.videos + e.quarantined, 1)

    def rate(e: E2E) -> float:
        return e.photos / e.wall_s

    rows = [*olds, ("new code", new), *extra]
    L = [
        "",
        "## Large roll, old code vs new, same run",
        "",
        "Each row is a fresh server and `camroll sync --wait` of the same roll, in this order. The "
        "old code is unpacked from git (`--old-commit`) and run with the same virtualenv.",
        "",
        "| code | photos ready | wall | photos/s | new code ÷ this | server CPU per asset "
        "| sync CPU | load before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for what, e in rows:
        L.append(
            f"| {what} | {e.photos} | {e.wall_s:.1f} s | {fmt_rate(rate(e))} "
            f"| **{rate(new) / max(rate(e), 1e-9):.2f}x** | {per_asset(e) * 1000:.0f} ms "
            f"| {e.sync_cpu_s:.1f} s | {e.load_before} / {e.load_after} |"
        )
    n = max(renditions["photos"], 1)
    L.append("")
    L.append(
        f"`render_previews` alone on {renditions['photos']} photos of the roll, one thread, "
        f"Pillow and libvips alternating file by file: Pillow {renditions['old'] / n * 1000:.0f} "
        f"ms CPU per photo, libvips for JPEG (Pillow for HEIC) "
        f"{renditions['new'] / n * 1000:.0f} ms: "
        f"**{renditions['old'] / max(renditions['new'], 1e-9):.2f}x** less CPU."
    )
    L.append("")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--large", type=int, default=400, help="photos in the re-encoded roll (400)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    ap.add_argument(
        "--exiftool-sample",
        type=int,
        default=120,
        help="files timed for the one-process-per-file ExifTool floor (120)",
    )
    ap.add_argument(
        "--profile-sample",
        type=int,
        default=60,
        help="photos re-processed for the in-process stage profile (60)",
    )
    ap.add_argument("--skip-shared", action="store_true", help="only the large roll")
    ap.add_argument("--no-old", action="store_true", help="skip the large roll's old-code runs")
    ap.add_argument(
        "--old-commit",
        default="2934867",
        help="the old code, run on the large roll first (2934867: before the upload-path work "
        "of issue 14 part 7)",
    )
    ap.add_argument(
        "--workers-row",
        type=int,
        default=2,
        help="also run the new code with this many worker threads, after the rest (2, the old "
        "default, separates the CPU cuts from the default of 4 threads; 0: not)",
    )
    ap.add_argument("--jpeg-only", action="store_true", help="a large roll of JPEG sources only")
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)
    t_all = time.perf_counter()
    m = machine()
    large, large_info = build_large_roll(args.large, args.jpeg_only)

    rolls = []
    if not args.skip_shared:
        rolls.append(
            (
                "shared",
                SHARED_ROLL,
                "Shared roll: /work/shared/data/camera-roll",
                "The real mixed roll, every file (photos, RAW, videos, sidecars, broken "
                "files), as `camroll sync` walks it.",
            )
        )
    rolls.append(
        (
            "large",
            large,
            f"Large roll: {large_info['files']} re-encoded photos",
            f"Re-encoded with Pillow from the {large_info['sources']} decodable JPEG/HEIC "
            f"photos (>= 0.3 MP) of the shared roll at 4 qualities x 4 scales (1.0-0.85; one variant per HEIC source, HEIC encoding is slow), "
            f"EXIF and ICC kept, every file distinct bytes. Built in "
            f"{large_info['build_s']} s (cached in bench/work/ and reused).",
        )
    )
    olds: list[tuple[str, E2E]] = []
    if not args.no_old:  # the same roll through the old code, same run, first
        tree = old_tree(args.old_commit)
        log(f"e2e large, old code {tree.name}, Pillow renditions (CAMROLL_PREVIEWS_LIBVIPS=false)")
        pillow = run_e2e("large-old-pillow", large, {"CAMROLL_PREVIEWS_LIBVIPS": "false"}, tree)
        olds.append((f"old code ({tree.name[4:]}), Pillow renditions", pillow))
        log(f"e2e large, old code {tree.name}, libvips renditions")
        olds.append(
            (
                f"old code ({tree.name[4:]}), libvips renditions",
                run_e2e("large-old", large, None, tree),
            )
        )
    runs = []
    for name, roll, title, desc in rolls:
        e = run_e2e(name, roll)
        files = walk(roll)
        log(f"floors for {name}: {len(files)} files")
        fl = floors_for(files, args.exiftool_sample)
        kinds = Counter(magic_kind(p) for p in files)
        meta = {
            "title": title,
            "desc": desc,
            "jpeg": kinds.get("jpeg", 0),
            "heic": kinds.get("heic", 0),
            "mb": sum(p.stat().st_size for p in files) / 1e6,
        }
        runs.append((e, fl, meta))
        for f in fl:
            log(f"  {f.what}: {f.files} in {f.seconds:.2f} s = {f.rate:.1f}/s")
    extra: list[tuple[str, E2E]] = []
    if args.workers_row:  # the same new code with another number of worker threads
        log(f"e2e large, new code, CAMROLL_WORKERS={args.workers_row}")
        w = run_e2e(f"large-w{args.workers_row}", large, {"CAMROLL_WORKERS": str(args.workers_row)})
        extra.append((f"new code, CAMROLL_WORKERS={args.workers_row}", w))
    log("stage profile")
    large_run = next(e for e, _f, _m in runs if e.name == "large")
    profile = stage_profile(large_run, args.profile_sample) if args.profile_sample else None
    text = report(m, runs, profile, large_info, args)
    if olds:
        log("renditions alone, Pillow and libvips, alternating")
        sample = random.Random(5).sample(walk(large), min(args.profile_sample or 60, 120))
        text += old_vs_new(olds, large_run, renditions_compare(sample), extra)
    text += f"\n_Benchmark wall time: {time.perf_counter() - t_all:.0f} s._\n"
    args.out.write_text(text)
    (WORK / "last-run.json").write_text(
        json.dumps(
            {
                "machine": m,
                "runs": [
                    {"e2e": e.__dict__, "floors": [f.__dict__ for f in fl]} for e, fl, _m in runs
                ],
                "profile": profile,
            },
            default=str,
            indent=2,
        )
    )
    print(text)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
