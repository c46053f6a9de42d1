"""The deployment files under deploy/, loaded once for the tests, and the metric names they query.

Kept apart from the tests so that the live-scrape test in tests/integration (which needs the
session's Triton) reads the very same queries as the file checks here.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
DOCKER = DEPLOY / "docker"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
PROMETHEUS_FILE = COMPOSE_DIR / "prometheus.yml"
HAPROXY_FILE = COMPOSE_DIR / "haproxy.cfg"
GRAFANA_DATASOURCES = COMPOSE_DIR / "grafana" / "datasources" / "prometheus.yaml"
GRAFANA_PROVIDERS = COMPOSE_DIR / "grafana" / "dashboards" / "facegate.yaml"
DASHBOARD_FILE = DEPLOY / "grafana" / "facegate.json"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_SECRET_EXAMPLE = DEPLOY / "k8s" / "secret.example.yaml"
ADAPTER_VALUES = DEPLOY / "k8s" / "monitoring" / "prometheus-adapter-values.yaml"
NATIVE_REPOSITORY = REPO_ROOT / "model_repository" / "native"

GPU_ONLY_METRICS = frozenset({
    "nv_gpu_utilization",
    "nv_gpu_memory_used_bytes",
    "nv_gpu_memory_total_bytes",
})
"""Names the dashboard queries that only a Triton with GPUs exports.

Triton's metrics documentation (``docs/metrics.md`` of triton-inference-server/server, table
"GPU Utilization" and "GPU Memory": per GPU, labelled ``gpu_uuid``, switched off by
``--allow-gpu-metrics=false``) lists them. The embedded Triton of the tests runs on the CPU
and exports none of them, so the live scrape cannot confirm them; every other queried name is
checked against the scrape.
"""

_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
# The adapter's query templates, filled the way the adapter fills them for a Pods metric.
_ADAPTER_TEMPLATES = {
    "<<.GroupBy>>": "pod",
    "<<.LabelMatchers>>": 'namespace="facegate",pod=~"facegate-triton-.*"',
    "<<.Series>>": "nv_inference_queue_duration_us",
}


@functools.cache
def load_yaml_documents(path: Path) -> tuple[Any, ...]:
    return tuple(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)


def load_yaml(path: Path) -> Any:
    (document,) = load_yaml_documents(path)
    return document


@functools.cache
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text())


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    panels = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def promql(expr: str) -> str:
    """A Grafana or adapter query as the PromQL Prometheus finally receives."""
    for variable, value in {**_GRAFANA_VARIABLES, **_ADAPTER_TEMPLATES}.items():
        expr = expr.replace(variable, value)
    if re.search(r"\$\w|<<", expr):
        raise ValueError(f"unknown template variable in {expr!r}")
    return expr


def dashboard_queries() -> list[str]:
    return [promql(t["expr"]) for p in dashboard_panels() for t in p.get("targets", [])]


def adapter_queries() -> list[str]:
    rules = load_yaml(ADAPTER_VALUES)["rules"]["custom"]
    return [promql(rule[key]) for rule in rules for key in ("seriesQuery", "metricsQuery")]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (parsed, so labels and functions are not names).

    Raises:
        ValueError: the expression is not valid PromQL.
    """
    names: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def queried_metric_names() -> set[str]:
    """Every metric name the dashboard and the autoscaler's adapter rules query."""
    return {name for expr in dashboard_queries() + adapter_queries() for name in metric_names(expr)}


def exported_names(exposition: str) -> set[str]:
    """The series names a scrape lets a query select.

    A family is declared by its ``# TYPE`` line even before it has samples (prometheus_client
    shows a labelled metric's TYPE at once, its samples only once a label set is used), and a
    histogram ``x`` is queried as ``x_bucket``, ``x_sum`` and ``x_count``. The names are read as
    written there, since the parser drops a counter's ``_total`` from the family name.
    """
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE):
        names.add(name)
        if kind in ("histogram", "summary"):
            names.update(f"{name}_{suffix}" for suffix in ("sum", "count"))
        if kind == "histogram":
            names.add(f"{name}_bucket")
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
    return names


def k8s_objects() -> list[dict[str, Any]]:
    """Every object of the kustomization's manifests."""
    kustomization = load_yaml(K8S_BASE / "kustomization.yaml")
    return [
        doc for name in kustomization["resources"] for doc in load_yaml_documents(K8S_BASE / name)
    ]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def dockerfile_cmd(path: Path) -> list[str]:
    """The exec-form CMD of a Dockerfile."""
    (cmd,) = [args for name, args in dockerfile_instructions(path) if name == "CMD"]
    return json.loads(cmd)
