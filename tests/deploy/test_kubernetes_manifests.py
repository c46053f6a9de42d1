"""deploy/k8s: schema-valid for the Kubernetes versions we state, and wired together as intended.

No cluster here: `kubernetes-validate` checks every object against the OpenAPI schema of a
Kubernetes release (strict: an unknown or misspelt field fails), and the tests below check
what a schema cannot, such as selectors that select nothing or a port that no container opens;
and the production rules: API keys required (from a Secret mounted so that it updates in
place), TLS at the Ingress, /metrics on a port of its own that only Prometheus reaches, a
drain that fits the termination grace period, the legacy fixed-IV form off, liveness sessions
shared by every pod (one Secret, one Redis that only the frontends reach).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from deploy.embedded_triton import _child_environment, _pytriton_dirs
from frontend.api.app import create_app
from frontend.api.auth import key_hash
from frontend.config import PREFIX, Settings, SettingsError
from model_repository.triton_config import TRT_ENGINE_CACHE
from tests.deploy.files import (
    ADAPTER_VALUES,
    COMPOSE_FILE,
    DOCKER,
    K8S_BASE,
    K8S_SECRET_EXAMPLE,
    dockerfile_cmd,
    k8s_object,
    k8s_objects,
    load_yaml,
    load_yaml_documents,
)

KUBERNETES_VERSIONS = ("1.30", "1.37")
"""1.30 is the oldest release we support; 1.37 the newest kubernetes-validate carries."""

MANIFESTS = sorted(p for p in K8S_BASE.glob("*.yaml") if p.name != "kustomization.yaml")
FRONTEND, TRITON, REDIS = "facegate-frontend", "facegate-triton", "facegate-redis"
DEPLOYMENTS = (FRONTEND, TRITON, REDIS)
AES_SECRET, API_KEYS_SECRET, TLS_SECRET = "facegate-aes", "facegate-api-keys", "facegate-tls"
SESSION_SECRET = "facegate-session"
DRAIN_MARGIN_S = 5
"""Seconds left, past the preStop hook, the drain delay and the drain timeout, before SIGKILL."""


def _pod_spec(deployment: str) -> dict:
    return k8s_object("Deployment", deployment)["spec"]["template"]["spec"]


def _container(deployment: str) -> dict:
    (container,) = _pod_spec(deployment)["containers"]
    return container


def _env(deployment: str) -> dict[str, dict]:
    return {e["name"]: e for e in _container(deployment).get("env", [])}


def _mounts(deployment: str) -> dict[str, str]:
    """mountPath -> volume name."""
    return {m["mountPath"]: m["name"] for m in _container(deployment)["volumeMounts"]}


def _volumes(deployment: str) -> dict[str, dict]:
    return {v["name"]: v for v in _pod_spec(deployment)["volumes"]}


def _frontend_settings() -> Settings:
    """The settings a frontend pod starts with, from its literal variables (each value as the
    server parses it; those from Secrets are left at their defaults)."""
    env = {name: e["value"] for name, e in _env(FRONTEND).items() if "value" in e}
    return Settings.from_env(env)


def _example_secret(name: str) -> dict:
    (secret,) = [s for s in load_yaml_documents(K8S_SECRET_EXAMPLE)
                 if s["metadata"]["name"] == name]
    return secret


def _secret_file(deployment: str, path: str) -> tuple[dict, dict]:
    """The Secret volume a file path lies on, and the volume's item for that file."""
    file = Path(path)
    mount = [m for m in _container(deployment)["volumeMounts"]
             if m["mountPath"] == str(file.parent)]
    assert len(mount) == 1, f"{path} is not on one mount"
    # A subPath mount is a copy the kubelet never updates: the reload would never see a change.
    assert "subPath" not in mount[0] and "subPathExpr" not in mount[0]
    volume = _volumes(deployment)[mount[0]["name"]]["secret"]
    (item,) = [i for i in volume["items"] if i["path"] == file.name]
    return volume, item


