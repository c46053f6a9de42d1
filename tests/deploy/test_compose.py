"""deploy/compose: the file is valid Compose, and its parts (HAProxy, Prometheus, Grafana) point
at services, ports and files that exist.

Validation uses `compose-spec` (Python bindings of the `compose_spec` Rust crate), which
parses a file the way the Compose Specification defines it and rejects unknown keys and
ill-typed values. It parses after interpolation, as Docker Compose does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from compose_spec import PyCompose

from frontend.config import PREFIX, Settings
from tests.deploy.compose import MissingVariable, load_compose, variables
from tests.deploy.files import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    DASHBOARD_FILE,
    DOCKER,
    GRAFANA_DATASOURCES,
    GRAFANA_PROVIDERS,
    HAPROXY_FILE,
    PROMETHEUS_FILE,
    dashboard,
    dockerfile_cmd,
    load_yaml,
)

ENV = {"FACEGATE_AES_KEY": "k" * 32}


@pytest.fixture(scope="module")
def compose() -> dict:
    document = load_compose(COMPOSE_FILE.read_text(), ENV)
    return PyCompose.from_json(json.dumps(document)).to_dict()


def _exposed_ports(service: dict) -> set[int]:
    ports = {int(p) for p in service.get("expose", [])}
    for mapping in service.get("ports", []):
        target = mapping["target"] if isinstance(mapping, dict) else str(mapping).rsplit(":", 1)[1]
        ports.add(int(target))
    return ports


def _bind_mounts(service: dict) -> dict[Path, str]:
    """Host path -> container path of the service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[(COMPOSE_DIR / source).resolve()] = target
    return mounts


def test_compose_file_is_valid_under_the_compose_specification(compose):
    assert set(compose["services"]) == {"triton", "frontend", "lb", "prometheus", "grafana"}


def test_compose_needs_only_an_aes_key_from_the_operator():
    text = COMPOSE_FILE.read_text()
    required = {name for name, op in variables(text).items() if op in ("?", ":?")}
    assert required == {"FACEGATE_AES_KEY"}
    assert all(op is not None for op in variables(text).values()), "every other one has a default"
    with pytest.raises(MissingVariable):
        load_compose(text, {})


def test_every_reference_in_the_compose_file_resolves(compose):
    services, volumes = compose["services"], set(compose.get("volumes", {}))
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in volumes, f"{name}: volume {source} is not declared"
        for host_path in _bind_mounts(service):
            assert host_path.exists(), f"{name}: {host_path} does not exist"
        if "build" in service:
            context = (COMPOSE_DIR / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
        assert "image" in service, f"{name}: every service names its image (pinned or built)"


def test_triton_gets_a_gpu_and_frontends_wait_for_it_to_be_healthy(compose):
    triton, frontend = compose["services"]["triton"], compose["services"]["frontend"]
    (device,) = triton["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert frontend["depends_on"]["triton"]["condition"] == "service_healthy"
    host, port = frontend["environment"]["FACEGATE_TRITON_URL"].split(":")
    assert host == "triton" and int(port) in _exposed_ports(triton)
    assert frontend["deploy"]["replicas"] >= 2
    known = {f"{PREFIX}{name.upper()}" for name in Settings.__dataclass_fields__}
    assert set(frontend["environment"]) <= known


def test_frontend_thread_pool_matches_its_cpu_limit(compose):
    frontend = compose["services"]["frontend"]
    cpus = float(frontend["deploy"]["resources"]["limits"]["cpus"])
    assert int(frontend["environment"]["FACEGATE_CPU_WORKERS"]) == cpus


def test_load_balancer_spreads_over_ready_frontend_replicas(compose):
    lb, frontend = compose["services"]["lb"], compose["services"]["frontend"]
    config = HAPROXY_FILE.read_text()
    assert _bind_mounts(lb)[HAPROXY_FILE.resolve()] == "/usr/local/etc/haproxy/haproxy.cfg"
    (template,) = re.findall(r"^\s*server-template \S+ (\d+) (\S+):(\d+) (.*)$", config, re.M)
    slots, host, port, options = template
    assert host == "frontend" and int(port) in _exposed_ports(frontend)
    assert int(slots) >= frontend["deploy"]["replicas"]
    assert "check" in options.split() and "resolvers docker" in options
    assert re.search(r"^\s*option httpchk GET /readyz$", config, re.M)
    (bind,) = re.findall(r"^\s*bind :(\d+)$", config, re.M)
    assert int(bind) in _exposed_ports(lb) and "3000" in str(lb["ports"][0])


def test_prometheus_scrapes_every_frontend_replica_and_triton(compose):
    services = compose["services"]
    prometheus = load_yaml(PROMETHEUS_FILE)
    assert _bind_mounts(services["prometheus"])[PROMETHEUS_FILE.resolve()] == (
        "/etc/prometheus/prometheus.yml"
    )
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert len(jobs) == len(prometheus["scrape_configs"]), "job names are unique"
    # Every replica, not one of them: DNS service discovery lists each replica's address.
    (frontend,) = jobs["facegate"]["dns_sd_configs"]
    assert frontend["names"] == ["frontend"] and frontend["type"] == "A"
    assert frontend["port"] in _exposed_ports(services["frontend"])
    (triton,) = jobs["triton"]["static_configs"]
    for target in triton["targets"]:
        host, port = target.split(":")
        assert int(port) in _exposed_ports(services[host])
    assert f"--metrics-port={port}" in dockerfile_cmd(DOCKER / "Dockerfile.triton")
    for job in jobs.values():
        assert job.get("metrics_path", "/metrics") == "/metrics"


def test_grafana_provisions_prometheus_and_the_dashboard(compose):
    grafana = compose["services"]["grafana"]
    mounts = _bind_mounts(grafana)
    (datasource,) = load_yaml(GRAFANA_DATASOURCES)["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert 9090 in _exposed_ports(compose["services"]["prometheus"])
    assert mounts[GRAFANA_DATASOURCES.parent.resolve()] == "/etc/grafana/provisioning/datasources"
    assert mounts[GRAFANA_PROVIDERS.parent.resolve()] == "/etc/grafana/provisioning/dashboards"
    (provider,) = load_yaml(GRAFANA_PROVIDERS)["providers"]
    assert Path(mounts[DASHBOARD_FILE.resolve()]).parent == Path(provider["options"]["path"])
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    assert variable["current"]["value"] == datasource["uid"]


def test_monitoring_ports_listen_on_the_loopback_interface_only(compose):
    for name in ("prometheus", "grafana"):
        for mapping in compose["services"][name]["ports"]:
            host_ip = mapping["host_ip"] if isinstance(mapping, dict) else mapping.split(":")[0]
            assert host_ip == "127.0.0.1", name
