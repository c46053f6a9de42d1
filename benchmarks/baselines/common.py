"""The minimal aiohttp server both baselines share: what a team without Triton would write.

One route, ``POST /identity/image_verification/stateless`` (form fields
``first_encrypted_image`` and ``second_encrypted_image``), plus ``GET /healthz``. The handler
reads the form with ``await request.post()``; each photo is decrypted (facegate's
`frontend.crypto`) and decoded (``cv2.imdecode``) in a thread pool of ``--workers`` threads and
described by the baseline's ``describe`` (detect, align, embed), the two photos concurrently.
The descriptors' Euclidean distance goes through facegate's score calibration, so answers are
comparable.

Deliberately left out: Triton, any batching across requests, EXIF / auto-rotation, photo size
limits, quality checks, metrics, overload shedding. Errors answer facegate's codes (1200
undecryptable or missing field, 2005 undecodable photo, 4000 no face, 500 anything else) and
the server keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import sys
import uuid
from collections.abc import Awaitable, Callable

import cv2
import numpy as np
from aiohttp import web

from frontend.contract.codes import Code, ContractError
from frontend.crypto import DecryptionError, KeyRing, keyring_from_env
from frontend.service.scores import ScoreCalibration

LOGGER = logging.getLogger("baseline")

VERIFY_PATH = "/identity/image_verification/stateless"
FIELDS = ("first_encrypted_image", "second_encrypted_image")
MAX_BODY_BYTES = 80 * 1024 * 1024
"""facegate's default body limit (aiohttp's own default, 1 MiB, would refuse large photos)."""

Describe = Callable[[np.ndarray], Awaitable[np.ndarray | None]]
"""A BGR photo -> the descriptor of the face nearest its centre, or None when there is no face."""
Load = Callable[[concurrent.futures.Executor], Describe]
"""Loads a baseline's models once; its `Describe` may run its work in the given pool."""


class Verifier:
    """One request's work: two encrypted photos -> calibrated score."""

    def __init__(self, describe: Describe, keyring: KeyRing, calibration: ScoreCalibration,
                 pool: concurrent.futures.Executor):
        self.describe = describe
        self.keyring = keyring
        self.calibration = calibration
        self.pool = pool

    def _open(self, payload: str, name: str) -> np.ndarray:
        try:
            data = self.keyring.decrypt(payload)
        except DecryptionError as error:
            raise ContractError(Code.INVALID_ARGUMENT, f"{name}: {error}") from error
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:
            image = None
        if image is None:
            raise ContractError(Code.INVALID_IMAGE_TYPE, f"{name} does not decode")
        return image

    async def descriptor(self, payload: str, name: str) -> np.ndarray:
        image = await asyncio.get_running_loop().run_in_executor(
            self.pool, self._open, payload, name
        )
        descriptor = await self.describe(image)
        if descriptor is None:
            raise ContractError(Code.DETECTION_FAILED, f"no face in {name}")
        return descriptor

    async def score(self, first: str, second: str) -> float:
        a, b = await asyncio.gather(
            self.descriptor(first, FIELDS[0]), self.descriptor(second, FIELDS[1])
        )
        return self.calibration.compare(a, b)


def _failure(code: Code, request_id: str) -> web.Response:
    body = {"code": code.info.code, "message": code.info.message, "request_id": request_id}
    return web.json_response(body, status=code.info.http_status)


def create_app(
    load: Load,
    *,
    keyring: KeyRing,
    workers: int | None = None,
    calibration: ScoreCalibration | None = None,
) -> web.Application:
    """The baseline app: the CPU work runs in a pool of `workers` threads (default: CPU count)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count())
    verifier = Verifier(load(pool), keyring, calibration or ScoreCalibration.from_file(), pool)

    async def verify(request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        try:
            form = await request.post()
            first, second = (form.get(name) for name in FIELDS)
            if not (isinstance(first, str) and isinstance(second, str)):
                raise ContractError(Code.INVALID_ARGUMENT, "a photo field is missing")
            score = await verifier.score(first, second)
        except ContractError as error:
            LOGGER.info("%s: %s", request_id, error)
            return _failure(error.code, request_id)
        except web.HTTPException:
            raise
        except Exception:
            LOGGER.exception("%s: request failed", request_id)
            return _failure(Code.INTERNAL_ERROR, request_id)
        return web.json_response(
            {"code": Code.OK.info.code, "verification_score": score, "request_id": request_id}
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def shutdown(app: web.Application) -> None:
        pool.shutdown(wait=False, cancel_futures=True)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(VERIFY_PATH, verify)
    app.router.add_get("/healthz", healthz)
    app.on_cleanup.append(shutdown)
    return app


def main(load: Load, description: str, argv: list[str] | None = None) -> int:
    """Parse ``--host/--port/--workers/--processes``, load the models, serve until interrupted.

    With ``--processes N`` the server forks N processes that share the port (SO_REUSEPORT),
    each with its own models and ``--workers`` threads: the "2x1" a user tries beside "1x2".
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="threads running the CPU work (default: CPU count)")
    parser.add_argument("--processes", type=int, default=1,
                        help="processes sharing the port, each with its own models")
    parser.add_argument("--log-level", default="INFO",
                        help="INFO logs every request (aiohttp's access log), as facegate does")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        keyring = keyring_from_env()
    except ValueError as error:
        print(f"bad configuration: {error}", file=sys.stderr)
        return 2
    for _ in range(args.processes - 1):
        if os.fork() == 0:
            break  # a child serves too
    app = create_app(load, keyring=keyring, workers=args.workers)
    web.run_app(app, host=args.host, port=args.port, reuse_port=args.processes > 1)
    return 0
