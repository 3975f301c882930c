"""Tables. Every row belongs to exactly one user; every derived row carries its provenance.

`Derived` is the structural part of privacy: the transparency report, export, scope revocation
and purge find derived data through `derived_models()`, never through a hand-kept list.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from camroll.crypto.fields import Encrypted, install
from camroll.db.engine import get_engine


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC everywhere (SQLite has no zones) and hands back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


def _wrapped_key(user_id: str, conn: Connection | None) -> bytes | None:
    keys = UserKey.__table__.c  # a Core select: an ORM one costs ~20% more per key-cache miss
    query = select(keys.wrapped_key).where(keys.user_id == user_id)
    if conn is not None:
        return conn.execute(query).scalar()
    with get_engine().connect() as own:
        return own.execute(query).scalar()


# Encrypted columns are sealed under the row owner's key on the way in (camroll/crypto/fields.py),
# derived from the wrapped data keys in user_keys (read here: crypto never imports the schema).
install(Base, _wrapped_key)


def _user_fk() -> Mapped[str]:
    return mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the owner opts out or deletes the account; the purge job acts once it passes.
    deletion_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    deletion_reason: Mapped[str | None] = mapped_column(String(40))
    # Hash of this user's newest consent record: removing the last record is detectable too.
    ledger_head: Mapped[str | None] = mapped_column(String(64))


class ApiToken(Base):
    """API tokens and web sessions alike: only the SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = _user_fk()
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10), default="api")  # api | session | device
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserKey(Base):
    """The user's data key, wrapped by the instance master key. Deleting it shreds every blob."""

    __tablename__ = "user_keys"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentState(Base):
    """The current value of each scope; the history lives in ConsentEvent."""

    __tablename__ = "consent_state"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    policy_version: Mapped[str] = mapped_column(String(20))


class ConsentEvent(Base):
    """Append-only consent history, hash-chained per user: each record hashes the user's
    previous one, so one user's records can be purged without breaking anyone else's chain."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[str] = _user_fk()
    scope: Mapped[str] = mapped_column(String(40))
    granted: Mapped[bool] = mapped_column(Boolean)
    policy_version: Mapped[str] = mapped_column(String(20))
    policy_sha256: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Upload(Base):
    """A resumable (tus 1.0) upload in progress. Its bytes are staged encrypted."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = _user_fk()
    filename: Mapped[str] = mapped_column(Encrypted("str"))  # cleaned (camroll.media.names)
    # The name exactly as sent (UTF-8 bytes, control and bidi characters included): only here.
    original_name: Mapped[bytes | None] = mapped_column(Encrypted("bytes"))
    filetype: Mapped[str] = mapped_column(String(200), default="")
    device_path: Mapped[str | None] = mapped_column(Encrypted("str"))
    length: Mapped[int] = mapped_column(BigInteger)
    # Plaintext bytes safely staged: moved only by a compare-and-set from the lease holder.
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    # The SHA-256 the client announced; checked against what arrived.
    checksum: Mapped[str | None] = mapped_column(String(64))
    # The blob-store prefix of its staged segments (camroll.ingest.staging).
    staging_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    asset_id: Mapped[str | None] = mapped_column(String(32))
    # The single-writer lease (camroll.ingest.uploads.claim_writer): a generation that fences
    # out a writer whose lease lapsed, until when it holds, and which process holds it.
    writer_gen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    writer_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    writer_tag: Mapped[str | None] = mapped_column(String(120))


