"""The CPU runtimes under concurrent first use, as the in-process runtime meets them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from model_repository.specs import FACE_EMBEDDER

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each process opens the embedder in OpenVINO and makes its first eight calls at once. Before
# the runner set up pybind11's numpy bridge itself, about one process in four hung for good.
_FIRST_CALLS_AT_ONCE = textwrap.dedent("""
    import os, threading, time
    import numpy as np
    from model_repository.cpu_runtimes import open_runner
    run = open_runner("model_repository/native/face_embedder/1/model.onnx",
                      engine="openvino", precision="bf16", threads=1)
    barrier = threading.Barrier(8)
    chip = np.zeros((1, 150, 150, 3), np.uint8)
    def first_call():
        barrier.wait()
        run({"chip": chip})
    threads = [threading.Thread(target=first_call, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    print("hung" if any(t.is_alive() for t in threads) else "ok", flush=True)
    os._exit(0)
""")


def test_openvino_runners_first_called_from_many_threads_at_once_all_answer():
    assert FACE_EMBEDDER.cpu_runtime.engine == "openvino"
    for _ in range(4):
        done = subprocess.run([sys.executable, "-c", _FIRST_CALLS_AT_ONCE], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=90)
        assert done.stdout.strip() == "ok", done.stderr[-2000:]
