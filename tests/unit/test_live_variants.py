"""The degraded live set: deterministic bytes, and variants that are what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.live_variants import VARIANTS, applicable, make_variant, source_info
from preprocessing.video import VideoLimits, probe_and_decode
from tests.conftest import DATA

CLIP = DATA / "video/live/liveportrait_driving_d0.mp4"  # 512x512, 25 fps, 3.1 s
needs_clip = pytest.mark.skipif(not CLIP.is_file(), reason="shared live clip missing")


@needs_clip
def test_a_variant_is_byte_for_byte_reproducible():
    first, params = make_variant(CLIP, "crf36")
    again, _ = make_variant(CLIP, "crf36")
    assert first == again
    assert params["crf"] == 36 and params["frames"] == 78


@needs_clip
def test_rot90_is_stored_sideways_and_decodes_upright():
    plain = probe_and_decode(make_variant(CLIP, "crf28")[0], VideoLimits())
    turned_bytes, params = make_variant(CLIP, "rot90")
    turned = probe_and_decode(turned_bytes, VideoLimits())
    assert params["display_ccw"] == -90 and turned.rotation == 90
    difference = np.abs(turned.frames[3].image.astype(int) - plain.frames[3].image).mean()
    assert difference < 4  # the same picture, upright (sideways it differs by tens)


@needs_clip
def test_360p_and_15fps_and_not_upscaling():
    info = source_info(CLIP)
    small = probe_and_decode(make_variant(CLIP, "360p+crf32+dark55")[0], VideoLimits())
    assert (small.width, small.height) == (360, 360)
    assert probe_and_decode(make_variant(CLIP, "15fps")[0], VideoLimits()).frame_rate == 15
    assert not applicable(info, VARIANTS["480p"]) or min(info.width, info.height) > 480
    assert applicable(info, VARIANTS["360p"])
