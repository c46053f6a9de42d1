"""Shared fixtures: where the shared data and weights are, and markers by test tier."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
DATA = SHARED / "data"
WEIGHTS = Path(os.environ.get("FACEGATE_WEIGHTS_DIR", SHARED / "models"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if f"{os.sep}tests{os.sep}unit{os.sep}" in path:
            item.add_marker(pytest.mark.unit)
        elif f"{os.sep}tests{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)


def system_tool(name: str) -> str:
    """The path of a Debian tool the tests drive (`make test` installs it): a test without it
    skips, except under CI, where it fails: CI must never pass without running it."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs Debian's {name})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared test data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    if not WEIGHTS.is_dir():
        pytest.skip(f"weights directory not found at {WEIGHTS} (set FACEGATE_WEIGHTS_DIR)")
    return WEIGHTS


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free port, nothing persisted (the liveness-session store),
    up for longer than the store's clock slack: sessions opened in a Redis's first ~2 s are
    refused (`frontend.service.session_store.CLOCK_SLACK_S`)."""
    with redis_server() as url:
        time.sleep(2.1)
        yield url


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Start a redis-server (nothing persisted) and stop it on leaving; its URL."""
    binary = system_tool("redis-server")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
