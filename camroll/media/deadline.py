"""The one full pixel decode of ingest, in a helper process that is killed at its deadline.

Header budgets (`budget.py`) stop what headers announce; they cannot stop a file whose cost only
shows while decoding: a 280 KB progressive JPEG that repeats one scan 6,000 times keeps libjpeg
busy for a minute, and a decoder stuck in C cannot be interrupted from a Python thread. So the
decode runs in a helper process (`python -m camroll.media.deadline`: Pillow, pillow-heif and
PyAV only, never the models or the database), and the worker waits on a pipe with a deadline:
past `CAMROLL_DECODE_SECONDS` the helper is SIGKILLed and the file quarantined `too_costly`.
Whatever a file holds, it costs at most the deadline. Memory is capped the same way: the
helper may map `CAMROLL_DECODE_MEMORY_MB` of data (RLIMIT_DATA); a decode that needs more fails
its allocation (or kills the helper) and the file is quarantined `too_costly` too.

Video frames for analysis (faces in a few frames of the original) are decoded here as well,
one request per frame, all of a video's frames within one deadline (`frames_within`).

Helpers are reused (one per worker thread that decodes at the same time, about 70 MB each) and
exit by themselves after `IDLE_EXIT_S` without work. They get a path in the caller's private
work folder and send back the encoded renditions; they open no database connection, so no
transaction can be held across a decode.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from PIL import Image

from camroll.config import get_settings
from camroll.media.previews import Renditions, raw_preview, render_previews
from camroll.media.validate import Quarantined, decode_video_frame, out_of_memory, video_duration

log = logging.getLogger(__name__)

STARTUP_S = 120.0  # a helper that is not ready by then is a broken install, not a file
IDLE_EXIT_S = 120.0  # a helper with nothing to do for this long exits (its memory goes back)
_REUSE_S = IDLE_EXIT_S / 2  # the parent stops handing work to a helper idle this long
TRIM_AFTER_S = 0.5  # a helper this long without a request gives its freed memory back


class DecodeFailed(RuntimeError):
    """The decoder raised something other than a verdict on the file (a bug, not the file)."""


class _Helper:
    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # Its stderr says why it died (a decoder's abort on a failed allocation, a traceback).
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camroll.media.deadline", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # decoders' chatter is not a message
            stderr=self.stderr,
            start_new_session=True,  # a Ctrl-C to the server is the server's to handle
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.send = Connection(to_child_w, readable=False)
        self.recv = Connection(from_child_r, writable=False)
        self.last_used = time.monotonic()
        self.ready = False

    def wait_ready(self) -> None:
        """A new helper's start (Python and the decoders' imports: 0.3 s, seconds on a loaded
        machine) is not the file's time: its deadline starts once the helper says it is ready."""
        if self.ready:
            return
        if not self.recv.poll(STARTUP_S):
            raise RuntimeError(f"the decode helper did not start within {STARTUP_S:g} s")
        if self.recv.recv() != ("ready",):
            raise RuntimeError("the decode helper answered something else than ready")
        self.ready = True

    def fresh(self) -> bool:
        return self.proc.poll() is None and time.monotonic() - self.last_used < _REUSE_S

    def last_words(self) -> str:
        """The end of what it wrote to stderr."""
        size = os.fstat(self.stderr.fileno()).st_size
        return os.pread(self.stderr.fileno(), 2000, max(0, size - 2000)).decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.send.close()
        self.recv.close()
        self.stderr.close()


_idle: list[_Helper] = []
_lock = threading.Lock()


def _take() -> _Helper:
    with _lock:
        while _idle:
            helper = _idle.pop()
            if helper.fresh():
                return helper
            helper.kill()
    return _Helper()


def _give_back(helper: _Helper) -> None:
    helper.last_used = time.monotonic()
    with _lock:
        _idle.append(helper)


def too_slow(seconds: float) -> Quarantined:
    return Quarantined(
        "too_costly", f"too costly to decode: decoding passed its time limit of {seconds:g} s"
    )


def _call(op: str, args: tuple, limit: float) -> tuple[Any, float]:
    """Run `op` in a helper within `limit` seconds; returns its outcome and the seconds taken.
    Raises `Quarantined` for a file the helper could not survive or finish in time."""
    env = {k: v for k, v in os.environ.items() if k.startswith("CAMROLL_")}
    for attempt in (1, 2):
        helper = _take()
        try:
            helper.wait_ready()
            started = time.monotonic()
            helper.send.send((env, op, args))
            break
        except (OSError, EOFError):  # it exited between our check and the send: one more try
            helper.kill()
            if attempt == 2:
                raise
        except BaseException:
            helper.kill()
            raise
    try:
        if not helper.recv.poll(limit):
            helper.kill()
            raise too_slow(limit)
        outcome = helper.recv.recv()
    except EOFError:  # it died without a word: a crash inside a decoder, or the memory cap
        helper.proc.wait()
        words = helper.last_words()
        helper.kill()
        code = helper.proc.returncode
        name = signal.Signals(-code).name if code and code < 0 else f"exit {code}"
        log.warning("the decode helper died (%s): %s", name, words[-500:])
        if (costly := out_of_memory(words)) is not None:
            raise costly from None
        raise Quarantined(
            "corrupt", f"the decoder crashed on this file ({name}); the original is kept"
        ) from None
    except BaseException:
        helper.kill()  # never hand on a helper in an unknown state
        raise
    _give_back(helper)
    return outcome, time.monotonic() - started


