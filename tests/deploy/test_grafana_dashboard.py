"""deploy/grafana/facegate.json: a well-formed dashboard whose queries are valid PromQL and cover
what an operator watches. Whether the metric names exist is checked against a live scrape in
tests/integration/test_deploy_metric_names.py."""

from __future__ import annotations

import pytest

from tests.deploy.files import (
    GPU_ONLY_METRICS,
    adapter_queries,
    dashboard,
    dashboard_panels,
    dashboard_queries,
    metric_names,
    promql,
    queried_metric_names,
)


def test_dashboard_has_an_identity_and_unique_panel_ids():
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids))


def test_panels_sit_on_the_24_column_grid_without_overlapping():
    cells: set[tuple[int, int]] = set()
    for panel in dashboard_panels():
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                   for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered


def test_every_query_uses_the_dashboards_prometheus_datasource_variable():
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == reference and target["expr"], panel["title"]


def test_every_dashboard_and_autoscaler_query_is_valid_promql():
    for expr in dashboard_queries() + adapter_queries():
        assert metric_names(expr), expr  # parses, and selects at least one metric


def test_dashboard_shows_what_the_issue_asks_for():
    """Request rate and p99 by endpoint, error codes, Triton queue time and average batch,
    GPU utilisation."""
    by_title = {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in dashboard_panels()}

    def panel_using(*names: str) -> str:
        for title, exprs in by_title.items():
            if any(set(names) <= metric_names(promql(e)) for e in exprs):
                return title
        raise AssertionError(f"no panel queries {names}")

    assert "endpoint" in str(by_title[panel_using("facegate_requests_total")])
    assert "0.99" in str(by_title[panel_using("facegate_request_duration_seconds_bucket")])
    assert any('code!="1000"' in e for exprs in by_title.values() for e in exprs)
    panel_using("nv_inference_queue_duration_us", "nv_inference_request_success")
    panel_using("nv_inference_count", "nv_inference_exec_count")
    panel_using("nv_gpu_utilization")


def test_gpu_only_allow_list_holds_only_queried_triton_gpu_metrics():
    assert GPU_ONLY_METRICS <= queried_metric_names()
    assert all(name.startswith("nv_gpu_") for name in GPU_ONLY_METRICS)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (code) (rate(facegate_requests_total{code!="1000", le="x"}[5m]))',
         {"facegate_requests_total"}),
        ("a_b offset 5m / on(model) group_left(version) clamp_min(sum without (le) (c:d), 1)",
         {"a_b", "c:d"}),
        ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))", {"x_bucket"}),
    ],
)
def test_metric_names_are_read_from_the_parsed_query(expr: str, names: set[str]):
    assert metric_names(promql(expr)) == names


def test_an_unknown_template_variable_or_bad_promql_is_refused():
    with pytest.raises(ValueError):
        promql("rate(x[$interval_typo])")
    with pytest.raises(ValueError):
        metric_names("sum(rate(x[5m])")
