"""A synchronous client for facegate's SenseID endpoints (CONTRACT.md section 1).

Requests go out as the SenseID manual's Java sample sends them: one
``application/x-www-form-urlencoded`` body per call, every photo and video encrypted with
``KeyRing.encrypt`` (by default the random-nonce form; ``legacy=True`` gives the manual's
fixed-IV form for servers that only know that). `liveness_image_verification` is the exception:
its ``liveness_file`` is a file part, so that call is ``multipart/form-data``.

The liveness-session calls (`open_session`, `session_result`) are the integrator's backend's;
`session_guide` and `session_capture` do what the browser page does, sealing under the
session's own key (for tools and tests).

It uses only the standard library (`urllib.request`), so it works the same inside and outside
an event loop, and it ignores ``*_proxy`` variables: the server is on-prem.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any

from frontend.contract.codes import Code
from frontend.contract.fields import (
    FACE_QUALITY,
    IMAGE_VERIFICATION,
    LIVENESS_IMAGE_VERIFICATION,
    MULTI_FACE_VERIFICATION,
    SILENT_DETECTION,
    SILENT_IMAGE_VERIFICATION,
)
from frontend.contract.sessions import (
    SESSION_CAPTURE,
    SESSION_GUIDE,
    SESSION_OPEN,
    SESSION_RESULT,
)
from frontend.crypto import KeyRing

DEFAULT_URL = "http://127.0.0.1:3000"
USER_AGENT = "facegate-python/0.1.0"
OK_CODE = Code.OK.info.code

LIVENESS_FILE_NAME = "liveness_file.bin"


class FacegateClientError(Exception):
    """No usable answer: the server could not be reached, timed out, or did not answer JSON."""


@dataclass(frozen=True)
class ApiResponse:
    """One answer of the server, whatever its status.

    Attributes:
        status: HTTP status.
        body: the JSON object the server answered (``code``, ``request_id``, results or
            ``message``).
        request_id: the ``X-Request-Id`` header (the body's ``request_id`` if the header is
            missing).
    """

    status: int
    body: dict[str, Any]
    request_id: str

    @property
    def code(self) -> int | None:
        """The contract code (1000 on success), None if the body has none."""
        return self.body.get("code")

    @property
    def ok(self) -> bool:
        return self.code == OK_CODE


class FacegateClient:
    """One method per endpoint; each returns an `ApiResponse` and never raises on a 4xx/5xx.

    Args:
        base_url: ``http(s)://host:port`` of the facegate server.
        keyring: encrypts photos and videos with its newest key (None: only the session
            page's calls, which bring their own key).
        legacy: send the manual's fixed-IV form (needs ``keyring.legacy_iv``) instead of a
            fresh random nonce per payload; only for servers that do not accept the latter.
        timeout_s: socket timeout of connecting and of each read, in seconds.
        api_key: sent as ``X-Api-Key`` when the server has API keys (README "Who may call").

    Raises:
        ValueError: a bad URL or timeout, or ``legacy`` without a legacy IV in the key ring.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        keyring: KeyRing | None = None,
        legacy: bool = False,
        timeout_s: float = 60.0,
        api_key: str | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be http(s)://host:port, got {base_url!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if legacy and (keyring is None or keyring.legacy_iv is None and not keyring.plaintext):
            raise ValueError("the legacy form needs the key ring's legacy IV (FACEGATE_AES_IV)")
        self.base_url = base_url.rstrip("/")
        self.keyring = keyring
        self.legacy = legacy
        self.timeout_s = timeout_s
        self.api_key = api_key
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def image_verification(
        self, first: bytes, second: bytes, *, auto_rotate: bool = False,
        check_quality: bool = False, more_references: Sequence[bytes] = (),
        return_thresholds: bool = False, fail_when_multiple_faces: bool = False,
    ) -> ApiResponse:
        """Compare the main face of two photos (``verification_score``).

        Args:
            more_references: up to two more reference photos (``verification_scores``).
            return_thresholds: ask for ``thresholds``.
            fail_when_multiple_faces: refuse a photo with several usable faces (4010).
        """
        return self._post_form(IMAGE_VERIFICATION.path, {
            "first_encrypted_image": self._seal(first),
            "second_encrypted_image": self._seal(second),
            "auto_rotate": _flag(auto_rotate),
            "check_quality": _flag(check_quality),
            **self._extensions(
                "second_encrypted_image", more_references, return_thresholds,
                fail_when_multiple_faces,
            ),
        })

    def multi_face_verification(
        self, first: bytes, second: bytes, *, auto_rotate: bool = False,
        return_thresholds: bool = False,
    ) -> ApiResponse:
        """Score every face of one photo against every face of the other (``scores``)."""
        return self._post_form(MULTI_FACE_VERIFICATION.path, {
            "first_encrypted_image": self._seal(first),
            "second_encrypted_image": self._seal(second),
            "auto_rotate": _flag(auto_rotate),
            **self._extensions("second_encrypted_image", (), return_thresholds, False),
        })

    def liveness_image_verification(
        self,
        liveness_file: bytes,
        image: bytes,
        *,
        auto_rotate: bool = False,
        check_quality: bool = False,
        more_references: Sequence[bytes] = (),
        return_thresholds: bool = False,
        fail_when_multiple_faces: bool = False,
        return_spoof_type: bool = False,
    ) -> ApiResponse:
        """Check a sealed liveness file (`frontend.contract.liveness_file.seal`) against a photo.

        Args:
            liveness_file: already sealed; sent as is, as the ``liveness_file`` file part.
            image: the photo, encrypted here.
            more_references, return_thresholds, fail_when_multiple_faces: as
                `image_verification`.
            return_spoof_type: a 4007 refusal of a spoof carries ``spoof_type``.
        """
        return self._post_multipart(
            LIVENESS_IMAGE_VERIFICATION.path,
            {
                "encrypted_image": self._seal(image),
                "auto_rotate": _flag(auto_rotate),
                "check_quality": _flag(check_quality),
                **self._extensions(
                    "encrypted_image", more_references, return_thresholds,
                    fail_when_multiple_faces,
                ),
                **_asked(return_spoof_type=return_spoof_type),
            },
            files={"liveness_file": (LIVENESS_FILE_NAME, liveness_file)},
        )

    def face_quality(self, image: bytes) -> ApiResponse:
        """Describe every face of a photo: rect, landmarks and quality (``faces``)."""
        return self._post_form(FACE_QUALITY.path, {"encrypted_image": self._seal(image)})

    def silent_detection(
        self,
        video: bytes,
        *,
        return_image: bool = False,
        return_face_image: bool = False,
        return_status: bool = False,
        return_spoof_type: bool = False,
        return_reason: bool = False,
    ) -> ApiResponse:
        """Run silent liveness on a video (``passed``, ``liveness_score``; ``spoof_type`` and
        ``liveness_reason`` when asked for)."""
        return self._post_form(SILENT_DETECTION.path, {
            "encrypted_video": self._seal(video),
            "return_image": _flag(return_image),
            "return_face_image": _flag(return_face_image),
            "return_status": _flag(return_status),
            **_asked(return_spoof_type=return_spoof_type, return_reason=return_reason),
        })

    def silent_image_verification(
        self,
        video: bytes,
        image: bytes,
        *,
        auto_rotate: bool = False,
        check_quality: bool = False,
        return_image: bool = False,
        return_face_image: bool = False,
        return_status: bool = False,
        more_references: Sequence[bytes] = (),
        return_thresholds: bool = False,
        fail_when_multiple_faces: bool = False,
        return_spoof_type: bool = False,
        return_reason: bool = False,
    ) -> ApiResponse:
        """Run silent liveness on a video and compare its face with a photo (and up to two
        more: `image_verification`'s options; `silent_detection`'s)."""
        return self._post_form(SILENT_IMAGE_VERIFICATION.path, {
            "encrypted_video": self._seal(video),
            "encrypted_image": self._seal(image),
            "auto_rotate": _flag(auto_rotate),
            "check_quality": _flag(check_quality),
            "return_image": _flag(return_image),
            "return_face_image": _flag(return_face_image),
            "return_status": _flag(return_status),
            **self._extensions(
                "encrypted_image", more_references, return_thresholds, fail_when_multiple_faces
            ),
            **_asked(return_spoof_type=return_spoof_type, return_reason=return_reason),
        })

    def open_session(self, actions: Sequence[str] = ()) -> ApiResponse:
        """Open a liveness session (``session_id``, ``session_token``, ``session_key``,
        ``challenge``, ``capture_url``); `actions` fixes the challenge (tests), else random."""
        fields = {"actions": ",".join(actions)} if actions else {}
        return self._post_form(SESSION_OPEN.path, fields)

    def session_guide(self, session: Mapping[str, Any], frame: bytes) -> ApiResponse:
        """Guidance for one camera frame (``hint``, ``pose``, ``action``), as the page asks.

        Args:
            session: the body `open_session` answered (its token and key are used).
        """
        return self._post_form(SESSION_GUIDE.path, {
            "session_token": session["session_token"],
            "encrypted_image": _seal_for(session, frame),
        })

    def session_capture(self, session: Mapping[str, Any], video: bytes) -> ApiResponse:
        """Send a session's recording, as the page does (``passed``, ``failed_check``)."""
        return self._post_form(SESSION_CAPTURE.path, {
            "session_token": session["session_token"],
            "encrypted_video": _seal_for(session, video),
        })

    def session_result(
        self, session_id: str, image: bytes | None = None, *, auto_rotate: bool = False,
        check_quality: bool = False, return_thresholds: bool = False,
    ) -> ApiResponse:
        """A session's result; with `image`, its best frame against that photo
        (``verification_score``)."""
        fields = {"session_id": session_id, "auto_rotate": _flag(auto_rotate),
                  "check_quality": _flag(check_quality)}
        if image is not None:
            fields["encrypted_image"] = self._seal(image)
        if return_thresholds:
            fields["return_thresholds"] = "true"
        return self._post_form(SESSION_RESULT.path, fields)

    def _seal(self, data: bytes) -> str:
        if self.keyring is None:
            raise ValueError("this call encrypts with the server's AES key: give a keyring")
        return self.keyring.encrypt(data, legacy=self.legacy)

    def _extensions(
        self, reference: str, more: Sequence[bytes], return_thresholds: bool,
        fail_when_multiple_faces: bool,
    ) -> dict[str, str]:
        """The opt-in fields (CONTRACT.md section 9), sent only when used, so a request without
        them is the SenseID client's own."""
        if len(more) > 2:
            raise ValueError(f"at most three reference photos in all, got {1 + len(more)}")
        fields = {f"{reference}_{n}": self._seal(photo) for n, photo in enumerate(more, start=2)}
        if return_thresholds:
            fields["return_thresholds"] = "true"
        if fail_when_multiple_faces:
            fields["fail_when_multiple_faces"] = "true"
        return fields

    def _post_form(self, path: str, fields: Mapping[str, str]) -> ApiResponse:
        body = urllib.parse.urlencode(fields).encode("ascii")
        return self._post(path, body, "application/x-www-form-urlencoded")

    def _post_multipart(
        self, path: str, fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes]]
    ) -> ApiResponse:
        # Base64 text and the sealed file never contain "-", so the boundary cannot occur in them;
        # the random part guards against any other content.
        boundary = f"----facegate-{secrets.token_hex(16)}"
        parts = []
        for name, value in fields.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                .encode("ascii") + value.encode("utf-8") + b"\r\n"
            )
        for name, (filename, content) in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                .encode("ascii") + content + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode("ascii"))
        return self._post(path, b"".join(parts), f"multipart/form-data; boundary={boundary}")

    def _post(self, path: str, body: bytes, content_type: str) -> ApiResponse:
        url = self.base_url + path
        headers = {
            "Content-Type": content_type,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return _answer(url, response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return _answer(url, error.code, error.headers, error.read())
        except urllib.error.URLError as error:
            raise FacegateClientError(f"cannot reach {url}: {error.reason}") from error
        except TimeoutError as error:
            raise FacegateClientError(f"no answer from {url} within {self.timeout_s} s") from error
        except (OSError, http.client.HTTPException) as error:
            raise FacegateClientError(f"connection to {url} failed: {error!r}") from error


def _answer(url: str, status: int, headers: Message, data: bytes) -> ApiResponse:
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise FacegateClientError(
            f"HTTP {status} from {url} is not a JSON object: {data[:200]!r}"
        )
    request_id = headers.get("X-Request-Id") or str(body.get("request_id", ""))
    return ApiResponse(status=status, body=body, request_id=request_id)


def _seal_for(session: Mapping[str, Any], data: bytes) -> str:
    """Seal under a session's own key (the nonce form), as the capture page does."""
    return KeyRing.nonce_only(base64.b64decode(session["session_key"])).encrypt(data)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _asked(**flags: bool) -> dict[str, str]:
    """Opt-in flags, sent only when set (a request without them is the SenseID client's own)."""
    return {name: "true" for name, on in flags.items() if on}
