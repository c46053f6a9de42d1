"""Baseline (a): facegate's ONNX models in in-process ONNX Runtime, no Triton.

    FACEGATE_AES_KEY=... FACEGATE_AES_IV=... python -m benchmarks.baselines.ort_server --port P

What a team without Triton would write: one ``onnxruntime.InferenceSession`` per model
(CPUExecutionProvider, default threading), loaded once, called with one photo per detector call
and one face (its chip and the chip's mirror image, as facegate does) per embedder call. The
work per photo is facegate's own face pipeline (`frontend.service.faces.FacePipeline`) over the
in-process runtime (`frontend.inference.onnx.OnnxModels`): the detector size facegate picks
(640, or with ``FACEGATE_SMALL_DETECTOR=true`` 320 px for a photo that fits), YuNet, NMS, the
face nearest the centre, aligned chip + mirror, the dlib ResNet, mirror average. Left out:
Triton and its dynamic batching across requests (see `common` for the rest). ONNX Runtime's
threads spin between ops as by default; with ``FACEGATE_ORT_SPIN=0`` they don't (facegate's
setting).
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.baselines.common import Describe, main
from frontend.config import Settings
from frontend.inference.onnx import OnnxModels
from frontend.service.faces import FacePipeline
from frontend.service.stages import Stages
from model_repository.specs import NATIVE_REPOSITORY
from preprocessing.detection import detector_sizes


def load_ort(pool: concurrent.futures.Executor, repository: Path = NATIVE_REPOSITORY) -> Describe:
    """Photo -> mirror-averaged descriptor of the face nearest the centre, by ONNX Runtime."""
    models = OnnxModels(
        repository, executor=pool, spin=os.environ.get("FACEGATE_ORT_SPIN") != "0",
        engine="onnxruntime",  # ONNX Runtime, as a team without facegate's levers runs it
    )
    pipeline = FacePipeline(
        models, Stages(pool), detector_sizes=detector_sizes(Settings.from_env().small_detector)
    )

    async def describe(image_bgr: np.ndarray) -> np.ndarray | None:
        face = await pipeline.main_face(image_bgr)
        return None if face is None else face.descriptor

    return describe


if __name__ == "__main__":
    sys.exit(main(load_ort, "facegate's ONNX models in in-process ONNX Runtime, no Triton"))
