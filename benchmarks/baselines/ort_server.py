"""Baseline (a): facegate's ONNX models in in-process ONNX Runtime, one request at a time.

    FACEGATE_AES_KEY=... FACEGATE_AES_IV=... python -m benchmarks.baselines.ort_server --port P

What a team without Triton would write: one ``onnxruntime.InferenceSession`` per model
(CPUExecutionProvider, default threading), loaded once, called with one photo per detector call
and one face (its chip and the chip's mirror image, as facegate does) per embedder call. The
work per photo is facegate's own: `letterbox` to the detector size facegate picks (640, or with
``FACEGATE_SMALL_DETECTOR=true`` 320 px for a photo that fits), YuNet, `faces_from_detections`,
the face nearest the centre, `face_chips` (aligned chip + mirror), the dlib ResNet, mirror
average. Left out: Triton and its dynamic batching across requests (see `common` for the
rest). ONNX Runtime's threads spin between ops as by default; with ``FACEGATE_ORT_SPIN=0`` they
don't (facegate's setting).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime

from benchmarks.baselines.common import main
from frontend.config import Settings
from frontend.service.faces import face_chips, nearest_to_centre
from model_repository.specs import DETECTORS, FACE_DETECTOR, FACE_EMBEDDER
from preprocessing.detection import (
    detector_size,
    detector_sizes,
    faces_from_detections,
    letterbox,
)

DETECTOR_INPUT = FACE_DETECTOR.inputs[0].name
EMBEDDER_INPUT = FACE_EMBEDDER.inputs[0].name
MODEL_REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository" / "embedded"


def _session(name: str, repository: Path) -> onnxruntime.InferenceSession:
    path = repository / name / "1" / "model.onnx"
    options = onnxruntime.SessionOptions()
    if os.environ.get("FACEGATE_ORT_SPIN") == "0":
        # the benchmark's second ORT variant: facegate's own tuning applied to the baseline
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OrtFaces:
    """Photo -> mirror-averaged descriptor of the face nearest the centre, by ONNX Runtime."""

    def __init__(self, repository: Path = MODEL_REPOSITORY) -> None:
        self.detectors = {d.inputs[0].dims[0]: _session(d.name, repository) for d in DETECTORS}
        self.sizes = detector_sizes(Settings.from_env().small_detector)
        self.embedder = _session(FACE_EMBEDDER.name, repository)

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray | None:
        size = detector_size(image_bgr.shape, self.sizes)
        boxed = letterbox(image_bgr, size)
        (detections,) = self.detectors[size].run(None, {DETECTOR_INPUT: boxed.image[None]})
        faces = faces_from_detections(detections[0], boxed.scale)
        if not faces:
            return None
        chips = face_chips(image_bgr, [nearest_to_centre(faces, image_bgr.shape)], mirror=True)
        (descriptors,) = self.embedder.run(None, {EMBEDDER_INPUT: chips})
        return descriptors.mean(axis=0)


if __name__ == "__main__":
    sys.exit(main(OrtFaces, "facegate's ONNX models in in-process ONNX Runtime, no Triton"))
