"""Field encryption: the most revealing columns hold AES-GCM ciphertext under the owner's key.

Why this shape (seven people read `asset.filename`, `person.name`, … while this lands):

- The mapped attribute stays plaintext in Python; only the column holds ciphertext. Code that
  reads or sets attributes needs no change.
- Every stored value names its owner: ``version | len(uid) | uid | nonce | ciphertext``. So any
  result column decrypts from the value alone: an ORM entity, a bare ``select(Person.name)`` or
  a join. There is no per-session key context to set up or to forget. The user id is in every
  row anyway, so naming it reveals nothing; the AES-GCM associated data binds the value to that
  user and to its kind, so ciphertext cannot be moved to another account.
- Writes learn the owner from the row itself: a mapper event wraps each changed value as
  ``Sealed(value, row.user_id)`` right before the INSERT or UPDATE and puts the plaintext back
  right after it.
- A plain value bound to an encrypted column (``where(AssetPlace.city == "Moab")``, a Core
  insert) has no owner and raises `FieldEncryptionError`: ciphertext never equals anything, so
  such a query would silently find nothing. Load the user's rows and filter in memory.
  ``is None`` / ``is_not(None)`` compile to IS NULL and keep working: whether a field is empty
  stays visible.
- The field key is HKDF-SHA256 of the user's data key, cached per process for a few minutes and
  dropped when the data key is destroyed. Destroying the wrapped data key (the purge does it
  first) makes every copy of these fields unreadable, backups included.

``CAMROLL_FIELD_ENCRYPTION=false`` (for the benchmark only) stores the same framing with
version 0 and no encryption; values written either way are read either way.
"""

from __future__ import annotations

import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, LargeBinary, event, select
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.types import TypeDecorator

from camroll.crypto.keys import KeyDestroyed, unwrap

PLAIN, SEALED_V1 = 0, 1
NONCE = 12
# A key stays cached this long after its last load; a purge in another process drops the
# wrapped key, and this bounds how long a worker elsewhere could still use its copy.
KEY_TTL_S = 600.0
KINDS = ("str", "float", "bytes")


class FieldEncryptionError(Exception):
    """An encrypted column was used in a way that needs plaintext in SQL."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A value on its way into an encrypted column, with the user whose key seals it."""

    value: Any
    user_id: str


# --- keys ---------------------------------------------------------------------------------

_lock = threading.Lock()
_keys: dict[str, tuple[AESGCM, float]] = {}
# Reads a user's wrapped data key (through the given connection, or one of its own): given by the
# schema when it installs this module (`install`), as this module sits below camroll.db.
_wrapped_key: Callable[[str, Connection | None], bytes | None] | None = None


def _derive(data_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)


def field_key(data_key: bytes) -> AESGCM:
    return AESGCM(_derive(data_key, b"camroll-fields-v1"))


# The search index's HMAC key (camroll/search/blind.py): derived like the field key, so the
# blind tokens die with the data key too.
_blind: dict[str, bytes] = {}


def remember(user_id: str, data_key: bytes) -> None:
    """Cache a user's field key (a new user's key is not yet visible to other connections)."""
    with _lock:
        _blind[user_id] = _derive(data_key, b"camroll-search-v1")
        _keys[user_id] = (field_key(data_key), time.monotonic() + KEY_TTL_S)


def forget(user_id: str) -> None:
    """Drop the cached key: called when the user's data key is destroyed."""
    with _lock:
        _keys.pop(user_id, None)
        _blind.pop(user_id, None)


def blind_key(user_id: str, conn: Connection | None = None) -> bytes:
    """The user's search-token key; raises KeyDestroyed once the data key is gone."""
    _cipher(user_id, conn)  # loads (and remembers) the data key when not cached or expired
    return _blind[user_id]


def _cipher(user_id: str, conn: Connection | None = None) -> AESGCM:
    hit = _keys.get(user_id)  # a dict read is atomic; the lock guards writes only
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    if _wrapped_key is None:
        raise FieldEncryptionError("no key store: camroll.db.models installs it on import")
    wrapped = _wrapped_key(user_id, conn)
    if wrapped is None:
        raise KeyDestroyed(f"no data key for user {user_id}: its fields are shredded")
    remember(user_id, unwrap(wrapped, user_id))
    return _keys[user_id][0]


# --- values -------------------------------------------------------------------------------


def _to_bytes(kind: str, value: Any) -> bytes:
    if kind == "str":
        # surrogatepass: a name decoded with surrogateescape (bytes that were not UTF-8)
        # round-trips instead of failing the write.
        return str(value).encode("utf-8", "surrogatepass")
    if kind == "float":
        return struct.pack("<d", float(value))
    return bytes(value)


def _from_bytes(kind: str, raw: bytes) -> Any:
    if kind == "str":
        return raw.decode("utf-8", "surrogatepass")
    if kind == "float":
        return struct.unpack("<d", raw)[0]
    return raw


def _aad(user_id: str, kind: str) -> bytes:
    return f"camroll-field:{kind}:{user_id}".encode()


def _encryption_on() -> bool:
    from camroll.config import get_settings

    return get_settings().field_encryption


def seal(kind: str, value: Any, user_id: str, cipher: AESGCM | None, on: bool = True) -> bytes:
    """The stored form of one value (``cipher`` may be None when ``on`` is false)."""
    uid = user_id.encode()
    head = bytes([SEALED_V1 if on else PLAIN, len(uid)]) + uid
    raw = _to_bytes(kind, value)
    if not on:
        return head + raw
    assert cipher is not None
    nonce = secrets.token_bytes(NONCE)
    return head + nonce + cipher.encrypt(nonce, raw, _aad(user_id, kind))


