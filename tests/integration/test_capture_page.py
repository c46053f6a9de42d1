"""The capture page (`frontend/web/capture/`) in a real Chromium against the real server.

Debian's chromium is driven by Playwright (no browser download). Its fake camera
plays a Y4M file made from a real clip (`tests/integration/y4m.py`), so getUserMedia,
MediaRecorder, WebCrypto, the guidance frames and the upload are the browser's own; the server
is the real app on the session's real Triton. docs/capture.md describes the clips' timing.

Screenshots of each page state go to $FACEGATE_SCREENSHOTS, otherwise to a temporary folder
(``FACEGATE_SCREENSHOTS=docs/images`` regenerates the documentation's).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.conftest import DATA, REPO_ROOT, system_tool
from tests.integration import y4m
from tests.integration.http import serving

playwright_api = pytest.importorskip("playwright.async_api")


D12 = DATA / "video/live/liveportrait_driving_d12.mp4"
PHOTO = DATA / "faces/Colin_Powell/Colin_Powell_0001.jpg"
REPLAY = DATA / "spoof/video/lestari15_fake_replay.mp4"

LEAD_IN_S = 3.6
"""Neutral head before d12's turns. Chromium's fake camera starts the file when the camera
opens; the page records after ~1 s of good guidance, 1.4 s after the camera opened here. The
server takes the start pose from the recording's first frames and wants the first move within
4 s of it, so the recording has to start inside the lead-in: anywhere up to ~3.2 s works."""
WAIT_S = 90


# ---- camera files ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def cameras(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cameras")


@pytest.fixture(scope="session")
def turning_camera(cameras: Path) -> Path:
    """d12: its first 1.2 s (a frontal, moving head) played back and forth for `LEAD_IN_S`,
    then 1.2-4.4 s as recorded: turn to the person's left (yaw +25 deg at 1.6 s), back,
    turn to their right (-35 deg at 3.6 s), back. 15 fps, 512x512."""
    neutral = [y4m.fit(f) for f in y4m.decode(D12, end_s=1.2)]
    turns = [y4m.fit(f) for f in y4m.decode(D12, start_s=1.2, end_s=4.4)]
    return y4m.write(cameras / "d12_turns.y4m", y4m.ping_pong(neutral, LEAD_IN_S) + turns)


@pytest.fixture(scope="session")
def far_camera(cameras: Path) -> Path:
    """d12 small in a 640x480 grey frame: a face a fifth of the usual width (too far)."""
    frames = []
    for frame in y4m.decode(D12, end_s=3.0):
        canvas = np.full((480, 640, 3), 128, np.uint8)
        small = cv2.resize(frame, (180, 180), interpolation=cv2.INTER_AREA)
        canvas[150:330, 230:410] = small
        frames.append(canvas)
    return y4m.write(cameras / "d12_far.y4m", frames)


@pytest.fixture(scope="session")
def photo_camera(cameras: Path) -> Path:
    """One LFW photo held to the camera for 12 s, with a slow hand-held zoom and pan."""
    image = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    return y4m.write(cameras / "photo.y4m", y4m.still_photo(image, 12.0))


@pytest.fixture(scope="session")
def replay_camera(cameras: Path) -> Path:
    """A phone replaying a face, filmed (lestari15): the middle 60% of the frame, as if the
    phone were held closer so that the face fills the oval (the whole frame is too far)."""
    frames = y4m.decode(REPLAY)
    return y4m.write(cameras / "replay.y4m",
                     [y4m.fit(f, crop=(0.2, 0.1625, 0.6, 0.675)) for f in frames])


def test_y4m_files_are_what_chromium_reads(turning_camera: Path) -> None:
    header = y4m.read_header(turning_camera)
    width, height = int(header["W"]), int(header["H"])
    assert (width, height, header["F"], header["C"]) == (512, 512, "15:1", "420jpeg")
    frame_bytes = len(b"FRAME\n") + width * height * 3 // 2
    with turning_camera.open("rb") as file:
        header_bytes = len(file.readline())
    frames = (turning_camera.stat().st_size - header_bytes) / frame_bytes
    assert frames == round(LEAD_IN_S * 15) + 49


# ---- the browser -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("FACEGATE_SCREENSHOTS")
    if not folder:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(folder) if Path(folder).is_absolute() else REPO_ROOT / folder
    path.mkdir(parents=True, exist_ok=True)
    return path


RECORD_EVENTS = """
window.__fg = [];
for (const name of ["state", "guide", "step"]) {
  document.addEventListener("facegate:" + name,
    (event) => window.__fg.push([Math.round(performance.now()), name, event.detail]), true);
}
"""


@dataclasses.dataclass
class Browser:
    page: Any
    origin: str
    shots: Path

    async def shot(self, name: str) -> None:
        """A screenshot with the camera image pixelated beyond recognition (the faces are
        ../shared/data's, not ours to ship); the oval and badges drawn over it stay sharp: they
        are taken from a second screenshot with the video hidden on the stage's black."""
        path = self.shots / f"capture-{name}.png"
        await self.page.screenshot(path=str(path))
        box = await self.page.evaluate(
            "() => { const v = document.querySelector('.fg video');"
            " if (!v || !v.offsetParent) return null; const r = v.getBoundingClientRect();"
            " return [r.x, r.y, r.width, r.height].map(Math.round); }")
        if not box or box[2] <= 0 or box[3] <= 0:
            return
        hide = "(h) => { document.querySelector('.fg video').style.visibility = h; }"
        await self.page.evaluate(hide, "hidden")
        overlays = cv2.imdecode(np.frombuffer(await self.page.screenshot(), np.uint8),
                                cv2.IMREAD_COLOR)
        await self.page.evaluate(hide, "")
        image = cv2.imread(str(path))
        x, y, w, h = box
        region = image[y:y + h, x:x + w]
        small = cv2.resize(region, (max(1, w // 40), max(1, h // 40)),
                           interpolation=cv2.INTER_AREA)
        pixelated = cv2.resize(small, (region.shape[1], region.shape[0]),
                               interpolation=cv2.INTER_NEAREST)
        drawn = overlays[y:y + h, x:x + w]
        over = drawn.max(axis=2, keepdims=True) > 8
        image[y:y + h, x:x + w] = np.where(over, drawn, pixelated)
        cv2.imwrite(str(path), image)

    async def state(self) -> dict[str, str]:
        return await self.page.evaluate(
            "() => ({...document.querySelector('.fg').dataset,"
            " text: document.querySelector('.fg').innerText})")

    async def wait_state(self, *states: str, timeout_s: float = WAIT_S) -> dict[str, str]:
        selector = ", ".join(f".fg[data-state={s}]" for s in states)
        try:
            await self.page.wait_for_selector(selector, state="attached",
                                              timeout=timeout_s * 1000)
        except playwright_api.TimeoutError:
            pytest.fail(f"the page never reached {states}: {await self.state()}\n"
                        f"{await self.events()}")
        return await self.state()

    async def events(self) -> str:
        events = await self.page.evaluate("() => window.__fg")
        return "\n".join(f"{t:7d} ms {name} {json.dumps(detail)}" for t, name, detail in events)


@contextlib.asynccontextmanager
async def chromium(api, camera: Path | None, shots: Path, *,
                   allow_camera: bool = True) -> AsyncIterator[Browser]:
    """Chromium with ``camera`` as its camera (allowed for the server's origin), one page."""
    answer = await api.session.get("/capture/")
    async with answer:
        assert answer.status == 200
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
        origin = str(answer.url.origin())
    args = ["--use-fake-device-for-media-stream"]
    if camera is not None:
        args.append(f"--use-file-for-fake-video-capture={camera}")
    if allow_camera:
        args.append("--use-fake-ui-for-media-stream")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=system_tool("chromium"),
                                                   args=args)
        try:
            context = await browser.new_context(viewport={"width": 720, "height": 860},
                                                reduced_motion="reduce")
            if allow_camera:
                await context.grant_permissions(["camera"], origin=origin)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.add_init_script(RECORD_EVENTS)
            yield Browser(page, origin, shots)
            assert not errors, f"script errors on the page: {errors}"
        finally:
            await browser.close()


async def open_session(api, actions: str) -> dict[str, Any]:
    answer = await api.post("/liveness/session/open", {"actions": actions}, form="json")
    assert answer.code == 1000, answer.body
    return answer.body


async def start(browser: Browser, session: dict[str, Any], *, shot: str | None = None) -> None:
    """Open the session's page and press its button from the keyboard."""
    page = browser.page
    await page.goto(browser.origin + session["capture_url"])
    await browser.wait_state("intro", "error")
    assert "#" not in page.url and "token" not in page.url, "the session stays in the address bar"
    if shot:
        await browser.shot(shot)
    if (await browser.state())["state"] == "intro":
        focused = await page.evaluate("() => document.activeElement.textContent")
        assert focused == "Allow camera"
        await page.keyboard.press("Enter")


def unseal(session: dict[str, Any], sealed: str) -> bytes:
    assert sealed.startswith("fg1.")
    raw = base64.b64decode(sealed[4:])
    return AESGCM(base64.b64decode(session["session_key"])).decrypt(raw[:12], raw[12:], None)


@dataclasses.dataclass
class Sent:
    """What the page sent, as the test saw it on the way (decrypted with the session key)."""

    guide_frame: bytes = b""
    video: bytes = b""


async def watch_uploads(browser: Browser, session: dict[str, Any], sent: Sent,
                        shot: str | None) -> None:
    """Keep the first guidance frame and the recording the page sends; hold the upload until
    the "uploading" state's screenshot is taken (so that it is the state it claims)."""

    async def guide(route) -> None:
        sent.guide_frame = unseal(session, route.request.post_data_json["encrypted_image"])
        await route.continue_()

    async def capture(route) -> None:
        sent.video = unseal(session, route.request.post_data_json["encrypted_video"])
        if shot:
            await browser.shot(shot)
        await route.continue_()

    await browser.page.route("**/liveness/session/guide", guide, times=1)
    await browser.page.route("**/liveness/session/capture", capture)


async def capture_through_page(api, browser: Browser, actions: str, *, name: str = ""
                               ) -> tuple[dict[str, Any], dict[str, str], Sent]:
    """One session from open to result on the page; screenshots named after ``name``'s states
    when given. Returns the session, the page's final state and what the page sent."""
    session = await open_session(api, actions)
    sent = Sent()
    await watch_uploads(browser, session, sent, "uploading" if name == "passed" else None)
    await start(browser, session, shot="intro" if name == "passed" else None)
    await browser.wait_state("challenge")
    if name == "passed":
        await browser.page.wait_for_function(
            "() => document.querySelector('.fg-step').textContent.startsWith('Step 1')")
        await browser.shot("challenge")
    final = await browser.wait_state("result", "error")
    if name:
        await browser.shot(name)
    return session, final, sent


async def session_result(api, session: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post("/liveness/session/result", {"session_id": session["session_id"]},
                            form="json")
    assert answer.code == 1000, answer.body
    return answer.body


# ---- the cases ---------------------------------------------------------------------------------

async def test_live_person_doing_the_challenge_passes(api, turning_camera, shots) -> None:
    async with chromium(api, turning_camera, shots) as browser:
        session, final, sent = await capture_through_page(api, browser, "turn_left,turn_right",
                                                          name="passed")
        events = await browser.events()
    assert final["state"] == "result" and final.get("passed") == "true", f"{final}\n{events}"
    assert "Liveness check passed" in final["text"]
    result = await session_result(api, session)
    assert result["passed"] and [s["done"] for s in result["challenge"]] == [True, True], result
    # The page asked for each step in turn and saw both moves in its guidance.
    assert '"action":"turn_right"' in events.replace(" ", "") and "step" in events

    # What was sent: a 480 px JPEG frame, the camera's own (not the mirrored preview) ...
    frame = cv2.imdecode(np.frombuffer(sent.guide_frame, np.uint8), cv2.IMREAD_COLOR)
    assert sent.guide_frame[:2] == b"\xff\xd8" and frame.shape[1] == 480
    camera = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in y4m.decode(D12, end_s=1.2)]
    frame = cv2.resize(frame, camera[0].shape[1::-1]).astype(np.float32)
    plain = min(np.mean((frame - c) ** 2) for c in camera)
    mirrored = min(np.mean((frame - c[:, ::-1]) ** 2) for c in camera)
    assert plain < mirrored / 2, (plain, mirrored)
    # ... and a WebM recording of at least 2.5 s and at most record_s.
    assert sent.video[:4] == b"\x1a\x45\xdf\xa3"
    with av.open(io.BytesIO(sent.video)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    assert 2.5 <= times[-1] - times[0] <= session["record_s"] + 0.5, times[-1] - times[0]


async def test_the_same_clip_fails_another_challenge(api, turning_camera, shots) -> None:
    async with chromium(api, turning_camera, shots) as browser:
        session, final, _ = await capture_through_page(api, browser, "look_up,look_down",
                                                       name="not-passed")
        events = await browser.events()
    assert final["state"] == "result" and final.get("passed") == "false", f"{final}\n{events}"
    assert final.get("failedCheck") == "challenge"
    assert "Failed check: challenge" in final["text"]
    assert "head movements asked for were not recognised" in final["text"]
    assert "start a new check" in final["text"]
    result = await session_result(api, session)
    assert result["failed_check"] == "challenge" and not result["challenge_passed"]


@pytest.mark.parametrize("attack", ["still_photo", "replay"])
async def test_attacks_do_not_pass(api, attack, photo_camera, replay_camera, shots) -> None:
    camera = photo_camera if attack == "still_photo" else replay_camera
    async with chromium(api, camera, shots) as browser:
        session, final, _ = await capture_through_page(api, browser, "turn_left,turn_right")
        events = await browser.events()
    assert final["state"] == "result" and final.get("passed") == "false", f"{final}\n{events}"
    assert final.get("failedCheck") in ("challenge", "liveness")
    result = await session_result(api, session)
    assert not result["passed"], result
    # The silent check refuses the page's recording too, whatever the challenge did.
    assert result["liveness_status"] == "hack", result


async def test_guidance_asks_to_come_closer(api, far_camera, shots) -> None:
    session = await open_session(api, "turn_left,turn_right")
    async with chromium(api, far_camera, shots) as browser:
        await start(browser, session)
        await browser.wait_state("preview")
        await browser.page.wait_for_function(
            "() => document.querySelector('.fg-message').textContent.includes('closer')",
            timeout=WAIT_S * 1000)
        await browser.page.wait_for_timeout(600)  # the preview's frames up to date
        await browser.shot("preview")
        final = await browser.state()
        live = await browser.page.get_attribute(".fg-live", "aria-live")
    assert final["state"] == "preview", "recorded although the face was too far"
    assert "Move closer to the camera." in final["text"] and live == "polite"


def _tampered(token: str) -> str:
    payload, signature = token.split(".")
    return f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


@pytest.mark.parametrize("case", ["expired", "invalid", "used"])
async def test_session_errors_are_explained(api, server_settings, keyring, turning_camera,
                                            shots, case) -> None:
    async with contextlib.AsyncExitStack() as stack:
        server = api
        if case == "expired":
            short = dataclasses.replace(server_settings, session_ttl_s=1.0)
            server = await stack.enter_async_context(serving(short, keyring))
        session = await open_session(server, "turn_left,turn_right")
        if case == "expired":
            await asyncio.sleep(1.2)
        elif case == "invalid":
            token = _tampered(session["session_token"])
            session["capture_url"] = session["capture_url"].replace(
                session["session_token"], token)
        elif case == "used":
            sealed = AESGCM(base64.b64decode(session["session_key"]))
            nonce = os.urandom(12)
            video = "fg1." + base64.b64encode(
                nonce + sealed.encrypt(nonce, D12.read_bytes(), None)).decode()
            answer = await server.post("/liveness/session/capture", {
                "session_token": session["session_token"], "encrypted_video": video,
            }, form="json")
            assert answer.code == 1000, answer.body
        browser = await stack.enter_async_context(chromium(server, turning_camera, shots))
        await start(browser, session)
        final = await browser.wait_state("error", "result")
        if case == "expired":
            await browser.shot("error")
    expected = {
        "expired": ("4101", "This session has expired."),
        "invalid": ("4102", "This link is not valid"),
        "used": ("4103", "This session has already been used."),
    }[case]
    assert (final["state"], final.get("code")) == ("error", expected[0]), final
    assert expected[1] in final["text"]
    assert "Try again" not in final["text"], "a retry that cannot work"


async def test_camera_refused_is_explained(api, turning_camera, shots) -> None:
    session = await open_session(api, "turn_left,turn_right")
    async with chromium(api, turning_camera, shots, allow_camera=False) as browser:
        await start(browser, session)
        final = await browser.wait_state("error")
        button = await browser.page.evaluate("() => document.activeElement.textContent")
    assert final.get("code") == "camera_denied", final
    assert "Camera access was not allowed" in final["text"] and button == "Try again"


CONTRAST = """
() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => v / 255)
    .map((v) => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll(".fg *")]
    .filter((n) => n.offsetParent &&
      [...n.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim()))
    .map((n) => {
      const [a, b] = [lum(rgb(getComputedStyle(n).color)), lum(background(n))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      return [n.textContent.trim().slice(0, 40), ratio];
    });
}
"""


async def test_the_pages_text_is_readable_and_its_button_keyboard_reachable(
    api, turning_camera, shots
) -> None:
    async with chromium(api, turning_camera, shots) as browser:
        session = await open_session(api, "turn_left")
        await browser.page.goto(browser.origin + session["capture_url"])
        await browser.wait_state("intro")
        texts = await browser.page.evaluate(CONTRAST)
        assert texts, "no text measured"
        low = [(text, round(ratio, 1)) for text, ratio in texts if ratio < 4.5]
        assert not low, f"below WCAG AA's 4.5:1: {low}"
        await browser.page.keyboard.press("Tab")
        await browser.page.keyboard.press("Shift+Tab")
        focused = await browser.page.evaluate("() => document.activeElement.textContent")
        assert focused == "Allow camera"
