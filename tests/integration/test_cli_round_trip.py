"""The installed ``facegate`` command against the running server, for every photo endpoint.

The CLI runs as its own process (the console script in the venv), with the keys in its
environment as an operator would set them, and must print the server's JSON answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.integration.conftest import SAMPLE_IV, SAMPLE_KEY

FACEGATE = Path(sys.executable).with_name("facegate")
OBAMA = DATA / "faces/Barack_Obama/facerec_obama.jpg"
OBAMA_2 = DATA / "faces/Barack_Obama/facerec_obama2.jpg"
LIVE_VIDEO = DATA / "video/live/zubair_real.webm"


async def _facegate(api, *args: str, legacy: bool = False) -> tuple[int, dict]:
    if not FACEGATE.is_file():
        pytest.fail(f"{FACEGATE} is not installed: the package's console script is missing")
    env = {
        **os.environ,
        "FACEGATE_URL": str(api.session._base_url),  # noqa: SLF001
        "FACEGATE_AES_KEY": SAMPLE_KEY,
        "FACEGATE_AES_IV": SAMPLE_IV,
    }
    process = await asyncio.create_subprocess_exec(
        str(FACEGATE),
        *(["--legacy"] if legacy else []),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode in (0, 1), stderr.decode()
    return process.returncode, json.loads(stdout)


@pytest.mark.parametrize("legacy", [False, True], ids=["nonce form", "legacy form"])
async def test_cli_verify_round_trips(api, data_dir, legacy):
    status, body = await _facegate(
        api, "verify", str(OBAMA), str(OBAMA_2), "--check-quality", legacy=legacy
    )
    assert status == 0 and body["code"] == 1000 and body["verification_score"] > 0.7


async def test_cli_multi_verify_round_trips(api, data_dir):
    status, body = await _facegate(
        api, "multi-verify", str(DATA / "multi/deepface_couple.jpg"), str(OBAMA)
    )
    assert status == 0 and len(body["face_rects"]["first_image"]) == 2


async def test_cli_quality_round_trips(api, data_dir):
    status, body = await _facegate(api, "quality", str(OBAMA))
    assert status == 0 and len(body["faces"]) == 1


async def test_cli_liveness_verify_from_a_video_round_trips(api, data_dir):
    still = DATA / "faces/Barack_Obama/facerec_obama2.jpg"
    status, body = await _facegate(api, "liveness-verify", "--video", str(LIVE_VIDEO), str(still))
    assert status == 0 and body["code"] == 1000 and body["verification_score"] < 0.6


async def test_cli_liveness_file_written_then_sent_round_trips(api, data_dir, tmp_path):
    sealed = tmp_path / "capture.lf"
    process = await asyncio.create_subprocess_exec(
        str(FACEGATE),
        "--key",
        SAMPLE_KEY,
        "liveness-file",
        "--out",
        str(sealed),
        "--video",
        str(LIVE_VIDEO),
        "--count",
        "6",
        stdout=asyncio.subprocess.PIPE,
    )
    await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0 and sealed.stat().st_size > 0
    status, body = await _facegate(
        api, "liveness-verify", "--liveness-file", str(sealed), str(OBAMA)
    )
    assert status == 0 and body["code"] == 1000


async def test_cli_exits_1_and_prints_the_error_answer(api, data_dir):
    status, body = await _facegate(api, "quality", str(DATA / "noface/dlib_eagle.jpg"))
    assert status == 1 and body["code"] == 4000 and body["request_id"]


async def test_cli_silent_detect_round_trips(api, data_dir):
    status, body = await _facegate(api, "silent-detect", str(LIVE_VIDEO), "--return-status")
    assert status == 0 and body["passed"] is True and body["liveness_status"] == "ok"


async def test_cli_silent_verify_round_trips(api, data_dir):
    status, body = await _facegate(api, "silent-verify", str(LIVE_VIDEO), str(OBAMA),
                                   "--return-status")
    assert status == 0 and body["passed"] is True and body["verification_score"] < 0.6
