"""The calibrated verification score: descriptor distance -> false-accept rate -> score.

The contract (../shared/docs/CONTRACT.md, section 2) defines

    verification_score = (3 - log10 FAR(distance)) / 10, clipped to [0, 1],

so that thresholds 0.4 / 0.5 / ... / 0.9 mean FAR 1e-1 / 1e-2 / ... / 1e-6. FAR(distance) is
the face embedder's impostor tail: a table of knots (distance, log10 FAR) built by
``python -m model_repository.calibrate`` and documented in model_repository/calibration/.
Between knots log10 FAR is interpolated linearly; beyond the end knots the end segments are
extended; FAR never exceeds 1, so the lowest score any distance gets is 0.3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_CALIBRATION = (
    Path(__file__).resolve().parents[2] / "model_repository" / "calibration" / "face_embedder.json"
)


def _like(value, result: np.ndarray):
    """A float for a scalar argument, an array of the argument's shape otherwise."""
    return float(result) if np.ndim(value) == 0 else result


@dataclass(frozen=True)
class ScoreCalibration:
    """FAR as a function of descriptor distance, from a monotone knot table.

    Attributes:
        distances: knot distances, strictly increasing.
        log10_far: log10 FAR at each knot, non-decreasing and at most 0.
    """

    distances: np.ndarray
    log10_far: np.ndarray

    def __post_init__(self) -> None:
        distances = np.asarray(self.distances, dtype=np.float64)
        log10_far = np.asarray(self.log10_far, dtype=np.float64)
        if distances.ndim != 1 or log10_far.shape != distances.shape:
            raise ValueError(
                f"calibration needs two 1-D knot lists of equal length, got shapes "
                f"{distances.shape} and {log10_far.shape}"
            )
        if len(distances) < 2:
            raise ValueError(f"calibration needs at least 2 knots, got {len(distances)}")
        if not (np.all(np.isfinite(distances)) and np.all(np.isfinite(log10_far))):
            raise ValueError("calibration knots must be finite numbers")
        if np.any(np.diff(distances) <= 0):
            at = int(np.argmax(np.diff(distances) <= 0))
            raise ValueError(
                f"calibration distances must be strictly increasing: knot {at + 1} "
                f"({distances[at + 1]}) does not exceed knot {at} ({distances[at]})"
            )
        if np.any(np.diff(log10_far) < 0):
            at = int(np.argmax(np.diff(log10_far) < 0))
            raise ValueError(
                f"calibration log10 FAR must be non-decreasing in distance: knot {at + 1} "
                f"({log10_far[at + 1]}) is below knot {at} ({log10_far[at]})"
            )
        if log10_far[-1] > 0:
            raise ValueError(f"calibration log10 FAR must be <= 0 (FAR <= 1), got {log10_far[-1]}")
        distances.flags.writeable = False
        log10_far.flags.writeable = False
        object.__setattr__(self, "distances", distances)
        object.__setattr__(self, "log10_far", log10_far)

    @classmethod
    def from_file(cls, path: Path = DEFAULT_CALIBRATION) -> ScoreCalibration:
        """Read the knot table (``knots.distance``, ``knots.log10_far``) of a calibration JSON.

        Raises:
            ValueError: the file is missing, not JSON, lacks the table, or the table is not
                monotone; the message names the file.
        """
        path = Path(path)
        try:
            knots = json.loads(path.read_text())["knots"]
            return cls(np.asarray(knots["distance"]), np.asarray(knots["log10_far"]))
        except FileNotFoundError as error:
            raise ValueError(f"score calibration {path} not found") from error
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"score calibration {path} is not valid JSON: {error}") from error
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"score calibration {path} has no knots.distance / knots.log10_far table"
            ) from error
        except ValueError as error:
            raise ValueError(f"score calibration {path}: {error}") from error

    def _end_slopes(self) -> tuple[float, float]:
        d, f = self.distances, self.log10_far
        return (f[1] - f[0]) / (d[1] - d[0]), (f[-1] - f[-2]) / (d[-1] - d[-2])

    def log10_far_at(self, distance) -> float | np.ndarray:
        """log10 FAR at a distance (scalar or array), at most 0."""
        d = np.asarray(distance, dtype=np.float64)
        low, high = self._end_slopes()
        first, last = self.distances[0], self.distances[-1]
        values = np.interp(d, self.distances, self.log10_far)
        values = np.where(d < first, self.log10_far[0] + low * (d - first), values)
        values = np.where(d > last, self.log10_far[-1] + high * (d - last), values)
        return _like(distance, np.minimum(values, 0.0))

    def far(self, distance) -> float | np.ndarray:
        """False-accept rate at a distance: the impostor pairs' share at or below it."""
        return _like(distance, 10.0 ** np.asarray(self.log10_far_at(distance)))

    def score(self, distance) -> float | np.ndarray:
        """The contract's verification score, (3 - log10 FAR) / 10 clipped to [0, 1]."""
        log10_far = np.asarray(self.log10_far_at(distance))
        return _like(distance, np.clip((3.0 - log10_far) / 10.0, 0.0, 1.0))

    def compare(self, a: np.ndarray, b: np.ndarray) -> float:
        """The score of two descriptors: their Euclidean distance, calibrated."""
        return float(self.score(float(np.linalg.norm(np.asarray(a) - np.asarray(b)))))

    def compare_all(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Scores of every descriptor in `first` [N, D] against every one in `second` [M, D]."""
        distances = np.linalg.norm(first[:, None, :] - second[None, :, :], axis=-1)
        return np.asarray(self.score(distances))

    def distance_at(self, score: float) -> float:
        """The distance whose score is `score`: a threshold on the score as a distance.

        Raises:
            ValueError: `score` is outside what any distance can give (below the score at
                FAR = 1, or beyond a flat end of the table).
        """
        target = 3.0 - 10.0 * float(score)
        lowest, highest = float(self.log10_far[0]), float(self.log10_far[-1])
        if target > 0.0 or not np.isfinite(target):
            raise ValueError(f"no distance has score {score}: FAR would exceed 1")
        if lowest <= target <= highest:
            rising = np.concatenate([[True], np.diff(self.log10_far) > 0])
            return float(np.interp(target, self.log10_far[rising], self.distances[rising]))
        low, high = self._end_slopes()
        slope, anchor_far, anchor_d = (
            (low, lowest, self.distances[0]) if target < lowest
            else (high, highest, self.distances[-1])
        )
        if slope <= 0:
            raise ValueError(f"no distance has score {score}: the table is flat beyond its end")
        return float(anchor_d + (target - anchor_far) / slope)
