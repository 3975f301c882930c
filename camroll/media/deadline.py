"""The one full pixel decode of ingest, in a helper process that is killed at its deadline.

Header budgets (`budget.py`) stop what headers announce; they cannot stop a file whose cost only
shows while decoding: a 280 KB progressive JPEG that repeats one scan 6,000 times keeps libjpeg
busy for a minute, and a decoder stuck in C cannot be interrupted from a Python thread. So the
decode runs in a helper process (`python -m camroll.media.deadline`: Pillow, pillow-heif and
PyAV only, never the models or the database), and the worker waits on a pipe with a deadline:
past `CAMROLL_DECODE_SECONDS` the helper is SIGKILLed and the file quarantined `too_costly`.
Whatever a file holds, it costs at most the deadline.

Helpers are reused (one per worker thread that decodes at the same time, about 70 MB each) and
exit by themselves after `IDLE_EXIT_S` without work. They get a path in the caller's private
work folder and send back the encoded renditions; they open no database connection, so no
transaction can be held across a decode.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from camroll.config import get_settings
from camroll.media.previews import Renditions, raw_preview, render_previews
from camroll.media.validate import Quarantined

STARTUP_S = 120.0  # a helper that is not ready by then is a broken install, not a file
IDLE_EXIT_S = 120.0  # a helper with nothing to do for this long exits (its memory goes back)
_REUSE_S = IDLE_EXIT_S / 2  # the parent stops handing work to a helper idle this long


class DecodeFailed(RuntimeError):
    """The decoder raised something other than a verdict on the file (a bug, not the file)."""


class _Helper:
    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camroll.media.deadline", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # decoders' chatter is not a message
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

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.send.close()
        self.recv.close()


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


def render_within(
    path: Path, kind: str, orientation: int | None = None, seconds: float | None = None
) -> Renditions:
    """`render_previews` in a helper process: `Quarantined("too_costly")` past `seconds`
    (default `CAMROLL_DECODE_SECONDS`), `Quarantined("corrupt")` if the decoder crashes."""
    limit = get_settings().decode_seconds if seconds is None else seconds
    raw_jpeg = None
    if kind == "raw":  # ExifTool (with its own limit) extracts here; the helper only decodes
        raw_jpeg, orientation = raw_preview(path, orientation)
    env = {k: v for k, v in os.environ.items() if k.startswith("CAMROLL_")}
    request = (env, str(path), kind, orientation, raw_jpeg)
    for attempt in (1, 2):
        helper = _take()
        try:
            helper.wait_ready()
            helper.send.send(request)
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
    except EOFError:  # it died without a word: a crash inside a decoder
        helper.kill()
        code = helper.proc.returncode
        name = signal.Signals(-code).name if code and code < 0 else f"exit {code}"
        raise Quarantined(
            "corrupt", f"the decoder crashed on this file ({name}); the original is kept"
        ) from None
    except BaseException:
        helper.kill()  # never hand on a helper in an unknown state
        raise
    _give_back(helper)
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "quarantined":
        raise Quarantined(outcome[1], outcome[2])
    raise DecodeFailed(f"{outcome[1]}: {outcome[2]}")


def _serve(requests: Connection, replies: Connection) -> None:
    """The helper's loop: one request at a time, until the parent goes or it sits idle."""
    try:  # every decode is of another file: libvips' operation cache would only hold memory
        import pyvips

        pyvips.cache_set_max(0)
    except ImportError:
        pass
    replies.send(("ready",))
    while requests.poll(IDLE_EXIT_S):
        try:
            env, path, kind, orientation, raw_jpeg = requests.recv()
        except EOFError:
            return
        # The caller's settings (its CAMROLL_* variables) apply to this request.
        for k in [k for k in os.environ if k.startswith("CAMROLL_")]:
            del os.environ[k]
        os.environ.update(env)
        get_settings.cache_clear()
        try:
            renditions = render_previews(Path(path), kind, orientation, raw_jpeg=raw_jpeg)
            outcome: tuple = ("ok", renditions)
        except Quarantined as q:
            outcome = ("quarantined", q.reason, q.detail)
        except Exception as exc:  # reported, not raised: the parent decides what it means
            outcome = ("error", type(exc).__name__, str(exc)[:300])
        replies.send(outcome)
        _trim()


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
