"""deploy/compose: the file is valid Compose, and its parts (HAProxy, Prometheus, Grafana) point
at services, ports and files that exist; and it is a production configuration: API keys
required, TLS terminated at HAProxy, /metrics on a port of its own that is published nowhere,
a drain that the load balancer's checks and Docker's stop timeout both leave time for, the
legacy fixed-IV form off unless the operator turns it on, liveness sessions shared by every
replica (one operator secret, one Redis that only the frontends reach).

Validation uses `compose-spec` (Python bindings of the `compose_spec` Rust crate), which
parses a file the way the Compose Specification defines it and rejects unknown keys and
ill-typed values. It parses after interpolation, as Docker Compose does.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from compose_spec import PyCompose

from frontend.api.middleware import REQUEST_ID_HEADER
from frontend.config import PREFIX, Settings, SettingsError
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

ENV = {
    "FACEGATE_AES_KEY": "k" * 32,
    "FACEGATE_API_KEYS_FILE": "/srv/facegate/api-keys.json",
    "HAPROXY_PEM_FILE": "/srv/facegate/tls.pem",
    "FACEGATE_SESSION_SECRET": "s" * 64,  # the length of openssl rand -base64 48
}
"""What the operator must provide (compose.yaml's ``${VAR:?...}``): each one is required."""

DRAIN_MARGIN_S = 5.0
"""Time left, past the drain delay and timeout, for the process to exit before SIGKILL."""


def _load(environ: dict[str, str]) -> dict:
    document = load_compose(COMPOSE_FILE.read_text(), environ)
    return PyCompose.from_json(json.dumps(document)).to_dict()


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load(ENV)


def _frontend_settings(compose: dict) -> Settings:
    """The settings a frontend replica starts with (every value as the server parses it)."""
    return Settings.from_env(compose["services"]["frontend"]["environment"])


def _seconds(duration: str) -> float:
    """A Compose duration (``45s``, ``1m30s``, ``500ms``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def _secret_paths(compose: dict, service: str) -> dict[str, str]:
    """Secret name -> the path it is mounted at in the service (Compose: /run/secrets/<target>)."""
    paths = {}
    for entry in compose["services"][service].get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        target = source if isinstance(entry, str) else entry.get("target", source)
        paths[source] = target if target.startswith("/") else f"/run/secrets/{target}"
    return paths


def _published_targets(service: dict) -> set[int]:
    """Container ports published on the host."""
    targets = set()
    for mapping in service.get("ports", []):
        target = mapping["target"] if isinstance(mapping, dict) else str(mapping).rsplit(":", 1)[1]
        targets.add(int(target))
    return targets


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
    assert set(compose["services"]) == {
        "triton", "frontend", "redis", "lb", "prometheus", "grafana",
    }


def test_third_party_images_are_pinned_to_a_release_tag(compose):
    """Images not built here name a release (``v2.55.1``, ``3.0-alpine``), never ``latest``."""
    for service in compose["services"].values():
        if "build" in service:
            continue
        image, _, tag = service["image"].rpartition(":")
        assert image and re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[\w.-]+)?", tag), service["image"]


def test_compose_needs_keys_a_session_secret_and_a_certificate_from_the_operator():
    text = COMPOSE_FILE.read_text()
    required = {name for name, op in variables(text).items() if op in ("?", ":?")}
    assert required == set(ENV)
    assert all(op is not None for op in variables(text).values()), "every other one has a default"
    for name in ENV:  # each one alone stops Compose
        with pytest.raises(MissingVariable, match=name):
            load_compose(text, {k: v for k, v in ENV.items() if k != name})


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
        for secret in _secret_paths(compose, name):
            assert secret in compose.get("secrets", {}), f"{name}: secret {secret} is not declared"
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
    assert host == "frontend" and int(port) == _frontend_settings(compose).port
    assert int(port) in _exposed_ports(frontend)
    assert int(slots) >= frontend["deploy"]["replicas"]
    assert "check" in options.split() and "resolvers docker" in options
    assert re.search(r"^\s*option httpchk GET /readyz$", config, re.M)
    assert re.search(r"^\s*http-check expect status 200$", config, re.M)


def test_load_balancer_terminates_tls_and_serves_no_plain_http(compose):
    """HTTPS only: a client set to http:// would send its key and payload in clear before a
    redirect could reach it, so there is no plain listener to redirect from."""
    lb = compose["services"]["lb"]
    config = HAPROXY_FILE.read_text()
    binds = re.findall(r"^\s*bind (.*)$", config, re.M)
    assert len(binds) == 1, binds
    ((port, certificate),) = re.findall(r"^:(\d+) ssl crt (\S+)(?: |$)", binds[0])
    # The certificate is the operator's file, mounted as a secret, never one in the repository.
    assert _secret_paths(compose, "lb") == {"tls-pem": certificate}
    assert compose["secrets"]["tls-pem"]["file"] == ENV["HAPROXY_PEM_FILE"]
    assert _published_targets(lb) == {int(port)}
    mapping = lb["ports"][0]
    published = mapping["published"] if isinstance(mapping, dict) else mapping.split(":")[0]
    assert str(published) == "443"
    assert re.search(r"^\s*ssl-default-bind-options ssl-min-ver TLSv1\.2\b", config, re.M)
    assert re.search(r'^\s*http-response set-header Strict-Transport-Security "max-age=\d+', config,
                     re.M)
    assert re.search(r"^\s*http-request set-header X-Forwarded-Proto https$", config, re.M)
    assert re.search(r"^\s*option forwardfor$", config, re.M)


def test_load_balancer_logs_the_frontends_request_id():
    """The frontends see HAProxy's address, HAProxy the client's: its log line carries the
    request id the frontend answered with, so one id leads from the edge to the server log."""
    config = HAPROXY_FILE.read_text()
    (length,) = re.findall(r"^\s*declare capture response len (\d+)$", config, re.M)
    (header,) = re.findall(r"^\s*http-response capture res\.hdr\(([\w-]+)\) id 0$", config, re.M)
    assert header == REQUEST_ID_HEADER
    assert int(length) >= len(uuid.uuid4().hex)  # the ids are uuid4 hex (middleware.request_ids)


def test_frontends_require_api_keys_from_an_operator_file(compose):
    settings = _frontend_settings(compose)
    assert settings.require_api_keys is True
    (path,) = _secret_paths(compose, "frontend").values()
    assert settings.api_keys_file == path
    (name,) = _secret_paths(compose, "frontend")
    assert compose["secrets"][name]["file"] == ENV["FACEGATE_API_KEYS_FILE"]
    # The secret is the keys file alone: the AES key and the certificate are not the frontends'.
    assert name != "tls-pem"


def test_legacy_fixed_iv_form_is_off_unless_the_operator_turns_it_on(compose):
    assert _frontend_settings(compose).allow_legacy_iv is False
    turned_on = _load({**ENV, "FACEGATE_ALLOW_LEGACY_IV": "true", "FACEGATE_AES_IV": "i" * 12})
    settings = _frontend_settings(turned_on)
    assert settings.allow_legacy_iv is True and settings.aes_iv == "i" * 12


def test_metrics_have_their_own_port_on_the_compose_network_and_are_published_nowhere(compose):
    settings = _frontend_settings(compose)
    assert settings.metrics_port and settings.metrics_port != settings.port
    # Reachable from Prometheus' container, not only from the replica's own loopback.
    assert settings.metrics_host == "0.0.0.0"
    assert settings.metrics_port in _exposed_ports(compose["services"]["frontend"])
    for name, service in compose["services"].items():
        assert settings.metrics_port not in _published_targets(service), name
    assert not _published_targets(compose["services"]["frontend"])  # nor the API port
    jobs = load_yaml(PROMETHEUS_FILE)["scrape_configs"]
    (job,) = [j for j in jobs if j["job_name"] == "facegate"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["port"] == settings.metrics_port


def test_drain_outlasts_the_load_balancers_checks_and_fits_before_sigkill(compose):
    """SIGTERM: /readyz 503 for the drain delay, during which HAProxy's checks take the replica
    out; then the in-flight requests' timeout; Docker kills at stop_grace_period."""
    settings = _frontend_settings(compose)
    config = HAPROXY_FILE.read_text()
    (defaults,) = re.findall(r"^\s*default-server (.*)$", config, re.M)
    options = dict(re.findall(r"(inter|fall|rise) (\S+)", defaults))
    assert settings.drain_delay_s >= int(options["fall"]) * _seconds(options["inter"])
    grace = _seconds(compose["services"]["frontend"]["stop_grace_period"])
    assert grace >= settings.drain_delay_s + settings.drain_timeout_s + DRAIN_MARGIN_S
    # A request allowed to finish during the drain is not cut off by HAProxy first.
    (server_timeout,) = re.findall(r"^\s*timeout server (\S+)$", config, re.M)
    assert _seconds(server_timeout) > settings.drain_timeout_s


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
    assert frontend["port"] == _frontend_settings(compose).metrics_port
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


def _service_networks(service: dict) -> set[str]:
    networks = service.get("networks", ["default"])
    return set(networks) if isinstance(networks, (list, dict)) else {networks}


def test_frontends_share_liveness_sessions_through_redis(compose):
    """One secret for every replica (a session opened on one is verified by another) and one
    store for the sessions' single use and results; replicas wait for Redis to answer."""
    settings = _frontend_settings(compose)
    assert settings.session_secret == ENV["FACEGATE_SESSION_SECRET"]
    url = urlsplit(settings.session_store)
    assert url.scheme == "redis" and url.hostname == "redis" and url.path == "/0"
    services = compose["services"]
    assert url.port in _exposed_ports(services["redis"])
    assert services["frontend"]["depends_on"]["redis"]["condition"] == "service_healthy"
    check = services["redis"]["healthcheck"]["test"]  # CMD-SHELL comes back as one string
    assert "redis-cli ping" in (check if isinstance(check, str) else " ".join(check))
    assert settings.session_ttl_s == 120


def test_a_short_session_secret_stops_the_frontends(compose):
    turned_short = _load({**ENV, "FACEGATE_SESSION_SECRET": "s" * 31})
    with pytest.raises(SettingsError, match="SESSION_SECRET"):
        _frontend_settings(turned_short)


def test_redis_is_reachable_by_the_frontends_only_and_published_nowhere(compose):
    services = compose["services"]
    redis = services["redis"]
    assert not _published_targets(redis)
    (network,) = _service_networks(redis)
    # Its network is internal (no route out) and joined by the frontends alone.
    assert compose["networks"][network]["internal"] is True
    members = {name for name, service in services.items() if network in _service_networks(service)}
    assert members == {"redis", "frontend"}
    # The frontends stay on the default network too, where HAProxy, Triton and Prometheus are.
    assert "default" in _service_networks(services["frontend"])


def test_redis_keeps_nothing_on_disk_and_never_evicts_a_claim(compose):
    """Sessions live minutes, so no RDB or AOF; evicting a claim would let a session be used
    twice, so a full Redis must refuse writes (the frontends answer 503) instead."""
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--save"] == "" and options["--appendonly"] == "no"
    assert options["--maxmemory-policy"] == "noeviction"
    assert not redis.get("volumes")
