"""Settings: every ``FACEGATE_*`` environment variable, read once into a frozen, validated object.

The README's configuration table lists the same variables; `SETTINGS_HELP` is its source.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from deploy.embedded_triton import DEFAULT_MODEL_REPOSITORY
from frontend.crypto import (
    ENV_AES_IV,
    ENV_AES_KEY,
    ENV_AES_KEY_FILE,
    ENV_ALLOW_LEGACY_IV,
    ENV_PLAINTEXT,
    KeyRing,
    keyring_from_env,
)
from frontend.service.scores import DEFAULT_CALIBRATION
from frontend.service.session_tokens import SESSION_TTL_S
from preprocessing.image import MIB, PhotoLimits
from preprocessing.video import VideoLimits

_DEFAULT_PHOTO = PhotoLimits()
_DEFAULT_VIDEO = VideoLimits()

LOGGER = logging.getLogger(__name__)

PREFIX = "FACEGATE_"


_OTHER_TOOLS = {"weights_dir", "ort_threads", "ort_spin", "url"}
"""FACEGATE_* variables read by the model builder, the model runner and the CLI, not the server."""


class SettingsError(ValueError):
    """A FACEGATE_* variable has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    """Server settings (environment variable = ``FACEGATE_`` + the upper-cased field name).

    Attributes:
        host: address the HTTP server binds (loopback by default; images set 0.0.0.0).
        port: HTTP port (the SenseID sample client posts to 3000).
        triton_url: gRPC ``host:port`` of an external Triton; empty starts the embedded one.
        model_repository: repository the embedded Triton serves.
        triton_http_port: embedded Triton's HTTP port.
        triton_grpc_port: embedded Triton's gRPC port.
        triton_metrics_port: embedded Triton's Prometheus port.
        triton_startup_timeout_s: how long the embedded Triton may take to load every model.
        triton_timeout_s: deadline of one model call.
        cpu_workers: threads for decoding, alignment and other CPU work.
        small_detector: detect photos no larger than 320 px with the 320 detector: a quarter
            of the 640 one's work, but 1.5 points less TAR at FAR 1e-4 on such photos
            (`benchmarks/README.md`), so off unless an operator trades that for throughput.
        log_level: Python logging level name.
        log_format: ``text`` (one line per record, client text escaped) or ``json``.
        aes_key: active AES-256 keys, 32 characters each, comma-separated, newest first.
        aes_key_file: a file with more keys, one per line (``#`` starts a comment).
        aes_iv: the 12-character fixed IV of the SenseID SDK's legacy form.
        allow_legacy_iv: accept the legacy fixed-IV form (needs ``aes_iv``); off unless an
            operator turns it on for clients built for the vendor SDK.
        plaintext: development only: payloads are plain base64, nothing is decrypted.
        max_body_bytes: largest request body (413 above; 411 without Content-Length).
        max_in_flight: requests served at once; more are refused at once with 503.
        max_cost_in_flight: their summed cost in photo units (a photo 1, a liveness_file 8, a
            video 16), photos together at most three quarters of it; more are refused at once
            with 503.
        max_fields: most fields or parts in one body (1201 beyond).
        header_timeout_s: a connection must send a request's headers within this of opening
            (or of its previous answer), else it is closed; also the keep-alive idle limit.
        body_timeout_s: a request's whole body must arrive within this of its headers (408).
        max_decoded_pixels: pixels decoded and held at once over all requests (photos as
            their header declares them, four times with auto_rotate; a video's analysed
            frames); a request that finds no room within decode_wait_s is 503.
        decode_wait_s: how long a request may wait for decoding room.
        min_photo_bytes, max_photo_bytes: photo file size limits (2004).
        min_photo_side, max_photo_side, max_photo_pixels: photo pixel limits (2003).
        liveness_threshold: a liveness_file's frames pass when their mean P(real) reaches it.
        video_liveness_threshold: a video passes when its fused liveness score reaches it.
        min_video_bytes, max_video_bytes: video file size limits (2008).
        max_video_seconds: longest video accepted (2008; shorter than 2 s is 2008 too).
        max_video_side: largest video width or height (2008).
        max_video_decode_pixels: most pixels decoded for one video; a costly stream (4K at
            60 fps) is analysed over a shorter window, at least 3 s (2008 if not even that).
        calibration_file: the embedder's score calibration (model_repository/calibration/).
        drain_delay_s: after SIGTERM, how long /readyz says 503 (new requests get 503) before
            the listener closes, so that a load balancer stops sending.
        drain_timeout_s: then how long requests in progress may take to finish.
        tls_cert_file, tls_key_file: serve HTTPS with this certificate (chain) and key.
        tls_client_ca_file: with HTTPS, require client certificates signed by this CA (mTLS).
        metrics_port: serve /metrics on this port (on metrics_host) instead of the main one.
        metrics_host: address of the metrics listener.
        api_keys_file: the callers' API keys, hashed (README "Who may call"); unset, anyone
            who reaches the port is served (development).
        require_api_keys: refuse to start without api_keys_file (production configs set it).
        session_secret: signs liveness-session tokens and derives their keys (32+ characters,
            the same on every replica); unset, a random one per process (one replica only).
        session_store: ``redis://host:6379/0`` to share session use and results between
            replicas; unset, in this process's memory.
        session_ttl_s: how long a liveness session stays open.
        session_origins: comma-separated origins (``https://app.example.com``) whose own pages
            may run the capture SDK against this server: CORS for the page's two calls only.
    """

    host: str = "127.0.0.1"
    port: int = 3000
    triton_url: str = ""
    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    triton_http_port: int = 8000
    triton_grpc_port: int = 8001
    triton_metrics_port: int = 8002
    triton_startup_timeout_s: float = 120.0
    triton_timeout_s: float = 10.0
    cpu_workers: int = max(2, os.cpu_count() or 2)
    small_detector: bool = False
    log_level: str = "INFO"
    log_format: str = "text"
    aes_key: str = field(default="", repr=False)
    aes_key_file: str = ""
    aes_iv: str = field(default="", repr=False)
    allow_legacy_iv: bool = False
    plaintext: bool = False
    max_body_bytes: int = 80 * MIB
    max_in_flight: int = 64
    max_cost_in_flight: int = 64
    max_fields: int = 64
    header_timeout_s: float = 15.0
    body_timeout_s: float = 30.0
    max_decoded_pixels: int = 100_000_000
    decode_wait_s: float = 2.0
    min_photo_bytes: int = _DEFAULT_PHOTO.min_bytes
    max_photo_bytes: int = _DEFAULT_PHOTO.max_bytes
    min_photo_side: int = _DEFAULT_PHOTO.min_side
    max_photo_side: int = _DEFAULT_PHOTO.max_side
    max_photo_pixels: int = _DEFAULT_PHOTO.max_pixels
    liveness_threshold: float = 0.5
    video_liveness_threshold: float = 0.5
    min_video_bytes: int = _DEFAULT_VIDEO.min_bytes
    max_video_bytes: int = _DEFAULT_VIDEO.max_bytes
    max_video_seconds: float = _DEFAULT_VIDEO.max_duration_s
    max_video_side: int = _DEFAULT_VIDEO.max_side
    max_video_decode_pixels: int = _DEFAULT_VIDEO.max_decode_pixels
    calibration_file: Path = DEFAULT_CALIBRATION
    drain_delay_s: float = 0.0
    drain_timeout_s: float = 30.0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    api_keys_file: str = ""
    require_api_keys: bool = False
    session_secret: str = field(default="", repr=False)
    session_store: str = ""
    session_ttl_s: float = SESSION_TTL_S
    session_origins: str = ""

    def __post_init__(self) -> None:
        for name in ("port", "triton_http_port", "triton_grpc_port", "triton_metrics_port",
                     "metrics_port"):
            value = getattr(self, name)
            if not 0 < value < 65536 and not (name == "metrics_port" and value == 0):
                raise SettingsError(f"{PREFIX}{name.upper()}={value} is not a TCP port")
        for name in ("triton_startup_timeout_s", "triton_timeout_s", "cpu_workers",
                     "max_body_bytes", "max_in_flight", "max_cost_in_flight", "max_fields",
                     "header_timeout_s", "body_timeout_s", "max_decoded_pixels",
                     "decode_wait_s", "session_ttl_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if logging.getLevelName(self.log_level.upper()) == f"Level {self.log_level.upper()}":
            raise SettingsError(f"{PREFIX}LOG_LEVEL={self.log_level} is not a logging level")
        if self.drain_delay_s < 0 or self.drain_timeout_s < 0:
            raise SettingsError(f"{PREFIX}DRAIN_DELAY_S / _TIMEOUT_S must not be negative")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise SettingsError(f"{PREFIX}TLS_CLIENT_CA_FILE needs {PREFIX}TLS_CERT_FILE")
        if self.session_secret and len(self.session_secret.encode()) < 32:
            raise SettingsError(f"{PREFIX}SESSION_SECRET needs at least 32 characters")
        if self.session_store and not self.session_store.startswith(
                ("redis://", "rediss://", "unix://")):
            raise SettingsError(f"{PREFIX}SESSION_STORE must be a redis://, rediss:// or "
                                "unix:// URL")
        for origin in self.origins:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise SettingsError(f"{PREFIX}SESSION_ORIGINS: {origin!r} is not an origin "
                                    "(scheme://host[:port], no path)")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"{PREFIX}LOG_FORMAT={self.log_format} is not text or json")
        for name in ("liveness_threshold", "video_liveness_threshold"):
            if not 0 <= getattr(self, name) <= 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be in [0, 1]")
        try:
            self.photo_limits  # noqa: B018 - validates the photo limits together
            self.video_limits  # noqa: B018
        except ValueError as error:
            raise SettingsError(f"{PREFIX}*_PHOTO_* / *_VIDEO_*: {error}") from error

    @property
    def origins(self) -> list[str]:
        return [o.strip() for o in self.session_origins.split(",") if o.strip()]

    @property
    def photo_limits(self) -> PhotoLimits:
        return PhotoLimits(
            min_bytes=self.min_photo_bytes, max_bytes=self.max_photo_bytes,
            min_side=self.min_photo_side, max_side=self.max_photo_side,
            max_pixels=self.max_photo_pixels,
        )

    @property
    def video_limits(self) -> VideoLimits:
        return VideoLimits(
            min_bytes=self.min_video_bytes, max_bytes=self.max_video_bytes,
            max_duration_s=self.max_video_seconds, max_side=self.max_video_side,
            max_decode_pixels=self.max_video_decode_pixels,
        )

    def keyring(self) -> KeyRing:
        """The AES key ring from ``aes_key``, ``aes_key_file`` and ``aes_iv``.

        Raises:
            SettingsError: no key (outside plaintext mode), or a key or IV of the wrong length.
        """
        if self.allow_legacy_iv and not self.aes_iv and not self.plaintext:
            LOGGER.warning("%sAES_IV is not set: the legacy fixed-IV form is refused", PREFIX)
        try:
            return keyring_from_env({
                ENV_AES_KEY: self.aes_key, ENV_AES_KEY_FILE: self.aes_key_file,
                ENV_AES_IV: self.aes_iv, ENV_ALLOW_LEGACY_IV: str(self.allow_legacy_iv),
                ENV_PLAINTEXT: str(self.plaintext),
            })
        except ValueError as error:
            raise SettingsError(str(error)) from error

    @property
    def server_options(self) -> dict[str, float]:
        """aiohttp's server options these settings mean: an idle or header-less connection is
        closed after `header_timeout_s` (aiohttp's keep-alive timer also runs from the start
        of a connection), and after an early error answer (408, 411, 413) the rest of a body
        is drained for at most 2 s before the connection closes."""
        return {"keepalive_timeout": self.header_timeout_s, "lingering_time": 2.0}

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
                values[name] = _parse_bool(raw) if kind is bool else kind(raw)
            except ValueError as error:
                raise SettingsError(f"{key}={raw!r} is not a valid {kind.__name__}") from error
        return cls(**values)


def _parse_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
