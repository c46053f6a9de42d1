"""Where the benchmarks find the project, write their results and read the shared data."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
DATA = REPO_ROOT.parent / "shared" / "data"
"""The shared photos and videos (../shared/data): read in place, never copied."""