def open_sealed(kind: str, stored: bytes, cipher: AESGCM | None = None) -> Any:
    """The plaintext of one stored value; the key comes from the owner named inside it."""
    stored = bytes(stored)
    version, n = stored[0], stored[1]
    user_id = stored[2 : 2 + n].decode()
    body = stored[2 + n :]
    if version == PLAIN:
        return _from_bytes(kind, body)
    if version != SEALED_V1:
        raise FieldEncryptionError(f"unknown field format {version}")
    cipher = cipher or _cipher(user_id)
    return _from_bytes(kind, cipher.decrypt(body[:NONCE], body[NONCE:], _aad(user_id, kind)))


def owner_of(stored: bytes) -> str:
    stored = bytes(stored)
    return stored[2 : 2 + stored[1]].decode()


class Encrypted(TypeDecorator[Any]):
    """A column whose Python value is a str, float or bytes and whose stored value is sealed
    under the row owner's field key. Use with rows that have a `user_id`."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        super().__init__()
        self.kind = kind

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, Sealed):
            if value.value is None:
                return None
            on = _encryption_on()
            cipher = _cipher(value.user_id) if on else None
            return seal(self.kind, value.value, value.user_id, cipher, on)
        raise FieldEncryptionError(
            "this column is encrypted per user: it cannot be compared, filtered or written "
            "in SQL; load the owner's rows and filter in Python"
        )

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else open_sealed(self.kind, value)

    def compare_values(self, x: Any, y: Any) -> bool:
        return _plain(x) == _plain(y)


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, Sealed) else v


# --- ORM wiring ---------------------------------------------------------------------------

_attrs_cache: dict[Mapper[Any], list[str]] = {}


def encrypted_attributes(mapper: Mapper[Any]) -> list[str]:
    """The attribute keys of a mapper whose columns are `Encrypted`."""
    found = _attrs_cache.get(mapper)
    if found is None:
        found = [
            prop.key
            for prop in mapper.column_attrs
            if any(isinstance(c.type, Encrypted) for c in prop.columns)
        ]
        _attrs_cache[mapper] = found
    return found


def _seal_state(mapper: Mapper[Any], conn: Connection, target: Any, changed_only: bool) -> None:
    keys = encrypted_attributes(mapper)
    if not keys:
        return
    state = target._sa_instance_state
    user_id = state.dict.get("user_id")
    if not user_id and state.key is not None:  # persistent with user_id expired: read it
        table = mapper.local_table
        pk = mapper.primary_key_from_instance(target)
        where = [c == v for c, v in zip(mapper.primary_key, pk, strict=True)]
        user_id = conn.execute(select(table.c.user_id).where(*where)).scalar()
    for key in keys:
        if key not in state.dict or (changed_only and key not in state.committed_state):
            continue
        value = state.dict[key]
        if value is None or isinstance(value, Sealed):
            continue
        if not user_id:
            raise FieldEncryptionError(f"{mapper.class_.__name__}.{key}: row has no user_id")
        if _encryption_on():
            _cipher(user_id, conn)  # load through the flushing connection: it sees new keys
        state.dict[key] = Sealed(value, user_id)
        if state.session is not None:  # a failed flush must not leave Sealed values behind
            state.session.info.setdefault(_SEALED, set()).add(state)


_SEALED = "camroll.sealed_states"


def _unseal_state(mapper: Mapper[Any], target: Any) -> None:
    state = target._sa_instance_state
    for key in encrypted_attributes(mapper):
        value = state.dict.get(key)
        if isinstance(value, Sealed):
            state.dict[key] = value.value


def _unseal_leftovers(session: Session, *_args: Any) -> None:
    """After a flush, or a rollback of a failed one: every value is plaintext again."""
    for state in session.info.pop(_SEALED, ()):
        obj = state.obj()
        if obj is not None:
            _unseal_state(state.mapper, obj)


def install(base: type, wrapped_key: Callable[[str, Connection | None], bytes | None]) -> None:
    """Wire the seal/unseal events on every mapped subclass of `base`; `wrapped_key(user_id,
    conn)` reads the user's wrapped data key (None once destroyed), through `conn` when given
    (the flushing connection sees a key not yet committed), else through a connection of its
    own. Field keys are derived from it."""
    global _wrapped_key
    _wrapped_key = wrapped_key

    @event.listens_for(base, "before_insert", propagate=True)
    def _before_insert(mapper: Mapper[Any], conn: Connection, target: Any) -> None:
        _seal_state(mapper, conn, target, changed_only=False)

    @event.listens_for(base, "before_update", propagate=True)
    def _before_update(mapper: Mapper[Any], conn: Connection, target: Any) -> None:
        _seal_state(mapper, conn, target, changed_only=True)

    @event.listens_for(base, "after_insert", propagate=True)
    def _after_insert(mapper: Mapper[Any], conn: Connection, target: Any) -> None:
        _unseal_state(mapper, target)

    @event.listens_for(base, "after_update", propagate=True)
    def _after_update(mapper: Mapper[Any], conn: Connection, target: Any) -> None:
        _unseal_state(mapper, target)

    if not event.contains(Session, "after_soft_rollback", _unseal_leftovers):
        event.listen(Session, "after_flush_postexec", _unseal_leftovers)
        event.listen(Session, "after_soft_rollback", _unseal_leftovers)
