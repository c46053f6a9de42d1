"""Which detector a photo goes to: 640 by default, 320 for small photos when the option is on."""

from __future__ import annotations

import pytest

from frontend.config import Settings
from preprocessing.detection import DETECTOR_SIZES, detector_size, detector_sizes


def test_the_small_detector_is_off_unless_an_operator_turns_it_on():
    assert Settings().small_detector is False
    assert Settings.from_env({"FACEGATE_SMALL_DETECTOR": "true"}).small_detector is True
    assert detector_sizes(False) == (640,)
    assert detector_sizes(True) == DETECTOR_SIZES == (320, 640)


@pytest.mark.parametrize("shape", [(250, 250, 3), (320, 200, 3), (112, 112, 3)])
def test_a_photo_of_at_most_320_px_goes_to_the_small_detector_when_it_is_on(shape):
    assert detector_size(shape, detector_sizes(True)) == 320
    assert detector_size(shape, detector_sizes(False)) == 640


@pytest.mark.parametrize("shape", [(321, 200, 3), (720, 1280, 3), (4000, 3000, 3)])
def test_a_larger_photo_always_goes_to_the_640_detector(shape):
    assert detector_size(shape, detector_sizes(True)) == 640
