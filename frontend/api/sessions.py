"""The liveness-session endpoints and the capture page that completes them.

Thin as `handlers.py`'s: parse -> the session service -> the contract's success body. The
page (`frontend/web/capture/`) is static: it is given its session in the URL fragment.
"""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import aiohttp_cors
from aiohttp import web

from frontend.api.handlers import PHOTO_COST, VIDEO_COST, Results, rect, references_of
from frontend.api.services import Services
from frontend.contract.fields import SCORE_THRESHOLDS, ParsedRequest
from frontend.contract.sessions import (
    SESSION_CAPTURE,
    SESSION_GUIDE,
    SESSION_OPEN,
    SESSION_RESULT,
)
from frontend.service.sessions import RECORD_S, RETRY_ADVICE, instructions

PAGE_DIR = Path(__file__).resolve().parents[1] / "web" / "capture"
PAGE_PATH = "/capture/"


async def session_open(services: Services, request: ParsedRequest) -> Results:
    opened = services.sessions.open(request.values.get("actions"))
    key = base64.b64encode(opened.key).decode("ascii")
    fragment = urllib.parse.urlencode({"token": opened.token, "key": key})
    return {
        "session_id": opened.claims.session_id,
        "session_token": opened.token,
        "session_key": key,
        "expires_in_s": round(services.sessions.ttl_s),
        "challenge": instructions(opened.claims.actions),
        "record_s": RECORD_S,
        "capture_url": f"{PAGE_PATH}#{fragment}",
    }, {}


async def session_guide(services: Services, request: ParsedRequest) -> Results:
    seen = await services.sessions.guide(request["session_token"], request["encrypted_image"])
    results = {"hint": seen.hint, "action": seen.action.value if seen.action else None}
    if seen.face is not None:
        results |= {"rect": rect(seen.face),
                    "pose": {"yaw": round(seen.yaw, 1), "pitch": round(seen.pitch, 1)}}
    return results, {"face": seen.face is not None}


async def session_capture(services: Services, request: ParsedRequest) -> Results:
    result = await services.sessions.capture(request["session_token"],
                                             request["encrypted_video"])
    failed = result["failed_check"]
    return {
        "passed": result["passed"], "failed_check": failed,
        "retry_advice": RETRY_ADVICE.get(failed, ""),
    }, {"failed": failed is not None}


async def session_result(services: Services, request: ParsedRequest) -> Results:
    references = await references_of(services, request, "encrypted_image")
    result, verification = await services.sessions.result(
        request["session_id"], references, auto_rotate=request["auto_rotate"],
        check_quality=request["check_quality"], single_face=request["fail_when_multiple_faces"],
    )
    results = {k: v for k, v in result.items() if k != "descriptor"}
    results["thresholds"] = SCORE_THRESHOLDS
    flags = {
        "passed": result["passed"], "failed": not result["passed"],
        "hack": result["liveness_status"] == "hack", "compared": verification is not None,
    }
    if verification is not None:
        results |= {"verification_score": verification.best,
                    "verification_scores": list(verification.scores)}
        flags["several_references"] = len(verification.scores) > 1
    return results, flags


SESSION_ROUTES = [
    (SESSION_OPEN, session_open, 0),
    (SESSION_GUIDE, session_guide, PHOTO_COST),
    (SESSION_CAPTURE, session_capture, VIDEO_COST),
    (SESSION_RESULT, session_result, PHOTO_COST),
]

PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""The capture page loads nothing from elsewhere, runs no inline script, and cannot be framed
(a framing page could overlay the camera prompt)."""


async def capture_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE_DIR / "index.html")


async def capture_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect(PAGE_PATH)


async def page_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The page's security policy; camera only for this origin."""
    if request.path.startswith(PAGE_PATH):
        response.headers["Content-Security-Policy"] = PAGE_POLICY
        response.headers["Permissions-Policy"] = "camera=(self), microphone=()"
        response.headers["Referrer-Policy"] = "no-referrer"


PAGE_ROUTES = [
    web.get("/capture", capture_redirect),
    web.get(PAGE_PATH, capture_page),
    web.static(PAGE_PATH, PAGE_DIR),
]


def allow_origins(app: web.Application, origins: list[str]) -> None:
    """Let these origins' pages make the capture page's two calls (guide, capture): an
    integrator's own page running facegate-capture.js. No cookies are involved, so none are
    allowed; the backend's calls (open, result) stay same-origin only."""
    if not origins:
        return
    cors = aiohttp_cors.setup(app, defaults={
        origin: aiohttp_cors.ResourceOptions(allow_headers=("Content-Type",), max_age=600)
        for origin in origins
    })
    public = {SESSION_GUIDE.path, SESSION_CAPTURE.path}
    for route in list(app.router.routes()):
        if route.resource is not None and route.resource.canonical in public:
            cors.add(route)
