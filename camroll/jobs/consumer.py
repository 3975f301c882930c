"""Running Huey consumers: embedded in `camroll serve`, or standalone as `camroll worker`."""

from __future__ import annotations

import logging

from huey.consumer import Consumer

from camroll.config import get_settings
from camroll.jobs import tasks
from camroll.jobs.queue import huey

log = logging.getLogger(__name__)


class EmbeddedConsumer(Consumer):
    """A consumer that lives inside uvicorn: uvicorn owns the signals, not Huey."""

    def _set_signal_handlers(self) -> None:
        pass


def _options(workers: int) -> dict:
    # max_delay ~1 s: idle workers otherwise back off to 10 s before noticing a new task.
    return {"workers": workers, "worker_type": "thread", "max_delay": 1.0, "periodic": True}


def start_embedded() -> EmbeddedConsumer:
    consumer = EmbeddedConsumer(huey, **_options(get_settings().workers))
    consumer.start()
    # This consumer is the only one on an embedded queue: anything left unfinished belongs to a
    # process that died, so send it again now rather than after the staleness window.
    if not get_settings().queue_url:
        n = tasks.requeue_unfinished(None)
        if n:
            log.info("requeued %d unfinished jobs from before the restart", n)
    return consumer


def stop_embedded(consumer: EmbeddedConsumer) -> None:
    consumer.stop(graceful=True)


def run_worker(workers: int) -> None:
    """Blocking standalone worker; Huey's own signal handling gives graceful SIGTERM/SIGINT."""
    if not logging.getLogger().handlers:
        # As huey_consumer does: without this a standalone worker prints nothing at all, not even
        # that it started or which tasks it ran.
        logging.basicConfig(
            level=logging.INFO,
            format="[%(asctime)s] %(levelname)s:%(name)s:%(process)d:%(threadName)s:%(message)s",
        )
    Consumer(huey, **_options(workers)).run()
