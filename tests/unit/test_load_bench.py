"""The load benchmark's reading of the servers' metrics (`benchmarks.load`)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.load.__main__ import triton_figures
from benchmarks.load.servers import total

pytestmark = pytest.mark.unit


def _samples(text: str) -> dict:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _triton_metrics(executions: int, inferences: int, queue_us: int) -> dict:
    """Triton's exposition: counters without a _total suffix."""
    lines = []
    for name, value in (("nv_inference_exec_count", executions),
                        ("nv_inference_count", inferences),
                        ("nv_inference_request_success", inferences),
                        ("nv_inference_queue_duration_us", queue_us),
                        ("nv_inference_compute_infer_duration_us", 1000 * inferences)):
        lines += [f"# TYPE {name} counter",
                  f'{name}{{model="face_embedder",version="1"}} {value}']
    return _samples("\n".join(lines) + "\n")


def test_total_finds_a_counter_exposed_without_the_total_suffix():
    samples = _triton_metrics(executions=3, inferences=12, queue_us=0)
    assert total(samples, "nv_inference_exec_count", model="face_embedder") == 3
    assert total(samples, "nv_inference_exec_count", model="face_detector") == 0


def test_triton_average_batch_and_queue_come_from_two_scrapes():
    before = _triton_metrics(executions=10, inferences=10, queue_us=0)
    after = _triton_metrics(executions=14, inferences=42, queue_us=64_000)
    embedder = triton_figures(before, after)["face_embedder"]
    assert embedder["average_batch"] == 8.0
    assert embedder["queue_ms_per_request"] == 2.0
