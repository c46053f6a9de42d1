"""Degraded copies of the shared live clips: the bona fide set for liveness robustness.

    .venv/bin/python -m benchmarks.live_variants [--only GLOB] [--list] [--cache DIR]

Every video in ``video/live`` is turned into named variants, ``<clip>@<variant>``:

==================  ==========================================================================
``@480p``           shorter side scaled to 480 px (INTER_AREA); skipped where it is <= 480
``@360p``           shorter side scaled to 360 px
``@crf28/32/36``    re-encoded at that CRF, full size (H.264 as a messaging app would)
``@dark55``         every pixel value times 0.55 (an under-exposed room), CRF 23
``@bright``         over-exposed: values times 1.45 plus 10, clipped (highlights burn out)
``@15fps``          frames dropped to 15 per second; skipped for sources at <= 15 fps
``@rot90``          the picture stored turned 90 degrees counter-clockwise, with a display
                    matrix saying "turn 90 clockwise to view" (what a phone held upright
                    writes); the server must turn it back
``@small``          the whole picture shrunk to 0.6 of its size inside a canvas of the
                    original size, the border filled by its mirror image, heavily blurred
                    and blended in softly (an out-of-focus room continuing the picture: no
                    step in brightness that could pass for a bezel or a paper edge)
``@large``          zoom 1.5x: a crop of 1/1.5 of the frame around the median face centre,
                    scaled back to the original size
``@still``          a 3 s cut where the person holds still: of all 3 s windows (0.2 s steps,
                    anywhere in the clip), the one whose face moves least (mean RMS corner
                    motion between frames 0.2 s apart, in % of the face width)
``@360p+crf32+dark55``  the combination the issue names; ``@still+360p+crf32`` and
                    ``@small+crf32`` combine the hardest single cases
==================  ==========================================================================

All but ``@still`` use the first `SOURCE_SECONDS` of the clip (the server analyses 10 s).
Output: H.264 in MP4 (libx264, yuv420p, CRF 23 unless named, preset veryfast, one thread,
``mbtree=0``: byte-for-byte reproducible, as `benchmarks.synth_attacks` explains), written to
``~/.cache/facegate/live_variants/<clip>@<variant>.mp4`` with a ``manifest.json`` (parameters,
sizes, SHA-256). Nothing goes into the repository. A variant already in the cache with the
same parameters is not made again (``--force`` remakes it).

`variant_bytes(name)` gives one variant's bytes (made on demand); `all_names()` lists them.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.paths import DATA

CACHE = Path(os.environ.get("FACEGATE_VARIANT_CACHE",
                            Path.home() / ".cache/facegate/live_variants"))
SOURCE_SECONDS = 10.5
STILL_SECONDS = 3.0
STILL_STEP_S = 0.2
SMALL_SCALE = 0.6
LARGE_ZOOM = 1.5
DARK_GAIN = 0.55
BRIGHT_GAIN, BRIGHT_OFFSET = 1.45, 10.0
GENERATOR_VERSION = 1  # bump when a transform changes, so cached files are remade


@dataclass(frozen=True)
class Step:
    """One transform of a variant: ``kind`` with its parameter."""

    kind: str  # scale, crf, gain, fps, rot90, small, large, still
    value: float = 0.0


VARIANTS: dict[str, tuple[Step, ...]] = {
    "480p": (Step("scale", 480),),
    "360p": (Step("scale", 360),),
    "crf28": (Step("crf", 28),),
    "crf32": (Step("crf", 32),),
    "crf36": (Step("crf", 36),),
    "dark55": (Step("gain", DARK_GAIN),),
    "bright": (Step("bright"),),
    "15fps": (Step("fps", 15),),
    "rot90": (Step("rot90"),),
    "small": (Step("small", SMALL_SCALE),),
    "large": (Step("large", LARGE_ZOOM),),
    "still": (Step("still", STILL_SECONDS),),
    "360p+crf32+dark55": (Step("scale", 360), Step("crf", 32), Step("gain", DARK_GAIN)),
    "still+360p+crf32": (Step("still", STILL_SECONDS), Step("scale", 360), Step("crf", 32)),
    "small+crf32": (Step("small", SMALL_SCALE), Step("crf", 32)),
}


def clips(data: Path = DATA) -> list[Path]:
    return sorted((data / "video/live").iterdir())


@dataclass(frozen=True)
class SourceInfo:
    width: int
    height: int
    fps: Fraction
    duration_s: float


def source_info(path: Path) -> SourceInfo:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = (float(stream.duration * stream.time_base) if stream.duration
                    else container.duration / av.time_base)
        return SourceInfo(stream.codec_context.width, stream.codec_context.height,
                          Fraction(round(float(rate))), duration)


def applicable(info: SourceInfo, steps: tuple[Step, ...]) -> bool:
    """False where a variant would not change the clip (no upscaling, no 15 fps of 15 fps)."""
    for step in steps:
        if step.kind == "scale" and min(info.width, info.height) <= step.value:
            return False
        if step.kind == "fps" and float(info.fps) <= step.value:
            return False
    return True


def all_names(data: Path = DATA) -> list[str]:
    names = []
    for path in clips(data):
        info = source_info(path)
        names += [f"{path.name}@{v}" for v, steps in VARIANTS.items() if applicable(info, steps)]
    return names


def _frames(path: Path, start_s: float = 0.0, stop_s: float = SOURCE_SECONDS
            ) -> Iterator[tuple[float, np.ndarray]]:
    """(time after the first frame, BGR) of every frame in [start_s, stop_s)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first = None
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else 0.0
            first = t if first is None else first
            t -= first
            if t < start_s - 1e-6:
                continue
            if t >= stop_s - 1e-6:
                break
            yield t - start_s, frame.to_ndarray(format="bgr24")


