"""A long-lived ExifTool process in `-stay_open True -@ -` batch mode.

Starting Perl and ExifTool costs ~150 ms, so one process per worker answers every request. Each
request ends with `-executeN`; ExifTool then prints `{readyN}`, which delimits the answer.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import selectors
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from camroll.config import get_settings

# Tags read per file. Naming them keeps ExifTool from decoding every maker note (much faster) and
# `-a -G1` keeps same-named tags from different groups apart (QuickTime:CreateDate is UTC,
# Keys:CreationDate is local with an offset, ExifIFD:CreateDate is local without one).
READ_TAGS: tuple[str, ...] = (
    "FileType",
    "MIMEType",
    "ImageWidth",
    "ImageHeight",
    "ImageSize",
    "ExifImageWidth",
    "ExifImageHeight",
    "Orientation",
    "DateTimeOriginal",
    "CreateDate",
    "CreationDate",
    "DateCreated",
    "DateTimeCreated",
    "SubSecTimeOriginal",
    "SubSecTimeDigitized",
    "OffsetTimeOriginal",
    "OffsetTime",
    "OffsetTimeDigitized",
    "GPSLatitude",
    "GPSLongitude",
    "GPSLatitudeRef",
    "GPSLongitudeRef",
    "GPSAltitude",
    "GPSAltitudeRef",
    "GPSDateStamp",
    "GPSTimeStamp",
    "GPSDateTime",
    "GPSCoordinates",
    "GPSPosition",
    "Make",
    "Model",
    "LensModel",
    "LensID",
    "Lens",
    "Duration",
    "Rotation",
    "ContentIdentifier",
    # ExifTool 12.57 names the Apple maker-note ContentIdentifier (0x0011) MediaGroupUUID.
    "MediaGroupUUID",
    "Error",
)
READ_ARGS: tuple[str, ...] = ("-json", "-n", "-G1", "-a", *(f"-{t}" for t in READ_TAGS))

# A file ExifTool chokes on must not hang a worker forever.
DEFAULT_TIMEOUT_S = 120.0


# `-stay_open` keeps polling stdin after EOF, so an ExifTool whose parent was killed would live
# on forever. The kernel's parent-death signal ends it with its parent. (It fires when the
# starting thread exits, so start ExifTool from long-lived threads: the main thread or a worker.)
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM"] if shutil.which("setpriv") else []


class ExifToolError(RuntimeError):
    """ExifTool died, hung, or answered something we could not parse."""


class ExifToolTimeout(ExifToolError):
    """ExifTool gave no answer in time (it was killed): the file is too costly to read."""


def _arg(path: Path | str) -> str:
    # A relative name starting with "-" would be read as an option.
    s = str(path)
    return f"./{s}" if s.startswith("-") else s


class ExifTool:
    """One `-stay_open` ExifTool process; thread-safe, restarted when it dies."""

    def __init__(self, executable: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.executable = executable or get_settings().exiftool
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self._counter = 0
        # Last stderr lines, drained by a thread so a chatty ExifTool never blocks on a full pipe.
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> ExifTool:
        with self._lock:
            if self.running:
                return self
            self._kill()
            self._proc = subprocess.Popen(
                [*_DIE_WITH_PARENT, self.executable, "-stay_open", "True", "-@", "-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            threading.Thread(
                target=self._drain_stderr, args=(self._proc,), name="exiftool-stderr", daemon=True
            ).start()
            return self

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            try:
                if proc.poll() is None and proc.stdin is not None:
                    proc.stdin.write(b"-stay_open\nFalse\n")
                    proc.stdin.flush()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            finally:
                for f in (proc.stdin, proc.stdout, proc.stderr):
                    if f is not None:
                        f.close()

    def __enter__(self) -> ExifTool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                if f is not None:
                    f.close()

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    # -- protocol ----------------------------------------------------------------------------

    def execute(self, *args: str) -> bytes:
        """Run one command; returns its raw stdout. Retries once on a fresh process if it died."""
        with self._lock:
            for attempt in (0, 1):
                self.start()
                try:
                    return self._execute_once(args)
                except (BrokenPipeError, EOFError, OSError) as exc:
                    self._kill()
                    if attempt:
                        raise ExifToolError(f"exiftool died: {exc}") from exc
            raise AssertionError("unreachable")

    def _execute_once(self, args: tuple[str, ...]) -> bytes:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        self._counter += 1
        n = self._counter
        for a in args:
            if "\n" in a or "\r" in a:
                raise ValueError(f"argument contains a newline: {a!r}")
        payload = "\n".join([*args, f"-execute{n}", ""]).encode("utf-8")
        proc.stdin.write(payload)
        proc.stdin.flush()

        sentinel = f"{{ready{n}}}".encode()
        fd = proc.stdout.fileno()
        buf = bytearray()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                # The sentinel is the last thing ExifTool prints before waiting for input, so it
                # can only be at the end; binary output may lack a newline before it.
                tail = bytes(buf[-(len(sentinel) + 2) :])
                if tail.rstrip(b"\r\n").endswith(sentinel):
                    end = len(buf) - (len(tail) - len(tail.rstrip(b"\r\n"))) - len(sentinel)
                    return bytes(buf[:end])
                if not sel.select(self.timeout_s):
                    self._kill()
                    raise ExifToolTimeout(f"exiftool gave no answer within {self.timeout_s:g} s")
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise EOFError("exiftool closed its output")
                buf += chunk

    # -- public reads ------------------------------------------------------------------------

    def read(self, paths: list[Path] | list[str], extra_args: tuple[str, ...] = ()) -> list[dict]:
        """One dict per input path, in order. Unreadable files get ExifTool's `Error`."""
        out: list[dict[str, Any]] = []
        to_ask: list[str] = []
        for p in paths:
            s = _arg(p)
            if "\n" in s or "\r" in s:
                out.append({"SourceFile": str(p), "ExifTool:Error": "Unsupported file name"})
            elif not os.path.exists(s):
                out.append({"SourceFile": str(p), "ExifTool:Error": "File not found"})
            elif os.path.isdir(s):
                out.append({"SourceFile": str(p), "ExifTool:Error": "Is a directory"})
            else:
                out.append({"SourceFile": str(p)})
                to_ask.append(s)
        if not to_ask:
            return out
        unique = list(dict.fromkeys(to_ask))
        raw = self.execute(*READ_ARGS, *extra_args, *unique)
        by_source: dict[str, dict[str, Any]] = {}
        text = raw.decode("utf-8", "replace").strip()
        if text:
            try:
                for item in json.loads(text):
                    by_source[str(item.get("SourceFile"))] = item
            except (json.JSONDecodeError, AttributeError) as exc:
                raise ExifToolError(f"unparseable exiftool output: {text[:200]!r}") from exc
        for entry, p in zip(out, paths, strict=True):
            if len(entry) > 1:
                continue
            got = by_source.get(_arg(p))
            if got is None:
                # ExifTool skipped it (e.g. vanished between our check and its read).
                entry["ExifTool:Error"] = "File not read by exiftool"
            else:
                entry.update(got)
                entry["SourceFile"] = str(p)
        return out

    def extract_binary(self, path: Path | str, tag: str) -> bytes | None:
        """Raw bytes of one binary tag (PreviewImage, JpgFromRaw, ThumbnailImage), or None."""
        s = _arg(path)
        if not os.path.isfile(s):
            return None
        data = self.execute("-b", f"-{tag.lstrip('-')}", s)
        return data or None

    def version(self) -> str:
        return self.execute("-ver").decode().strip()


_shared: ExifTool | None = None
_shared_lock = threading.Lock()
_shared_pid = 0


def shared_exiftool() -> ExifTool:
    """A lazily started ExifTool for this process (a forked worker gets its own), closed atexit."""
    global _shared, _shared_pid
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid():
            _shared = ExifTool()
            _shared_pid = os.getpid()
            atexit.register(_shared.close)
        return _shared.start()


_versions: dict[str, str] = {}


def exiftool_version() -> str:
    """The shared ExifTool's version, asked once per executable and process: it was a round
    trip to ExifTool (behind the lock every worker shares) for every ingested asset."""
    et = shared_exiftool()
    if et.executable not in _versions:
        _versions[et.executable] = et.version()
    return _versions[et.executable]
