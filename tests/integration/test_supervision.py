"""The server as operators run it (`python -m frontend`, its own embedded Triton): it recovers
from a killed Triton by itself, and drains on SIGTERM."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from deploy.embedded_triton import EmbeddedTriton, EmbeddedTritonConfig, TritonPorts
from frontend.config import Settings
from frontend.contract.fields import IMAGE_VERIFICATION, SILENT_DETECTION
from frontend.crypto import KeyRing
from tests.conftest import DATA, REPO_ROOT, free_port
from tests.integration.conftest import SAMPLE_KEY
from tests.integration.http import serving

KEY = "k" * 32
PHOTO = DATA / "faces/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
VIDEO = DATA / "video/live/liveportrait_driving_d0.mp4"
RING = KeyRing.from_strings([KEY], None)


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append((int(entry.name), name))
    return found


def _process_group(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except OSError:
                continue
    return members


class Running:
    def __init__(self, process: subprocess.Popen, port: int, tmp: Path) -> None:
        self.process, self.port, self.tmp = process, port, tmp
        self.url = f"http://127.0.0.1:{port}"

    def triton_pid(self) -> int:
        (pid,) = [p for p, name in _children(self.process.pid) if name == "tritonserver"]
        return pid

    async def post_verification(self, session: aiohttp.ClientSession) -> dict:
        photo = RING.encrypt(PHOTO.read_bytes())
        fields = {"first_encrypted_image": photo, "second_encrypted_image": photo}
        async with session.post(self.url + IMAGE_VERIFICATION.path, data=fields) as response:
            return await response.json()


@pytest.fixture
def running(model_repository) -> Iterator[Running]:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="facegate-supervision-"))
    env = {
        **os.environ, "FACEGATE_AES_KEY": KEY, "FACEGATE_PORT": str(port),
        "FACEGATE_HOST": "127.0.0.1", "FACEGATE_TRITON_HTTP_PORT": str(free_port()),
        "FACEGATE_TRITON_GRPC_PORT": str(free_port()),
        "FACEGATE_TRITON_METRICS_PORT": str(free_port()), "FACEGATE_CPU_WORKERS": "2",
        "TMPDIR": str(tmp),
    }
    process = subprocess.Popen([sys.executable, "-m", "frontend"], cwd=REPO_ROOT, env=env)
    try:
        yield Running(process, port, tmp)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


async def _until(check, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"not within {timeout_s} s")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:
        yield client


async def _status(session, url: str) -> int:
    try:
        async with session.get(url) as response:
            return response.status
    except aiohttp.ClientError:
        return 0


async def test_a_killed_triton_is_restarted_and_real_requests_are_served_within_30_s(
    running, session
):
    await _until(lambda: _ready(session, running), 180)
    assert (await running.post_verification(session))["code"] == 1000
    old = running.triton_pid()
    old_group = _process_group(old)
    assert len(old_group) > 1  # tritonserver and its python-backend stubs
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()

    async def served() -> bool:
        return (await running.post_verification(session)).get("code") == 1000

    await _until(served, 30)
    assert time.monotonic() - killed < 30
    assert await _status(session, running.url + "/healthz") == 200
    assert running.triton_pid() != old
    assert _process_group(old) == []  # no orphaned stubs
    assert [p for p, name in _children(running.process.pid) if name == "tritonserver"]
    assert not [p for p in running.tmp.iterdir() if p.name.startswith("facegate-triton-")
                and p.name != _run_dir_of(running)]


def _run_dir_of(running: Running) -> str:
    folders = [p.name for p in running.tmp.iterdir() if p.name.startswith("facegate-triton-")]
    assert len(folders) == 1, folders
    return folders[0]


async def _ready(session, running: Running) -> bool:
    return await _status(session, running.url + "/readyz") == 200


async def test_sigterm_finishes_the_request_in_progress_then_exits(running, session):
    await _until(lambda: _ready(session, running), 180)
    body = urlencode({"encrypted_video": RING.encrypt(VIDEO.read_bytes())}).encode()

    async def detect() -> dict:
        async with session.post(
            running.url + SILENT_DETECTION.path, data=io.BytesIO(body),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as response:
            return await response.json()

    in_progress = asyncio.create_task(detect())
    await asyncio.sleep(0.3)
    running.process.send_signal(signal.SIGTERM)
    answer = await in_progress
    assert answer["code"] == 1000
    assert await asyncio.to_thread(running.process.wait, 60) == 0
    assert _children(running.process.pid) == []


async def test_an_external_triton_that_goes_away_and_comes_back_is_picked_up_again(
    model_repository, keyring
):
    config = EmbeddedTritonConfig(model_repository=model_repository,
                                  ports=TritonPorts(free_port(), free_port(), free_port()))
    external = EmbeddedTriton(config)
    await asyncio.to_thread(external.start)
    settings = Settings(triton_url=external.grpc_url, triton_timeout_s=5, aes_key=SAMPLE_KEY,
                        cpu_workers=2)
    try:
        async with serving(settings, keyring) as api:
            photo = api.seal(PHOTO.read_bytes())
            fields = {"first_encrypted_image": photo, "second_encrypted_image": photo}
            assert (await api.post(IMAGE_VERIFICATION.path, fields)).code == 1000
            await asyncio.to_thread(external.stop)
            assert (await api.post(IMAGE_VERIFICATION.path, fields)).code == 503
            async with api.session.get("/readyz") as response:
                assert response.status == 503
            await asyncio.to_thread(external.start)

            async def served() -> bool:
                return (await api.post(IMAGE_VERIFICATION.path, fields)).code == 1000

            assert await _until(served, 10) < 10
    finally:
        await asyncio.to_thread(external.stop)
