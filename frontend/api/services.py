"""What the handlers call, built once when the app starts and held under one `AppKey`."""

from __future__ import annotations

import concurrent.futures
import logging
import secrets
from dataclasses import dataclass

from aiohttp import web

from frontend.config import Settings
from frontend.contract.codes import concerning
from frontend.contract.fields import ParsedRequest
from frontend.contract.liveness_file import LivenessCapture, LivenessFileLimits, open_sealed
from frontend.crypto import KeyRing
from frontend.inference.runtime import ModelRuntime
from frontend.service.budget import PixelBudget
from frontend.service.faces import FacePipeline
from frontend.service.photos import PhotoService
from frontend.service.scores import ScoreCalibration
from frontend.service.session_store import open_store
from frontend.service.session_tokens import SessionTokens
from frontend.service.sessions import SessionService
from frontend.service.stages import ObserveStage, Stages
from frontend.service.video import VideoService
from preprocessing.detection import detector_sizes

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Attributes:
    models: the model runtime (readiness).
    stages: the CPU pool and stage timer every service shares.
    keyring: the AES keys that open encrypted fields and liveness files.
    liveness_file_limits: what one liveness_file may hold.
    photos: the photo endpoints' logic.
    videos: the video endpoints' logic.
    sessions: the liveness sessions' logic.
    budget: decoded pixels across requests; each request runs in its `scope`.
    """

    models: ModelRuntime
    stages: Stages
    keyring: KeyRing
    liveness_file_limits: LivenessFileLimits
    photos: PhotoService
    videos: VideoService
    sessions: SessionService
    budget: PixelBudget

    async def decrypt(self, request: ParsedRequest, field: str) -> bytes:
        """An encrypted field's plain bytes (`DecryptionError`: 1200, naming the field)."""
        with concerning(field), self.stages.timed("decrypt"):
            return await self.stages.cpu(self.keyring.decrypt, request[field])

    async def open_liveness_file(self, request: ParsedRequest) -> LivenessCapture:
        """The sealed liveness_file, opened and checked (`LivenessFileError`: 2007)."""
        with concerning("liveness_file"):
            return await self.stages.cpu(
                open_sealed, request["liveness_file"], self.keyring, self.liveness_file_limits
            )


def build_services(
    settings: Settings,
    models: ModelRuntime,
    executor: concurrent.futures.Executor,
    *,
    keyring: KeyRing,
    calibration: ScoreCalibration,
    observe_stage: ObserveStage,
) -> Services:
    """The services for these settings, over a model runtime and a CPU pool."""
    stages = Stages(executor, observe_stage)
    pipeline = FacePipeline(
        models, stages, calibration=calibration,
        detector_sizes=detector_sizes(settings.small_detector),
    )
    budget = PixelBudget(settings.max_decoded_pixels, settings.decode_wait_s)
    photos = PhotoService(
        pipeline, settings.photo_limits, liveness_threshold=settings.liveness_threshold,
        budget=budget,
    )
    videos = VideoService(
        pipeline, photos, settings.video_limits, threshold=settings.video_liveness_threshold,
        budget=budget,
    )
    sessions = SessionService(
        _session_tokens(settings), open_store(settings.session_store), photos, videos,
        ttl_s=settings.session_ttl_s,
    )
    return Services(
        models, stages, keyring, LivenessFileLimits(), photos, videos, sessions, budget
    )


def _session_tokens(settings: Settings) -> SessionTokens:
    if settings.session_secret:
        return SessionTokens(settings.session_secret.encode())
    LOGGER.warning(
        "FACEGATE_SESSION_SECRET unset: liveness sessions are signed with a random secret of "
        "this process; with several replicas each refuses the others' sessions"
    )
    return SessionTokens(secrets.token_bytes(32))


SERVICES = web.AppKey("services", Services)
