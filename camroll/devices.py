"""Per-device app passwords for WebDAV backup apps (PhotoSync, FolderSync, Nextcloud-style).

A device password is an `api_tokens` row of kind "device": only its SHA-256 is stored, it is
shown once, and deleting the row revokes it. It has its own shape (no `crl_` prefix), so it never
works as an API bearer token, and API tokens or web sessions never work as device passwords.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from camroll import token_usage
from camroll.db.models import ApiToken, User, utcnow

KIND = "device"
# Typed on a phone keyboard: 20 characters from an unambiguous alphabet (100 bits), in groups.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_GROUPS, _GROUP_LEN = 5, 4
MAX_NAME = 100


class DeviceError(ValueError):
    pass


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _normalise(secret: str) -> str:
    # Forgive what phone keyboards do: capitals, spaces, missing dashes.
    raw = "".join(c for c in secret.lower() if c.isalnum())
    return "-".join(raw[i : i + _GROUP_LEN] for i in range(0, len(raw), _GROUP_LEN))


def new_password() -> str:
    return "-".join(
        "".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LEN)) for _ in range(_GROUPS)
    )


def create_device(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new device and its password, which is returned here once and never again."""
    name = " ".join(name.split())
    if not name:
        raise DeviceError("give the device a name, e.g. 'Anna's iPhone'")
    if len(name) > MAX_NAME:
        raise DeviceError(f"a device name has at most {MAX_NAME} characters")
    secret = new_password()
    device = ApiToken(user_id=user.id, name=name, kind=KIND, token_hash=_digest(secret))
    session.add(device)
    session.flush()
    return device, secret


def list_devices(session: Session, user_id: str) -> list[ApiToken]:
    devices = list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.kind == KIND)
            .order_by(ApiToken.created_at.desc(), ApiToken.id)
        )
    )
    for d in devices:  # a use not yet written shows at once, without writing anything here
        if (at := token_usage.noted(d.id)) is not None:
            set_committed_value(d, "last_used_at", at)
    return devices


def get_device(session: Session, user_id: str, device_id: str) -> ApiToken | None:
    device = session.get(ApiToken, device_id)
    if device is None or device.user_id != user_id or device.kind != KIND:
        return None  # someone else's device is as absent as a missing one
    return device


def revoke_device(session: Session, user_id: str, device_id: str) -> bool:
    device = get_device(session, user_id, device_id)
    if device is None:
        return False
    session.delete(device)
    session.flush()
    return True


def resolve_device(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The owner and device of a password, or None (unknown, revoked, or not a device's)."""
    if not secret or len(secret) > 200:
        return None
    device = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == _digest(_normalise(secret)), ApiToken.kind == KIND
        )
    ).first()
    if device is None:
        return None
    user = session.get(User, device.user_id)
    if user is None:
        return None
    now = utcnow()
    # A backup run makes hundreds of requests; a minute's precision is enough for "last used".
    # Never written in the request's transaction (camroll.token_usage writes it apart).
    if device.last_used_at is None or now - device.last_used_at > timedelta(minutes=1):
        token_usage.note(device.id, now)
    return user, device
