"""Small files cannot claim gigabytes: decoded pixels are budgeted across requests."""

from __future__ import annotations

import asyncio
import dataclasses
import io

from PIL import Image

from frontend.api.services import SERVICES
from frontend.contract.codes import Code
from frontend.contract.fields import FACE_QUALITY
from tests.integration.http import assert_error, serving


def _blank_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (128, 128, 128)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_photos_beyond_the_decode_budget_are_a_fast_503_and_the_budget_comes_back(
    server_settings, keyring
):
    settings = dataclasses.replace(server_settings, max_decoded_pixels=10_000_000,
                                   decode_wait_s=0.2)
    async with serving(settings, keyring) as api:
        photo = api.seal(_blank_png(3000, 2500))  # 7.5 Mpx declared, a few KB on the wire
        answers = await asyncio.gather(
            *(api.post(FACE_QUALITY.path, {"encrypted_image": photo}) for _ in range(4))
        )
        codes = sorted(a.code for a in answers)
        assert Code.DETECTION_FAILED.info.code in codes  # at least one decoded (no face)
        refused = [a for a in answers if a.code == Code.SERVICE_UNAVAILABLE.info.code]
        assert refused, codes
        for answer in refused:
            assert_error(answer, Code.SERVICE_UNAVAILABLE)
            assert answer.headers["Retry-After"] == "1"
        assert api.app[SERVICES].budget.used_px == 0
        assert (await api.post(FACE_QUALITY.path, {"encrypted_image": photo})).code == 4000
