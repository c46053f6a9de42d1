"""Following faces across a video's picked frames, and choosing the one the video is about.

Faces are chained frame to frame by box overlap (`track_faces`); the **subject** is the track
seen in the most frames, then the larger (`subject_of`). A second person walking through is a
shorter track and never becomes the subject; a replay's attacker, seen only while the phone is
raised, loses to the face on the screen that the whole video is about.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessing.detection import Face
from preprocessing.video import Video

TRACK_IOU = 0.3


@dataclass(frozen=True)
class Track:
    """One face followed over the picked frames: frame index -> face."""

    faces: dict[int, Face]

    @property
    def median_width(self) -> float:
        return float(np.median([f.box[2] for f in self.faces.values()]))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes (x, y, width, height)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter) if inter > 0 else 0.0


def track_faces(detections: list[list[Face]]) -> list[Track]:
    """Chain faces over frames: each face joins the open track whose last box overlaps it most
    (IoU above `TRACK_IOU`), or starts a new one. A track stays open across frames without a
    match, so a face hidden for a moment keeps its track."""
    tracks: list[dict[int, Face]] = []
    for index, faces in enumerate(detections):
        taken: set[int] = set()
        for face in faces:
            best, best_iou = None, TRACK_IOU
            for number, track in enumerate(tracks):
                if number in taken:
                    continue
                last = track[max(track)]
                overlap = iou(last.box, face.box)
                if overlap > best_iou:
                    best, best_iou = number, overlap
            if best is None:
                tracks.append({index: face})
                taken.add(len(tracks) - 1)
            else:
                tracks[best][index] = face
                taken.add(best)
    return [Track(t) for t in tracks]


def subject_of(tracks: list[Track]) -> Track:
    """The face the video is about: seen in the most frames, then the larger."""
    return max(tracks, key=lambda t: (len(t.faces), t.median_width))


def visible_seconds(video: Video, track: Track, interval_s: float) -> float:
    """Time the track is visible: each of its frames counts until the next picked frame (at
    most `interval_s`), so "2 s" is real time, not a frame count."""
    times = [f.timestamp_s for f in video.frames]
    ends = [*times[1:], times[-1] + interval_s]
    return float(sum(min(ends[i] - times[i], interval_s) for i in track.faces))
