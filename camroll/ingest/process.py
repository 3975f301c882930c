"""Processing one asset: store the original encrypted, read metadata, validate, make previews.

Idempotent: every step upserts, and a rerun after a crash starts from whatever already exists
(the staged upload or the stored original).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import PIL
from PIL import Image
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from camroll.db.engine import session_scope
from camroll.db.models import Asset, AssetMetadata, Rendition, Upload
from camroll.ingest.uploads import staging_for
from camroll.media.budget import check_costs
from camroll.media.deadline import render_within
from camroll.media.exiftool import ExifToolTimeout, exiftool_version
from camroll.media.metadata import MediaMetadata, read_metadata
from camroll.media.probe import video_size
from camroll.media.validate import Quarantined, classify
from camroll.pipeline.step import BaseStep, run_steps
from camroll.search.index import index_asset
from camroll.storage.blobs import blob_key, put_encrypted, read_decrypted
from camroll.storage.workfiles import private_dir

log = logging.getLogger(__name__)
PREVIEWS_MODEL = ("pillow", PIL.__version__)
TOO_SLOW_TO_READ = "too costly to decode: reading its metadata passed ExifTool's time limit"


@contextmanager
def plaintext_copy(session: Session, asset: Asset) -> Iterator[Path]:
    """The original as a file in a private work folder (camroll.storage.workfiles), removed
    afterwards, and swept after a crash. ExifTool and the video decoder need a real file."""
    with private_dir("camroll-work-") as workdir:
        yield _write_plaintext(session, asset, workdir / "original")


def _write_plaintext(session: Session, asset: Asset, path: Path) -> Path:
    if asset.original_key is None:
        upload = session.scalars(select(Upload).where(Upload.asset_id == asset.id)).first()
        if upload is None:
            raise RuntimeError(f"asset {asset.id} has neither an original nor a staged upload")
        staging = staging_for(session, upload)
        staging.write_plaintext(path, upload.length)  # all of it, or StagingDamaged
        key = blob_key(asset.user_id, asset.id, "original")
        with path.open("rb") as f:
            put_encrypted(session, asset.user_id, key, f)
        asset.original_key = key
        session.delete(upload)
        session.commit()  # the original is safe before the staging goes
        staging.remove()
    else:
        with path.open("wb") as out:
            for chunk in read_decrypted(session, asset.user_id, asset.original_key):
                out.write(chunk)
    return path


def _instant(meta: MediaMetadata) -> datetime | None:
    if not meta.taken_at_utc:
        return None
    try:
        return datetime.fromisoformat(meta.taken_at_utc.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _sort_at(meta: MediaMetadata, fallback: datetime) -> datetime:
    """Capture instant when known; else local wall time read as UTC beats the upload time."""
    instant = _instant(meta)
    if instant is not None:
        return instant
    if meta.taken_at_local:
        try:
            return datetime.fromisoformat(meta.taken_at_local).replace(tzinfo=UTC)
        except ValueError:
            pass
    return fallback


def _save_metadata(session: Session, asset: Asset, meta: MediaMetadata) -> AssetMetadata:
    session.execute(delete(AssetMetadata).where(AssetMetadata.asset_id == asset.id))
    row = AssetMetadata(
        user_id=asset.user_id,
        asset_id=asset.id,
        scope="cloud_processing",
        model="exiftool",
        model_version=exiftool_version(),
        width=meta.width,
        height=meta.height,
        orientation=meta.orientation,
        taken_at_local=meta.taken_at_local,
        tz_offset=meta.tz_offset,
        tz_source=meta.tz_source,
        taken_at_utc=_instant(meta),
        latitude=meta.latitude,
        longitude=meta.longitude,
        altitude=meta.altitude,
        make=meta.make,
        model_name=meta.model,
        lens=meta.lens,
        duration=meta.duration,
        rotation=meta.rotation,
        content_identifier=meta.content_identifier,
        file_type=meta.file_type,
    )
    session.add(row)
    asset.sort_at = _sort_at(meta, asset.uploaded_at)
    return row


def _use_coded_size(row: AssetMetadata, path: Path, rotation: int | None) -> None:
    """Videos: the decoder's size, turned like the clip plays (ExifTool's can be absurd)."""
    size = video_size(path)
    if size is None:
        return
    width, height = size
    row.width, row.height = (height, width) if rotation in (90, 270) else (width, height)


def give_up(asset_id: str, detail: str) -> None:
    """After the last try an asset ends quarantined with a reason; it never stays pending.
    `detail` is for people: the kind of failure, never paths or file contents."""
    with session_scope() as session:
        asset = session.get(Asset, asset_id)
        if asset is None or asset.status != "pending":
            return
        _quarantine(session, asset, Quarantined("processing_failed", detail))


def _quarantine(session: Session, asset: Asset, q: Quarantined) -> None:
    session.execute(delete(Rendition).where(Rendition.asset_id == asset.id))
    asset.status = "quarantined"
    asset.quarantine_reason = q.reason
    asset.quarantine_detail = q.detail


def _pair_live_photo(session: Session, asset: Asset, meta: MediaMetadata) -> None:
    """A Live Photo is a still and a motion clip sharing Apple's ContentIdentifier; two stills
    with the same id (edited copies, bursts) are not a pair."""
    if not meta.content_identifier:
        return
    other_kind = Asset.kind != "video" if asset.kind == "video" else Asset.kind == "video"
    partner = session.scalars(
        select(Asset)
        .join(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(
            Asset.user_id == asset.user_id,
            Asset.id != asset.id,
            Asset.status == "ready",
            other_kind,
            AssetMetadata.content_identifier == meta.content_identifier,
        )
    ).first()
    if partner is not None:
        asset.live_pair_id, partner.live_pair_id = partner.id, asset.id


class IngestStep(BaseStep):
    """Store, read, validate and render one uploaded asset: on the one step contract."""

    name = "ingest"
    scope = "cloud_processing"
    reads = ("the staged upload or the stored original",)
    writes = ("assets (status, kind, mime)", "asset_metadata", "renditions", "blobs")

    def able_to_run(self, session: Session, subject: Asset) -> bool:
        return not (subject.status in ("ready", "quarantined") and subject.original_key)

    def run(self, session: Session, subject: Asset) -> MediaMetadata | None:
        """The metadata read once it is ready; None when it was quarantined."""
        return _ingest(session, subject)


INGEST = IngestStep()


def process_asset(asset_id: str) -> str:
    """Run the ingest steps for one asset; returns its resulting status."""
    with session_scope() as session:
        asset = session.get(Asset, asset_id)
        if asset is None:
            return "missing"
        # An opted-out owner's files are not touched, even if the job was queued before: the
        # runner asks the consent gate now.
        (done,) = run_steps(session, asset.user_id, [INGEST], asset)
        if done.refused == "consent":
            return "skipped"
        meta = done.value
        if meta is None:  # already ready or quarantined, or quarantined now
            return asset.status
    # After the commit, in its own transaction: when both halves of a Live Photo are processed
    # at once, whichever commits last sees the other.
    if meta.content_identifier:
        with session_scope() as session:
            _pair_live_photo(session, session.get(Asset, asset_id), meta)
    return "ready"


def _ingest(session: Session, asset: Asset) -> MediaMetadata | None:
    with plaintext_copy(session, asset) as path:
        session.commit()  # no transaction (not even a read) stays open while tools run
        try:  # headers only: a metadata flood never reaches ExifTool or Pillow
            check_costs(path)
        except Quarantined as q:
            _quarantine(session, asset, q)
            return None
        try:
            meta = read_metadata([path])[0]
        except ExifToolTimeout:  # killed after its time limit: the same file would hang again
            _quarantine(session, asset, Quarantined("too_costly", TOO_SLOW_TO_READ))
            return None
        meta_row = _save_metadata(session, asset, meta)
        # The type is what the content says, never what the client or extension claimed.
        asset.mime = meta.mime
        try:
            if path.stat().st_size == 0:
                raise Quarantined("empty", "the file is empty (0 bytes)")
            # Headers only: render_previews does the one full decode and quarantines on failure.
            kind = classify(path, meta.mime, decode=False)
            asset.kind = kind
            if kind == "video":
                _use_coded_size(meta_row, path, meta.rotation)
            # The one full decode runs with no transaction open: what is known so far is
            # committed (the rerun after a crash redoes it all anyway). It runs in a helper
            # process killed at CAMROLL_DECODE_SECONDS (quarantined too_costly).
            session.commit()
            renditions = render_within(path, kind, meta.orientation)
        except Quarantined as q:
            _quarantine(session, asset, q)
            return None
    for name, data, mime in (
        ("thumbnail", renditions.thumbnail, "image/webp"),
        ("preview", renditions.preview, "image/jpeg"),
    ):
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
        key = blob_key(asset.user_id, asset.id, name)
        put_encrypted(session, asset.user_id, key, io.BytesIO(data))
        session.execute(
            delete(Rendition).where(Rendition.asset_id == asset.id, Rendition.kind == name)
        )
        session.add(
            Rendition(
                user_id=asset.user_id,
                asset_id=asset.id,
                scope="cloud_processing",
                model=PREVIEWS_MODEL[0],
                model_version=PREVIEWS_MODEL[1],
                kind=name,
                blob_key=key,
                mime=mime,
                width=w,
                height=h,
            )
        )
    asset.status = "ready"
    asset.quarantine_reason = asset.quarantine_detail = None
    index_asset(session, asset)  # findable by its date before (or without) analysis
    return meta
