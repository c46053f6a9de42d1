"""Camera input for Chromium's fake capture device (``--use-file-for-fake-video-capture``).

Chromium plays a Y4M file (raw I420 frames) as the camera, from its start when the camera
opens and looping at its end. These helpers turn real clips and photos into such files:
decode with PyAV, resample to a steady frame rate, fit to a camera-like frame with OpenCV, and
write the YUV4MPEG2 stream by hand (header, then ``FRAME\\n`` + Y, U, V planes per frame).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import av
import cv2
import numpy as np

FPS = 15
MAX_SIDE_PX = 640


def decode(path: Path, *, start_s: float = 0.0, end_s: float | None = None, fps: int = FPS,
           speed: float = 1.0) -> list[np.ndarray]:
    """RGB frames of ``path`` between ``start_s`` and ``end_s``, resampled to ``fps``: for
    each output time the newest source frame at or before it. ``speed`` < 1 plays slower."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        source = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24"))
                  for f in container.decode(stream) if f.pts is not None]
    source.sort(key=lambda item: item[0])
    end_s = source[-1][0] if end_s is None else min(end_s, source[-1][0])
    frames, index = [], 0
    for n in range(int((end_s - start_s) / speed * fps) + 1):
        t = start_s + n * speed / fps
        while index + 1 < len(source) and source[index + 1][0] <= t + 1e-6:
            index += 1
        frames.append(source[index][1])
    return frames


def fit(frame: np.ndarray, *, max_side: int = MAX_SIDE_PX,
        crop: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """The frame (optionally cropped to ``crop`` = left, top, width, height as fractions of
    it) scaled down so its longer side is at most ``max_side``, to even dimensions (I420)."""
    if crop is not None:
        height, width = frame.shape[:2]
        left, top = round(crop[0] * width), round(crop[1] * height)
        frame = frame[top:top + round(crop[3] * height), left:left + round(crop[2] * width)]
    height, width = frame.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    size = (max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def ping_pong(frames: Sequence[np.ndarray], seconds: float, fps: int = FPS) -> list[np.ndarray]:
    """``seconds`` of ``frames`` played forwards, backwards, forwards...: a stretch of real
    motion of any length from a short one (a lead-in before the part a test is about)."""
    cycle = list(frames) + list(frames[-2:0:-1])
    return [cycle[i % len(cycle)] for i in range(round(seconds * fps))]


def still_photo(image: np.ndarray, seconds: float, *, size: tuple[int, int] = (640, 480),
                fps: int = FPS, zoom: float = 0.03, pan_px: float = 6.0) -> list[np.ndarray]:
    """A photo held up to the camera: the same picture every frame with a slow small zoom and
    pan (a hand's drift), filling ``size`` (width, height)."""
    width, height = size
    src_h, src_w = image.shape[:2]
    base = max(width / src_w, height / src_h)
    frames = []
    for n in range(round(seconds * fps)):
        t = n / fps
        scale = base * (1.0 + zoom * (0.5 + 0.5 * math.sin(2 * math.pi * t / 3.1)))
        dx = pan_px * math.sin(2 * math.pi * t / 2.3)
        dy = pan_px * 0.6 * math.sin(2 * math.pi * t / 1.7 + 1.0)
        matrix = np.array([[scale, 0, width / 2 - scale * src_w / 2 + dx],
                           [0, scale, height / 2 - scale * src_h / 2 + dy]])
        frames.append(cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT))
    return frames


def write(path: Path, frames: Iterable[np.ndarray], fps: int = FPS) -> Path:
    """Write RGB frames (all the same even size) as a YUV4MPEG2 4:2:0 file."""
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in (first, *frames):
            if frame.shape[:2] != (height, width):
                raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]} in a "
                                 f"{width}x{height} stream")
            out.write(b"FRAME\n")
            # cv2's I420: the Y plane, then U, then V, stacked as one (h * 3/2, w) array.
            out.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def read_header(path: Path) -> dict[str, str]:
    """The header's fields by their letter (``W``, ``H``, ``F``...), for checks."""
    with open(path, "rb") as source:
        line = source.readline().decode("ascii").split()
    if line[0] != "YUV4MPEG2":
        raise ValueError(f"{path} is not a YUV4MPEG2 file")
    return {item[0]: item[1:] for item in line[1:]}
