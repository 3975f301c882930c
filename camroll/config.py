"""One typed settings object, read from `CAMROLL_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAMROLL_", extra="ignore")

    # Where the embedded default keeps everything: database, queue, blobs, master key.
    data_dir: Path = Field(default=Path("camroll-data"))
    # Empty means SQLite (WAL) at data_dir/camroll.db; postgresql+psycopg://... scales out.
    database_url: str = ""
    # Empty means SqliteHuey at data_dir/queue.db; redis://host:port/db means RedisHuey.
    queue_url: str = ""
    # Empty means the local folder data_dir/blobs; s3://bucket/prefix means S3-compatible storage.
    storage_url: str = ""
    # Endpoint for S3-compatible servers (MinIO, moto, Ceph); empty means AWS.
    s3_endpoint_url: str = ""
    # 32-byte master key as hex; empty means data_dir/master.key, created on first use.
    master_key: str = ""

    # Upload limits. Files above max_upload_bytes are refused before any byte is stored.
    max_upload_bytes: int = 4 * 1024**3
    # Decoded images above this many pixels are quarantined as decompression bombs.
    max_image_pixels: int = 200_000_000
    # Unfinished tus uploads older than this are deleted by the periodic cleanup.
    upload_expiry_hours: int = 24
    # Request bodies outside tus uploads and WebDAV above this are refused with 413.
    max_body_bytes: int = 1024**2

    # Login throttling: this many wrong passwords within the window answer 429 until it passes.
    login_window_seconds: int = 900
    login_max_failures_per_account: int = 10
    login_max_failures_per_address: int = 50

    # The pixel decode of one file runs in a helper process killed after this many seconds;
    # the file is then quarantined as too costly to decode.
    decode_seconds: float = Field(default=30.0, gt=0)
    # ...and may map this much data memory (RLIMIT_DATA, MiB); a decode that needs more is
    # quarantined too costly. The roll's 200 MP HEIC peaks at 1.75 GiB; the helper idles at 50 MiB.
    decode_memory_mb: int = Field(default=4096, ge=64)

    # Previews.
    thumbnail_px: int = 256
    preview_px: int = 1440
    # JPEG renditions through libvips (media/vips_renditions.py). Off renders every file with
    # Pillow: for bench/ingest.py's old-path run, and a way back should libvips misbehave.
    previews_libvips: bool = True

    # Retention window after opt-out (days); 0 deletes at once.
    retention_days: int = 30
    # Revealing fields (GPS, places, names, file names, embeddings) stored encrypted under the
    # owner's key. Off only to measure what it costs (bench/fields.py); never in production.
    field_encryption: bool = True
    # Export zips are deleted this many days after they are made (they hold everything).
    export_days: int = 7
    # Deleted photos wait in the trash this many days, then are removed for good.
    trash_days: int = 30
    # The access log (audit_events) is kept this many days, then pruned by the hourly purge;
    # while kept it is in the report and the export.
    audit_days: int = Field(default=365, ge=1)
    # Finished job bookkeeping (job_runs done or failed) is kept this many days.
    job_days: int = Field(default=30, ge=1)
    # Tiles per timeline page (each scroll to the end loads the next page).
    timeline_page: int = Field(default=60, ge=1, le=500)

    # Worker threads of the embedded or standalone Huey consumer. Two per core of a small
    # server: an ingest job waits on its decode helper, ExifTool and fsync most of the time, so
    # two threads left a 2-core machine idle (bench/ingest.py: 1.28x photos/s with 4).
    workers: int = 4

    # Optional stronger ONNX models (CLIP), one folder each; empty: data_dir/models.
    models_dir: Path | None = None

    # Path to the exiftool executable.
    exiftool: str = "exiftool"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'camroll.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
