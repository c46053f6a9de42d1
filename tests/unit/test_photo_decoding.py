"""Photo bytes -> pixels: every limit refused before decoding, each failure typed."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import simplejpeg
from PIL import Image, ImageOps

from preprocessing.image import (
    PhotoBytesError,
    PhotoLimits,
    PhotoSizeError,
    PhotoTruncatedError,
    PhotoTypeError,
    decode_photo,
    turn,
)
from tests.conftest import DATA

EINSTEIN = DATA / "edge/compreface_einstein"
LIMITS = PhotoLimits()


@pytest.mark.parametrize("ext", ["jpeg", "png", "bmp"])
def test_the_same_photo_decodes_alike_from_jpeg_png_and_bmp(data_dir, ext):
    image = decode_photo(EINSTEIN.with_suffix(f".{ext}").read_bytes(), LIMITS, honour_exif=False)
    reference = cv2.imread(str(EINSTEIN.with_suffix(".png")))
    assert image.shape == (256, 256, 3)
    assert np.abs(image.astype(int) - reference).mean() < 4


def test_webp_is_accepted(data_dir):
    buffer = io.BytesIO()
    Image.open(EINSTEIN.with_suffix(".png")).save(buffer, "WEBP")
    assert decode_photo(buffer.getvalue(), LIMITS, honour_exif=False).shape == (256, 256, 3)


def test_transparent_pixels_become_white_not_black(data_dir):
    image = decode_photo(
        (DATA / "edge/facerec_32bit_rgba.png").read_bytes(), LIMITS, honour_exif=False
    )
    assert image.shape == (1200, 626, 3)


@pytest.mark.parametrize(
    "name,error",
    [
        ("compreface_empty.png", PhotoBytesError),
        ("compreface_corrupted.png", PhotoTypeError),
        ("compreface_truncated.jpg", PhotoTruncatedError),
    ],
)
def test_the_edge_files_fail_with_their_own_error(data_dir, name, error):
    with pytest.raises(error):
        decode_photo((DATA / "edge" / name).read_bytes(), LIMITS, honour_exif=False)


def test_pixel_limits_are_read_from_the_header(data_dir):
    tight = PhotoLimits(max_side=200)
    with pytest.raises(PhotoSizeError, match="256x256"):
        decode_photo(EINSTEIN.with_suffix(".png").read_bytes(), tight, honour_exif=False)


def test_a_format_outside_the_list_is_a_type_error(data_dir):
    buffer = io.BytesIO()
    Image.open(EINSTEIN.with_suffix(".png")).convert("RGB").save(buffer, "TIFF")
    with pytest.raises(PhotoTypeError):
        decode_photo(buffer.getvalue(), LIMITS, honour_exif=False)


def test_exif_orientation_is_applied_only_when_asked(data_dir):
    image = Image.open(EINSTEIN.with_suffix(".png")).convert("RGB").crop((0, 0, 256, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert decode_photo(buffer.getvalue(), LIMITS, honour_exif=False).shape == (200, 256, 3)
    assert decode_photo(buffer.getvalue(), LIMITS, honour_exif=True).shape == (256, 200, 3)


def test_turn_by_90_four_times_is_the_identity():
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    turned = image
    for _ in range(4):
        turned = turn(turned, 90)
    assert np.array_equal(turned, image) and turn(image, 90).shape == (4, 2, 3)


def _pillow_bgr(data: bytes, honour_exif: bool) -> np.ndarray:
    """What Pillow alone makes of the file (the path every non-JPEG still takes)."""
    image = Image.open(io.BytesIO(data))
    if honour_exif:
        image = ImageOps.exif_transpose(image)
    return cv2.cvtColor(np.array(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def _jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_turns_a_jpeg_as_pillow_does(data_dir, orientation):
    image = Image.open(EINSTEIN.with_suffix(".png")).convert("RGB").crop((0, 0, 256, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(image, exif=exif)
    assert np.array_equal(decode_photo(data, LIMITS, honour_exif=True), _pillow_bgr(data, True))


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_jpeg_decodes_to_the_same_pixels_as_pillows(data_dir, mode):
    """Colour and grey JPEGs take libjpeg-turbo's direct path, CMYK Pillow's: the pixels are
    the same either way, three BGR channels."""
    data = _jpeg(Image.open(EINSTEIN.with_suffix(".png")).convert(mode), quality=90)
    image = decode_photo(data, LIMITS, honour_exif=False)
    assert image.shape == (256, 256, 3)
    assert np.array_equal(image, _pillow_bgr(data, False))


def test_a_jpeg_the_decoder_warns_about_is_judged_by_pillow(data_dir):
    """Stray bytes before the end marker: libjpeg warns ("extraneous bytes"), which the fast
    path's strict decoder refuses; Pillow decodes it whole, and the photo is accepted."""
    data = (DATA / "faces/Barack_Obama/facerec_obama-480p.jpg").read_bytes()
    assert data.endswith(b"\xff\xd9")
    stray = data[:-2] + b"\x00\x00\x00\xff\xd9"
    with pytest.raises(ValueError, match="extraneous bytes"):
        simplejpeg.decode_jpeg(stray, colorspace="BGR", strict=True)
    image = decode_photo(stray, LIMITS, honour_exif=False)
    assert np.array_equal(image, decode_photo(data, LIMITS, honour_exif=False))
