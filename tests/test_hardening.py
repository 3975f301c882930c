"""Hardening (issue 12): every file ends somewhere, the edge validates, login is throttled,
responses carry security headers. Real ExifTool, the real app, real databases."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import make_user


def _jpeg_with_date(path: Path, date: str, offset: str) -> Path:
    Image.new("RGB", (64, 48), (120, 80, 40)).save(path, "JPEG")
    subprocess.run(
        [
            "exiftool",
            "-q",
            "-overwrite_original",
            f"-DateTimeOriginal={date}",
            f"-OffsetTimeOriginal={offset}",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.mark.parametrize(
    ("date", "offset"),
    [("9999:12:31 23:59:59", "-14:00"), ("0001:01:01 00:00:00", "+14:00")],
)
def test_dates_outside_python_are_unknown_and_flagged(
    tmp_path: Path, date: str, offset: str
) -> None:
    from camroll.media.metadata import read_metadata

    meta = read_metadata([_jpeg_with_date(tmp_path / "x.jpg", date, offset)])[0]
    assert meta.tz_source == "out_of_range"
    assert meta.taken_at_utc is None and meta.taken_at_local is None and meta.tz_offset is None
    assert meta.width == 64 and meta.height == 48  # the rest of the metadata is still read


def test_edge_dates_that_fit_are_kept(tmp_path: Path) -> None:
    from camroll.media.metadata import read_metadata

    meta = read_metadata([_jpeg_with_date(tmp_path / "x.jpg", "9999:12:31 10:00:00", "-01:00")])[0]
    assert meta.taken_at_utc == "9999-12-31T11:00:00Z" and meta.tz_source == "offset_time"


@pytest.mark.backends("sqlite")
def test_processing_that_fails_every_try_ends_quarantined_with_a_reason(env: dict) -> None:
    """An asset whose processing raises on its last try is quarantined, never left pending; one
    that crashed its worker on every try is quarantined when it is requeued once more."""
    from camroll.accounts import find_user
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, JobRun
    from camroll.jobs import tracking
    from camroll.jobs.tasks import MAX_PROCESS_ATTEMPTS, process_asset_task

    make_user("stuck@example.org")
    with session_scope() as s:
        user_id = find_user(s, "stuck@example.org").id
        # Neither an original nor a staged upload: processing raises on every try.
        broken = Asset(user_id=user_id, checksum="a" * 64, size=1, filename="x.jpg")
        crashy = Asset(user_id=user_id, checksum="b" * 64, size=1, filename="y.jpg")
        s.add_all([broken, crashy])
        s.flush()
        broken_id, crashy_id = broken.id, crashy.id
    with pytest.raises(RuntimeError):
        process_asset_task.call_local(broken_id)
    for _ in range(MAX_PROCESS_ATTEMPTS):
        tracking.mark("process_asset", crashy_id, user_id, "running")  # a worker died here
    assert process_asset_task.call_local(crashy_id) == "quarantined"
    with session_scope() as s:
        for asset_id in (broken_id, crashy_id):
            asset = s.get(Asset, asset_id)
            assert asset.status == "quarantined"
            assert asset.quarantine_reason == "processing_failed"
            assert asset.quarantine_detail and "/" not in asset.quarantine_detail
            run = s.query(JobRun).filter_by(task="process_asset", subject_id=asset_id).one()
            assert run.state == "failed" and run.error
