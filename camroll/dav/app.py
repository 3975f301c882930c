"""The WebDAV application, ready to mount in the ASGI app at `MOUNT` (a2wsgi runs it in threads
and streams request bodies to it, so a big PUT never sits whole in memory)."""

from __future__ import annotations

import logging
from typing import Any

from a2wsgi import WSGIMiddleware
from wsgidav import util as dav_util
from wsgidav.error_printer import ErrorPrinter
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from camroll.dav.auth import DevicePasswordController
from camroll.dav.provider import Provider

MOUNT = "/dav"


def create_dav_app() -> Any:
    config = {
        "mount_path": MOUNT,
        "provider_mapping": {"/": Provider()},
        # No CORS and no HTML directory browser: backup apps need neither, and the browser
        # pages of camroll live elsewhere (the browser's inline scripts would break our CSP).
        "middleware_stack": [ErrorPrinter, HTTPAuthenticator, RequestResolver],
        "http_authenticator": {
            "domain_controller": DevicePasswordController,
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "dir_browser": {"enable": False},
        "lock_storage": True,  # in memory: Windows and macOS clients LOCK before they PUT
        "property_manager": None,
        "add_header_MS_Author_Via": True,
        "suppress_version_info": True,
        "verbose": 1,
        "logging": {"enable": False},
    }
    # Error pages name no version (wsgidav's own server does this for suppress_version_info).
    dav_util.public_wsgidav_info = "WsgiDAV"
    dav_util.public_python_info = "Python"
    dav = WsgiDAVApp(config)
    logging.getLogger("wsgidav").setLevel(logging.WARNING)
    return WSGIMiddleware(dav, workers=8)
