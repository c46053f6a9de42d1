"""The cost benchmark's inputs vary only what each series says they vary."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchmarks.load.cost import GRID, TILE, lfw_faces, mosaic, scaled_jpeg


def test_the_mosaic_holds_that_many_photos_and_grey_elsewhere(data_dir):
    faces = lfw_faces(data_dir, 16)
    assert len({p.parent.name for p in faces}) == 16  # sixteen different people
    canvas = np.asarray(Image.open(io.BytesIO(mosaic(faces, 3))).convert("L")).astype(int)
    assert canvas.shape == (GRID * TILE, GRID * TILE)
    cells = [canvas[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE]
             for r in range(GRID) for c in range(GRID)]
    assert all(cell.std() > 20 for cell in cells[:3])  # photos
    assert all(abs(cell.mean() - 128) < 2 and cell.std() < 2 for cell in cells[3:])  # grey


def test_a_scaled_photo_keeps_its_shape_at_the_asked_size(data_dir):
    path = data_dir / "faces/CompreFace_PersonA/compreface_002_A.jpg"
    with Image.open(path) as original:
        aspect = original.width / original.height
    with Image.open(io.BytesIO(scaled_jpeg(path, 500))) as scaled:
        assert max(scaled.size) == 500
        assert abs(scaled.width / scaled.height - aspect) < 0.01