def _nginx_size(text: str) -> int:
    """An nginx size (``80m``: nginx's k, m and g are powers of 1024) in bytes."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", text).groups()
    return int(number) * 1024 ** " kmg".index(unit.lower() or " ")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", [*MANIFESTS, K8S_SECRET_EXAMPLE], ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schema(path: Path, version: str):
    documents = load_yaml_documents(path)
    assert documents, f"{path.name} holds no object"
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_kustomization_lists_exactly_the_base_manifests():
    """No kustomize here (it is not on PyPI): the kustomization only lists resources, so what
    it renders is these files' objects, which the other tests check."""
    kustomization = load_yaml(K8S_BASE / "kustomization.yaml")
    assert set(kustomization) == {"apiVersion", "kind", "resources"}
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]


def test_every_object_lives_in_the_facegate_namespace():
    for obj in k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "facegate", obj["metadata"]["name"]


def test_deployments_services_autoscalers_and_budgets_select_real_pods():
    pod_labels = {
        name: k8s_object("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        for name in DEPLOYMENTS
    }
    for name, labels in pod_labels.items():
        selector = k8s_object("Deployment", name)["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
    for kind in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        for name in (FRONTEND, TRITON):
            spec = k8s_object(kind, name)["spec"]
            if kind == "HorizontalPodAutoscaler":
                assert spec["scaleTargetRef"] == {
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                }
                continue
            selector = spec["selector"] if kind == "Service" else spec["selector"]["matchLabels"]
            assert selector.items() <= pod_labels[name].items(), f"{kind}/{name}"
    redis_service = k8s_object("Service", REDIS)["spec"]
    assert redis_service["selector"].items() <= pod_labels[REDIS].items()


def test_service_ports_and_scrape_annotations_name_container_ports():
    for name in (FRONTEND, TRITON):
        ports = {p["name"]: p["containerPort"] for p in _container(name)["ports"]}
        for port in k8s_object("Service", name)["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service/{name} port {port['name']}"
        annotations = k8s_object("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in ports.values()
        assert annotations["prometheus.io/path"] == "/metrics"


def test_frontend_reaches_triton_through_its_service_grpc_port():
    url = _env(FRONTEND)["FACEGATE_TRITON_URL"]["value"]
    host, port = url.rsplit(":", 1)
    service = k8s_object("Service", host)
    assert int(port) in {p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"}


def test_only_the_frontend_reaches_tritons_grpc_port():
    policy = k8s_object("NetworkPolicy", TRITON)["spec"]
    triton_labels = k8s_object("Deployment", TRITON)["spec"]["template"]["metadata"]["labels"]
    frontend_labels = k8s_object("Deployment", FRONTEND)["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= triton_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    grpc_rules = [r for r in policy["ingress"] if {"grpc"} & {p["port"] for p in r["ports"]}]
    assert len(grpc_rules) == 1
    (source,) = grpc_rules[0]["from"]
    assert set(source) == {"podSelector"}  # same namespace, no namespaceSelector, no ipBlock
    assert source["podSelector"]["matchLabels"].items() <= frontend_labels.items()
    # Every other rule opens the metrics port only.
    opened = {p["port"] for r in policy["ingress"] if r is not grpc_rules[0] for p in r["ports"]}
    assert opened == {"metrics"}


def test_triton_runs_on_a_gpu_node_and_is_ready_on_v2_health_ready():
    container, pod = _container(TRITON), _pod_spec(TRITON)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    gpu_taint = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert gpu_taint in pod["tolerations"]
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    http = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert f"--http-port={http}" in container["args"]


def test_frontend_is_ready_on_readyz_and_alive_on_healthz():
    container = _container(FRONTEND)
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_every_container_has_cpu_and_memory_requests_and_limits():
    for name in DEPLOYMENTS:
        resources = _container(name)["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[bound].keys(), f"{name} {bound}"


def test_frontend_thread_pool_matches_its_cpu_limit():
    cpus = int(_container(FRONTEND)["resources"]["limits"]["cpu"])
    assert int(_env(FRONTEND)["FACEGATE_CPU_WORKERS"]["value"]) == cpus


def test_pods_meet_the_restricted_pod_security_standard():
    namespace = k8s_object("Namespace", "facegate")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}
    for name in DEPLOYMENTS:
        pod = _pod_spec(name)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= allowed_volumes, volume["name"]
        security = _container(name)["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}


def test_aes_keys_come_from_the_secret_and_never_from_a_manifest():
    secret = _example_secret(AES_SECRET)
    env = _env(FRONTEND)
    assert "FACEGATE_AES_KEY" not in env
    volume, item = _secret_file(FRONTEND, env["FACEGATE_AES_KEY_FILE"]["value"])
    assert volume["secretName"] == AES_SECRET and item["key"] in secret["stringData"]
    iv = env["FACEGATE_AES_IV"]["valueFrom"]["secretKeyRef"]
    assert iv["name"] == AES_SECRET and iv["key"] in secret["stringData"]
    # Nothing in the kustomization carries a key: the Secrets are created by the operator.
    assert all(o["kind"] != "Secret" for o in k8s_objects())


def test_example_secret_cannot_start_a_server(tmp_path):
    """Its placeholders are not valid keys, so applying the example fails closed."""
    secret = _example_secret(AES_SECRET)["stringData"]
    keys = tmp_path / "keys"
    keys.write_text(secret["aes-keys"])
    with pytest.raises(SettingsError):
        Settings(aes_key_file=str(keys)).keyring()
    with pytest.raises(SettingsError):
        Settings(aes_key="k" * 32, aes_iv=secret["aes-iv"]).keyring()


def test_frontends_require_api_keys_from_a_secret_updated_in_place():
    settings = _frontend_settings()
    assert settings.require_api_keys is True
    volume, item = _secret_file(FRONTEND, settings.api_keys_file)
    assert volume["secretName"] == API_KEYS_SECRET
    assert item["key"] in _example_secret(API_KEYS_SECRET)["stringData"]
    assert "optional" not in volume or volume["optional"] is False  # no Secret, no pod


def test_example_api_keys_secret_cannot_start_a_server(tmp_path):
    """The example's key hash is a placeholder: a server given it refuses to start, whereas
    the same file with a real hash in its place starts."""
    example = _example_secret(API_KEYS_SECRET)["stringData"]["api-keys.json"]
    keys = tmp_path / "keys.json"
    keys.write_text(example)
    settings = Settings(aes_key="k" * 32, triton_url="facegate-triton:8001",
                        require_api_keys=True, api_keys_file=str(keys))
    with pytest.raises(SettingsError, match="API_KEYS_FILE"):
        create_app(settings)
    keys.write_text(example.replace("sha256:REPLACE-ME", key_hash("a real key")))
    create_app(settings)  # the placeholder, and only it, stopped the server
    # And without the Secret's file at all, FACEGATE_REQUIRE_API_KEYS stops it too.
    with pytest.raises(SettingsError, match="REQUIRE_API_KEYS"):
        create_app(Settings(aes_key="k" * 32, triton_url="facegate-triton:8001",
                            require_api_keys=True))


def test_legacy_fixed_iv_form_is_off():
    assert _frontend_settings().allow_legacy_iv is False


def test_metrics_have_their_own_port_that_only_prometheus_scrapes():
    settings = _frontend_settings()
    container = _container(FRONTEND)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.port, "metrics": settings.metrics_port}
    assert settings.metrics_host == "0.0.0.0"  # reachable from Prometheus' pod
    annotations = k8s_object("Deployment", FRONTEND)["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == settings.metrics_port
    # Neither the Service nor the Ingress carries the metrics port.
    assert {p["targetPort"] for p in k8s_object("Service", FRONTEND)["spec"]["ports"]} == {"http"}


def test_drain_fits_in_the_termination_grace_period():
    """Deletion: the endpoint is removed while preStop sleeps (the pod still serves), then
    SIGTERM: requests still routed here get 503 for the drain delay, then requests in progress
    get the drain timeout; the kubelet kills at terminationGracePeriodSeconds, counted from
    the start of preStop."""
    settings = _frontend_settings()
    command = _container(FRONTEND)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = float(command[1])
    assert settings.drain_delay_s > 0
    grace = _pod_spec(FRONTEND)["terminationGracePeriodSeconds"]
    assert grace >= pre_stop_s + settings.drain_delay_s + settings.drain_timeout_s + DRAIN_MARGIN_S


def test_ingress_terminates_tls_and_routes_to_the_api_port_only():
    ingress = k8s_object("Ingress", FRONTEND)["spec"]
    assert ingress["ingressClassName"]
    (tls,) = ingress["tls"]
    assert tls["secretName"] == TLS_SECRET
    service_ports = {p["name"] for p in k8s_object("Service", FRONTEND)["spec"]["ports"]}
    for rule in ingress["rules"]:
        assert rule["host"] in tls["hosts"], "every host is served over TLS"
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == FRONTEND and backend["port"]["name"] in service_ports
            assert backend["port"]["name"] == "http"
    assert "defaultBackend" not in ingress


def test_ingress_limits_match_the_frontends():
    annotations = k8s_object("Ingress", FRONTEND)["metadata"]["annotations"]
    settings = _frontend_settings()
    nginx = "nginx.ingress.kubernetes.io/"
    assert _nginx_size(annotations[nginx + "proxy-body-size"]) == settings.max_body_bytes
    # A request allowed to finish during a drain is not cut off by the proxy first.
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[nginx + timeout]) > settings.drain_timeout_s
    assert annotations[nginx + "ssl-redirect"] == "true"


def test_only_the_ingress_controller_and_prometheus_reach_the_frontends():
    policy = k8s_object("NetworkPolicy", FRONTEND)["spec"]
    labels = k8s_object("Deployment", FRONTEND)["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    opened = {}
    for rule in policy["ingress"]:
        (source,) = rule["from"]
        assert set(source) == {"namespaceSelector"}  # no ipBlock, no whole-cluster podSelector
        (namespace,) = source["namespaceSelector"]["matchLabels"].items()
        assert namespace[0] == "kubernetes.io/metadata.name"
        for port in rule["ports"]:
            opened.setdefault(port["port"], set()).add(namespace[1])
    assert opened == {"http": {"ingress-nginx"}, "metrics": {"monitoring"}}
    container_ports = {p["name"] for p in _container(FRONTEND)["ports"]}
    assert set(opened) == container_ports


def test_frontend_variables_are_server_settings_and_tritons_are_the_entrypoints():
    known = {f"{PREFIX}{name.upper()}" for name in Settings.__dataclass_fields__}
    assert set(_env(FRONTEND)) <= known
    entrypoint = (DOCKER / "triton-entrypoint.sh").read_text()
    for variable in _env(TRITON):
        assert f"${{{variable}" in entrypoint, f"{variable} is not read by the entrypoint"


def test_triton_cache_volumes_sit_where_the_image_entrypoint_links_the_engines():
    env, mounts, volumes = _env(TRITON), _mounts(TRITON), _volumes(TRITON)
    models_cache = env["FACEGATE_MODELS_CACHE"]["value"]
    assert f"{models_cache}/trt" == TRT_ENGINE_CACHE  # the path the native configs name
    assert "emptyDir" in volumes[mounts[models_cache]]
    cache_root = env["FACEGATE_TRT_CACHE_ROOT"]["value"]
    claim = volumes[mounts[cache_root]]["persistentVolumeClaim"]["claimName"]
    pvc = k8s_object("PersistentVolumeClaim", claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_triton_autoscaler_metric_is_one_the_adapter_rules_serve():
    rules = load_yaml(ADAPTER_VALUES)["rules"]
    served = {rule["name"]["as"] for rule in rules["custom"]}
    for metric in k8s_object("HorizontalPodAutoscaler", TRITON)["spec"]["metrics"]:
        assert metric["type"] == "Pods"
        assert metric["pods"]["metric"]["name"] in served
    for rule in rules["custom"]:
        assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


def test_frontend_autoscaler_scales_on_cpu():
    (metric,) = k8s_object("HorizontalPodAutoscaler", FRONTEND)["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"


def _tritonserver_help() -> str:
    """``tritonserver --help`` of the 2.51 binary the tests run (the 24.10 image's release)."""
    server_dir, libs_dir = _pytriton_dirs()
    result = subprocess.run(
        [str(server_dir / "bin" / "tritonserver"), "--help"],
        env=_child_environment(libs_dir), capture_output=True, text=True, timeout=60,
    )
    return result.stdout + result.stderr


def test_triton_arguments_are_flags_of_tritonserver_2_51():
    args = _container(TRITON)["args"]
    assert args == dockerfile_cmd(DOCKER / "Dockerfile.triton"), "k8s and the image disagree"
    assert args[0] == "tritonserver"
    usage = _tritonserver_help()
    for arg in args[1:]:
        flag = arg.split("=", 1)[0]
        assert f"  {flag} <" in usage or f"  {flag}\n" in usage, f"{flag} unknown to tritonserver"


def test_images_are_ours_or_pinned_to_a_release_tag():
    """Ours are tagged with facegate's version (an overlay sets the registry); others name a
    release, the same one compose runs, never ``latest``."""
    for name in DEPLOYMENTS:
        image, _, tag = _container(name)["image"].rpartition(":")
        assert image and re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[\w.-]+)?", tag), name
    compose = load_yaml(COMPOSE_FILE)
    assert _container(REDIS)["image"] == compose["services"]["redis"]["image"]


def test_kustomization_carries_redis_its_service_and_its_network_policy():
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        k8s_object(kind, REDIS)  # exactly one of each


def test_frontend_shares_liveness_sessions_through_the_redis_service():
    """Every pod verifies the others' tokens (one secret, from the Secret; no Secret, no pod)
    and claims each session once in the same Redis."""
    env = _env(FRONTEND)
    secret = env["FACEGATE_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret["name"] == SESSION_SECRET
    assert secret["key"] in _example_secret(SESSION_SECRET)["stringData"]
    assert secret.get("optional", False) is False
    assert "value" not in env["FACEGATE_SESSION_SECRET"]
    settings = _frontend_settings()
    url = urlsplit(settings.session_store)
    assert url.scheme == "redis" and url.path == "/0"
    assert url.hostname == REDIS
    service = k8s_object("Service", url.hostname)["spec"]
    ports = {p["port"]: p["targetPort"] for p in service["ports"]}
    container_ports = {p["name"]: p["containerPort"] for p in _container(REDIS)["ports"]}
    assert container_ports[ports[url.port]] == 6379


def test_example_session_secret_cannot_start_a_server():
    placeholder = _example_secret(SESSION_SECRET)["stringData"]["session-secret"]
    with pytest.raises(SettingsError, match="SESSION_SECRET"):
        Settings(session_secret=placeholder)


def test_frontend_pods_get_no_service_link_variables():
    """Kubernetes would set FACEGATE_REDIS_PORT, FACEGATE_TRITON_SERVICE_HOST... for the
    namespace's Services, which the server would take for misspelt settings."""
    assert _pod_spec(FRONTEND)["enableServiceLinks"] is False


def test_only_the_frontend_reaches_redis():
    policy = k8s_object("NetworkPolicy", REDIS)["spec"]
    redis_labels = k8s_object("Deployment", REDIS)["spec"]["template"]["metadata"]["labels"]
    frontend_labels = k8s_object("Deployment", FRONTEND)["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= redis_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert set(source) == {"podSelector"}  # same namespace, no namespaceSelector, no ipBlock
    admitted = source["podSelector"]["matchLabels"].items()
    assert admitted <= frontend_labels.items()
    for other in (TRITON, REDIS):  # the frontends' pods only, not every facegate pod
        labels = k8s_object("Deployment", other)["spec"]["template"]["metadata"]["labels"]
        assert not admitted <= labels.items(), f"{other} pods reach Redis"
    assert rule["ports"] == [{"protocol": "TCP", "port": "redis"}]
    container_ports = {p["name"]: p["containerPort"] for p in _container(REDIS)["ports"]}
    assert container_ports == {"redis": 6379}


def test_redis_is_one_pod_that_keeps_nothing_on_disk_and_never_evicts_a_claim():
    """One pod, replaced not rolled (two behind the Service would each accept a session once);
    no RDB or AOF; a full Redis refuses writes (503) rather than evict a claim, which would let
    a session be used twice; probes ask redis-cli ping."""
    spec = k8s_object("Deployment", REDIS)["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    container = _container(REDIS)
    args = container["args"]
    assert args[0] == "redis-server"
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert options["--save"] == "" and options["--appendonly"] == "no"
    assert options["--maxmemory-policy"] == "noeviction"
    maxmemory = int(options["--maxmemory"].removesuffix("mb")) * 1024**2
    limit = container["resources"]["limits"]["memory"]
    assert maxmemory < int(limit.removesuffix("Mi")) * 1024**2
    assert all("persistentVolumeClaim" not in v for v in _pod_spec(REDIS)["volumes"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert "redis-cli ping" in " ".join(container[probe]["exec"]["command"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
