"""HTTP Basic auth for WebDAV: any user name (apps insist on one; the email is natural) and a
device app password. The password alone names the owner and the device."""

from __future__ import annotations

from typing import Any

from wsgidav.dc.base_dc import BaseDomainController

from camroll.db.engine import session_scope
from camroll.devices import resolve_device

REALM = "camroll"
USER_ID = "camroll.user_id"
DEVICE = "camroll.device"  # "device:<name>": the actor in the consent ledger and the access log


class DevicePasswordController(BaseDomainController):
    def __init__(self, wsgidav_app: Any, config: dict) -> None:
        super().__init__(wsgidav_app, config)

    def get_domain_realm(self, path_info: str, environ: dict | None) -> str:
        return REALM

    def require_authentication(self, realm: str, environ: dict | None) -> bool:
        return True

    def basic_auth_user(self, realm: str, user_name: str, password: str, environ: dict) -> bool:
        with session_scope() as session:
            found = resolve_device(session, password)
            if found is None:
                return False
            user, device = found
            environ[USER_ID] = user.id
            environ[DEVICE] = f"device:{device.name}"
            environ["wsgidav.auth.roles"] = ("editor",)
        return True

    def supports_http_digest_auth(self) -> bool:
        return False  # digest would need the plaintext password (or its MD5) on the server

    def digest_auth_user(self, realm: str, user_name: str, environ: dict) -> bool:
        return False
