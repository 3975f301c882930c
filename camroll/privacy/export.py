"""The owner's export: one zip with the originals, XMP sidecars and JSON of everything held.

Layout of the zip:

- ``originals/<device path or file name>``: each stored original, decrypted, byte-identical to
  what was uploaded (quarantined files included: they are the owner's too). Names that collide
  (case-insensitively) get `` (2)``, `` (3)``… before the extension.
- ``originals/<that name>.xmp``: an XMP sidecar per original, written by ExifTool, so other photo
  tools read the capture date (with its UTC offset when known), GPS position and the original
  file name, keywords (tags and the names of the people in it) and MWG face regions.
- ``creations/<title>.jpg|.mp4``: the owner's accepted creations (collages, recaps, restyles).
- ``creations/music/<file name>``: the tracks the owner uploaded for recaps, as uploaded.
- ``camroll.json``: the transparency report (`build_report`) with every asset on one page, each
  asset item naming its ``export_path`` and ``sidecar_path`` in the zip.

The zip is built in a private work folder (0700, swept after a crash) and stored encrypted under the
owner's key as ``u/<user>/exports/<export id>.zip``; nothing in the data folder is plaintext.
"""

from __future__ import annotations

import json
import posixpath
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.engine import session_scope
from camroll.db.models import (
    Asset,
    AssetMetadata,
    AssetTag,
    Face,
    Idea,
    Person,
    RecapTrack,
    utcnow,
)
from camroll.media.exiftool import ExifToolError, shared_exiftool
from camroll.privacy import exports
from camroll.privacy.audit import MAX_PAGE, events, record
from camroll.privacy.exports import export_key
from camroll.privacy.report import MAX_ASSET_LIMIT, build_report
from camroll.storage import BlobNotFound
from camroll.storage.blobs import put_encrypted, read_decrypted
from camroll.storage.workfiles import private_dir

FORMAT_VERSION = 1
ORIGINALS_DIR = "originals"
CREATIONS_DIR = "creations"
REPORT_NAME = "camroll.json"
# What the export cannot hold yet, said in the file itself rather than left to guesswork.
NOT_YET = [
    "face regions of faces found in video frames (XMP regions describe one still image)",
    "assets whose original is still being stored (status pending) have no file in originals/",
]


