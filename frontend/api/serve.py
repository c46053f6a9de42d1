"""Serve the app until SIGTERM or SIGINT, then drain: finish what is in progress, take nothing new.

On the signal: `/readyz` answers 503 and new contract requests a fast 503 for
``drain_delay_s`` (time for a load balancer to notice), then the listeners close and the
requests in progress get up to ``drain_timeout_s`` to finish before the process exits. HTTPS
(and mutual TLS) when a certificate is configured; `/metrics` on its own listener when
``metrics_port`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

from aiohttp import web

from frontend.api.admission import GATE
from frontend.api.app import HEALTH
from frontend.api.metrics import METRICS
from frontend.config import Settings, SettingsError

LOGGER = logging.getLogger(__name__)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP.

    Raises:
        SettingsError: a certificate, key or client CA that does not load.
    """
    if not settings.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file or None)
        if settings.tls_client_ca_file:
            context.load_verify_locations(settings.tls_client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no call
    except (OSError, ssl.SSLError) as error:
        raise SettingsError(f"FACEGATE_TLS_*: {error}") from error
    return context


def metrics_app(app: web.Application) -> web.Application:
    """An app serving only the main app's /metrics, for a listener of its own."""
    metrics = web.Application()
    metrics.router.add_get("/metrics", app[METRICS].handler)
    return metrics


async def serve(app: web.Application, settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain and return.

    Raises:
        TritonStartError: the embedded Triton did not start.
        SettingsError: the TLS files do not load.
    """
    context = tls_context(settings)
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=settings.drain_timeout_s,
        **settings.server_options,
    )
    await runner.setup()
    runners = [runner]
    try:
        await web.TCPSite(runner, settings.host, settings.port, ssl_context=context).start()
        scheme = "https" if context else "http"
        LOGGER.info("serving on %s://%s:%d", scheme, settings.host, settings.port)
        if settings.metrics_port:
            metrics = web.AppRunner(metrics_app(app), handle_signals=False, access_log=None)
            await metrics.setup()
            runners.append(metrics)
            await web.TCPSite(metrics, settings.metrics_host, settings.metrics_port).start()
            LOGGER.info("metrics on http://%s:%d/metrics", settings.metrics_host,
                        settings.metrics_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        LOGGER.warning("stopping: draining for %.0f s, then up to %.0f s for requests in "
                       "progress", settings.drain_delay_s, settings.drain_timeout_s)
        app[HEALTH].draining = True
        app[GATE].admission.close()
        await asyncio.sleep(settings.drain_delay_s)
    finally:
        for each in reversed(runners):
            await each.cleanup()
    LOGGER.info("stopped")
