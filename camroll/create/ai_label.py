"""Labels that say an image was made by AI, in the two forms other software reads:

- the IPTC digital source type in XMP (`Iptc4xmpExt:DigitalSourceType`), written by ExifTool;
  photo managers and social sites show it as "AI generated";
- a C2PA manifest (`c2pa-python`) with the action `c2pa.created` and that digital source type,
  signed offline. Unlike XMP, it is bound to the pixels by a hash: an edited image no longer
  validates.

The signing chain is our own: a CA and a leaf certificate made here (no network, no public CA).
Readers therefore see the signature as valid but the signer as untrusted, unless they add our CA
as a trust anchor, which `read_ai_labels(trust_anchor_pem=...)` does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from camroll.media.exiftool import ExifToolError, shared_exiftool

__all__ = [
    "ALGORITHMIC_MEDIA",
    "TRAINED_ALGORITHMIC_MEDIA",
    "AiLabels",
    "SigningIdentity",
    "label_ai_image",
    "make_signing_identity",
    "read_ai_labels",
]

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"

# Fixed validity, so a seed always gives byte-identical certificates (Ed25519 signatures are
# deterministic too): the instance can rebuild its identity from its master key instead of
# storing it, and anchors handed out earlier keep working. C2PA checks validity at signing time.
_NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2125, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SigningIdentity:
    ca_cert_pem: str
    leaf_cert_pem: str
    leaf_key_pem: str  # PKCS#8, unencrypted: the caller keeps it (or its seed) secret


@dataclass
class AiLabels:
    digital_source_type: str | None  # from XMP, as ExifTool reads it
    c2pa_valid: bool  # a manifest is there and its signature and hashes check out
    c2pa_trusted: bool | None  # None when no trust anchor was given
    c2pa_actions: list[dict[str, Any]] = field(default_factory=list)
    validation_status: list[str] = field(default_factory=list)  # failure/informational codes


def _derive_key(seed: bytes, purpose: bytes) -> ed25519.Ed25519PrivateKey:
    # Separate keys for CA and leaf, both from one secret; HKDF keeps them independent.
    raw = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"camroll c2pa " + purpose).derive(
        seed
    )
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw)


def _serial(key: ed25519.Ed25519PrivateKey) -> int:
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return int.from_bytes(hashlib.sha256(pub).digest()[:16], "big") >> 1  # positive, < 2^127


def _key_usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_signing_identity(
    common_name: str, private_key_seed: bytes | None = None
) -> SigningIdentity:
    """A CA and an Ed25519 leaf certificate that C2PA accepts for signing.

    With a 32-byte `private_key_seed` (derive it from the instance master key) the result is the
    same on every call; without one, fresh random keys are made and the caller must store them.
    """
    if private_key_seed is None:
        ca_key, leaf_key = (
            ed25519.Ed25519PrivateKey.generate(),
            ed25519.Ed25519PrivateKey.generate(),
        )
    elif len(private_key_seed) != 32:
        raise ValueError("private_key_seed must be 32 bytes")
    else:
        ca_key = _derive_key(private_key_seed, b"ca")
        leaf_key = _derive_key(private_key_seed, b"leaf")

    org = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "camroll")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA"), org])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), org])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(_serial(ca_key))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(sign=False, ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, None)
    )
    # C2PA's certificate profile: the leaf needs digitalSignature, an AuthorityKeyIdentifier
    # and an allowed EKU; emailProtection is allowed (documentSigning is refused by c2pa-rs).
    leaf = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(_serial(leaf_key))
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(sign=True, ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, None)
    )
    return SigningIdentity(
        ca_cert_pem=ca.public_bytes(serialization.Encoding.PEM).decode(),
        leaf_cert_pem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
        leaf_key_pem=leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def _context(trust_anchor_pem: str | None = None) -> Any:
    import c2pa

    # Never reach for a remote manifest or OCSP: no network here, and reading must not leak
    # which images a user opens.
    verify: dict[str, Any] = {"remote_manifest_fetch": False, "ocsp_fetch": False}
    # No claim thumbnail: it is a second copy of the image itself, and nearly doubled the file
    # (227 KB -> 402 KB for a 1440 px JPEG; 233 KB without it).
    settings: dict[str, Any] = {"verify": verify, "builder": {"thumbnail": {"enabled": False}}}
    if trust_anchor_pem is not None:
        verify["verify_trust"] = True
        settings["trust"] = {"user_anchors": trust_anchor_pem}
    return c2pa.Context.from_dict(settings)


def _with_xmp_source_type(jpeg: bytes, source_type: str) -> bytes:
    # ExifTool works on files; a private temporary folder (mode 0700) holds the image briefly.
    with tempfile.TemporaryDirectory(prefix="camroll-label-") as tmp:
        src, out = Path(tmp) / "in.jpg", Path(tmp) / "out.jpg"
        src.write_bytes(jpeg)
        shared_exiftool().execute(
            f"-XMP-iptcExt:DigitalSourceType={source_type}", "-o", str(out), str(src)
        )
        if not out.is_file():
            raise ExifToolError("exiftool wrote no labelled image")
        return out.read_bytes()


def label_ai_image(
    jpeg: bytes,
    identity: SigningIdentity,
    title: str,
    software: str = "camroll",
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA,
) -> bytes:
    """The JPEG with an XMP DigitalSourceType and a signed C2PA manifest declaring it AI-made.

    The XMP goes in first: the C2PA hash covers every byte outside the manifest, so any later
    metadata write would invalidate the manifest.
    """
    import c2pa

    with_xmp = _with_xmp_source_type(jpeg, digital_source_type)
    manifest = {
        "title": title,
        "format": "image/jpeg",
        "claim_generator_info": [{"name": software}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": digital_source_type,
                            "softwareAgent": {"name": software},
                        }
                    ]
                },
            }
        ],
    }
    chain = identity.leaf_cert_pem + identity.ca_cert_pem  # leaf first, as C2PA requires
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ED25519, chain.encode(), identity.leaf_key_pem.encode(), None
    )
    out = io.BytesIO()
    with (
        _context() as ctx,
        c2pa.Signer.from_info(info) as signer,
        c2pa.Builder(manifest, context=ctx) as builder,
    ):
        builder.sign(signer, "image/jpeg", io.BytesIO(with_xmp), out)
    return out.getvalue()


def _xmp_source_type(jpeg: bytes) -> str | None:
    with tempfile.TemporaryDirectory(prefix="camroll-label-") as tmp:
        path = Path(tmp) / "in.jpg"
        path.write_bytes(jpeg)
        raw = shared_exiftool().execute("-json", "-XMP-iptcExt:DigitalSourceType", str(path))
    items = json.loads(raw.decode("utf-8", "replace") or "[{}]")
    value = items[0].get("DigitalSourceType") if items else None
    return str(value) if value is not None else None


def read_ai_labels(jpeg: bytes, trust_anchor_pem: str | None = None) -> AiLabels:
    """Both labels as other software sees them. With `trust_anchor_pem` (our CA), the C2PA
    signer is checked against it and `c2pa_trusted` says whether the chain ends there."""
    import c2pa

    source_type = _xmp_source_type(jpeg)
    with _context(trust_anchor_pem) as ctx:
        try:
            reader = c2pa.Reader.try_create("image/jpeg", io.BytesIO(jpeg), None, ctx)
        except c2pa.C2paError as exc:
            # A manifest so broken that it cannot be parsed counts as present but invalid.
            return AiLabels(source_type, False, False if trust_anchor_pem else None, [], [str(exc)])
        if reader is None:
            return AiLabels(source_type, False, None, [], [])
        with reader:
            store = json.loads(reader.json())
    state = store.get("validation_state")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    codes = [r["code"] for kind in ("failure", "informational") for r in results.get(kind, [])]
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    actions = [
        action
        for assertion in manifest.get("assertions", [])
        if assertion.get("label") in ("c2pa.actions", "c2pa.actions.v2")
        for action in assertion.get("data", {}).get("actions", [])
    ]
    return AiLabels(
        digital_source_type=source_type,
        c2pa_valid=state in ("Valid", "Trusted"),
        c2pa_trusted=(state == "Trusted") if trust_anchor_pem is not None else None,
        c2pa_actions=actions,
        validation_status=codes,
    )
