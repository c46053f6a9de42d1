"""Photo bytes to pixels.

OpenCV's decoder applies the EXIF orientation tag (IMREAD_COLOR without
IMREAD_IGNORE_ORIENTATION), drops alpha and converts grey to BGR, so every photo arrives as an
upright H x W x 3 uint8 BGR array.
"""

from __future__ import annotations

import cv2
import numpy as np


class ImageDecodeError(ValueError):
    """The bytes are not an image OpenCV can decode."""


def decode_image(data: bytes) -> np.ndarray:
    """Decode a JPEG, PNG, BMP or WebP photo to an upright BGR array.

    Raises:
        ImageDecodeError: the bytes do not decode.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None:
        raise ImageDecodeError("not a decodable image")
    return image
