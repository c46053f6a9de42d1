"""Where the benchmarks find the project, write their results and read the shared data."""

from __future__ import annotations

import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
DATA = REPO_ROOT.parent / "shared" / "data"
"""The shared photos and videos (../shared/data): read in place, never copied."""


def write_results(name: str, report: dict, page: str) -> None:
    """`results/<name>.json` (the figures) and `results/<name>.md` (the page), and the page on
    stdout."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(page)
    print(page)
