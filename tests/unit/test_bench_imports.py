"""Every benchmark module imports without the bench extra: `make test` installs only the test
extra, and a module-level matplotlib import kept a fresh clone's suite from collecting."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import benchmarks

pytestmark = pytest.mark.unit


def test_every_benchmark_module_imports_without_matplotlib():
    names = sorted(m.name for m in pkgutil.walk_packages(benchmarks.__path__, "benchmarks."))
    assert "benchmarks.load.report" in names
    code = ("import importlib, sys\n"
            "sys.modules['matplotlib'] = None  # import matplotlib raises ImportError\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