class Asset(Base):
    """One uploaded file. Quarantined files are kept (encrypted) with their reason."""

    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("user_id", "checksum", name="uq_assets_user_checksum"),
        Index("ix_assets_user_sort", "user_id", "sort_at", "id"),
        # An owner's photos in one state (the trash, the ready library).
        Index("ix_assets_user_status", "user_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = _user_fk()
    checksum: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(Encrypted("str"))  # cleaned (camroll.media.names)
    # The name exactly as sent, kept encrypted and shown nowhere but the export.
    original_name: Mapped[bytes | None] = mapped_column(Encrypted("bytes"))
    # The path inside the synced folder, as on the device (e.g. DCIM/100APPLE/IMG_0001.HEIC).
    device_path: Mapped[str | None] = mapped_column(Encrypted("str"))
    mime: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str | None] = mapped_column(String(10))  # image | raw | video
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    quarantine_reason: Mapped[str | None] = mapped_column(String(40))
    quarantine_detail: Mapped[str | None] = mapped_column(Text)
    original_key: Mapped[str | None] = mapped_column(String(200))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Capture instant when known, else the upload time: the timeline's order.
    sort_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Live Photo partner (still <-> motion video), paired by Apple's ContentIdentifier.
    live_pair_id: Mapped[str | None] = mapped_column(String(32))
    # In the trash since (status "trashed"); emptied for good after CAMROLL_TRASH_DAYS.
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class AssetKey(Base):
    """A photo's own key: its original and renditions are encrypted under HKDF(owner's data
    key, this secret). Erasing the photo deletes this row, so every copy of its blobs, backups
    included, is unreadable: crypto-shredding one photo, not only a whole account."""

    __tablename__ = "asset_keys"

    asset_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = _user_fk()
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(Base):
    """What the queue is doing for a user; `GET /api/jobs` and `sync --wait` read it."""

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("task", "subject_id", name="uq_job_task_subject"),
        # The library refresh finds the batch analysed since its last run (analyze/library.py).
        Index("ix_job_runs_user_task_updated", "user_id", "task", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[str] = _user_fk()
    task: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), index=True)  # pending|running|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LibraryState(Base):
    """How far the incremental library refresh and ideas have got for an owner: the batch is
    what was analysed since `*_until`; a full pass runs at most daily (or when the library grew
    by a tenth since the last one)."""

    __tablename__ = "library_state"

    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    refreshed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_size: Mapped[int] = mapped_column(Integer, default=0)
    ideas_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ideas_full_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The event gap threshold (seconds) the last full ideas pass fitted on the whole library:
    # a batch's trips are found in a window around it, split as the full pass splits them.
    moments_gap_s: Mapped[int | None] = mapped_column(Integer)
    # Photos analysed since the last full refresh, counted by the batches (whether a full pass
    # is due, without counting the whole library).
    grown: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Derived:
    """Provenance that every derived row carries: whose, from which asset, under which scope,
    made by which model and version, and when."""

    __category__: str = ""

    @declared_attr
    def user_id(cls) -> Mapped[str]:
        return mapped_column(String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True)

    @declared_attr
    def asset_id(cls) -> Mapped[str]:
        return mapped_column(String(32), ForeignKey("assets.id", ondelete="CASCADE"), index=True)

    scope: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(60))
    model_version: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssetMetadata(Derived, Base):
    """What ExifTool read from the file."""

    __tablename__ = "asset_metadata"
    __category__ = "metadata"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    orientation: Mapped[int | None] = mapped_column(Integer)
    taken_at_local: Mapped[str | None] = mapped_column(String(40))
    tz_offset: Mapped[str | None] = mapped_column(String(6))
    tz_source: Mapped[str | None] = mapped_column(String(20))
    taken_at_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latitude: Mapped[float | None] = mapped_column(Encrypted("float"))
    longitude: Mapped[float | None] = mapped_column(Encrypted("float"))
    altitude: Mapped[float | None] = mapped_column(Encrypted("float"))
    make: Mapped[str | None] = mapped_column(Encrypted("str"))
    model_name: Mapped[str | None] = mapped_column(Encrypted("str"))
    lens: Mapped[str | None] = mapped_column(Encrypted("str"))
    duration: Mapped[float | None] = mapped_column(Float)
    rotation: Mapped[int | None] = mapped_column(Integer)
    content_identifier: Mapped[str | None] = mapped_column(String(100))
    file_type: Mapped[str | None] = mapped_column(String(40))


class Rendition(Derived, Base):
    """A thumbnail, preview or video poster, stored encrypted like the original."""

    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("asset_id", "kind", name="uq_rendition_asset_kind"),)
    __category__ = "previews"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # thumbnail | preview
    blob_key: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(40))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)


class Person(Derived, Base):
    """A person: faces grouped by the clustering, named and edited by the owner.

    Not derived from one photo: `asset_id` is the asset of the cover face, and empty when the
    cover is gone. Name, birthday and hidden are the owner's own words, kept across reclusters.
    """

    __tablename__ = "people"
    __category__ = "people"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str | None] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="SET NULL"), index=True, nullable=True
    )
    name: Mapped[str | None] = mapped_column(Encrypted("str"))
    birthday: Mapped[str | None] = mapped_column(Encrypted("str"))  # YYYY-MM-DD
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    cover_face_id: Mapped[str | None] = mapped_column(String(32))
    face_count: Mapped[int] = mapped_column(Integer, default=0)


