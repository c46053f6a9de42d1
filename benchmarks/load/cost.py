"""What one request costs, against what is in it: video length, photo size, number of faces.

    .venv/bin/python -m benchmarks.load.cost [--repeats 9]

facegate runs as an operator starts it (embedded Triton, default models) and gets one request
at a time, so that nothing else shares the cores: per point, the median latency of `repeats`
requests (after one to warm up) and the CPU time the server's processes (frontend, Triton and
its model stubs) spent per request, from /proc. Three series, each varying one thing:

- **video length**: silent_detection of the first 2-30 s of one live video
  (``liveportrait_driving_d6``, 480x480, 30 fps, H.264 as cut): frames are sampled every
  0.2 s of the first 10 s (`frontend.service.video`), so the cost should stop growing there;
- **photo size**: image_verification of a photo against itself, the longer side scaled from
  250 to 5,184 px (``CompreFace_PersonA/compreface_002_A``, a 3880x5184 phone portrait; JPEG
  quality 90);
- **number of faces**: multi_face_verification of a 1000x1000 mosaic holding 1 to 16 LFW
  photos (250x250 tiles, the rest grey) against one of them: each face is aligned and embedded.

Writes ``benchmarks/results/cost.{json,md}`` and ``cost.png``.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.load.payloads import short_clip
from benchmarks.load.servers import IV, KEY, Server, post_form, start_facegate
from benchmarks.paths import DATA, RESULTS, write_results
from benchmarks.plots import pyplot, save
from frontend.contract.fields import (
    IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
    SILENT_DETECTION,
)
from frontend.crypto import KeyRing

LOGGER = logging.getLogger("cost")
VIDEO = "video/live/liveportrait_driving_d6.mp4"
VIDEO_SECONDS = (2, 3, 5, 8, 10, 15, 20, 30)
PHOTO = "faces/CompreFace_PersonA/compreface_002_A.jpg"  # a 20 MP phone portrait
PHOTO_SIDES = (250, 500, 1000, 2000, 3000, 4000, 5184)
FACE_COUNTS = (1, 2, 4, 8, 16)
TILE, GRID = 250, 4


def scaled_jpeg(path: Path, side: int) -> bytes:
    """The photo with its longer side `side` px, as JPEG quality 90."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)),
                             Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def mosaic(faces: list[Path], count: int) -> bytes:
    """A GRIDxGRID canvas of TILE px cells, the first `count` cells holding the photos."""
    canvas = np.full((GRID * TILE, GRID * TILE, 3), 128, np.uint8)
    for cell, path in enumerate(faces[:count]):
        row, col = divmod(cell, GRID)
        with Image.open(path) as image:
            tile = np.asarray(image.convert("RGB").resize((TILE, TILE)))
        canvas[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE] = tile
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def lfw_faces(data: Path, count: int) -> list[Path]:
    """One LFW photo each of `count` different people (250x250, one face in the middle)."""
    people = sorted(p for p in (data / "faces").iterdir()
                    if p.is_dir() and (p / f"{p.name}_0001.jpg").exists())
    return [p / f"{p.name}_0001.jpg" for p in people[:: max(1, len(people) // count)][:count]]


def point(server: Server, path: str, body: bytes, repeats: int,
          faces: Callable[[dict], int] | None = None) -> dict:
    """Median latency and server CPU per request of `repeats` identical requests."""
    url = server.url + path
    post_form(url, body)  # warm-up
    before = server.cpu_seconds()
    seconds = []
    for _ in range(repeats):
        answer, elapsed = post_form(url, body)
        seconds.append(elapsed)
    after = server.cpu_seconds()
    cpu = {k: 1000 * (after[k] - before[k]) / repeats for k in before}
    return {
        "code": answer.get("code"), "bytes": len(body),
        "p50_ms": round(1000 * statistics.median(seconds), 1),
        "cpu_ms": round(sum(cpu.values()), 1),
        "cpu_ms_frontend": round(cpu["server"], 1), "cpu_ms_triton": round(cpu["triton"], 1),
        **({"faces": faces(answer)} if faces else {}),
    }


def run(repeats: int) -> dict:
    keyring = KeyRing.from_strings([KEY], IV)

    def form(**fields: bytes) -> bytes:
        return urllib.parse.urlencode(
            {name: keyring.encrypt(raw, legacy=True) for name, raw in fields.items()}).encode()

    faces = lfw_faces(DATA, max(FACE_COUNTS))
    work = Path(tempfile.mkdtemp(prefix="facegate-cost-"))
    series: dict[str, list[dict]] = {"video_seconds": [], "photo_side": [], "faces": []}
    try:
        server = start_facegate("facegate-cost", work / "logs")
        try:
            for seconds in VIDEO_SECONDS:
                body = form(encrypted_video=short_clip(DATA / VIDEO, seconds))
                series["video_seconds"].append(
                    {"x": seconds, **point(server, SILENT_DETECTION.path, body, repeats)})
                LOGGER.info("video %s s: %s", seconds, series["video_seconds"][-1])
            for side in PHOTO_SIDES:
                photo = scaled_jpeg(DATA / PHOTO, side)
                body = form(first_encrypted_image=photo, second_encrypted_image=photo)
                series["photo_side"].append(
                    {"x": side, **point(server, IMAGE_VERIFICATION.path, body, repeats)})
                LOGGER.info("photo %s px: %s", side, series["photo_side"][-1])
            single = faces[0].read_bytes()
            for count in FACE_COUNTS:
                body = form(first_encrypted_image=mosaic(faces, count),
                            second_encrypted_image=single)
                series["faces"].append({"x": count, **point(
                    server, MULTI_FACE_VERIFICATION.path, body, repeats,
                    faces=lambda a: len(a.get("face_rects", {}).get("first_image", [])))})
                LOGGER.info("faces %s: %s", count, series["faces"][-1])
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "command": " ".join(["python -m benchmarks.load.cost", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu_count": os.cpu_count(), "repeats": repeats,
        "inputs": {"video": VIDEO, "photo": PHOTO, "faces": [str(p.relative_to(DATA))
                                                           for p in faces]},
        "series": series,
    }


LABELS = {
    "video_seconds": ("silent_detection: video length (s)", "video length (s)"),
    "photo_side": ("image_verification: photo's longer side (px, both photos)",
                   "longer side (px)"),
    "faces": ("multi_face_verification: faces in the first photo", "faces in the photo"),
}


def markdown(result: dict) -> str:
    lines = [
        "# What a request costs", "",
        f"`{result['command']}`, {result['date']}, {result['cpu_count']} cores; one request at "
        f"a time, median of {result['repeats']} after a warm-up; CPU ms: the server's processes "
        "(frontend + Triton and its model stubs) per request. Inputs: "
        f"`{result['inputs']['video']}` cut from its start, `{result['inputs']['photo']}` "
        "scaled, a 1000x1000 mosaic of LFW photos. Plot: `cost.png`.", "",
    ]
    for name, rows in result["series"].items():
        title, unit = LABELS[name]
        extra = " | faces answered" if name == "faces" else ""
        lines += [f"## {title}", "", f"| {unit} | body KB | code | p50 ms | CPU ms (frontend "
                  f"+ Triton){extra} |", "|---|---|---|---|---|" + ("---|" if extra else "")]
        for r in rows:
            faces = f" | {r['faces']}" if extra else ""
            lines.append(f"| {r['x']} | {r['bytes'] / 1024:.0f} | {r['code']} | {r['p50_ms']} | "
                         f"{r['cpu_ms']} ({r['cpu_ms_frontend']} + {r['cpu_ms_triton']}){faces} |")
        lines.append("")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> Path:
    fig, axes = pyplot().subplots(1, 3, figsize=(15, 4.5))
    for ax, (name, rows) in zip(axes, result["series"].items(), strict=True):
        title, unit = LABELS[name]
        x = [r["x"] for r in rows]
        ax.plot(x, [r["p50_ms"] for r in rows], marker="o", label="latency p50 (ms)")
        ax.plot(x, [r["cpu_ms"] for r in rows], marker="s", label="server CPU per request (ms)")
        ax.set_xlabel(unit)
        ax.set_ylabel("ms")
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return save(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="requests per point")
    parser.add_argument("--out", type=Path, default=RESULTS / "cost.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    result = run(args.repeats)
    write_results(args.out.stem, result, markdown(result), args.out.parent)
    plot(result, args.out.with_name("cost.png"))
    LOGGER.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
