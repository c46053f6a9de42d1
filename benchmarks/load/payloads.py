"""Sealed request bodies for each endpoint, made from the real photos and videos in ../shared/data.

Every body is what a SenseID client sends: form-urlencoded fields, each photo or video AES-GCM
sealed in the legacy fixed-IV form with the key the servers under test are started with.
"""

from __future__ import annotations

import csv
import io
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from frontend.contract.fields import (
    FACE_QUALITY,
    IMAGE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
    SILENT_DETECTION,
    SILENT_IMAGE_VERIFICATION,
)
from frontend.contract.liveness_file import seal
from frontend.crypto import KeyRing
from frontend.sdk.capture import capture_from_video

FORM = "application/x-www-form-urlencoded"
PHOTO_PAIRS = 16
MAX_PHOTO_SIDE = 2000  # pairs.csv's extra photos include 7000 px originals; an eKYC selfie is not


@dataclass(frozen=True)
class Workload:
    """One endpoint's requests: its path and the bodies posted in turn."""

    endpoint: str
    path: str
    bodies: list[bytes]
    description: str


def photo_pairs(data: Path, count: int = PHOTO_PAIRS) -> list[tuple[Path, Path]]:
    """`count` labelled pairs from pairs.csv, same and different person alternating: three
    quarters LFW (250x250), a quarter other sources (up to MAX_PHOTO_SIDE)."""
    rows = list(csv.DictReader((data / "faces" / "pairs.csv").open()))
    lfw = [r for r in rows if r["subset"] == "lfw_view2_fold01"]
    extra = [r for r in rows if r["subset"] == "extra_nonlfw" and _fits(data, r)]
    chosen = _alternate(lfw, count - count // 4) + _alternate(extra, count // 4)
    return [(data / r["img1"], data / r["img2"]) for r in chosen]


def _fits(data: Path, row: dict[str, str]) -> bool:
    for name in ("img1", "img2"):
        with Image.open(data / row[name]) as image:
            if max(image.size) > MAX_PHOTO_SIDE:
                return False
    return True


def _alternate(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    same = [r for r in rows if r["same"] == "1"]
    different = [r for r in rows if r["same"] != "1"]
    step_same = max(1, len(same) // count)
    step_diff = max(1, len(different) // count)
    picked = []
    for i in range(count):
        source, step = (same, step_same) if i % 2 == 0 else (different, step_diff)
        picked.append(source[(i // 2) * step % len(source)])
    return picked


def short_clip(path: Path, seconds: float) -> bytes:
    """The first `seconds` of a video, re-encoded as H.264 MP4 at its own size and rate."""
    buffer = io.BytesIO()
    with av.open(str(path)) as source, av.open(buffer, "w", format="mp4") as target:
        stream_in = source.streams.video[0]
        rate = Fraction(round(float(stream_in.average_rate or 25)))
        stream = target.add_stream("libx264", rate=rate)
        stream.width, stream.height = stream_in.width, stream_in.height
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / rate
        for index, frame in enumerate(source.decode(video=0)):
            if frame.time is not None and frame.time >= seconds:
                break
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            picture.pts = index
            for packet in stream.encode(picture.reformat(format="yuv420p")):
                target.mux(packet)
        for packet in stream.encode():
            target.mux(packet)
    return buffer.getvalue()


def _form(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode("ascii")


def workloads(data: Path, keyring: KeyRing) -> list[Workload]:
    """One workload per endpoint of the contract."""
    sealed: Callable[[bytes], str] = lambda raw: keyring.encrypt(raw, legacy=True)  # noqa: E731
    pairs = photo_pairs(data)
    faces = [p for pair in pairs for p in pair][: PHOTO_PAIRS]
    groups = sorted((data / "multi").glob("*.jpg"))
    groups = [g for g in groups if _small(g)][:8]
    live = data / "video" / "live"
    clip = short_clip(live / "liveportrait_source_s32.mp4", 3.0)
    clip_photo = data / "faces" / "Barack_Obama"  # any face: silent verification scores it
    reference = sorted(clip_photo.glob("*.jpg"))[0].read_bytes()
    liveness_files = [
        seal(capture_from_video(live / name, frames=8), keyring, legacy=True).decode("ascii")
        for name in ("lestari15_real.mp4", "liveportrait_source_s32.mp4")
    ]
    return [
        Workload("image_verification", IMAGE_VERIFICATION.path, [
            _form({"first_encrypted_image": sealed(a.read_bytes()),
                   "second_encrypted_image": sealed(b.read_bytes())}) for a, b in pairs
        ], f"{len(pairs)} labelled pairs from faces/pairs.csv (LFW and other sources)"),
        Workload("multi_face_verification", MULTI_FACE_VERIFICATION.path, [
            _form({"first_encrypted_image": sealed(groups[i].read_bytes()),
                   "second_encrypted_image": sealed(groups[(i + 1) % len(groups)].read_bytes())})
            for i in range(len(groups))
        ], f"{len(groups)} group photos from multi/, each against the next"),
        Workload("face_quality", FACE_QUALITY.path, [
            _form({"encrypted_image": sealed(p.read_bytes())}) for p in faces
        ], f"{len(faces)} face photos of the verification pairs"),
        Workload("liveness_image_verification", LIVENESS_IMAGE_VERIFICATION.path, [
            _form({"liveness_file": f, "encrypted_image": sealed(reference)})
            for f in liveness_files
        ], "liveness files of 8 frames from 2 live videos, against a photo"),
        Workload("silent_detection", SILENT_DETECTION.path, [
            _form({"encrypted_video": sealed(clip)})
        ], "3 s 1280x720 H.264 clip of a live video (liveportrait_source_s32)"),
        Workload("silent_image_verification", SILENT_IMAGE_VERIFICATION.path, [
            _form({"encrypted_video": sealed(clip), "encrypted_image": sealed(reference)})
        ], "the same 3 s clip against a photo"),
    ]


def _small(path: Path) -> bool:
    with Image.open(path) as image:
        return max(image.size) <= MAX_PHOTO_SIDE


def write_bodies(workload: Workload, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, body in enumerate(workload.bodies):
        path = folder / f"{workload.endpoint}_{index}.form"
        path.write_bytes(body)
        paths.append(path)
    return paths
