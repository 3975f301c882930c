"""The consent scopes, each with the plain-language text the owner agrees to.

Model training is deliberately not a scope: camroll never trains any model on user media.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

POLICY_VERSION = "2026-11-01"


@dataclass(frozen=True)
class Scope:
    name: str
    title: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{POLICY_VERSION}\n{self.name}\n{self.text}".encode()).hexdigest()


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in [
        Scope(
            "cloud_processing",
            "Upload and store my camera roll",
            "camroll may receive the photos and videos your sync client sends, store them "
            "encrypted under a key that belongs to you, read their embedded metadata (time, "
            "place, camera) and make thumbnails and previews. Nothing else is analysed unless "
            "you switch on another scope. Switching this off stops uploads and processing at "
            "once and deletes everything after the retention window.",
        ),
        Scope(
            "faces",
            "Find faces and people",
            "camroll may detect faces, compute face embeddings and facial expressions, and group "
            "faces into people you can name. Switching this off deletes all faces, embeddings, "
            "expressions and people.",
        ),
        Scope(
            "places",
            "Understand places",
            "camroll may turn GPS positions into place names offline, infer your home area and "
            "find trips. Switching this off deletes all derived places.",
        ),
        Scope(
            "content",
            "Recognise what is in photos",
            "camroll may recognise objects and scenes, score photo quality, find near-duplicates "
            "and build a search index. Switching this off deletes all of those results.",
        ),
        Scope(
            "creations",
            "Suggest ideas and creations",
            "camroll may group photos into moments and make collages, recap videos, restyled "
            "photos and memories for you. Switching this off deletes all suggestions and "
            "creations.",
        ),
    ]
}

TRAINING_STATEMENT = (
    "camroll never uses your photos, videos or anything derived from them to train any model."
)
