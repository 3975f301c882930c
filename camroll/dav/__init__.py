"""WebDAV backup door: phone backup apps upload with a per-device app password (see devices.py).

`app.py` builds the WsgiDAV application and wraps it for ASGI; `auth.py` checks device passwords;
`provider.py` maps the owner's library to folders and sends every PUT through camroll's ingest.
"""