class PersonRejection(Base):
    """The owner said two people are not one ("is this the same person?" -> no): a cannot-link
    that suggestions and reclustering respect. `person_a` < `person_b`; gone with either."""

    __tablename__ = "person_rejections"

    user_id: Mapped[str] = _user_fk()
    person_a: Mapped[str] = mapped_column(
        String(32), ForeignKey("people.id", ondelete="CASCADE"), primary_key=True
    )
    person_b: Mapped[str] = mapped_column(
        String(32), ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Face(Derived, Base):
    """A face found in a photo or a video frame: where it is, its 5 landmarks and how usable
    it is for recognising people. Boxes and landmarks are fractions of the upright image."""

    __tablename__ = "faces"
    __category__ = "faces"
    # With asset_id: a person's face count (trash excluded) is read from the index alone.
    __table_args__ = (
        Index("ix_faces_user_person_asset", "user_id", "person_id", "asset_id"),
        # Deleting a person nulls its faces' person_id: found by this index, not a scan.
        Index("ix_faces_person_id", "person_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    box_x: Mapped[float] = mapped_column(Float)
    box_y: Mapped[float] = mapped_column(Float)
    box_w: Mapped[float] = mapped_column(Float)
    box_h: Mapped[float] = mapped_column(Float)
    landmarks: Mapped[str] = mapped_column(Text)  # JSON [[x, y] * 5], fractions
    score: Mapped[float] = mapped_column(Float)
    sharpness: Mapped[float | None] = mapped_column(Float)
    usable: Mapped[bool] = mapped_column(Boolean)
    reject_reason: Mapped[str | None] = mapped_column(String(20))
    at_seconds: Mapped[float | None] = mapped_column(Float)  # video frame time
    person_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("people.id", ondelete="SET NULL"), nullable=True
    )
    # "auto" (clustering) or "owner" (moved or confirmed by the owner: reclustering keeps it).
    assigned_by: Mapped[str] = mapped_column(String(10), default="auto")
    # JSON list of person ids the owner moved this face out of: it never goes back to them.
    banned_people: Mapped[str | None] = mapped_column(Text)


class FaceEmbedding(Derived, Base):
    """A 128-number description of a face, used only to group faces into people."""

    __tablename__ = "face_embeddings"
    __category__ = "face_embeddings"
    # The owner's face index: freshness (count, newest) and rows since, from the index alone.
    __table_args__ = (Index("ix_face_embeddings_user_created", "user_id", "created_at"),)

    face_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[bytes] = mapped_column(Encrypted("bytes"))  # float32 little-endian


class FaceExpression(Derived, Base):
    """The facial expression read from a face, and how much it smiles."""

    __tablename__ = "face_expressions"
    __category__ = "expressions"
    __table_args__ = (
        Index(  # broadest first; partial as ix_asset_quality_user_score
            "ix_face_expressions_user_smile",
            "user_id",
            "smile",
            "asset_id",
            sqlite_where=text("smile IS NOT NULL"),
            postgresql_where=text("smile IS NOT NULL"),
        ),
        Index("ix_face_expressions_user_asset", "user_id", "asset_id"),
    )

    face_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("faces.id", ondelete="CASCADE"), primary_key=True
    )
    expression: Mapped[str] = mapped_column(String(20))
    smile: Mapped[float] = mapped_column(Float)
    scores: Mapped[str] = mapped_column(Text)  # JSON {expression: probability}


class AssetTag(Derived, Base):
    """What is in the photo (objects and scenes), with a score and the raw model labels."""

    __tablename__ = "asset_tags"
    __category__ = "tags"
    __table_args__ = (
        # A theme's size from the index alone; a photo's themes (0024).
        Index("ix_asset_tags_user_label_score", "user_id", "label", "score", "asset_id"),
        Index("ix_asset_tags_user_asset", "user_id", "asset_id", "label", "score"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    label: Mapped[str] = mapped_column(String(60))
    score: Mapped[float] = mapped_column(Float)
    sources: Mapped[str] = mapped_column(Text)  # JSON list of raw labels / signals


class AssetQuality(Derived, Base):
    """How sharp and well exposed the photo is, and its near-duplicate group."""

    __tablename__ = "asset_quality"
    __category__ = "quality"
    # The owner's hash index reads only the rows added since it was built (analyze/similar.py).
    __table_args__ = (
        Index("ix_asset_quality_user_created", "user_id", "created_at"),
        # Best first. Partial: SQLite without statistics took a plain (user_id, ...) index for
        # other lookups (a batch's duplicate groups); only a query naming the predicate uses it.
        Index(
            "ix_asset_quality_user_score",
            "user_id",
            "score",
            "asset_id",
            sqlite_where=text("score IS NOT NULL"),
            postgresql_where=text("score IS NOT NULL"),
        ),
    )

    asset_id: Mapped[str] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    sharpness: Mapped[float] = mapped_column(Float)
    exposure: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    phash: Mapped[str] = mapped_column(String(16))
    # Near-duplicates and bursts share a group id; the best shot of the group has is_best.
    duplicate_group: Mapped[str | None] = mapped_column(String(32), index=True)
    is_best: Mapped[bool] = mapped_column(Boolean, default=True)


class SearchTerm(Derived, Base):
    """What search finds an asset by, as blind tokens: keyed hashes (HMAC under a key derived
    from the owner's data key) of the words of its tags or place names, one row per source and
    scope, so the full-text index (SQLite FTS5, PostgreSQL tsvector + GIN; made by migration
    0012) holds no plaintext and dies with the key. `day` is the capture day, for date filters."""

    __tablename__ = "search_terms"
    __category__ = "search_index"
    __table_args__ = (Index("ix_search_terms_user_day", "user_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # date | tags | places
    tokens: Mapped[str] = mapped_column(Text)  # space-separated, letters only
    day: Mapped[str | None] = mapped_column(String(10))  # YYYY-MM-DD


class AssetEmbedding(Derived, Base):
    """The photo as a vector from an optional CLIP model the operator placed, used for search
    by description; absent unless such a model is installed."""

    __tablename__ = "asset_embeddings"
    __category__ = "image_embeddings"

    asset_id: Mapped[str] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[bytes] = mapped_column(Encrypted("bytes"))  # float32, L2-normalised


class AssetPlace(Derived, Base):
    """Where the photo was taken, named offline from its GPS position, and how far from home."""

    __tablename__ = "asset_places"
    __category__ = "places"

    asset_id: Mapped[str] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    city: Mapped[str] = mapped_column(Encrypted("str"))
    subregion: Mapped[str | None] = mapped_column(Encrypted("str"))  # county, district
    region: Mapped[str | None] = mapped_column(Encrypted("str"))
    country: Mapped[str | None] = mapped_column(Encrypted("str"))
    country_code: Mapped[str | None] = mapped_column(Encrypted("str"))
    distance_to_place_km: Mapped[float | None] = mapped_column(Float)
    distance_from_home_km: Mapped[float | None] = mapped_column(Float)


class HomeLocation(Derived, Base):
    """A home area, inferred from where most photos are taken on the most days.

    Not derived from one photo: `asset_id` is empty."""

    __tablename__ = "home_locations"
    __category__ = "homes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str | None] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="SET NULL"), index=True, nullable=True
    )
    latitude: Mapped[float] = mapped_column(Encrypted("float"))
    longitude: Mapped[float] = mapped_column(Encrypted("float"))
    label: Mapped[str | None] = mapped_column(Encrypted("str"))
    days: Mapped[int] = mapped_column(Integer)
    photos: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)


class HomePeriodRow(Derived, Base):
    """A home period: where the owner lived from one date to another, inferred from where photos
    were taken on most days (night shots weigh more); trips are measured from it.

    Not derived from one photo: `asset_id` is empty."""

    __tablename__ = "home_periods"
    __category__ = "home_periods"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str | None] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="SET NULL"), index=True, nullable=True
    )
    latitude: Mapped[float] = mapped_column(Encrypted("float"))
    longitude: Mapped[float] = mapped_column(Encrypted("float"))
    label: Mapped[str | None] = mapped_column(Encrypted("str"))
    # Local dates (YYYY-MM-DD) of the first and last photo day there: dates stay in the clear,
    # as every capture time does; where is what is sealed.
    start_date: Mapped[str] = mapped_column(String(10))
    end_date: Mapped[str] = mapped_column(String(10))
    days: Mapped[int] = mapped_column(Integer)
    share: Mapped[float] = mapped_column(Float)


