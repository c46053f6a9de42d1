"""The aiohttp application: one route table, shared clients opened and closed in cleanup_ctx."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web

from deploy.embedded_triton import (
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
    TritonSupervisor,
)
from frontend.api import middleware
from frontend.api.admission import GATE, Admission, Gate
from frontend.api.auth import ApiKeys, ApiKeysError, authentication
from frontend.api.handlers import CONTRACT_ROUTES, contract_handler
from frontend.api.metrics import METRICS, Metrics
from frontend.api.services import SERVICES, build_services
from frontend.api.sessions import PAGE_ROUTES, SESSION_ROUTES, allow_origins, page_headers
from frontend.config import Settings, SettingsError
from frontend.contract.fields import ENDPOINTS
from frontend.contract.openapi import build_openapi
from frontend.contract.sessions import SESSION_ENDPOINTS
from frontend.crypto import KeyRing
from frontend.inference.triton import TritonModels
from frontend.service.scores import ScoreCalibration

LOGGER = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)


@dataclass
class Health:
    """What the probes report.

    Attributes:
        supervisor: the embedded Triton's supervisor (None with an external Triton).
        draining: SIGTERM arrived: finish what is in progress, take nothing new.
    """

    supervisor: TritonSupervisor | None = None
    draining: bool = False


HEALTH = web.AppKey("health", Health)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP and can still recover its models (503 once the
    embedded Triton could not be restarted: replace this process)."""
    supervisor = request.app[HEALTH].supervisor
    if supervisor is not None and supervisor.state == "failed":
        return web.json_response({"status": "failed"}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: not draining, and Triton and every model ready; 503 otherwise."""
    ready = not request.app[HEALTH].draining and await request.app[SERVICES].models.ready()
    return web.json_response({"ready": ready}, status=200 if ready else 503)


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this server, with its configured limits."""
    settings = request.app[SETTINGS]
    return web.json_response(
        build_openapi(
            (*ENDPOINTS, *SESSION_ENDPOINTS), settings.photo_limits, settings.video_limits,
            settings.max_body_bytes,
        )
    )


SERVER_NAME = "facegate"
"""The Server header: no versions for a scanner to match against advisories."""


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer: no version banner; nothing cached (scores and faces are biometric data)."""
    response.headers[hdrs.SERVER] = SERVER_NAME
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"


ROUTES = [
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
    web.get("/openapi.json", openapi),
    *(web.post(endpoint.path, contract_handler(endpoint, logic, cost))
      for endpoint, logic, cost in (*CONTRACT_ROUTES, *SESSION_ROUTES)),
    *PAGE_ROUTES,
]


def _services_context(keyring: KeyRing, calibration: ScoreCalibration):
    """Start the embedded Triton (unless an external one is configured), connect to it and
    build the services; on cleanup close them in reverse."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        embedded = None
        url = settings.triton_url
        if settings.embedded_triton:
            embedded = EmbeddedTriton(
                EmbeddedTritonConfig(
                    model_repository=settings.model_repository,
                    ports=TritonPorts(
                        settings.triton_http_port, settings.triton_grpc_port,
                        settings.triton_metrics_port,
                    ),
                    startup_timeout_s=settings.triton_startup_timeout_s,
                )
            )
            await asyncio.to_thread(embedded.start)
            url = embedded.grpc_url
            app[HEALTH].supervisor = TritonSupervisor(embedded)
            watching = asyncio.create_task(app[HEALTH].supervisor.run())
        models = TritonModels(
            url, timeout_s=settings.triton_timeout_s, observer=app[METRICS].observe_model_call
        )
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.cpu_workers, thread_name_prefix="facegate-cpu"
        )
        app[SERVICES] = build_services(
            settings, models, executor, keyring=keyring, calibration=calibration,
            observe_stage=app[METRICS].observe_stage,
        )
        try:
            yield
        finally:
            if embedded is not None:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
            await app[SERVICES].sessions.store.close()
            await models.close()
            executor.shutdown(wait=True, cancel_futures=True)
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    return context


def create_app(settings: Settings) -> web.Application:
    """The server: routes, middleware and the Triton connection under these settings.

    Raises:
        SettingsError: the AES keys are missing or malformed, or the calibration unusable.
    """
    metrics = Metrics()
    who_may_call = []
    if settings.api_keys_file:
        try:
            who_may_call = [authentication(ApiKeys(Path(settings.api_keys_file)))]
        except ApiKeysError as error:
            raise SettingsError(f"FACEGATE_API_KEYS_FILE: {error}") from error
    elif settings.require_api_keys:
        raise SettingsError("FACEGATE_REQUIRE_API_KEYS is set but FACEGATE_API_KEYS_FILE is not")
    else:
        LOGGER.warning(
            "NO API KEYS (FACEGATE_API_KEYS_FILE unset): ANYONE WHO REACHES %s:%d IS SERVED, "
            "/metrics INCLUDED. Development only.", settings.host, settings.port,
        )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            middleware.request_ids,
            metrics.middleware(),
            middleware.errors,
            *who_may_call,
            middleware.body_limits(settings.max_body_bytes),
        ],
    )
    app[GATE] = Gate(
        Admission(settings.max_in_flight, settings.max_cost_in_flight,
                  costliest=max(cost for *_, cost in [*CONTRACT_ROUTES, *SESSION_ROUTES])),
        body_timeout_s=settings.body_timeout_s, max_fields=settings.max_fields,
    )
    app[SETTINGS] = settings
    app[HEALTH] = Health()
    app[METRICS] = metrics
    if not settings.metrics_port:  # otherwise on its own listener (frontend.api.serve)
        app.router.add_get("/metrics", metrics.handler)
    keyring = settings.keyring()
    try:
        calibration = ScoreCalibration.from_file(settings.calibration_file)
    except ValueError as error:
        raise SettingsError(f"FACEGATE_CALIBRATION_FILE: {error}") from error
    app.add_routes(ROUTES)
    allow_origins(app, settings.origins)
    app.on_response_prepare.append(_secure_headers)
    app.on_response_prepare.append(page_headers)
    app.cleanup_ctx.append(_services_context(keyring, calibration))
    return app
