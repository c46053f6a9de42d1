"""Active liveness: did the head make the challenge's moves, in order and in time?

The moves are those the five YuNet landmarks can verify (`preprocessing.quality`'s
`pose_of_landmarks`): yaw (turn left or right) and pitch (look up or down). Directions are
the person's own, on an unmirrored camera image: a person turning to their left shows the nose
to the image's right, yaw > 0.

A move counts relative to the pose the capture starts with (median of its first frames), so a
camera placed a little to the side does not do half a turn for the user. Between two moves the
head must come back towards that start, so one long turn cannot count twice; each move must
come within `STEP_S` of the previous one (or of the start). docs/capture.md gives the numbers'
reasons.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Action(Enum):
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    LOOK_UP = "look_up"
    LOOK_DOWN = "look_down"


INSTRUCTIONS = {
    Action.TURN_LEFT: "Turn your head to your left",
    Action.TURN_RIGHT: "Turn your head to your right",
    Action.LOOK_UP: "Look up",
    Action.LOOK_DOWN: "Look down",
}

YAW_DEG = 18.0
"""A turn: yaw this far from the start. Live clips that were not asked to turn drift up to
±12 deg from their start (d10, d13, d18, d20); a deliberate turn in d12 and d3 reaches 20-35."""
PITCH_DEG = 12.0
"""A nod: pitch this far from the start (the landmark pitch is flatter than yaw: a clear nod
in the shared clips reads 10-15 deg)."""
NEUTRAL_FRACTION = 0.5
"""Back towards the start: within half a move's angle, between two moves."""
BASELINE_FRAMES = 3
START_DEG = 20.0
"""The capture must start facing the camera (yaw and pitch within this): from a face already
turned far away the landmark pose is unreliable (s32 starts at -40 deg and reads a 'turn'
of 22 deg from landmark noise alone)."""
STEP_S = 4.0
"""The longest a move may take after the previous one (the page allows 3.5 s per step)."""
MIN_ACTIONS, MAX_ACTIONS, DEFAULT_ACTIONS = 1, 3, 2


@dataclass(frozen=True)
class PoseSample:
    """The subject's head pose in one frame: seconds, degrees."""

    timestamp_s: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class StepResult:
    action: Action
    done: bool
    at_s: float | None = None


@dataclass(frozen=True)
class ChallengeResult:
    """Attributes:
    passed: every move seen, in order, each within `STEP_S` of the one before.
    steps: each move and when it was seen (None: not seen).
    """

    passed: bool
    steps: tuple[StepResult, ...]


def _offset(sample: PoseSample, base: PoseSample, action: Action) -> float:
    """How far the sample has moved in the action's direction, as a fraction of the move."""
    if action is Action.TURN_LEFT:
        return (sample.yaw - base.yaw) / YAW_DEG
    if action is Action.TURN_RIGHT:
        return (base.yaw - sample.yaw) / YAW_DEG
    if action is Action.LOOK_UP:
        return (sample.pitch - base.pitch) / PITCH_DEG
    return (base.pitch - sample.pitch) / PITCH_DEG


def _neutral(sample: PoseSample, base: PoseSample) -> bool:
    return (
        abs(sample.yaw - base.yaw) < NEUTRAL_FRACTION * YAW_DEG
        and abs(sample.pitch - base.pitch) < NEUTRAL_FRACTION * PITCH_DEG
    )


def baseline(samples: Sequence[PoseSample]) -> PoseSample:
    """The start pose: per angle, the median of the first `BASELINE_FRAMES` samples."""
    first = sorted(samples, key=lambda s: s.timestamp_s)[:BASELINE_FRAMES]
    return PoseSample(first[0].timestamp_s, statistics.median_high(s.yaw for s in first),
                      statistics.median_high(s.pitch for s in first))


def check_challenge(samples: Sequence[PoseSample], actions: Sequence[Action]) -> ChallengeResult:
    """Walk the samples in time order, looking for each action after the one before (none
    is seen when the capture does not start facing the camera)."""
    ordered = sorted(samples, key=lambda s: s.timestamp_s)
    base = baseline(ordered) if ordered else None
    if base is None or max(abs(base.yaw), abs(base.pitch)) > START_DEG:
        return ChallengeResult(False, tuple(StepResult(a, False) for a in actions))
    steps: list[StepResult] = []
    position, since_s, needs_neutral = 0, base.timestamp_s, False
    for action in actions:
        found = None
        for index in range(position, len(ordered)):
            sample = ordered[index]
            if sample.timestamp_s - since_s > STEP_S:
                break
            if needs_neutral:
                needs_neutral = not _neutral(sample, base)
                continue
            if _offset(sample, base, action) >= 1.0:
                found = index
                break
        if found is None:
            break
        steps.append(StepResult(action, True, ordered[found].timestamp_s))
        position, since_s, needs_neutral = found + 1, ordered[found].timestamp_s, True
    steps += [StepResult(a, False) for a in actions[len(steps):]]
    return ChallengeResult(all(s.done for s in steps), tuple(steps))


def action_of(yaw: float, pitch: float) -> Action | None:
    """The move a single pose shows against a frontal start (the page's progress, not the
    decision): the largest one past its angle."""
    pose, frontal = PoseSample(0.0, yaw, pitch), PoseSample(0.0, 0.0, 0.0)
    reach = {action: _offset(pose, frontal, action) for action in Action}
    action = max(reach, key=reach.get)
    return action if reach[action] >= 1.0 and math.isfinite(reach[action]) else None


def random_challenge(count: int = DEFAULT_ACTIONS, rng: random.Random | None = None
                     ) -> tuple[Action, ...]:
    """`count` actions, no action twice in a row, drawn with a CSPRNG by default."""
    rng = rng or random.SystemRandom()
    actions: list[Action] = []
    while len(actions) < count:
        choice = rng.choice([a for a in Action if not actions or a is not actions[-1]])
        actions.append(choice)
    return tuple(actions)


def parse_actions(text: str) -> tuple[Action, ...]:
    """``"turn_left,turn_right"`` -> the actions.

    Raises:
        ValueError: an unknown action, the same action twice in a row, or a count outside
            `MIN_ACTIONS`..`MAX_ACTIONS`.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = {a.value: a for a in Action}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown action {unknown[0]!r}; known: {', '.join(known)}")
    actions = tuple(known[n] for n in names)
    if not MIN_ACTIONS <= len(actions) <= MAX_ACTIONS:
        raise ValueError(
            f"{len(actions)} actions; a challenge has {MIN_ACTIONS} to {MAX_ACTIONS}"
        )
    if any(a is b for a, b in zip(actions, actions[1:], strict=False)):
        raise ValueError("the same action twice in a row")
    return actions