class Idea(Derived, Base):
    """A suggestion made from the owner's photos (a trip's collage or recap, a theme, on this
    day) or a creation the owner made, with its reason and its rendered media.

    Not derived from one photo: `asset_id` is the cover's asset; the members are listed."""

    __tablename__ = "ideas"
    __category__ = "ideas"
    __table_args__ = (UniqueConstraint("user_id", "fingerprint", name="uq_ideas_user_fingerprint"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str | None] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="SET NULL"), index=True, nullable=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # collage | recap | restyle | theme | on_this_day
    title: Mapped[str] = mapped_column(Encrypted("str"))  # names places and people
    reason: Mapped[str] = mapped_column(Encrypted("str"))
    confidence: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(10), index=True)  # suggested | accepted | dismissed
    # What the idea is about ("recap:trip:2015-06-12:2015-07-03"): dismissed is never re-made.
    fingerprint: Mapped[str] = mapped_column(String(200))
    member_ids: Mapped[str] = mapped_column(Text)  # JSON list of asset ids
    members_hash: Mapped[str] = mapped_column(String(16))
    params: Mapped[str | None] = mapped_column(Text)  # JSON: layout, style
    blob_key: Mapped[str | None] = mapped_column(String(200))
    media_mime: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecapTrack(Derived, Base):
    """A piece of music the owner uploaded to set their recaps to, stored encrypted like a photo.

    Not derived from one photo: `asset_id` is empty; it is the owner's media under `creations`."""

    __tablename__ = "recap_tracks"
    __category__ = "recap_tracks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str | None] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="SET NULL"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(Encrypted("str"))  # the file's name, as uploaded
    blob_key: Mapped[str] = mapped_column(String(200))
    codec: Mapped[str] = mapped_column(String(40))
    duration_s: Mapped[float] = mapped_column(Float)
    size: Mapped[int] = mapped_column(BigInteger)


