"""Blob encryption, per-user keys (crypto-shredding) and the local blob store.

These are the promises behind "stored encrypted" and "deletion can be verified": every blob is
authenticated end to end, each user's blobs die with their wrapped key, and nothing readable is
ever written to the data folder.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import secrets
import shutil
import threading
import tracemalloc
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camroll.crypto.stream import (
    HEADER,
    SEGMENT,
    TAG,
    DecryptionError,
    decrypt_stream,
    encrypt_stream,
)
from camroll.storage.base import BlobNotFound
from camroll.storage.local import LocalBlobStore

ROLL = Path(__file__).resolve().parents[2] / "shared" / "data" / "camera-roll"
if not ROLL.exists():
    ROLL = Path("/work/shared/data/camera-roll")
JPEG = ROLL / "exif-samples" / "jpg" / "gps" / "DSCN0010.jpg"
WHOLE = SEGMENT + TAG
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def encrypt(data: bytes, key: bytes = KEY, name: str = "u/a/b/original") -> bytes:
    return b"".join(encrypt_stream(key, name, io.BytesIO(data)))


def decrypt(blob: bytes, key: bytes = KEY, name: str = "u/a/b/original", piece: int = 65536):
    pieces = [blob[i : i + piece] for i in range(0, len(blob), piece)] or [b""]
    return b"".join(decrypt_stream(key, name, pieces))


@cache
def sample(n: int) -> bytes:
    return random.Random(n).randbytes(n)


# --- stream encryption -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 3 * SEGMENT + 5]
)
def test_round_trip_at_segment_edges(size: int) -> None:
    data = sample(size)
    blob = encrypt(data)
    segments = max(1, -(-size // SEGMENT))
    assert len(blob) == HEADER + size + segments * TAG
    assert decrypt(blob) == data
    # The same bytes as one piece, and byte-sized pieces at the start, decrypt too.
    assert b"".join(decrypt_stream(KEY, "u/a/b/original", [blob])) == data
    assert decrypt(blob, piece=7 if size < 5000 else 999_983) == data


def test_same_plaintext_twice_gives_different_ciphertext() -> None:
    data = sample(5000)
    assert encrypt(data) != encrypt(data)


class ShortReads(io.RawIOBase):
    """A legal raw stream that hands out fewer bytes than asked, as pipes and sockets do."""

    def __init__(self, data: bytes, rng: random.Random) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._rng = rng

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        left = len(self._data) - self._pos
        if n < 0 or n > left:
            n = left
        n = min(n, self._rng.randint(1, 300_000))
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return out


sizes = st.one_of(
    st.integers(0, 4096),
    st.integers(SEGMENT - 64, SEGMENT + 64),
    st.integers(0, 3 * SEGMENT + 100),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=sizes, seed=st.integers(0, 2**32), short_reads=st.booleans(), data=st.data())
def test_round_trip_any_size_any_split(
    size: int, seed: int, short_reads: bool, data: st.DataObject
) -> None:
    plain = random.Random(seed).randbytes(size)
    source = ShortReads(plain, random.Random(seed)) if short_reads else io.BytesIO(plain)
    blob = b"".join(encrypt_stream(KEY, "k", source))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=12), label="cuts"))
    bounds = [0, *cuts, len(blob)]
    pieces = [blob[a:b] for a, b in itertools.pairwise(bounds)]
    assert b"".join(decrypt_stream(KEY, "k", pieces)) == plain


def test_encrypting_from_a_pipe_round_trips() -> None:
    """A raw pipe returns what is there, not a full segment; the blob must still be readable."""
    plain = sample(3 * SEGMENT + 5)
    r, w = os.pipe()

    def writer() -> None:
        with open(w, "wb") as f:
            for i in range(0, len(plain), 65536):
                f.write(plain[i : i + 65536])

    t = threading.Thread(target=writer)
    t.start()
    with open(r, "rb", buffering=0) as src:
        blob = b"".join(encrypt_stream(KEY, "k", src))
    t.join()
    assert decrypt(blob, name="k") == plain


@cache
def three_segment_blob() -> tuple[bytes, bytes]:
    plain = sample(3 * SEGMENT + 5)
    return plain, encrypt(plain)


def seg(k: int) -> slice:
    return slice(HEADER + k * WHOLE, HEADER + (k + 1) * WHOLE)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(0, 3 * WHOLE + 5 + TAG + HEADER - 1), bit=st.integers(0, 7))
def test_flipping_any_byte_is_detected(position: int, bit: int) -> None:
    _, blob = three_segment_blob()
    assert position < len(blob)
    bad = bytearray(blob)
    bad[position] ^= 1 << bit
    with pytest.raises(DecryptionError):
        decrypt(bytes(bad))


@pytest.mark.parametrize(
    "where",
    ["magic", "salt", "first-byte", "first-tag", "middle-segment", "last-tag"],
)
def test_flipping_named_bytes_is_detected(where: str) -> None:
    _, blob = three_segment_blob()
    position = {
        "magic": 0,
        "salt": HEADER - 1,
        "first-byte": HEADER,
        "first-tag": HEADER + WHOLE - 1,
        "middle-segment": HEADER + WHOLE + SEGMENT // 2,
        "last-tag": len(blob) - 1,
    }[where]
    bad = bytearray(blob)
    bad[position] ^= 0x01
    with pytest.raises(DecryptionError):
        decrypt(bytes(bad))


@pytest.mark.parametrize("segments_kept", [0, 1, 2, 3])
def test_truncation_at_a_segment_boundary_is_detected(segments_kept: int) -> None:
    _, blob = three_segment_blob()
    cut = HEADER + segments_kept * WHOLE  # 3 keeps every full segment and drops only the last
    assert cut < len(blob)
    with pytest.raises(DecryptionError):
        decrypt(blob[:cut])


def test_dropping_the_last_full_segment_is_detected() -> None:
    plain = sample(2 * SEGMENT)
    blob = encrypt(plain)
    assert len(blob) == HEADER + 2 * WHOLE
    with pytest.raises(DecryptionError):
        decrypt(blob[: HEADER + WHOLE])


def test_truncated_header_and_foreign_bytes_are_refused() -> None:
    _, blob = three_segment_blob()
    for bad in (b"", blob[:3], blob[: HEADER - 1], b"JFIF" + blob[4:]):
        with pytest.raises(DecryptionError):
            decrypt(bad)


def test_reordered_segments_and_appended_bytes_are_detected() -> None:
    _, blob = three_segment_blob()
    swapped = blob[:HEADER] + blob[seg(1)] + blob[seg(0)] + blob[seg(2).start :]
    assert len(swapped) == len(blob)
    with pytest.raises(DecryptionError):
        decrypt(swapped)
    with pytest.raises(DecryptionError):
        decrypt(blob + b"\x00" * 16)


def test_blob_name_is_bound_and_key_must_match() -> None:
    plain = sample(SEGMENT + 1)
    blob = encrypt(plain, name="u/alice/1/original")
    assert decrypt(blob, name="u/alice/1/original") == plain
    with pytest.raises(DecryptionError):
        decrypt(blob, name="u/alice/2/original")  # swapped for another blob's file
    with pytest.raises(DecryptionError):
        decrypt(blob, key=OTHER_KEY, name="u/alice/1/original")  # another user's key


class LazyStream(io.RawIOBase):
    """`total` bytes made on demand (never held), hashing what it hands out."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.block = random.Random(7).randbytes(SEGMENT)
        self.counter = 0
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        out = (self.counter.to_bytes(8, "big") + self.block)[:n]
        self.counter += 1
        self.left -= len(out)
        self.sha.update(out)
        return out


