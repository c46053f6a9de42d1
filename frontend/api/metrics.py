"""Prometheus metrics of the HTTP server, served at /metrics (Triton's own stay on its port).

One registry per application, so several apps in one process (tests) do not collide. The
README's "Metrics" section lists each metric and its labels.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BYTES_BUCKETS = tuple(1024 * 4**i for i in range(10))  # 1 KiB .. 256 MiB

CODE = web.RequestKey("code", int)
"""The contract code of the answer, set by the handler or the error middleware."""


class Metrics:
    """The server's collectors, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "facegate_requests_total", "Answers by endpoint and contract code.",
            ["endpoint", "code"], registry=self.registry,
        )
        self.latency = Histogram(
            "facegate_request_duration_seconds", "Request latency.", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.in_flight = Gauge(
            "facegate_requests_in_flight", "Requests being served.", registry=self.registry
        )
        self.body_bytes = Histogram(
            "facegate_request_body_bytes", "POST body sizes.", ["endpoint"],
            buckets=BYTES_BUCKETS, registry=self.registry,
        )
        self.stage = Histogram(
            "facegate_stage_duration_seconds", "Time per pipeline stage.", ["stage"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.triton = Histogram(
            "facegate_triton_request_duration_seconds", "Model call latency.", ["model"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.triton_errors = Counter(
            "facegate_triton_errors_total", "Failed model calls.", ["model"],
            registry=self.registry,
        )
        self.input_failures = Counter(
            "facegate_input_failures_total", "Refused inputs by error type.", ["kind"],
            registry=self.registry,
        )

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage.labels(stage).observe(seconds)

    def observe_model_call(self, model: str, seconds: float, ok: bool) -> None:
        self.triton.labels(model).observe(seconds)
        if not ok:
            self.triton_errors.labels(model).inc()

    def middleware(self) -> Callable:
        @web.middleware
        async def observe(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            route = request.match_info.route.resource
            endpoint = route.canonical if route is not None else "unmatched"
            if request.method == "POST" and request.content_length is not None:
                self.body_bytes.labels(endpoint).observe(request.content_length)
            started = time.perf_counter()
            self.in_flight.inc()
            try:
                response = await handler(request)
            finally:
                self.in_flight.dec()
                self.latency.labels(endpoint).observe(time.perf_counter() - started)
            code = request.get(CODE, response.status)
            self.requests.labels(endpoint, str(code)).inc()
            return response

        return observe

    async def handler(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )


METRICS = web.AppKey("metrics", Metrics)
