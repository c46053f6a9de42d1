"""The embedded tritonserver fails loudly, never by hanging."""

from __future__ import annotations

import shutil
import time

import pytest

from deploy.embedded_triton import (
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
    TritonStartError,
)
from tests.conftest import free_port


def _ports() -> TritonPorts:
    return TritonPorts(free_port(), free_port(), free_port())


def test_launcher_reports_a_model_that_cannot_load_instead_of_hanging(model_repository, tmp_path):
    broken = tmp_path / "repository" / "face_detector"
    (broken / "1").mkdir(parents=True)
    shutil.copy(model_repository / "face_detector" / "config.pbtxt", broken)
    shutil.copy(model_repository / "face_detector" / "1" / "model.py", broken / "1")
    (broken / "1" / "model.onnx").write_bytes(b"this is not an onnx file")
    config = EmbeddedTritonConfig(model_repository=broken.parent, ports=_ports(),
                                  startup_timeout_s=90)
    started = time.monotonic()
    with pytest.raises(TritonStartError) as error:
        EmbeddedTriton(config).start()
    assert time.monotonic() - started < 90
    assert "face_detector" in str(error.value)


def test_launcher_refuses_an_empty_model_repository(tmp_path):
    config = EmbeddedTritonConfig(model_repository=tmp_path, ports=_ports())
    with pytest.raises(TritonStartError, match="no models in .*make models"):
        EmbeddedTriton(config).start()


def test_launcher_stop_is_idempotent_and_frees_the_ports(model_repository):
    triton = EmbeddedTriton(EmbeddedTritonConfig(model_repository=model_repository, ports=_ports()))
    triton.start()
    assert triton.running()
    triton.stop()
    triton.stop()
    assert not triton.running()
