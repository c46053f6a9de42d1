"""Settings: every ``FACEGATE_*`` environment variable, read once into a frozen, validated object.

The README's configuration table lists the same variables; `SETTINGS_HELP` is its source.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from deploy.embedded_triton import DEFAULT_MODEL_REPOSITORY

LOGGER = logging.getLogger(__name__)

PREFIX = "FACEGATE_"


_OTHER_TOOLS = {"weights_dir", "ort_threads"}
"""FACEGATE_* variables read by the model builder and the model runner, not by the server."""


class SettingsError(ValueError):
    """A FACEGATE_* variable has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    """Server settings (environment variable = ``FACEGATE_`` + the upper-cased field name).

    Attributes:
        host: address the HTTP server binds.
        port: HTTP port (the SenseID sample client posts to 3000).
        triton_url: gRPC ``host:port`` of an external Triton; empty starts the embedded one.
        model_repository: repository the embedded Triton serves.
        triton_http_port: embedded Triton's HTTP port.
        triton_grpc_port: embedded Triton's gRPC port.
        triton_metrics_port: embedded Triton's Prometheus port.
        triton_startup_timeout_s: how long the embedded Triton may take to load every model.
        triton_timeout_s: deadline of one model call.
        cpu_workers: threads for decoding, alignment and other CPU work.
        log_level: Python logging level name.
    """

    host: str = "0.0.0.0"
    port: int = 3000
    triton_url: str = ""
    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    triton_startup_timeout_s: float = 120.0
    triton_timeout_s: float = 10.0
    cpu_workers: int = max(2, os.cpu_count() or 2)
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        for name in ("port", "triton_http_port", "triton_grpc_port", "triton_metrics_port"):
            value = getattr(self, name)
            if not 0 < value < 65536:
                raise SettingsError(f"{PREFIX}{name.upper()}={value} is not a TCP port")
        for name in ("triton_startup_timeout_s", "triton_timeout_s", "cpu_workers"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if logging.getLevelName(self.log_level.upper()) == f"Level {self.log_level.upper()}":
            raise SettingsError(f"{PREFIX}LOG_LEVEL={self.log_level} is not a logging level")

    @property
    def embedded_triton(self) -> bool:
        return not self.triton_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``FACEGATE_*`` variables; unknown ones are warned about.

        Raises:
            SettingsError: a value does not parse or is out of range.
        """
        environ = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        values = {}
        for key, raw in environ.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):].lower()
            if name not in known:
                if name not in _OTHER_TOOLS:
                    LOGGER.warning("ignoring %s: not a facegate setting", key)
                continue
            kind = type(getattr(cls, name))
            try:
                values[name] = kind(raw)
            except ValueError as error:
                raise SettingsError(f"{key}={raw!r} is not a valid {kind.__name__}") from error
        return cls(**values)
