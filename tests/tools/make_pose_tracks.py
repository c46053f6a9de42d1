"""Writes tests/fixtures/pose_tracks.json: YuNet's landmarks of each clip's subject, per frame.

The challenge checker's unit tests (`tests/unit/test_challenge.py`) run on these real tracks
without the models. The frames are the server's own (`preprocessing.video`, every 0.2 s of
the first 10 s) and the subject is the server's (`preprocessing.tracking`), detected by the
ONNX detector in-process (`benchmarks.inprocess`):

    .venv/bin/python -m tests.tools.make_pose_tracks [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.inprocess import InProcessPipeline
from preprocessing.tracking import subject_of, track_faces
from preprocessing.video import VideoLimits, probe_and_decode
from tests.conftest import DATA, REPO_ROOT

CLIPS = (
    "video/live/liveportrait_driving_d12.mp4",  # turns left (1.4-2.0 s), then right (3.2-3.6 s)
    "video/live/liveportrait_driving_d3.mp4",  # turns left, back, left again
    "video/live/liveportrait_driving_d13.mp4",  # live, no turns
    "video/live/liveportrait_source_s32.mp4",  # live, faces away from the camera throughout
    "video/live/zubair_real.webm",  # live, large swings both ways
    "spoof/video/manikantha_fake_replay.mp4",  # a replay, held by hand
)
OUT = REPO_ROOT / "tests" / "fixtures" / "pose_tracks.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA)
    args = parser.parse_args()
    pipeline = InProcessPipeline(threads=4)
    tracks = {}
    for clip in CLIPS:
        data = (args.data_dir / clip).read_bytes()
        video = probe_and_decode(data, VideoLimits(), interval_s=0.2, window_s=10.0)
        found = [pipeline.detect(frame.image) for frame in video.frames]
        subject = subject_of([t for t in track_faces(found) if len(t.faces) >= 3])
        tracks[Path(clip).name] = [
            {"t": round(video.frames[i].timestamp_s, 3),
             "landmarks": [[round(float(v), 2) for v in point] for point in face.landmarks]}
            for i, face in sorted(subject.faces.items())
        ]
    OUT.write_text(json.dumps(tracks, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
