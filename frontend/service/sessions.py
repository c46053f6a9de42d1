"""Liveness sessions: a backend opens one, a browser page completes it, the backend reads it.

open (backend, API key) -> a signed token, the session's own AES key, a random challenge
guide (page, token) -> one camera frame: is the face placed well, which way does it turn
capture (page, token) -> the recording: the silent liveness of `VideoService` and the
    challenge's moves (`preprocessing.challenge`) on the same frames; used once
result (backend, API key) -> the decision, and the best frame against a reference photo

What is derived and what is stored is in `frontend.service.session_tokens`; docs/capture.md
walks through one session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from frontend.contract.codes import Code, ContractError, concerning
from frontend.crypto import DecryptionError
from frontend.service.faces import Verification
from frontend.service.photos import PhotoService, Reference
from frontend.service.session_store import SessionStore
from frontend.service.session_tokens import (
    SESSION_TTL_S,
    SessionClaims,
    SessionExpired,
    SessionTokenError,
    SessionTokens,
)
from frontend.service.video import (
    BRIGHT_BRIGHTNESS,
    DARK_BRIGHTNESS,
    MIN_FACE_WIDTH_PX,
    VideoLiveness,
    VideoService,
    spoof_type,
)
from preprocessing.challenge import (
    DEFAULT_ACTIONS,
    INSTRUCTIONS,
    Action,
    ChallengeResult,
    PoseSample,
    action_of,
    check_challenge,
    parse_actions,
    random_challenge,
)
from preprocessing.detection import Face, nearest_to_centre
from preprocessing.image import decode_photo, photo_size
from preprocessing.quality import measure, pose_of_landmarks

RECORD_S = 8
"""The page records at most this long; the server analyses the first 10 s of a video."""

FAR_FRACTION, CLOSE_FRACTION, CENTRE_FRACTION = 0.2, 0.65, 0.18
"""Guidance: a face narrower than 20% of the frame is too far (MiniFASNet wants context, but a
face under ~100 px at 480 px is soft), wider than 65% too close (the crop needs 2.7x the
face), and its centre more than 18% of the frame from the middle is not centred."""


@dataclass(frozen=True)
class OpenedSession:
    claims: SessionClaims
    token: str
    key: bytes


@dataclass(frozen=True)
class Guidance:
    """What the page shows for one camera frame.

    Attributes:
        hint: ``ok``, ``no_face``, ``several_faces``, ``too_far``, ``too_close``,
            ``not_centred``, ``too_dark`` or ``too_bright``.
        face: the face guided (None: none found).
        yaw, pitch: its head pose, degrees.
        action: the challenge move that pose shows against a frontal start, or None.
    """

    hint: str
    face: Face | None = None
    yaw: float = 0.0
    pitch: float = 0.0
    action: Action | None = None


def guidance(image: np.ndarray, faces: list[Face]) -> Guidance:
    """The hint for one frame: the first problem found, in the order a user fixes them."""
    faces = [f for f in faces if f.box[2] >= MIN_FACE_WIDTH_PX]
    if not faces:
        return Guidance("no_face")
    height, width = image.shape[:2]
    face = nearest_to_centre(faces, image.shape)
    pose = pose_of_landmarks(np.asarray(face.landmarks))
    seen = {"face": face, "yaw": pose.yaw, "pitch": pose.pitch,
            "action": action_of(pose.yaw, pose.pitch)}
    if len(faces) > 1:
        return Guidance("several_faces", **seen)
    fraction = face.box[2] / width
    if fraction < FAR_FRACTION:
        return Guidance("too_far", **seen)
    if fraction > CLOSE_FRACTION:
        return Guidance("too_close", **seen)
    cx, cy = face.center
    if max(abs(cx / width - 0.5), abs(cy / height - 0.5)) > CENTRE_FRACTION:
        return Guidance("not_centred", **seen)
    brightness = measure(image, face).brightness
    if brightness < DARK_BRIGHTNESS:
        return Guidance("too_dark", **seen)
    if brightness > BRIGHT_BRIGHTNESS:
        return Guidance("too_bright", **seen)
    return Guidance("ok", **seen)


def pose_track(liveness: VideoLiveness) -> list[PoseSample]:
    """The subject's head pose in each analysed frame it was seen in."""
    samples = []
    for sighting in liveness.sightings():
        pose = pose_of_landmarks(np.asarray(sighting.face.landmarks))
        samples.append(PoseSample(sighting.timestamp_s, pose.yaw, pose.pitch))
    return samples


def failed_check(challenge: ChallengeResult, liveness: VideoLiveness) -> str | None:
    """Which check refused the capture: ``challenge`` (the moves were not made, in order and
    in time), ``capture`` (the face was not seen long enough), ``liveness`` (the silent check:
    a spoof); None when it passed. The challenge is named first: a replayed recording fails
    there whatever the silent check would say."""
    if not challenge.passed:
        return "challenge"
    if liveness.status == "short_time":
        return "capture"
    if not liveness.passed:
        return "liveness"
    return None


RETRY_ADVICE = {
    "challenge": "Follow each instruction as it appears, turning your head clearly.",
    "capture": "Keep your face inside the oval for the whole recording.",
    "liveness": "Use your device's own camera, in even light, without glasses reflecting.",
}