def _pipeline(total: int) -> tuple[str, str]:
    source = LazyStream(total)
    plain = decrypt_stream(KEY, "big", encrypt_stream(KEY, "big", source))
    got = hashlib.sha256()
    n = 0
    for chunk in plain:
        got.update(chunk)
        n += len(chunk)
    assert n == total
    return source.sha.hexdigest(), got.hexdigest()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def test_200_mb_stream_keeps_memory_bounded() -> None:
    total = 200 * 1024 * 1024
    tracemalloc.start()
    try:
        sent, received = _pipeline(total)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == received
    assert peak < 24 * 1024 * 1024, f"Python heap peaked at {peak / 2**20:.0f} MiB"

    # Whole-process view (includes OpenSSL): reset the RSS high-water mark where Linux allows.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return
    before = _status_kb("VmRSS")
    sent, received = _pipeline(total)
    assert sent == received
    growth_mb = (_status_kb("VmHWM") - before) / 1024
    assert growth_mb < 48, f"RSS grew by {growth_mb:.0f} MiB encrypting+decrypting 200 MiB"


# --- per-user keys and crypto-shredding ----------------------------------------------------------


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    from camroll.config import get_settings
    from camroll.storage import _cached

    get_settings.cache_clear()
    _cached.cache_clear()
    yield
    get_settings.cache_clear()
    _cached.cache_clear()


def _users(*emails: str) -> list[str]:
    from camroll.accounts import create_user
    from camroll.db.engine import session_scope

    with session_scope() as s:
        return [create_user(s, e).id for e in emails]


def _put(user_id: str, key: str, data: bytes) -> None:
    from camroll.db.engine import session_scope
    from camroll.storage.blobs import put_encrypted

    with session_scope() as s:
        put_encrypted(s, user_id, key, io.BytesIO(data))


