"""Weight files are found, checked by SHA-256, and refused with a message naming what to get."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from model_repository.build import main as build_main
from model_repository.specs import FACE_DETECTOR, FACE_LIVENESS
from model_repository.weights import WeightsError, locate, sha256_of

YUNET = FACE_DETECTOR.weights[0]


def test_locate_returns_a_file_whose_checksum_matches(weights_dir, tmp_path):
    path = locate(YUNET, weights_dir, tmp_path)
    assert sha256_of(path) == YUNET.sha256


def test_locate_refuses_an_altered_file_naming_file_source_and_checksum(weights_dir, tmp_path):
    copy = tmp_path / YUNET.name
    copy.parent.mkdir(parents=True)
    data = bytearray((weights_dir / YUNET.name).read_bytes())
    data[1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as error:
        locate(YUNET, tmp_path, tmp_path / "cache")
    message = str(error.value)
    assert message.startswith(f"weight file altered: {copy} has sha256 ")
    assert YUNET.sha256 in message and YUNET.source in message


def test_locate_refuses_a_missing_file_naming_file_source_and_checksum(tmp_path):
    with pytest.raises(WeightsError) as error:
        locate(FACE_LIVENESS.weights[0], tmp_path, tmp_path / "cache")
    message = str(error.value)
    assert message.startswith(f"weight file missing: {tmp_path / FACE_LIVENESS.weights[0].name}")
    assert FACE_LIVENESS.weights[0].sha256 in message and "Silent-Face-Anti-Spoofing" in message


def test_locate_refuses_a_weights_directory_that_does_not_exist(tmp_path):
    with pytest.raises(WeightsError, match="weights directory .* does not exist"):
        locate(YUNET, tmp_path / "nowhere", tmp_path / "cache")


def test_model_build_exits_nonzero_with_message_when_a_weight_file_is_broken(
    weights_dir, tmp_path, caplog
):
    broken = tmp_path / "weights"
    shutil.copytree(weights_dir, broken)
    target = broken / YUNET.name
    target.write_bytes(target.read_bytes()[:-10])
    code = build_main(["--weights-dir", str(broken), "--out", str(tmp_path / "out")])
    assert code == 1
    assert f"weight file altered: {target}" in caplog.text
    assert not (tmp_path / "out" / "native" / "face_detector" / "1" / "model.onnx").exists()


def test_model_build_exits_nonzero_when_the_weights_directory_is_missing(tmp_path, caplog):
    code = build_main(["--weights-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert code == 1
    assert "does not exist (FACEGATE_WEIGHTS_DIR)" in caplog.text


def test_sha256_of_reads_the_whole_file(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert sha256_of(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
