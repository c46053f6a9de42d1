"""Every endpoint fuzzed from the served OpenAPI document (schemathesis, bounded): no input
gets a 500, and every answer is one the document declares (status, body schema, headers).

The server is `python -m frontend` on the session's Triton, as operators run it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from frontend.config import Settings
from frontend.contract.fields import ENDPOINTS
from frontend.contract.openapi import build_openapi
from frontend.contract.sessions import SESSION_ENDPOINTS
from tests.conftest import REPO_ROOT, free_port

SERVER = Settings()
schema = schemathesis.openapi.from_dict(
    build_openapi((*ENDPOINTS, *SESSION_ENDPOINTS), SERVER.photo_limits, SERVER.video_limits,
                  SERVER.max_body_bytes)
)


@pytest.fixture(scope="module")
def base_url(triton) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "FACEGATE_AES_KEY": "k" * 32, "FACEGATE_AES_IV": "i" * 12,
           "FACEGATE_ALLOW_LEGACY_IV": "true", "FACEGATE_PORT": str(port),
           "FACEGATE_HOST": "127.0.0.1", "FACEGATE_TRITON_URL": triton.grpc_url,
           "FACEGATE_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "frontend"], cwd=REPO_ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.2)
    yield url
    process.terminate()
    assert process.wait(timeout=60) == 0


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_fuzzed_input_gets_a_500_or_an_undocumented_answer(case, base_url):
    response = case.call(base_url=base_url, timeout=60)
    assert response.status_code < 500, response.text
    # "Schema-valid data is accepted" cannot hold: no schema can say that a string is a photo
    # sealed under our key; every other check does.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
