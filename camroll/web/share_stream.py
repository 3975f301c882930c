"""The Web Share Target's multipart body, streamed part by part into encrypted staging.

A form parser would spool every shared file to a plaintext temporary file first; here each
`media` part becomes a tus upload whose bytes are sealed segment by segment as they arrive, and
whose length is known once the part ends. Completion (SHA-256, dedupe, processing job) is the
tus completion itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from anyio import to_thread
from fastapi import HTTPException
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.orm import Session

from camroll.api.uploads import _finished as finish_upload  # the tus completion, shared
from camroll.config import get_settings
from camroll.consent.gate import ConsentRequired
from camroll.db.models import Upload
from camroll.ingest import uploads as svc
from camroll.ingest.staging import SEGMENT

FIELD = "media"  # the manifest's share_target file parameter
MAX_FILES = 200


@dataclass
class Shared:
    name: str
    outcome: str  # stored | had | refused
    message: str
    asset_id: str | None = None


class _Sink:
    """One shared file on its way into staging."""

    def __init__(self, session: Session, upload: Upload, writer: svc.Writer, name: str) -> None:
        self.session, self.upload, self.writer, self.name = session, upload, writer, name
        self.hasher = hashlib.sha256()
        self.buf = bytearray()
        self.total = 0

    @classmethod
    def open(cls, session: Session, user_id: str, name: str, filetype: str) -> _Sink:
        # Length 0 for now: a share does not say how long each file is until it ends.
        upload = svc.create_upload(
            session,
            user_id,
            length=0,
            filename=name,
            filetype=filetype,
            checksum=None,
            device_path=name,
        )
        session.commit()  # the upload row exists before its bytes, as with tus
        writer = svc.claim_writer(session, upload)
        assert writer is not None  # nobody else knows this new upload yet
        return cls(session, upload, writer, upload.filename)

    def seal(self) -> None:
        if self.buf:
            piece = bytes(self.buf)
            self.buf.clear()
            self.hasher.update(piece)
            self.writer.append(self.session, piece)

    def finish(self) -> Shared:
        self.seal()
        self.upload.length = self.total
        try:
            headers = finish_upload(self.session, self.upload, self.hasher.hexdigest())
        except HTTPException as e:
            return Shared(self.name, "refused", str(e.detail))
        new = headers["Camroll-Status"] == "created"
        message = "Received, processing…" if new else "Already had"
        return Shared(self.name, "stored" if new else "had", message, headers["Camroll-Asset-Id"])

    def discard(self) -> None:
        self.writer.staging.remove()
        self.session.delete(self.upload)
        self.session.commit()


def boundary_of(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPException(400, "a share is a multipart/form-data body")
    return params[b"boundary"]


async def ingest_stream(
    session: Session, user_id: str, boundary: bytes, body: AsyncIterator[bytes]
) -> list[Shared]:
    """Store every `media` file of the body; other fields (title, text) are ignored."""
    events: list[tuple[str, bytes]] = []

    def mark(kind: str) -> Callable[[], None]:
        return lambda: events.append((kind, b""))

    def data(kind: str) -> Callable[[bytes, int, int], None]:
        return lambda buf, start, end: events.append((kind, bytes(buf[start:end])))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": mark("begin"),
            "on_header_field": data("field"),
            "on_header_value": data("value"),
            "on_header_end": mark("header"),
            "on_headers_finished": mark("headers"),
            "on_part_data": data("data"),
            "on_part_end": mark("end"),
        },
    )
    limit = get_settings().max_upload_bytes
    results: list[Shared] = []
    sink: _Sink | None = None
    headers: dict[str, bytes] = {}
    field, value = b"", b""

    async def start() -> _Sink | None:
        disposition = parse_options_header(headers.get("content-disposition", b""))[1]
        filename = disposition.get(b"filename")
        if disposition.get(b"name") != FIELD.encode() or filename is None:
            return None
        name = filename.decode("utf-8", "replace") or "shared"
        if len(results) >= MAX_FILES:
            results.append(Shared(name, "refused", f"more than {MAX_FILES} files in one share"))
            return None
        filetype = headers.get("content-type", b"").decode("latin-1")
        try:
            return await to_thread.run_sync(_Sink.open, session, user_id, name, filetype)
        except (svc.UploadError, ConsentRequired) as e:
            results.append(Shared(name, "refused", str(e)))
            return None

    try:
        async for chunk in body:
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise HTTPException(400, "the shared body is not valid multipart") from None
            for kind, piece in events:
                if kind == "begin":
                    headers, field, value = {}, b"", b""
                elif kind == "field":
                    field += piece
                elif kind == "value":
                    value += piece
                elif kind == "header":
                    headers[field.decode("latin-1").lower()] = value
                    field, value = b"", b""
                elif kind == "headers":
                    sink = await start()
                elif kind == "data" and sink is not None:
                    sink.total += len(piece)
                    if sink.total > limit:
                        await to_thread.run_sync(sink.discard)
                        results.append(Shared(sink.name, "refused", f"larger than {limit:,} bytes"))
                        sink = None
                        continue
                    sink.buf += piece
                    if len(sink.buf) >= SEGMENT:
                        await to_thread.run_sync(sink.seal)
                elif kind == "end" and sink is not None:
                    results.append(await to_thread.run_sync(sink.finish))
                    sink = None
            events.clear()
        parser.finalize()
    finally:
        if sink is not None:  # the body ended mid-file: keep nothing of it
            await to_thread.run_sync(sink.discard)
    return results