def _read(user_id: str, key: str) -> bytes:
    from camroll.db.engine import session_scope
    from camroll.storage.blobs import read_decrypted

    with session_scope() as s:
        return b"".join(read_decrypted(s, user_id, key))


def test_crypto_shredding_makes_every_copy_unreadable(env: dict, tmp_path: Path) -> None:
    from camroll.crypto.keys import KeyDestroyed
    from camroll.db.engine import session_scope
    from camroll.keyring import create_user_key, destroy_user_key, user_data_key
    from camroll.storage.blobs import blob_key

    a, b = _users("a@example.org", "b@example.org")
    key_a, key_b = blob_key(a, "asset1", "original"), blob_key(b, "asset1", "original")
    data_a, data_b = sample(SEGMENT + 300), sample(40_000)
    _put(a, key_a, data_a)
    _put(b, key_b, data_b)
    assert _read(a, key_a) == data_a
    assert _read(b, key_b) == data_b

    stored = Path(env["CAMROLL_DATA_DIR"]) / "blobs" / key_a
    backup = tmp_path / "backup-of-a"
    shutil.copyfile(stored, backup)  # e.g. a backup taken before the owner left
    with session_scope() as s:
        old_key = user_data_key(s, a)
        assert old_key != user_data_key(s, b)
    assert decrypt(backup.read_bytes(), key=old_key, name=key_a) == data_a
    with session_scope() as s, pytest.raises(DecryptionError):  # B's key cannot open A's blobs
        decrypt(backup.read_bytes(), key=user_data_key(s, b), name=key_a)

    with session_scope() as s:
        assert destroy_user_key(s, a) is True
    with session_scope() as s:
        assert destroy_user_key(s, a) is False
    with pytest.raises(KeyDestroyed):
        _read(a, key_a)

    # Even a new key for A cannot read what was encrypted under the destroyed one.
    with session_scope() as s:
        create_user_key(s, a)
    with session_scope() as s:
        new_key = user_data_key(s, a)
    assert new_key != old_key
    with pytest.raises(DecryptionError):
        decrypt(backup.read_bytes(), key=new_key, name=key_a)
    with pytest.raises(DecryptionError):
        _read(a, key_a)

    assert _read(b, key_b) == data_b  # B unaffected


