"""/metrics and Triton's metrics port move as they should after real requests."""

from __future__ import annotations

import re
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from frontend.contract.fields import FACE_QUALITY, SILENT_DETECTION
from tests.conftest import DATA

FACE = DATA / "faces/Barack_Obama/facerec_obama.jpg"
VIDEO = DATA / "video/live/liveportrait_driving_d0.mp4"


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _scrape(api) -> dict[tuple[str, tuple], float]:
    async with api.session.get("/metrics") as response:
        assert response.status == 200
        return _samples(await response.text())


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _triton_count(triton, model: str) -> float:
    text = urllib.request.urlopen(triton.metrics_url, timeout=5).read().decode()
    match = re.search(rf'^nv_inference_count{{model="{model}",version="1"}} (\S+)$', text, re.M)
    return float(match.group(1))


async def test_requests_codes_stages_and_model_calls_are_counted(api, triton, data_dir):
    quality = FACE_QUALITY.path
    before = await _scrape(api)
    detector_before = _triton_count(triton, "face_detector")
    for _ in range(3):
        await api.post(quality, {"encrypted_image": api.seal(FACE.read_bytes())})
    await api.post(quality, {"encrypted_image": api.seal(b"not an image" * 200)})
    await api.post(SILENT_DETECTION.path, {"encrypted_video": api.seal(VIDEO.read_bytes())})
    after = await _scrape(api)

    def moved(name: str, **labels) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("facegate_requests_total", endpoint=quality, code="1000") == 3
    assert moved("facegate_requests_total", endpoint=quality, code="2005") == 1
    assert moved("facegate_request_duration_seconds_count", endpoint=quality) == 4
    assert moved("facegate_request_body_bytes_count", endpoint=quality) == 4
    assert moved("facegate_input_failures_total", kind="PhotoTypeError") == 1
    assert moved("facegate_stage_duration_seconds_count", stage="decrypt") == 5
    assert moved("facegate_stage_duration_seconds_count", stage="decode") == 4
    assert moved("facegate_stage_duration_seconds_count", stage="video_motion") == 1
    assert moved("facegate_stage_duration_seconds_count", stage="detect") >= 3
    calls = moved("facegate_triton_request_duration_seconds_count", model="face_detector")
    assert calls >= 3 + 3  # three photos, and at least three video frames
    assert _value(after, "facegate_requests_in_flight") == 1  # the scrape itself
    assert _triton_count(triton, "face_detector") - detector_before == calls
