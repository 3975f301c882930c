"""Encrypted, append-only staging for resumable uploads.

A partial upload must survive a crash without plaintext ever touching the data folder, so each
received piece is sealed as one record: 4-byte length | 12-byte nonce | AES-GCM ciphertext. The
upload's offset is the plaintext length of the complete records; a torn record at the end (a
crash mid-write) is dropped on the next look, so the client resumes from the last whole record.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from camroll.crypto.stream import DecryptionError

HEAD = struct.Struct(">I")
NONCE = 12
TAG = 16
RECORD = 1024 * 1024


def _cipher(data_key: bytes, upload_id: str) -> AESGCM:
    hkdf = HKDF(hashes.SHA256(), 32, salt=upload_id.encode(), info=b"camroll staging v1")
    return AESGCM(hkdf.derive(data_key))


class Staging:
    def __init__(self, path: Path, data_key: bytes, upload_id: str) -> None:
        self.path = path
        self.upload_id = upload_id
        self._cipher = _cipher(data_key, upload_id)

    def offset(self) -> int:
        """Plaintext bytes safely stored; truncates a torn trailing record."""
        if not self.path.exists():
            return 0
        total, good_end = 0, 0
        size = self.path.stat().st_size
        with self.path.open("rb") as f:
            while True:
                head = f.read(HEAD.size)
                if len(head) < HEAD.size:
                    break
                (n,) = HEAD.unpack(head)
                end = good_end + HEAD.size + NONCE + n + TAG
                if end > size:
                    break
                f.seek(end)
                total += n
                good_end = end
        if good_end != size:
            with self.path.open("r+b") as f:
                f.truncate(good_end)
        return total

    def write_record(self, plain: bytes) -> None:
        """Seal and durably append one piece (at most RECORD bytes is typical)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        nonce = secrets.token_bytes(NONCE)
        with self.path.open("ab") as f:
            f.write(HEAD.pack(len(plain)) + nonce + self._cipher.encrypt(nonce, plain, None))
            f.flush()
            os.fsync(f.fileno())

    def chunks(self) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            while head := f.read(HEAD.size):
                (n,) = HEAD.unpack(head)
                nonce = f.read(NONCE)
                try:
                    yield self._cipher.decrypt(nonce, f.read(n + TAG), None)
                except InvalidTag:
                    raise DecryptionError(
                        f"staging for upload {self.upload_id} is damaged"
                    ) from None

    def sha256(self) -> str:
        h = hashlib.sha256()
        for chunk in self.chunks():
            h.update(chunk)
        return h.hexdigest()

    def write_plaintext(self, dest: Path) -> None:
        with dest.open("wb") as out:
            for chunk in self.chunks():
                out.write(chunk)

    @property
    def lock_path(self) -> Path:
        """Beside the staging file: the PATCH handlers' lock (see api/uploads.py)."""
        return self.path.with_name(self.path.name + ".lock")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
