"""The one identity split every evaluation uses: a *fit* half and a *held-out* half.

Anything fitted to the shared data (the score calibration, a liveness cue's line, a size band)
sees the fit half only; the figures a bank reads are measured on the held-out half, whose people
no fit has seen. The split is by person, so no photo or clip of a held-out person informs a fit
through another file of the same person, and it is a hash of the person's name: stable across
runs and machines, and the same person is in the same half in every evaluation (an identity's
photos in the calibration and the still photos of that person held up to a camera in the
liveness evaluation).
"""

from __future__ import annotations

import hashlib

HALVES = ("fit", "held_out")


def half_of(identity: str) -> str:
    """``fit`` or ``held_out``, from the first byte of the SHA-256 of the identity's name."""
    return "fit" if hashlib.sha256(identity.encode()).digest()[0] % 2 == 0 else "held_out"
