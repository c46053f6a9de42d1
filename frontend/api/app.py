"""The aiohttp application: one route table, shared clients opened and closed in cleanup_ctx."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from deploy.embedded_triton import EmbeddedTriton, EmbeddedTritonConfig, TritonPorts
from frontend.config import Settings
from frontend.inference.triton import TritonModels
from frontend.service.faces import FacePipeline

LOGGER = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
MODELS = web.AppKey("models", TritonModels)
PIPELINE = web.AppKey("pipeline", FacePipeline)


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Triton and every model are ready; 503 otherwise."""
    ready = await request.app[MODELS].ready()
    return web.json_response({"ready": ready}, status=200 if ready else 503)


ROUTES = [
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
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
    models = TritonModels(url, timeout_s=settings.triton_timeout_s)
    executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=settings.cpu_workers, thread_name_prefix="facegate-cpu"
    )
    app[MODELS] = models
    app[PIPELINE] = FacePipeline(models, executor)
    try:
        yield
    finally:
        await models.close()
        executor.shutdown(wait=True, cancel_futures=True)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app.add_routes(ROUTES)
    app.cleanup_ctx.append(_triton)
    return app