class RecapAnalysis(Derived, Base):
    """What a recap of a set of photos and clips is cut from (each clip's chosen segment and
    interest score, the music's mood): computed once, shared by every format of that moment.

    `asset_id` is the first member's; the key hashes all members and the analysis version."""

    __tablename__ = "recap_analyses"
    __category__ = "recap_analyses"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_recap_analyses_user_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str | None] = mapped_column(  # type: ignore[assignment]
        String(32), ForeignKey("assets.id", ondelete="SET NULL"), index=True, nullable=True
    )
    key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Encrypted("str"))  # JSON


class Export(Base):
    """An export zip the owner asked for: it holds everything, so it lives only until
    `expires_at` and is deleted at once when any scope is revoked or the account is deleted.
    The build's progress is its JobRun (task "export", subject = this id)."""

    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = _user_fk()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    blob_key: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(BigInteger)


class DeletionReceipt(Base):
    """A signed statement of what was purged. It names the user only by a hash, so the user has
    no rows left anywhere, yet can still fetch and verify the receipt by its id."""

    __tablename__ = "deletion_receipts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly as signed
    signature: Mapped[str] = mapped_column(String(200))  # Ed25519, hex


def derived_models() -> list[type[Derived]]:
    """Every mapped table that holds derived data, found from the class hierarchy."""
    return [m.class_ for m in Base.registry.mappers if issubclass(m.class_, Derived)]


class AuditEvent(Base):
    """One access to a user's originals or derived data: who (an API token, a web session, the
    admin CLI), what, which asset, when. A log of accesses, not derived data, so not `Derived`;
    its `user_id` makes the purge delete it with everything else."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_user_newest", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[str] = _user_fk()
    actor: Mapped[str] = mapped_column(String(100))  # "token:<name>", "web", "admin-cli"
    action: Mapped[str] = mapped_column(String(40))  # "asset.read", "report.read", …
    target: Mapped[str | None] = mapped_column(String(64))  # an asset id, or None
    # Indexed: the hourly purge deletes events older than CAMROLL_AUDIT_DAYS.
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LoginFailure(Base):
    """One wrong password, for login throttling (camroll/login_throttle.py). Keyed by a SHA-256
    of the account's email or of the client's address, so nothing personal is kept in the
    clear; rows older than the throttle window are deleted as new ones come."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
