"""Where the benchmarks find the project, write their results and read the shared data."""

from __future__ import annotations

import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
DATA = REPO_ROOT.parent / "shared" / "data"
"""The shared photos and videos (../shared/data): read in place, never copied."""


def write_results(name: str, report: dict, page: str, directory: Path = RESULTS) -> None:
    """`<directory>/<name>.json` (the figures) and `<name>.md` (the page), and the page on
    stdout."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (directory / f"{name}.md").write_text(page)
    print(page)
