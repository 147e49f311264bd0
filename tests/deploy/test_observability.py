"""Alert rules and the Grafana dashboard: same file in both places, valid PromQL, known metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml

from ._support import (
    ALERTS_CHART,
    ALERTS_DEPLOY,
    DASHBOARD,
    KNOWN_LABELS,
    METRIC_CATALOGUE,
    metric_names,
)

_SELECTOR_RE = re.compile(r"\b(sidecar_[a-z_]+)\{([^}]*)\}")
_MATCHER_RE = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING_RE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_DURATION_RE = re.compile(r"^[0-9]+[smhd]$")
# Grafana's variables, replaced by something PromQL accepts before parsing.
_GRAFANA_VARS = {"$__rate_interval": "5m", "$namespace": ".*", "$job": ".*"}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS_DEPLOY.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _dashboard_exprs() -> list[str]:
    exprs = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, replacement in _GRAFANA_VARS.items():
                expr = expr.replace(var, replacement)
            exprs.append(expr)
    return exprs


def _all_exprs() -> list[str]:
    return [rule["expr"] for rule in _rules()] + _dashboard_exprs()


def test_chart_and_deploy_alert_files_are_identical() -> None:
    """helm/.../files/alerts.yaml is byte-for-byte deploy/prometheus/alerts.yaml."""
    assert ALERTS_CHART.read_bytes() == ALERTS_DEPLOY.read_bytes()


def test_alert_rules_are_complete() -> None:
    """Each alert has a unique name, a severity, a summary and a description."""
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        assert _DURATION_RE.match(rule.get("for", "0s")), rule["alert"]


def test_alerts_cover_the_failure_modes() -> None:
    """Refresh failures, reauth bursts, stale refresh, upstream 5xx/429, store errors, flapping."""
    exprs = {rule["alert"]: rule["expr"] for rule in _rules()}
    wanted = {
        "SidecarTokenRefreshFailureRatioHigh": "sidecar_token_refresh_total",
        "SidecarReauthBurst": 'reason="reauth"',
        "SidecarNoSuccessfulTokenRefresh": "sidecar_token_refresh_last_success_timestamp_seconds",
        "SidecarUpstream5xxRatioHigh": "sidecar_upstream_requests_total",
        "SidecarUpstreamRateLimited": "sidecar_upstream_rate_limited_total",
        "SidecarSessionStoreErrors": "sidecar_session_store_errors_total",
        "SidecarReadinessFlapping": "kube_pod_container_status_ready",
    }
    for alert, needle in wanted.items():
        assert needle in exprs[alert], alert


@pytest.mark.parametrize("expr", _all_exprs())
def test_promql_parses(expr: str) -> None:
    """Every alert and dashboard expression is valid PromQL (promql-parser, Prometheus' grammar)."""
    promql_parser.parse(expr)


@pytest.mark.parametrize("expr", _all_exprs())
def test_only_catalogue_metrics_are_used(expr: str) -> None:
    """Every sidecar_* name in an expression is one the sidecar exports (shared/CONTRACT.md)."""
    assert metric_names(expr) <= METRIC_CATALOGUE.keys()


@pytest.mark.parametrize("expr", _all_exprs())
def test_only_catalogue_labels_are_used(expr: str) -> None:
    """Label matchers and groupings on sidecar_* metrics name only their catalogue labels."""
    all_labels = KNOWN_LABELS.union(*METRIC_CATALOGUE.values())
    for name, matchers in _SELECTOR_RE.findall(expr):
        base = next(iter(metric_names(name)))
        used = set(_MATCHER_RE.findall(matchers))
        assert used <= METRIC_CATALOGUE[base] | KNOWN_LABELS, (name, used)
    if "sidecar_" in expr:
        for grouping in _GROUPING_RE.findall(expr):
            labels = {label.strip() for label in grouping.split(",") if label.strip()}
            assert labels <= all_labels, labels


def test_dashboard_covers_the_catalogue() -> None:
    """Every catalogue metric appears on at least one dashboard panel."""
    used = set().union(*(metric_names(expr) for expr in _dashboard_exprs()))
    assert used == set(METRIC_CATALOGUE)


def test_dashboard_is_importable() -> None:
    """The dashboard has a stable uid, unique panel ids, and a templated Prometheus datasource."""
    dashboard = _dashboard()
    assert dashboard["uid"] == "atlassian-sidecar"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
