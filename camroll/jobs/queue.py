"""The Huey instance: SqliteHuey in the data folder by default, RedisHuey for a fleet of workers.

Tasks are registered by module path (camroll.jobs.tasks), so the same code runs in the embedded
consumer of `camroll serve` and in any number of `camroll worker` processes.
"""

from __future__ import annotations

from huey import RedisHuey, SqliteHuey
from huey.api import Huey

from camroll.config import Settings, get_settings


def build_huey(settings: Settings) -> Huey:
    if settings.queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("camroll", url=settings.queue_url, utc=True)
    if settings.queue_url:
        raise ValueError(f"unsupported CAMROLL_QUEUE_URL: {settings.queue_url!r}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("camroll", filename=str(settings.data_dir / "queue.db"), utc=True)


huey = build_huey(get_settings())
