"""Restyled photos from a real camera roll, labelled as AI-generated.

The output carries the AI labels, and they can be read back: the IPTC DigitalSourceType in XMP
(read by ExifTool) and a signed C2PA manifest (read by c2pa), which stops validating once a
single byte of the image changes.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from PIL import Image

from camroll.create.ai_label import (
    TRAINED_ALGORITHMIC_MEDIA,
    label_ai_image,
    make_signing_identity,
    read_ai_labels,
)
from camroll.create.restyle import BUILTIN_STYLES, STYLES, restyle
from camroll.media.exiftool import shared_exiftool

ROLL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camera-roll"
PHOTO = ROLL / "exif-samples" / "jpg" / "hdr" / "iphone_hdr_YES.jpg"  # wisteria, 3264x2448
PAINTING = ROLL / "immich-test-assets" / "albums" / "text" / "japanese-shop.jpg"
OTHER_STYLE = ROLL / "pigallery2" / "demo" / "IMG_8808.jpg"
SIDE = 512  # keeps each model run well under a second on a shared CPU


def _open(path: Path, approx: tuple[int, int]) -> Image.Image:
    img = Image.open(path)
    img.draft("RGB", approx)  # JPEG draft decode: fast reduced-size load
    return img.convert("RGB")


def _digest(img: Image.Image) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _small_gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((64, 48)), dtype=float).ravel()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return _open(PHOTO, (816, 612))


@pytest.fixture(scope="module")
def restyled(photo: Image.Image) -> dict[str, Image.Image]:
    before = _digest(photo)
    painting, other = _open(PAINTING, (1054, 704)), _open(OTHER_STYLE, (480, 320))
    out = {
        "style-07": restyle(photo, "style-07", max_side=SIDE),
        "style-00": restyle(photo, "style-00", max_side=SIDE),
        "painting": restyle(photo, "from-image", style_image=painting, max_side=SIDE),
        "other": restyle(photo, "from-image", style_image=other, max_side=SIDE),
        "sketch": restyle(photo, "sketch", max_side=SIDE),
        "cartoon": restyle(photo, "cartoon", max_side=SIDE),
    }
    # The original is never touched: same object, same size, same pixels.
    assert photo.size == (816, 612) and _digest(photo) == before
    return out


def test_every_style_is_a_new_visibly_different_image(
    photo: Image.Image, restyled: dict[str, Image.Image]
) -> None:
    assert len(STYLES) == 29 and len(BUILTIN_STYLES) == 26
    original = np.asarray(photo.resize((512, 384)), dtype=float)
    for name, out in restyled.items():
        assert out is not photo and out.mode == "RGB"
        assert out.size == (512, 384), name  # upright, aspect kept, longer side = max_side
        changed = np.abs(np.asarray(out, dtype=float) - original).mean()
        assert changed > 25, f"{name} barely changed the photo ({changed:.1f})"

    # Still the same scene: the neural styles and the cartoon keep the photo's layout.
    ref = _small_gray(photo)
    for name in ("style-07", "style-00", "painting", "other", "cartoon"):
        corr = np.corrcoef(_small_gray(restyled[name]), ref)[0, 1]
        assert corr > 0.4, f"{name} lost the picture (correlation {corr:.2f})"

    def differ(a: str, b: str) -> float:
        x, y = (np.asarray(restyled[k], dtype=float) for k in (a, b))
        return float(np.abs(x - y).mean())

    assert differ("style-07", "style-00") > 20  # two built-in styles look different
    assert differ("painting", "other") > 20  # the style really comes from the given picture

    sketch = np.asarray(restyled["sketch"])
    assert (sketch[..., 0] == sketch[..., 1]).all() and (sketch[..., 1] == sketch[..., 2]).all()

    def colours(img: Image.Image) -> int:
        return len(np.unique(np.asarray(img).reshape(-1, 3) // 8, axis=0))

    # A cartoon is flat colour areas: far fewer distinct colours than the photo.
    assert colours(restyled["cartoon"]) < colours(photo.resize((512, 384))) / 2


def test_unknown_style_or_missing_style_image_is_refused(photo: Image.Image) -> None:
    with pytest.raises(ValueError, match="unknown style"):
        restyle(photo, "van-gogh")
    with pytest.raises(ValueError, match="style_image"):
        restyle(photo, "from-image")
    with pytest.raises(ValueError, match="style_image"):
        restyle(photo, "sketch", style_image=photo)


def test_the_output_carries_the_ai_labels_and_they_can_be_read_back(
    restyled: dict[str, Image.Image], tmp_path: Path
) -> None:
    identity = make_signing_identity("camroll test instance", bytes(range(32)))
    plain = _jpeg(restyled["style-07"])
    assert read_ai_labels(plain).digital_source_type is None  # nothing there before labelling
    assert read_ai_labels(plain).c2pa_valid is False

    labelled = label_ai_image(plain, identity, title="wisteria, style 07")
    # Labelling adds metadata only: the picture decodes to the very same pixels.
    assert _digest(Image.open(io.BytesIO(labelled))) == _digest(Image.open(io.BytesIO(plain)))

    # The XMP tag as a photo manager reads it, straight from ExifTool.
    (tmp_path / "restyled.jpg").write_bytes(labelled)
    raw = shared_exiftool().execute(
        "-json", "-G1", "-DigitalSourceType", str(tmp_path / "restyled.jpg")
    )
    assert json.loads(raw)[0]["XMP-iptcExt:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA

    labels = read_ai_labels(labelled)
    assert labels.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    # C2PA: signature and hashes valid; our own CA is unknown to the reader, so untrusted.
    assert labels.c2pa_valid is True and labels.c2pa_trusted is None
    assert "signingCredential.untrusted" in labels.validation_status
    created = [a for a in labels.c2pa_actions if a["action"] == "c2pa.created"]
    assert created and created[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA

    trusted = read_ai_labels(labelled, trust_anchor_pem=identity.ca_cert_pem)
    assert trusted.c2pa_valid is True and trusted.c2pa_trusted is True
    assert "signingCredential.untrusted" not in trusted.validation_status

    stranger = make_signing_identity("someone else", bytes(32))
    assert read_ai_labels(labelled, trust_anchor_pem=stranger.ca_cert_pem).c2pa_trusted is False

    # One changed byte in the image data: the XMP label survives, the C2PA manifest does not.
    tampered = bytearray(labelled)
    tampered[tampered.rfind(b"\xff\xda") + 1000] ^= 0x01
    broken = read_ai_labels(bytes(tampered), trust_anchor_pem=identity.ca_cert_pem)
    assert broken.c2pa_valid is False and broken.c2pa_trusted is False
    assert "assertion.dataHash.mismatch" in broken.validation_status


def test_signing_identity_is_reproducible_from_a_seed_and_fits_c2pa() -> None:
    seed = hashlib.sha256(b"instance master key").digest()
    one, two = make_signing_identity("camroll", seed), make_signing_identity("camroll", seed)
    assert one == two  # rebuilt from the master key, nothing to store
    assert make_signing_identity("camroll", bytes(32)).leaf_key_pem != one.leaf_key_pem
    fresh = [make_signing_identity("camroll").leaf_key_pem for _ in range(2)]
    assert fresh[0] != fresh[1]  # without a seed: new random keys, the caller stores them
    with pytest.raises(ValueError):
        make_signing_identity("camroll", b"short")

    ca = x509.load_pem_x509_certificate(one.ca_cert_pem.encode())
    leaf = x509.load_pem_x509_certificate(one.leaf_cert_pem.encode())
    assert leaf.issuer == ca.subject
    ext = leaf.extensions
    assert ext.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.EMAIL_PROTECTION
    ]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
