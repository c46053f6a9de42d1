"""The real tritonserver with the real models, started once per test session on free ports."""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deploy.embedded_triton import (
    DEFAULT_MODEL_REPOSITORY,
    EmbeddedTriton,
    EmbeddedTritonConfig,
    TritonPorts,
)
from frontend.config import Settings
from frontend.crypto import KeyRing
from frontend.inference.triton import TritonModels
from frontend.service.faces import FacePipeline
from frontend.service.stages import Stages
from tests.conftest import free_port
from tests.integration.http import Api, serving

EMBEDDED_REPOSITORY = DEFAULT_MODEL_REPOSITORY


@pytest.fixture(scope="session")
def model_repository() -> Path:
    if not (EMBEDDED_REPOSITORY / ".built").is_file():
        pytest.fail("models are not built: run `make models` (make test does it first)")
    return EMBEDDED_REPOSITORY


@pytest.fixture(scope="session")
def triton(model_repository: Path) -> Iterator[EmbeddedTriton]:
    config = EmbeddedTritonConfig(
        model_repository=model_repository,
        ports=TritonPorts(free_port(), free_port(), free_port()),
    )
    with EmbeddedTriton(config) as server:
        yield server


@pytest.fixture(scope="session")
async def models(triton: EmbeddedTriton) -> AsyncIterator[TritonModels]:
    client = TritonModels(triton.grpc_url, timeout_s=60)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def cpu_pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


@pytest.fixture(scope="session")
def pipeline(models: TritonModels, cpu_pool) -> FacePipeline:
    return FacePipeline(models, Stages(cpu_pool))


# --- the facegate server over real HTTP, on the session's Triton -------------------------------

SAMPLE_KEY = "dcbbad6765e14139a07d34b92292a672"
"""The SenseID manual's sample key and IV: what a migrating client is configured with."""
SAMPLE_IV = "df25d188a061"
TEST_MAX_BODY_BYTES = 24 * 1024 * 1024


@pytest.fixture(scope="session")
def keyring() -> KeyRing:
    return KeyRing.from_strings([SAMPLE_KEY], SAMPLE_IV)


@pytest.fixture(scope="session")
def server_settings(triton: EmbeddedTriton) -> Settings:
    return Settings(
        triton_url=triton.grpc_url, triton_timeout_s=60, aes_key=SAMPLE_KEY, aes_iv=SAMPLE_IV,
        allow_legacy_iv=True,
        max_body_bytes=TEST_MAX_BODY_BYTES, cpu_workers=2,
    )


@pytest.fixture(scope="session")
async def api(server_settings: Settings, keyring: KeyRing) -> AsyncIterator[Api]:
    async with serving(server_settings, keyring) as api:
        yield api