def _safe_name(asset: Asset) -> str:
    """A relative zip path from the device path (or file name): no absolute or parent parts."""
    raw = (asset.device_path or asset.filename or asset.id).replace("\\", "/")
    raw = "".join(" " if c in "\r\n\x00" else c for c in raw)
    parts = [p for p in raw.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or asset.id


def _safe_title(title: str) -> str:
    keep = "".join(c if c.isalnum() or c in " -_,." else "_" for c in title).strip(" .")
    return keep[:80] or "creation"


def _unique(name: str, taken: set[str]) -> str:
    stem, ext = posixpath.splitext(name)
    candidate, n = name, 1
    # The sidecar's name is reserved with the original's, so no original can shadow a sidecar.
    while candidate.lower() in taken or f"{candidate}.xmp".lower() in taken:
        n += 1
        candidate = f"{stem} ({n}){ext}"
    taken.add(candidate.lower())
    taken.add(f"{candidate}.xmp".lower())
    return candidate


def _xmp_date(meta: AssetMetadata) -> str | None:
    if not meta.taken_at_local:
        return None
    return meta.taken_at_local + (meta.tz_offset or "")


def _struct_escape(v: str) -> str:
    # ExifTool's structure syntax: these characters are escaped with "|".
    return "".join(f"|{c}" if c in "|,[]{}=" else c for c in v)


def _regions(meta: AssetMetadata | None, faces: list[tuple[Face, str | None]]) -> str:
    """MWG face regions (mwg-rs): centre, width and height as fractions, with the name."""
    items = []
    for face, name in faces:
        area = (
            f"Area={{X={face.box_x + face.box_w / 2:.5f},Y={face.box_y + face.box_h / 2:.5f},"
            f"W={face.box_w:.5f},H={face.box_h:.5f},Unit=normalized}}"
        )
        named = f",Name={_struct_escape(name)}" if name else ""
        items.append(f"{{{area}{named},Type=Face}}")
    dims = ""
    if meta is not None and meta.width and meta.height:
        dims = f"AppliedToDimensions={{W={meta.width},H={meta.height},Unit=pixel}},"
    return f"{{{dims}RegionList=[{','.join(items)}]}}"


def sidecar_args(
    asset: Asset,
    meta: AssetMetadata | None,
    tags: list[str] | None = None,
    faces: list[tuple[Face, str | None]] | None = None,
) -> list[str]:
    """ExifTool tag assignments for one asset's sidecar: date, GPS, file name, keywords (tags
    and people's names) and MWG face regions."""
    args = [f"-XMP-xmpMM:PreservedFileName={asset.filename}"]
    if meta is not None:
        when = _xmp_date(meta)
        if when:
            args.append(f"-XMP-exif:DateTimeOriginal={when}")
        if meta.latitude is not None and meta.longitude is not None:
            args += [
                f"-XMP-exif:GPSLatitude={meta.latitude!r}",
                f"-XMP-exif:GPSLongitude={meta.longitude!r}",
            ]
            if meta.altitude is not None:
                args += [
                    f"-XMP-exif:GPSAltitude={abs(meta.altitude)!r}",
                    f"-XMP-exif:GPSAltitudeRef#={1 if meta.altitude < 0 else 0}",
                ]
    names = sorted({n for _, n in faces or [] if n})
    for keyword in [*(tags or []), *names]:
        args.append(f"-XMP-dc:Subject={keyword}")
    if faces:
        args.append(f"-XMP-mwg-rs:RegionInfo={_regions(meta, faces)}")
    return ["".join(" " if c in "\r\n" else c for c in a) for a in args]


def write_sidecar(args: list[str], out: Path) -> bytes:
    """A new XMP file holding just these tags, made by ExifTool; returns its bytes."""
    out.unlink(missing_ok=True)  # ExifTool never overwrites
    shared_exiftool().execute("-o", str(out), *args)
    if not out.is_file():
        raise ExifToolError(f"exiftool wrote no sidecar for {args[0]!r}")
    data = out.read_bytes()
    out.unlink()
    return data


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


def full_report(session: Session, user_id: str) -> dict[str, Any]:
    """`build_report` with every asset: the pages joined into one."""
    report = build_report(session, user_id, asset_limit=MAX_ASSET_LIMIT)
    page = report["assets"]
    items = list(page["items"])
    while page["next_cursor"]:
        page = build_report(
            session, user_id, asset_limit=MAX_ASSET_LIMIT, asset_cursor=page["next_cursor"]
        )["assets"]
        items += page["items"]
    report["assets"] = {"total": len(items), "items": items}
    report["access_log"]["items"] = _access_log(session, user_id)
    return report


def _access_log(session: Session, user_id: str) -> list[dict[str, Any]]:
    """Every access-log entry still kept (CAMROLL_AUDIT_DAYS), oldest first."""
    rows, before = events(session, user_id, MAX_PAGE)
    while before is not None:
        more, before = events(session, user_id, MAX_PAGE, before)
        rows += more
    keys = ("at", "actor", "action", "target")
    return [{k: getattr(r, k) for k in keys} for r in reversed(rows)]


def _zipinfo(name: str, compress: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=utcnow().timetuple()[:6])
    info.compress_type = compress
    info.external_attr = 0o600 << 16
    return info


def _copy(chunks: Iterator[bytes], dest: Any) -> None:
    for chunk in chunks:
        dest.write(chunk)


def build_export(export_id: str, user_id: str) -> str | None:
    """Build and store the zip; returns its blob key, or None when the export was deleted
    meanwhile. Idempotent: a rerun rebuilds and replaces."""
    with private_dir("camroll-export-") as workdir:
        zpath = workdir / "export.zip"
        sidecar = workdir / "sidecar.xmp"
        with session_scope() as session:
            record(session, (user_id, "job:export"), "export.build", export_id)
            report = full_report(session, user_id)
            assets = {
                a.id: a for a in session.scalars(select(Asset).where(Asset.user_id == user_id))
            }
            metas = {
                m.asset_id: m
                for m in session.scalars(
                    select(AssetMetadata).where(AssetMetadata.user_id == user_id)
                )
            }
            tags: dict[str, list[str]] = {}
            for t in session.scalars(
                select(AssetTag).where(AssetTag.user_id == user_id).order_by(AssetTag.score.desc())
            ):
                tags.setdefault(t.asset_id, []).append(t.label)
            faces: dict[str, list[tuple[Face, str | None]]] = {}
            for f, name in session.execute(
                select(Face, Person.name)
                .outerjoin(Person, Person.id == Face.person_id)
                .where(Face.user_id == user_id, Face.at_seconds.is_(None))
            ):
                faces.setdefault(f.asset_id, []).append((f, name))
            taken: set[str] = {REPORT_NAME.lower()}
            with zipfile.ZipFile(zpath, "w", allowZip64=True) as zf:
                for item in report["assets"]["items"]:
                    asset = assets.get(item["id"])
                    item["export_path"] = item["sidecar_path"] = None
                    if asset is None or asset.original_key is None:
                        continue
                    name = f"{ORIGINALS_DIR}/{_unique(_safe_name(asset), taken)}"
                    # Media is compressed already: stored, not deflated.
                    with zf.open(_zipinfo(name, zipfile.ZIP_STORED), "w", force_zip64=True) as f:
                        _copy(read_decrypted(session, user_id, asset.original_key), f)
                    args = sidecar_args(
                        asset, metas.get(asset.id), tags.get(asset.id), faces.get(asset.id)
                    )
                    xmp = write_sidecar(args, sidecar)
                    zf.writestr(_zipinfo(f"{name}.xmp", zipfile.ZIP_DEFLATED), xmp)
                    item["export_path"], item["sidecar_path"] = name, f"{name}.xmp"
                for idea in session.scalars(
                    select(Idea).where(
                        Idea.user_id == user_id,
                        Idea.state == "accepted",
                        Idea.blob_key.is_not(None),
                    )
                ):
                    ext = ".mp4" if idea.media_mime == "video/mp4" else ".jpg"
                    try:
                        # Opened before the zip entry: an open blob is a snapshot that a
                        # re-render (which replaces it whole) cannot change under us.
                        chunks = read_decrypted(session, user_id, idea.blob_key)
                    except BlobNotFound:
                        continue  # dismissed or deleted since the query: not in the export
                    name = f"{CREATIONS_DIR}/{_unique(_safe_title(idea.title) + ext, taken)}"
                    with zf.open(_zipinfo(name, zipfile.ZIP_STORED), "w", force_zip64=True) as f:
                        _copy(chunks, f)
                for track in session.scalars(
                    select(RecapTrack).where(RecapTrack.user_id == user_id)
                ):
                    try:
                        chunks = read_decrypted(session, user_id, track.blob_key)
                    except BlobNotFound:
                        continue  # deleted since the query
                    title = _unique(_safe_title(track.name), taken)
                    name = f"{CREATIONS_DIR}/music/{title}"
                    with zf.open(_zipinfo(name, zipfile.ZIP_STORED), "w", force_zip64=True) as f:
                        _copy(chunks, f)
                report["export"] = {
                    "id": export_id,
                    "format_version": FORMAT_VERSION,
                    "created_at": utcnow(),
                    "layout": {
                        "originals": f"{ORIGINALS_DIR}/<device path or file name>",
                        "sidecars": f"{ORIGINALS_DIR}/<device path or file name>.xmp",
                        "metadata": REPORT_NAME,
                        "creations": f"{CREATIONS_DIR}/<title>.jpg|.mp4 (accepted ideas)",
                        "music": f"{CREATIONS_DIR}/music/<file name> (your recap tracks)",
                    },
                    "not_included": NOT_YET,
                }
                body = json.dumps(report, default=_json_default, indent=1, ensure_ascii=False)
                zf.writestr(_zipinfo(REPORT_NAME, zipfile.ZIP_DEFLATED), body.encode())
            key = export_key(user_id, export_id)
            with zpath.open("rb") as f:
                put_encrypted(session, user_id, key, f)
            size = zpath.stat().st_size
        # Deleted while it was built (a scope revoked, the account deleted): the zip goes too.
        return key if exports.finish(user_id, export_id, size) else None
