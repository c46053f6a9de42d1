"""Thin handlers: parse -> decrypt -> the service -> the contract's success body.

Each handler reads its endpoint's fields with the rules in `frontend/contract/fields.py`,
opens the encrypted fields off the event loop, calls `PhotoService`, and shapes the answer
with `success_body`, which lets through exactly the fields whose presence rules hold.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from frontend.api.body import read_fields
from frontend.api.metrics import CODE, METRICS
from frontend.api.middleware import request_id_of
from frontend.contract.codes import Code
from frontend.contract.fields import (
    FACE_QUALITY,
    IMAGE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
    SILENT_DETECTION,
    SILENT_IMAGE_VERIFICATION,
    Endpoint,
    ParsedRequest,
    parse_request,
    success_body,
)
from frontend.crypto import KeyRing
from frontend.executor import run_cpu
from frontend.liveness_file import LivenessFileLimits, open_sealed
from frontend.service.faces import timed
from frontend.service.photos import FaceReport, PhotoService
from frontend.service.video import BestFrame, VideoLiveness, VideoService
from preprocessing.detection import Face

SERVICE = web.AppKey("photo_service", PhotoService)
VIDEO_SERVICE = web.AppKey("video_service", VideoService)
CPU_POOL = web.AppKey("cpu_pool", concurrent.futures.Executor)
KEYRING = web.AppKey("keyring", KeyRing)
LIVENESS_FILE_LIMITS = web.AppKey("liveness_file_limits", LivenessFileLimits)

T = TypeVar("T")
Results = tuple[dict[str, Any], dict[str, bool]]
Logic = Callable[[web.Application, ParsedRequest], Awaitable[Results]]


async def _cpu(app: web.Application, function: Callable[..., T], *args: Any) -> T:
    return await run_cpu(app[CPU_POOL], function, *args)


async def _decrypt(app: web.Application, text: str) -> bytes:
    with timed(app[METRICS].observe_stage, "decrypt"):
        return await _cpu(app, app[KEYRING].decrypt, text)


def rect(face: Face) -> dict[str, int]:
    x, y, w, h = face.box
    return {"left": round(x), "top": round(y), "width": round(w), "height": round(h)}


async def image_verification(app: web.Application, request: ParsedRequest) -> Results:
    first, second = await asyncio.gather(
        _decrypt(app, request["first_encrypted_image"]),
        _decrypt(app, request["second_encrypted_image"]),
    )
    score = await app[SERVICE].verify(
        first, second, auto_rotate=request["auto_rotate"], check_quality=request["check_quality"]
    )
    return {"verification_score": score}, {}


async def multi_face_verification(app: web.Application, request: ParsedRequest) -> Results:
    first, second = await asyncio.gather(
        _decrypt(app, request["first_encrypted_image"]),
        _decrypt(app, request["second_encrypted_image"]),
    )
    result = await app[SERVICE].multi_face(first, second, auto_rotate=request["auto_rotate"])
    return {
        "scores": [[float(s) for s in row] for row in result.scores],
        "face_rects": {
            "first_image": [rect(f) for f in result.first],
            "second_image": [rect(f) for f in result.second],
        },
    }, {}


async def liveness_image_verification(app: web.Application, request: ParsedRequest) -> Results:
    capture = await _cpu(
        app, open_sealed, request["liveness_file"], app[KEYRING], app[LIVENESS_FILE_LIMITS]
    )
    photo = await _decrypt(app, request["encrypted_image"])
    score = await app[SERVICE].liveness_verify(
        capture, photo, auto_rotate=request["auto_rotate"], check_quality=request["check_quality"]
    )
    return {"verification_score": score}, {}


def _num(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def _face_report(report: FaceReport) -> dict[str, Any]:
    q = report.quality
    return {
        "rect": rect(report.face),
        "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in report.face.landmarks],
        "quality": {
            "occlusion": {
                "eyes": _num(q.occlusion.eyes),
                "nose": _num(q.occlusion.nose),
                "mouth": _num(q.occlusion.mouth),
            },
            "blur": _num(q.blur),
            "brightness": _num(q.brightness),
            "pose": {
                "yaw": _num(q.pose.yaw, 1),
                "pitch": _num(q.pose.pitch, 1),
                "roll": _num(q.pose.roll, 1),
            },
            "face_size": _num(q.face_size, 1),
            "score": _num(q.score),
        },
    }


async def face_quality(app: web.Application, request: ParsedRequest) -> Results:
    photo = await _decrypt(app, request["encrypted_image"])
    reports = await app[SERVICE].quality(photo)
    return {"faces": [_face_report(r) for r in reports]}, {}


async def _liveness_results(
    app: web.Application,
    request: ParsedRequest,
    liveness: VideoLiveness,
    best: BestFrame | None = None,
) -> Results:
    """The liveness fields; the best frame is chosen and encoded only when the flags will
    let the images out."""
    for stage, seconds in liveness.seconds.items():
        app[METRICS].observe_stage(f"video_{stage}", seconds)
    results: dict[str, Any] = {
        "passed": liveness.passed,
        "liveness_score": round(liveness.score, 4),
        "liveness_status": liveness.status,
    }
    if liveness.passed and (request["return_image"] or request["return_face_image"]):
        service = app[VIDEO_SERVICE]
        best = best or await service.best_frame(liveness)
        frame, face = await service.images(best)
        results |= {
            "image_timestamp": round(best.timestamp_s, 3),
            "base64_image": base64.b64encode(frame).decode("ascii"),
            "base64_face_image": base64.b64encode(face).decode("ascii"),
        }
    return results, {"passed": liveness.passed}


async def silent_detection(app: web.Application, request: ParsedRequest) -> Results:
    video = await _decrypt(app, request["encrypted_video"])
    liveness = await app[VIDEO_SERVICE].silent_liveness(video)
    return await _liveness_results(app, request, liveness)


async def silent_image_verification(app: web.Application, request: ParsedRequest) -> Results:
    video, photo = await asyncio.gather(
        _decrypt(app, request["encrypted_video"]), _decrypt(app, request["encrypted_image"])
    )
    liveness, best, score = await app[VIDEO_SERVICE].liveness_and_verify(
        video, photo, auto_rotate=request["auto_rotate"], check_quality=request["check_quality"]
    )
    results, flags = await _liveness_results(app, request, liveness, best)
    if score is not None:
        results["verification_score"] = score
    return results, flags


def contract_handler(
    endpoint: Endpoint, logic: Logic
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler running `logic` under the endpoint's field rules."""

    async def handler(request: web.Request) -> web.Response:
        parsed = parse_request(endpoint, await read_fields(request))
        results, result_flags = await logic(request.app, parsed)
        flags = {k: v for k, v in parsed.values.items() if isinstance(v, bool)} | result_flags
        request[CODE] = Code.OK.info.code
        return web.json_response(success_body(endpoint, results, flags, request_id_of(request)))

    handler.__name__ = endpoint.operation_id
    return handler


CONTRACT_ROUTES = [
    (IMAGE_VERIFICATION, image_verification),
    (MULTI_FACE_VERIFICATION, multi_face_verification),
    (LIVENESS_IMAGE_VERIFICATION, liveness_image_verification),
    (FACE_QUALITY, face_quality),
    (SILENT_DETECTION, silent_detection),
    (SILENT_IMAGE_VERIFICATION, silent_image_verification),
]