def test_data_keys_are_only_stored_wrapped(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from camroll.config import get_settings
    from camroll.db.engine import session_scope
    from camroll.db.models import UserKey
    from camroll.keyring import user_data_key

    (a,) = _users("a@example.org")
    with session_scope() as s:
        wrapped = s.get(UserKey, a).wrapped_key
        data_key = user_data_key(s, a)
    assert len(data_key) == 32
    assert data_key not in wrapped

    data = Path(env["CAMROLL_DATA_DIR"])
    master = data / "master.key"
    assert master.stat().st_mode & 0o777 == 0o600
    for path in data.rglob("*"):  # the SQLite files, when SQLite is the backend
        if path.is_file():
            assert data_key not in path.read_bytes(), f"plaintext data key in {path}"

    # Without the right master key, the stored row is useless.
    monkeypatch.setenv("CAMROLL_MASTER_KEY", secrets.token_hex(32))
    get_settings.cache_clear()
    with session_scope() as s, pytest.raises(InvalidTag):
        user_data_key(s, a)


def test_master_key_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    from camroll.config import get_settings
    from camroll.crypto.keys import master_key, unwrap, wrap

    key = secrets.token_bytes(32)
    monkeypatch.setenv("CAMROLL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAMROLL_MASTER_KEY", key.hex())
    get_settings.cache_clear()
    assert master_key() == key
    data_key = secrets.token_bytes(32)
    wrapped = wrap(data_key, "user1")
    # Really wrapped under the configured key, bound to the user id:
    assert AESGCM(key).decrypt(wrapped[:12], wrapped[12:], b"camroll-user-key:user1") == data_key
    assert unwrap(wrapped, "user1") == data_key
    with pytest.raises(InvalidTag):
        unwrap(wrapped, "user2")
    assert not (tmp_path / "data" / "master.key").exists()

    for bad in (secrets.token_hex(31), secrets.token_hex(33), "zz" * 32):
        monkeypatch.setenv("CAMROLL_MASTER_KEY", bad)
        get_settings.cache_clear()
        with pytest.raises(ValueError):
            master_key()


def test_master_key_file_is_made_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    from camroll.crypto.keys import master_key

    monkeypatch.setenv("CAMROLL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CAMROLL_MASTER_KEY", raising=False)
    first = master_key()
    assert len(first) == 32
    assert master_key() == first
    assert (tmp_path / "data" / "master.key").stat().st_mode & 0o777 == 0o600


# --- no plaintext at rest ------------------------------------------------------------------------

WINDOW = 64


def _windows(plain: bytes) -> set[bytes]:
    # Low-entropy runs (zero padding, 0xFF fill) also occur in unrelated files: skip those.
    out = set()
    for i in range(len(plain) - WINDOW + 1):
        w = plain[i : i + WINDOW]
        if len(set(w)) >= 16:
            out.add(w)
    return out


def _leaks(root: Path, windows: set[bytes]) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if any(data[i : i + WINDOW] in windows for i in range(len(data) - WINDOW + 1)):
            found.append(str(path.relative_to(root)))
    return found


def test_no_plaintext_at_rest(env: dict, tmp_path: Path) -> None:
    from camroll.storage.blobs import blob_key

    plain = JPEG.read_bytes()
    windows = _windows(plain)
    assert len(windows) > len(plain) // 2
    (a,) = _users("a@example.org")
    key = blob_key(a, "asset1", "original")
    _put(a, key, plain)
    assert _read(a, key) == plain

    data = Path(env["CAMROLL_DATA_DIR"])
    assert (data / "blobs" / key).stat().st_size > len(plain)
    assert _leaks(data, windows) == []

    # The detector itself works: a plain copy, or a tail of one, is found.
    leak = tmp_path / "leak"
    leak.mkdir()
    (leak / "copy.jpg").write_bytes(b"x" * 10 + plain[5000:5100] + b"y" * 10)
    assert _leaks(leak, windows) == ["copy.jpg"]


# --- the local blob store ------------------------------------------------------------------------


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp")]


def test_local_store_put_get_keys_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    assert store.put("u/a/1/original", [b"hello ", b"world"]) == 11
    assert store.put("u/a/2/thumbnail", iter([sample(3 * 1024 * 1024 + 7)])) == 3 * 1024**2 + 7
    store.put("u/ab/1/original", [b"x"])
    store.put("u/b/1/original", [b""])
    assert b"".join(store.get("u/a/1/original")) == b"hello world"
    assert b"".join(store.get("u/a/2/thumbnail")) == sample(3 * 1024 * 1024 + 7)
    assert b"".join(store.get("u/b/1/original")) == b""
    assert store.exists("u/a/1/original")
    assert not store.exists("u/a/3/original")
    with pytest.raises(BlobNotFound):
        store.get("u/a/3/original")
    assert list(store.keys()) == [
        "u/a/1/original",
        "u/a/2/thumbnail",
        "u/ab/1/original",
        "u/b/1/original",
    ]
    assert list(store.keys("u/a/")) == ["u/a/1/original", "u/a/2/thumbnail"]

    store.put("u/a/1/original", [b"replaced"])
    assert b"".join(store.get("u/a/1/original")) == b"replaced"

    store.delete("u/a/1/original")
    store.delete("u/a/1/original")  # deleting what is gone is fine
    assert not store.exists("u/a/1/original")
    assert store.delete_prefix("u/a/") == 1
    assert list(store.keys()) == ["u/ab/1/original", "u/b/1/original"]
    assert not (tmp_path / "blobs" / "u" / "a").exists()
    assert store.delete_prefix("u/nobody/") == 0


def test_local_store_put_is_atomic(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    store.put("u/a/1/original", [b"old version"])

    def failing() -> Iterator[bytes]:
        yield b"new " * 100_000
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        store.put("u/a/1/original", failing())
    assert b"".join(store.get("u/a/1/original")) == b"old version"
    with pytest.raises(OSError):
        store.put("u/a/2/original", failing())
    assert not store.exists("u/a/2/original")
    assert _tmp_files(root) == []
    assert list(store.keys()) == ["u/a/1/original"]


@pytest.mark.parametrize("key", ["../x", "u/../../x", "/etc/passwd", "", ".", "u/.."])
def test_local_store_refuses_keys_outside_its_root(tmp_path: Path, key: str) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    outside = tmp_path / "x"
    with pytest.raises(ValueError):
        store.put(key, [b"escaped"])
    with pytest.raises(ValueError):
        store.exists(key)
    with pytest.raises(ValueError):
        store.delete(key)
    assert not outside.exists()


def test_local_store_delete_prefix_stays_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    store = LocalBlobStore(root)
    sibling = tmp_path / "sibling.txt"
    sibling.write_text("keep me")
    store.put("u/a/1/original", [b"x"])
    assert store.delete_prefix("../") == 0
    assert store.delete_prefix("..") == 0
    assert sibling.read_text() == "keep me"
    assert list(store.keys()) == ["u/a/1/original"]