class SessionService:
    """Args:
    tokens: issues and checks the session tokens (the secret every replica shares).
    store: single use and results (`MemoryStore`, or `RedisStore` across replicas).
    photos: reads guidance frames and reference photos.
    videos: the silent liveness of the recording.
    ttl_s: a session's lifetime.
    """

    def __init__(
        self, tokens: SessionTokens, store: SessionStore, photos: PhotoService,
        videos: VideoService, *, ttl_s: float = SESSION_TTL_S,
    ) -> None:
        self.tokens = tokens
        self.store = store
        self.photos = photos
        self.videos = videos
        self.pipeline = videos.pipeline
        self.stages = videos.stages
        self.ttl_s = ttl_s

    def open(self, actions: str | None) -> OpenedSession:
        """A new session with the given challenge (``"turn_left,look_up"``) or a random one.

        Raises:
            ContractError(1200): the actions do not make a challenge (`parse_actions`).
        """
        try:
            chosen = parse_actions(actions) if actions else random_challenge(DEFAULT_ACTIONS)
        except ValueError as error:
            raise ContractError(Code.INVALID_ARGUMENT, str(error), field="actions") from error
        claims, token = self.tokens.issue(chosen, self.ttl_s)
        return OpenedSession(claims, token, self.tokens.key(claims.session_id))

    def claims(self, token: str) -> SessionClaims:
        """The token's session (4101 expired; 4102 tampered, foreign or malformed)."""
        with concerning("session_token"):
            try:
                return self.tokens.verify(token)
            except SessionExpired as error:
                raise ContractError(Code.SESSION_EXPIRED, str(error)) from error
            except (SessionTokenError, ValueError, KeyError, TypeError) as error:
                raise ContractError(Code.SESSION_INVALID, str(error)) from error

    async def _unseal(self, claims: SessionClaims, sealed: str, field: str) -> bytes:
        """A payload sealed under the session's key; under any other key it is foreign (4102)."""
        keyring = self.tokens.keyring(claims.session_id)
        with concerning(field), self.stages.timed("decrypt"):
            try:
                return await self.stages.cpu(keyring.decrypt, sealed)
            except DecryptionError as error:
                raise ContractError(
                    Code.SESSION_INVALID, f"not sealed under session {claims.session_id}'s key"
                ) from error

    async def guide(self, token: str, sealed_image: str) -> Guidance:
        """Guidance for one camera frame of the session's page."""
        claims = self.claims(token)
        data = await self._unseal(claims, sealed_image, "encrypted_image")
        with concerning("encrypted_image"), self.stages.timed("decode"):
            width, height = await self.stages.cpu(photo_size, data, self.photos.limits)
            await self.photos.budget.reserve(width * height)
            image = await self.stages.cpu(
                lambda: decode_photo(data, self.photos.limits, honour_exif=False)
            )
        faces = await self.pipeline.detect(image)
        return await self.stages.cpu(guidance, image, faces)

    async def capture(self, token: str, sealed_video: str) -> dict[str, Any]:
        """Decide on the session's recording and keep the result for its backend.

        The session is claimed only once a decision is made: a recording that does not decode
        (2008) or shows no face (4007) leaves it open for another try within its lifetime.

        Raises:
            ContractError: 4101/4102 as `claims`; 4103 the session already has a capture.
        """
        claims = self.claims(token)
        # Opened before the store last started: its claim may be lost with it (a replay).
        if claims.opened_at < await self.store.complete_since():
            raise ContractError(Code.SESSION_EXPIRED, "the session store restarted after this "
                                "session was opened", field="session_token")
        video = await self._unseal(claims, sealed_video, "encrypted_video")
        liveness = await self.videos.silent_liveness(video)
        challenge = check_challenge(pose_track(liveness), claims.actions)
        failed = failed_check(challenge, liveness)
        descriptor = None
        if failed is None:
            _, embedded = await self.pipeline.best_embedded(liveness.sightings())
            descriptor = [float(x) for x in embedded.descriptor]
        remaining_s = claims.expires_at - self.tokens.clock()
        if not await self.store.claim(claims.session_id, remaining_s + 60):
            raise ContractError(Code.SESSION_USED, f"session {claims.session_id} has a capture",
                                field="session_token")
        result = {
            "session_id": claims.session_id,
            "passed": failed is None,
            "failed_check": failed,
            "challenge": [
                {"action": s.action.value, "done": s.done,
                 **({"at_s": round(s.at_s, 2)} if s.at_s is not None else {})}
                for s in challenge.steps
            ],
            "challenge_passed": challenge.passed,
            "liveness_score": round(liveness.score, 4),
            "liveness_status": liveness.status,
            "spoof_type": spoof_type(liveness),
            "captured_at": round(self.tokens.clock(), 3),
            "descriptor": descriptor,
        }
        await self.store.put_result(claims.session_id, result)
        return result

    async def result(
        self, session_id: str, references: list[Reference], *, auto_rotate: bool,
        check_quality: bool, single_face: bool,
    ) -> tuple[dict[str, Any], Verification | None]:
        """The session's result and, for a passed capture with references, the best frame's
        scores against them (the references are read either way: a bad photo is its own error).

        Raises:
            ContractError(4104): no result: unknown session, no capture yet, or expired.
        """
        result = await self.store.result(session_id)
        if result is None:
            raise ContractError(Code.SESSION_NO_RESULT, f"no result for session {session_id!r}",
                                field="session_id")
        embedded = await self.photos.references(
            references, auto_rotate=auto_rotate, check_quality=check_quality,
            single_face=single_face,
        )
        if not (embedded and result["descriptor"]):
            return result, None
        descriptor = np.asarray(result["descriptor"], dtype=np.float32)
        return result, self.pipeline.verify(descriptor, embedded)


def instructions(actions: tuple[Action, ...]) -> list[dict[str, str]]:
    """The challenge as the page shows it."""
    return [{"action": a.value, "instruction": INSTRUCTIONS[a]} for a in actions]
