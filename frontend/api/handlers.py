"""Thin handlers: parse -> decrypt -> the service -> the contract's success body.

Each handler reads its endpoint's fields with the rules in `frontend/contract/fields.py`,
opens the encrypted fields (`Services.decrypt`, off the event loop), calls a service, and
shapes its finished result with `success_body`, which lets through exactly the fields whose
presence rules hold.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from frontend.api.admission import GATE
from frontend.api.metrics import CODE
from frontend.api.middleware import request_id_of
from frontend.api.services import SERVICES, Services
from frontend.contract.codes import Code
from frontend.contract.fields import (
    FACE_QUALITY,
    IMAGE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
    SCORE_THRESHOLDS,
    SILENT_DETECTION,
    SILENT_IMAGE_VERIFICATION,
    Endpoint,
    ParsedRequest,
    parse_request,
    success_body,
)
from frontend.service.faces import Verification
from frontend.service.photos import FaceReport, Reference
from frontend.service.video import LivenessAnswer, spoof_type
from preprocessing.detection import Face

Results = tuple[dict[str, Any], dict[str, bool]]
Logic = Callable[[Services, ParsedRequest], Awaitable[Results]]


def rect(face: Face) -> dict[str, int]:
    x, y, w, h = face.box
    return {"left": round(x), "top": round(y), "width": round(w), "height": round(h)}


async def references_of(
    services: Services, request: ParsedRequest, name: str
) -> list[Reference]:
    """The reference photo `name` and the optional ``name_2`` and ``name_3``, decrypted."""
    names = [n for n in (name, f"{name}_2", f"{name}_3") if request.values.get(n)]
    photos = await asyncio.gather(*(services.decrypt(request, n) for n in names))
    return list(zip(names, photos, strict=True))


def _verification_results(verification: Verification | None) -> Results:
    """The score fields (the presence rules decide which go out)."""
    results: dict[str, Any] = {"thresholds": SCORE_THRESHOLDS}
    if verification is None:
        return results, {}
    results |= {
        "verification_score": verification.best,
        "verification_scores": list(verification.scores),
    }
    return results, {"several_references": len(verification.scores) > 1}


def _options(request: ParsedRequest) -> dict[str, bool]:
    return {
        "auto_rotate": request["auto_rotate"],
        "check_quality": request["check_quality"],
        "single_face": request["fail_when_multiple_faces"],
    }


async def image_verification(services: Services, request: ParsedRequest) -> Results:
    first, references = await asyncio.gather(
        services.decrypt(request, "first_encrypted_image"),
        references_of(services, request, "second_encrypted_image"),
    )
    verification = await services.photos.verify(first, references, **_options(request))
    return _verification_results(verification)


async def multi_face_verification(services: Services, request: ParsedRequest) -> Results:
    first, second = await asyncio.gather(
        services.decrypt(request, "first_encrypted_image"),
        services.decrypt(request, "second_encrypted_image"),
    )
    result = await services.photos.multi_face(first, second, auto_rotate=request["auto_rotate"])
    return {
        "scores": [[float(s) for s in row] for row in result.scores],
        "face_rects": {
            "first_image": [rect(f) for f in result.first],
            "second_image": [rect(f) for f in result.second],
        },
        "thresholds": SCORE_THRESHOLDS,
    }, {}


async def liveness_image_verification(services: Services, request: ParsedRequest) -> Results:
    capture = await services.open_liveness_file(request)
    references = await references_of(services, request, "encrypted_image")
    verification = await services.photos.liveness_verify(
        capture, references, **_options(request), with_spoof_type=request["return_spoof_type"])
    return _verification_results(verification)


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
        "usable": report.unusable is None,
    } | ({"unusable_reason": report.unusable} if report.unusable else {})


async def face_quality(services: Services, request: ParsedRequest) -> Results:
    reports = await services.photos.quality(await services.decrypt(request, "encrypted_image"))
    return {"faces": [_face_report(r) for r in reports]}, {}


def _liveness_results(answer: LivenessAnswer) -> Results:
    liveness = answer.liveness
    results: dict[str, Any] = {
        "passed": liveness.passed,
        "liveness_score": round(liveness.score, 4),
        "liveness_status": liveness.status,
        "spoof_type": spoof_type(liveness),
        "liveness_reason": liveness.capture_problem,
    }
    if answer.images is not None:
        results |= {
            "image_timestamp": round(answer.images.timestamp_s, 3),
            "base64_image": base64.b64encode(answer.images.frame_jpeg).decode("ascii"),
            "base64_face_image": base64.b64encode(answer.images.face_jpeg).decode("ascii"),
        }
    scores, flags = _verification_results(answer.verification)
    return results | scores, flags | {
        "passed": liveness.passed, "hack": liveness.status == "hack",
        "capture_problem": liveness.capture_problem is not None,
    }


def _wants_images(request: ParsedRequest) -> bool:
    return request["return_image"] or request["return_face_image"]


async def silent_detection(services: Services, request: ParsedRequest) -> Results:
    video = await services.decrypt(request, "encrypted_video")
    answer = await services.videos.silent_detection(video, images=_wants_images(request))
    return _liveness_results(answer)


async def silent_image_verification(services: Services, request: ParsedRequest) -> Results:
    video, references = await asyncio.gather(
        services.decrypt(request, "encrypted_video"),
        references_of(services, request, "encrypted_image"),
    )
    answer = await services.videos.silent_verification(
        video, references, images=_wants_images(request), **_options(request)
    )
    return _liveness_results(answer)


def contract_handler(
    endpoint: Endpoint, logic: Logic, cost: int
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler: through the gate with `cost` (`Gate.enter`), then `logic` under the
    endpoint's field rules."""

    async def handler(request: web.Request) -> web.Response:
        async with request.app[GATE].enter(request, cost) as raw:
            services = request.app[SERVICES]
            parsed = parse_request(endpoint, raw)
            async with services.budget.scope():
                results, result_flags = await logic(services, parsed)
        flags = {k: v for k, v in parsed.values.items() if isinstance(v, bool)} | result_flags
        request[CODE] = Code.OK.info.code
        return web.json_response(success_body(endpoint, results, flags, request_id_of(request)))

    handler.__name__ = endpoint.operation_id
    return handler


PHOTO_COST, LIVENESS_FILE_COST, VIDEO_COST = 1, 8, 16
"""Admission costs in photo units (`frontend.api.admission`)."""

CONTRACT_ROUTES = [
    (IMAGE_VERIFICATION, image_verification, 2 * PHOTO_COST),
    (MULTI_FACE_VERIFICATION, multi_face_verification, 2 * PHOTO_COST),
    (LIVENESS_IMAGE_VERIFICATION, liveness_image_verification, LIVENESS_FILE_COST + PHOTO_COST),
    (FACE_QUALITY, face_quality, PHOTO_COST),
    (SILENT_DETECTION, silent_detection, VIDEO_COST),
    (SILENT_IMAGE_VERIFICATION, silent_image_verification, VIDEO_COST + PHOTO_COST),
]
