"""The aiohttp application: one route table, shared clients opened and closed in cleanup_ctx."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from deploy.embedded_triton import EmbeddedTriton, EmbeddedTritonConfig, TritonPorts
from frontend.api import middleware
from frontend.api.handlers import (
    CONTRACT_ROUTES,
    CPU_POOL,
    KEYRING,
    LIVENESS_FILE_LIMITS,
    SERVICE,
    VIDEO_SERVICE,
    contract_handler,
)
from frontend.api.metrics import METRICS, Metrics
from frontend.config import Settings, SettingsError
from frontend.contract.fields import ENDPOINTS
from frontend.contract.openapi import build_openapi
from frontend.inference.triton import TritonModels
from frontend.liveness_file import LivenessFileLimits
from frontend.service.faces import FacePipeline
from frontend.service.photos import PhotoService
from frontend.service.scores import ScoreCalibration
from frontend.service.video import VideoService
from preprocessing.detection import detector_sizes

LOGGER = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
MODELS = web.AppKey("models", TritonModels)
PIPELINE = web.AppKey("pipeline", FacePipeline)
CALIBRATION = web.AppKey("calibration", ScoreCalibration)


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Triton and every model are ready; 503 otherwise."""
    ready = await request.app[MODELS].ready()
    return web.json_response({"ready": ready}, status=200 if ready else 503)


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this server, with its configured limits."""
    settings = request.app[SETTINGS]
    return web.json_response(
        build_openapi(
            ENDPOINTS, settings.photo_limits, settings.video_limits, settings.max_body_bytes
        )
    )


ROUTES = [
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
    web.get("/openapi.json", openapi),
    *(web.post(endpoint.path, contract_handler(endpoint, logic))
      for endpoint, logic in CONTRACT_ROUTES),
]


async def _triton(app: web.Application) -> AsyncIterator[None]:
    """Start the embedded Triton (unless an external one is configured) and connect to it."""
    settings = app[SETTINGS]
    embedded = None
    url = settings.triton_url
    if settings.embedded_triton:
        embedded = EmbeddedTriton(
            EmbeddedTritonConfig(
                model_repository=settings.model_repository,
                ports=TritonPorts(
                    settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port
                ),
                startup_timeout_s=settings.triton_startup_timeout_s,
            )
        )
        await asyncio.to_thread(embedded.start)
        url = embedded.grpc_url
    models = TritonModels(
        url, timeout_s=settings.triton_timeout_s, observer=app[METRICS].observe_model_call
    )
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=settings.cpu_workers, thread_name_prefix="facegate-cpu"
    )
    app[MODELS] = models
    app[CPU_POOL] = executor
    app[PIPELINE] = FacePipeline(
        models, executor, observe_stage=app[METRICS].observe_stage,
        detector_sizes=detector_sizes(settings.small_detector),
    )
    app[SERVICE] = PhotoService(
        app[PIPELINE], app[CALIBRATION],
        settings.photo_limits, executor, liveness_threshold=settings.liveness_threshold,
        observe_stage=app[METRICS].observe_stage,
    )
    app[VIDEO_SERVICE] = VideoService(
        app[SERVICE], settings.video_limits, threshold=settings.video_liveness_threshold
    )
    try:
        yield
    finally:
        await models.close()
        executor.shutdown(wait=True, cancel_futures=True)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def create_app(settings: Settings) -> web.Application:
    """The server: routes, middleware and the Triton connection under these settings.

    Raises:
        SettingsError: the AES keys are missing or malformed, or the calibration unusable.
    """
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            middleware.request_ids,
            metrics.middleware(),
            middleware.errors,
            middleware.admission(settings.max_body_bytes, settings.max_in_flight),
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics.handler)
    app[KEYRING] = settings.keyring()
    try:
        app[CALIBRATION] = ScoreCalibration.from_file(settings.calibration_file)
    except ValueError as error:
        raise SettingsError(f"FACEGATE_CALIBRATION_FILE: {error}") from error
    app[LIVENESS_FILE_LIMITS] = LivenessFileLimits()
    app.add_routes(ROUTES)
    app.cleanup_ctx.append(_triton)
    return app