def _result(outcome: tuple) -> Any:
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "quarantined":
        raise Quarantined(outcome[1], outcome[2])
    raise DecodeFailed(f"{outcome[1]}: {outcome[2]}")


def render_within(
    path: Path, kind: str, orientation: int | None = None, seconds: float | None = None
) -> Renditions:
    """`render_previews` in a helper process: `Quarantined("too_costly")` past `seconds`
    (default `CAMROLL_DECODE_SECONDS`) or its memory limit, `Quarantined("corrupt")` if the
    decoder crashes."""
    limit = get_settings().decode_seconds if seconds is None else seconds
    raw_jpeg = None
    if kind == "raw":  # ExifTool (with its own limit) extracts here; the helper only decodes
        raw_jpeg, orientation = raw_preview(path, orientation)
    outcome, _ = _call("render", (str(path), kind, orientation, raw_jpeg), limit)
    return _result(outcome)


def frames_within(
    path: Path, max_frames: int, seconds: float | None = None
) -> Iterator[tuple[float, Image.Image | Quarantined]]:
    """Up to `max_frames` evenly spaced upright frames of a video (its first when the duration
    is unknown), as (seconds, frame) or (seconds, why that frame failed), each decoded in a
    helper. All of them share one deadline of `seconds` (default `CAMROLL_DECODE_SECONDS`) of
    decoding, the caller's work in between not counted: past it, `Quarantined("too_costly")`
    is raised where the next frame would come, so an absurd video holds a worker that long
    at most."""
    left = get_settings().decode_seconds if seconds is None else seconds
    total = left
    try:
        outcome, took = _call("duration", (str(path),), left)
        left -= took
        duration = _result(outcome)
        n = max(1, max_frames) if duration > 0 else 1
        for i in range(n):
            t = duration * (i + 0.5) / n if duration > 0 else 0.0
            if left <= 0:
                raise too_slow(total)
            outcome, took = _call("frame", (str(path), t), left)
            left -= took
            try:
                frame = _result(outcome)
            except Quarantined as q:  # that frame would not decode: the others may
                frame = q
            yield t, frame
    except Quarantined as q:
        if q.reason == "too_costly" and "time limit" in q.detail:
            raise too_slow(total) from None  # the video's deadline, not the frame's share
        raise


def _run(op: str, args: tuple) -> Any:
    if op == "render":
        path, kind, orientation, raw_jpeg = args
        return render_previews(Path(path), kind, orientation, raw_jpeg=raw_jpeg)
    if op == "duration":
        return video_duration(Path(args[0]))
    if op == "frame":
        return decode_video_frame(Path(args[0]), args[1])
    raise ValueError(f"unknown decode helper request {op!r}")


def _cap_memory(mb: int) -> None:
    """RLIMIT_DATA (heap and private mappings, not the libraries' code): allocations past it
    fail, which decoders report as out of memory. Set per request, so a changed setting
    applies at once; the hard limit stays, so a later request may raise it again."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    want = mb * 1024**2
    resource.setrlimit(resource.RLIMIT_DATA, (want if hard < 0 else min(want, hard), hard))


def _serve(requests: Connection, replies: Connection) -> None:
    """The helper's loop: one request at a time, until the parent goes or it sits idle."""
    try:  # every decode is of another file: libvips' operation cache would only hold memory
        import pyvips

        pyvips.cache_set_max(0)
    except ImportError:
        pass
    replies.send(("ready",))
    applied: dict[str, str] | None = None
    while _next_request(requests):
        try:
            env, op, args = requests.recv()
        except EOFError:
            return
        # The caller's settings (its CAMROLL_* variables) apply to this request; rebuilt only
        # when they changed (building Settings costs more than a small photo's thumbnail).
        if env != applied:
            for k in [k for k in os.environ if k.startswith("CAMROLL_")]:
                del os.environ[k]
            os.environ.update(env)
            get_settings.cache_clear()
            _cap_memory(get_settings().decode_memory_mb)
            applied = env
        try:
            outcome: tuple = ("ok", _run(op, args))
        except Quarantined as q:
            outcome = ("quarantined", q.reason, q.detail)
        except Exception as exc:  # reported, not raised: the parent decides what it means
            costly = out_of_memory(exc)  # MemoryError, or a decoder's own words for it
            if costly is not None:
                outcome = ("quarantined", costly.reason, costly.detail)
            else:
                outcome = ("error", type(exc).__name__, str(exc)[:300])
        del args
        replies.send(outcome)
        del outcome


def _next_request(requests: Connection) -> bool:
    """Wait for the next request: True when one came, False after IDLE_EXIT_S without. Freed
    memory goes back to the system once the helper pauses for TRIM_AFTER_S, not after every
    file: in a busy run the next decode would only fault the same pages in again (measured on
    125 JPEGs: the helpers' kernel time 1.5 s -> 0.7 s, about a tenth of their CPU)."""
    if requests.poll(TRIM_AFTER_S):
        return True
    _trim()
    return requests.poll(IDLE_EXIT_S)


def _trim() -> None:
    """Hand the decode's freed memory back to the system (glibc keeps it otherwise), so an
    idle helper holds its libraries, not the last photo's pixels."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


if __name__ == "__main__":
    os.umask(0o077)
    _serve(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )
