"""Baseline servers for the HTTP load benchmark: the same contract route without Triton.

- `ort_server`: facegate's own ONNX models and preprocessing in in-process ONNX Runtime sessions.
- `dlib_server`: dlib's HOG detector, 5-point aligner and ResNet descriptor, as
  ``face_recognition`` users run them.

Both sit behind the same minimal aiohttp handler (`common`).
"""
