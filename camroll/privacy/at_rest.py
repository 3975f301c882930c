"""What the database holds encrypted and what it keeps in the clear, for the transparency report.

The encrypted list is read from the models (every column of type `Encrypted`), so it cannot
drift from the schema; the clear list says why each kind of value must stay readable to SQL.
"""

from __future__ import annotations

from typing import Any

from camroll.crypto.fields import encrypted_attributes
from camroll.db.models import Base

IN_THE_CLEAR: list[dict[str, str]] = [
    {
        "what": "IDs, and the owner's ID on every row",
        "why": "to scope every query to its owner and to find and delete all of a user's rows",
    },
    {"what": "Your e-mail address", "why": "sign-in looks it up; the purge deletes it"},
    {
        "what": "Password and token hashes (argon2, SHA-256)",
        "why": "to check a sign-in; the secrets themselves are never stored",
    },
    {
        "what": "Times: upload, capture (UTC and local with its offset), created, consent, "
        "deadlines",
        "why": "the timeline, date search and retention deadlines order and filter by them",
    },
    {
        "what": "Sizes, pixel dimensions, durations, file types, SHA-256 checksums of originals",
        "why": "to skip files you already uploaded and to check integrity; a checksum points to "
        "a photo only for someone who already has the file",
    },
    {
        "what": "Analysis that names no person and no place: tags and scores, expressions and "
        "smiles, face boxes and landmarks, quality, perceptual hashes, near-duplicate groups, "
        "distances from home in km, face counts",
        "why": "filtered and ranked in the database; it says what is in a photo, not who or where",
    },
    {
        "what": "Ideas' kinds, states, dates and member ids; consent records; the access log; "
        "job records; quarantine reason codes",
        "why": "the app's own bookkeeping, read and filtered in the database",
    },
]


def encrypted_fields() -> list[str]:
    """Every `table.column` stored encrypted under the owner's key, from the models."""
    out = []
    for mapper in Base.registry.mappers:
        table = mapper.local_table.name  # type: ignore[union-attr]
        out += [
            f"{table}.{mapper.attrs[key].columns[0].name}" for key in encrypted_attributes(mapper)
        ]
    return sorted(out)


def statement() -> dict[str, Any]:
    return {
        "encrypted_with_your_key": encrypted_fields(),
        "how": "AES-256-GCM under a key derived from your data key; deleting that key (the "
        "purge does it first) makes every copy unreadable, backups included",
        "stored_in_the_clear": IN_THE_CLEAR,
    }
