"""matplotlib for the benchmarks' plots, imported when a plot is drawn.

matplotlib is the bench extra's (`pip install -e '.[bench]'`, which `make bench` installs); `make
test` installs only the test extra and its unit tests import the benchmark modules, so none of
them may import matplotlib at module level.
"""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """`matplotlib.pyplot` on the file-only Agg backend.

    Raises:
        ImportError: the bench extra is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: Path, dpi: int = 100) -> Path:
    """The figure laid out and written to `path` (PNG), then closed."""
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)
    return path
