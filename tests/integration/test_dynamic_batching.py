"""Concurrent callers share model executions: Triton's dynamic batcher really merges them."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import numpy as np

CALLERS = 16
CALLS_PER_CALLER = 12


def _counters(metrics_url: str, model: str) -> tuple[float, float]:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()

    def value(metric: str) -> float:
        pattern = rf'^{metric}{{model="{model}",version="1"}} (\S+)$'
        return float(re.search(pattern, text, re.MULTILINE).group(1))

    return value("nv_inference_count"), value("nv_inference_exec_count")


async def test_sixteen_concurrent_callers_average_batch_above_four_on_the_embedder(triton, models):
    chip = np.random.default_rng(1).integers(0, 255, (1, 150, 150, 3), dtype=np.uint8)
    await models.embed(chip)
    count_before, exec_before = _counters(triton.metrics_url, "face_embedder")

    async def caller() -> None:
        for _ in range(CALLS_PER_CALLER):
            await models.embed(chip)

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    # Triton counts a request just after answering it: wait until the last one is counted.
    for _ in range(50):
        count_after, exec_after = _counters(triton.metrics_url, "face_embedder")
        if count_after - count_before >= CALLERS * CALLS_PER_CALLER:
            break
        await asyncio.sleep(0.1)
    inferences = count_after - count_before
    executions = exec_after - exec_before
    assert inferences == CALLERS * CALLS_PER_CALLER
    assert inferences / executions > 4
