"""Every metric the Grafana dashboard and the Triton autoscaler query (deploy/) is one that
facegate or Triton really exports: checked against a live scrape of this session's server and
embedded Triton, after real requests.

The embedded Triton runs on the CPU, so Triton's GPU metrics cannot appear in its scrape; the
few the dashboard queries are listed in `GPU_ONLY_METRICS` (tests/deploy/files.py) and are
the only names exempt.
"""

from __future__ import annotations

import urllib.request

from frontend.contract.fields import FACE_QUALITY, IMAGE_VERIFICATION
from tests.deploy.files import GPU_ONLY_METRICS, exported_names, queried_metric_names

FIRST = "faces/Barack_Obama/facerec_obama.jpg"
SECOND = "faces/Barack_Obama/facerec_obama2.jpg"


async def test_every_metric_the_dashboard_and_autoscalers_query_is_exported(api, triton, data_dir):
    answer = await api.post(IMAGE_VERIFICATION.path, {
        "first_encrypted_image": api.seal((data_dir / FIRST).read_bytes()),
        "second_encrypted_image": api.seal((data_dir / SECOND).read_bytes()),
    })
    assert answer.code == 1000
    refused = await api.post(FACE_QUALITY.path, {"encrypted_image": api.seal(b"not a photo" * 100)})
    assert refused.code != 1000

    async with api.session.get("/metrics") as response:
        assert response.status == 200
        frontend_text = await response.text()
    with urllib.request.urlopen(triton.metrics_url, timeout=5) as response:
        triton_text = response.read().decode()
    exported = exported_names(frontend_text) | exported_names(triton_text)

    queried = queried_metric_names()
    missing = sorted(queried - exported - GPU_ONLY_METRICS)
    assert not missing, f"queried but exported by neither facegate nor Triton: {missing}"
    # The exemption covers only what this CPU-only Triton cannot show.
    assert not GPU_ONLY_METRICS & exported