class _Encoder:
    """Streaming H.264/MP4 writer with the reproducible settings of synth_attacks._encode."""

    def __init__(self, fps: Fraction, crf: int, ccw_rotation: int | None = None) -> None:
        self.buffer = io.BytesIO()
        self.container = av.open(self.buffer, mode="w", format="mp4")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                               "x264-params": "mbtree=0"}
        self.fps, self.rotation, self.count = fps, ccw_rotation, 0

    def add(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if h % 2 or w % 2:
            image = image[: h - h % 2, : w - w % 2]
        if self.count == 0:
            self.stream.height, self.stream.width = image.shape[:2]
            if self.rotation is not None:
                self.stream.set_display_rotation(self.rotation)
        yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self.count
        frame.time_base = 1 / self.fps
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def close(self) -> bytes:
        self.container.mux(self.stream.encode(None))
        self.container.close()
        return self.buffer.getvalue()


class _Faces:
    """The server's detector step in-process, one pipeline per thread: its event loop runs in
    one thread at a time, and the evaluation makes variants from two threads at once."""

    _local = threading.local()

    @classmethod
    def detect(cls, image: np.ndarray):
        pipeline = getattr(cls._local, "pipeline", None)
        if pipeline is None:
            from benchmarks.inprocess import InProcessPipeline
            pipeline = cls._local.pipeline = InProcessPipeline(threads=1)
        faces = pipeline.detect(image)
        return max(faces, key=lambda f: f.box[2]) if faces else None


def _sampled(path: Path, stop_s: float, step_s: float = STILL_STEP_S
             ) -> list[tuple[float, np.ndarray]]:
    out, next_t = [], 0.0
    for t, image in _frames(path, 0.0, stop_s):
        if t >= next_t - 1e-6:
            out.append((t, image))
            next_t = (math.floor((t + 1e-6) / step_s) + 1) * step_s
    return out


def face_centre(path: Path) -> tuple[float, float]:
    """Median centre of the largest face over frames 0.5 s apart in the first 10 s."""
    centres = []
    for _, image in _sampled(path, SOURCE_SECONDS, 0.5):
        face = _Faces.detect(image)
        if face is not None:
            centres.append(face.center)
    if not centres:
        h, w = next(_frames(path))[1].shape[:2]
        return w / 2, h / 2
    return tuple(float(v) for v in np.median(np.array(centres), axis=0))


def face_motion(image0: np.ndarray, image1: np.ndarray, box0, box1) -> float | None:
    """How far the face moved between two frames, % of its width (`preprocessing.motion`)."""
    from preprocessing.motion import pair_motion

    return pair_motion(image0, image1, box0, box1)


def still_window(path: Path, seconds: float = STILL_SECONDS) -> tuple[float, float]:
    """(start s, mean face motion) of the window of `seconds` in which the face moves least.

    Frames every 0.2 s over the whole clip; per consecutive pair, `face_motion`; a window's
    motion is the mean over its pairs (a pair without a face or with too few corners counts
    as the largest motion seen, so a window with the face missing is never chosen)."""
    info = source_info(path)
    samples = _sampled(path, info.duration_s + 1)
    boxes = [(_Faces.detect(img) or None) for _, img in samples]
    boxes = [f.box if f is not None else None for f in boxes]
    motions = []
    for i in range(len(samples) - 1):
        m = None
        if boxes[i] is not None and boxes[i + 1] is not None:
            m = face_motion(samples[i][1], samples[i + 1][1], boxes[i], boxes[i + 1])
        motions.append(m)
    worst = max((m for m in motions if m is not None), default=1.0)
    filled = np.array([worst if m is None else m for m in motions])
    times = [t for t, _ in samples]
    pairs = int(round(seconds / STILL_STEP_S))
    best = (math.inf, 0.0)
    for start in range(0, len(filled) - pairs + 1):
        if times[start] + seconds > info.duration_s + 1e-6:
            break
        best = min(best, (float(filled[start:start + pairs].mean()), times[start]))
    if math.isinf(best[0]):
        return 0.0, float(filled.mean())
    return best[1], best[0]


def _scale_to(image: np.ndarray, short_side: float) -> np.ndarray:
    h, w = image.shape[:2]
    s = short_side / min(h, w)
    size = (int(round(w * s / 2)) * 2, int(round(h * s / 2)) * 2)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


_SMALL_WEIGHTS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _small(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    inner = cv2.resize(image, (int(round(w * scale)), int(round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    ih, iw = inner.shape[:2]
    top, left = (h - ih) // 2, (w - iw) // 2
    canvas = cv2.copyMakeBorder(inner, top, h - ih - top, left, w - iw - left,
                                cv2.BORDER_REFLECT_101)
    # A heavy blur, done at a quarter of the size (the same look, a sixteenth of the work).
    quarter = cv2.resize(canvas, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    blurred = cv2.resize(cv2.GaussianBlur(quarter, (0, 0), 0.01 * max(h, w)), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    # Keep the picture sharp; blend into the blurred border over a few pixels.
    key = (h, w, ih, iw)
    if key not in _SMALL_WEIGHTS:
        weight = np.zeros((h, w), np.float32)
        weight[top:top + ih, left:left + iw] = 1
        weight = cv2.GaussianBlur(weight, (0, 0), 0.01 * max(h, w))
        _SMALL_WEIGHTS[key] = (weight, 1 - weight)
    inside, outside = _SMALL_WEIGHTS[key]
    return cv2.blendLinear(canvas, blurred, inside, outside)


def _large(image: np.ndarray, zoom: float, centre: tuple[float, float]) -> np.ndarray:
    h, w = image.shape[:2]
    cw, ch = w / zoom, h / zoom
    x0 = float(np.clip(centre[0] - cw / 2, 0, w - cw))
    y0 = float(np.clip(centre[1] - ch / 2, 0, h - ch))
    crop = image[int(y0):int(y0 + ch), int(x0):int(x0 + cw)]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)


def _bright(image: np.ndarray) -> np.ndarray:
    return cv2.convertScaleAbs(image, alpha=BRIGHT_GAIN, beta=BRIGHT_OFFSET)


def make_variant(path: Path, variant: str) -> tuple[bytes, dict]:
    """One variant's MP4 bytes and what was done (for the manifest)."""
    steps = VARIANTS[variant]
    info = source_info(path)
    start_s, stop_s = 0.0, SOURCE_SECONDS
    crf, fps, rotation = 23, info.fps, None
    params: dict = {"source": path.name, "variant": variant, "version": GENERATOR_VERSION}
    transforms: list[Callable[[np.ndarray], np.ndarray]] = []
    drop_to = None
    for step in steps:
        if step.kind == "still":
            start_s, motion = still_window(path, step.value)
            stop_s = start_s + step.value
            params |= {"still_start_s": round(start_s, 3), "still_motion_pct": round(motion, 3)}
        elif step.kind == "scale":
            transforms.append(lambda im, s=step.value: _scale_to(im, s))
        elif step.kind == "crf":
            crf = int(step.value)
        elif step.kind == "gain":
            transforms.append(lambda im, g=step.value: cv2.convertScaleAbs(im, alpha=g))
        elif step.kind == "bright":
            transforms.append(_bright)
        elif step.kind == "fps":
            drop_to, fps = step.value, Fraction(int(step.value))
        elif step.kind == "rot90":
            transforms.append(lambda im: np.ascontiguousarray(np.rot90(im, 1)))  # stored CCW
            rotation = -90  # display: turn 90 clockwise (FFmpeg's counter-clockwise -90)
        elif step.kind == "small":
            transforms.append(lambda im, s=step.value: _small(im, s))
        elif step.kind == "large":
            centre = face_centre(path)
            params["face_centre"] = [round(c, 1) for c in centre]
            transforms.append(lambda im, z=step.value, c=centre: _large(im, z, c))
    encoder = _Encoder(fps, crf, rotation)
    kept_tick = -1
    for t, image in _frames(path, start_s, stop_s):
        if drop_to is not None:
            tick = math.floor(t * drop_to + 1e-3)
            if tick <= kept_tick:
                continue
            kept_tick = tick
        for transform in transforms:
            image = transform(image)
        encoder.add(image)
    data = encoder.close()
    params |= {"crf": crf, "fps": float(fps), "frames": encoder.count,
               "display_ccw": rotation, "bytes": len(data),
               "sha256": hashlib.sha256(data).hexdigest()}
    return data, params


_MANIFEST_LOCK = threading.Lock()


def _manifest(cache: Path) -> dict:
    file = cache / "manifest.json"
    return json.loads(file.read_text()) if file.is_file() else {}


def variant_bytes(name: str, *, data: Path = DATA, cache: Path = CACHE, force: bool = False
                  ) -> bytes:
    """The variant ``<clip>@<variant>``, from the cache or made (and cached) now."""
    clip, variant = name.split("@", 1)
    file = cache / f"{name}.mp4"
    manifest = _manifest(cache)
    entry = manifest.get(name)
    if (not force and file.is_file() and entry and entry.get("version") == GENERATOR_VERSION
            and entry.get("sha256") == hashlib.sha256(file.read_bytes()).hexdigest()):
        return file.read_bytes()
    payload, params = make_variant(data / "video/live" / clip, variant)
    cache.mkdir(parents=True, exist_ok=True)
    file.write_bytes(payload)
    with _MANIFEST_LOCK:  # the evaluation makes variants from two threads at once
        manifest = _manifest(cache)
        manifest[name] = params
        temporary = cache / f"manifest.json.{os.getpid()}"
        temporary.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        temporary.replace(cache / "manifest.json")
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--only", default="*", help="glob over <clip>@<variant> names")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    names = [n for n in all_names(args.data_dir) if fnmatch.fnmatch(n, args.only)]
    if args.list:
        print("\n".join(names))
        return
    for name in names:
        started = time.perf_counter()
        payload = variant_bytes(name, data=args.data_dir, cache=args.cache, force=args.force)
        print(f"{name}: {len(payload)} bytes, {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
