"""Shared helpers for the deploy tests: paths, the metric catalogue, chart rendering."""

from __future__ import annotations

import base64
import copy
import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python
import yaml

__all__ = [
    "ALERTS_CHART",
    "ALERTS_DEPLOY",
    "CHART_DIR",
    "CI_DIR",
    "DASHBOARD",
    "DEPLOY_DIR",
    "DOCKERFILE",
    "KNOWN_LABELS",
    "METRIC_CATALOGUE",
    "RELEASE",
    "REPO_ROOT",
    "SCENARIOS",
    "Manifest",
    "ci_values",
    "container",
    "decoded_secret",
    "find",
    "find_all",
    "load_yaml_documents",
    "merge_values",
    "metric_names",
    "render",
    "render_scenario",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "atlassian-sidecar"
CI_DIR = CHART_DIR / "ci"
DEPLOY_DIR = REPO_ROOT / "deploy"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ALERTS_DEPLOY = DEPLOY_DIR / "prometheus" / "alerts.yaml"
ALERTS_CHART = CHART_DIR / "files" / "alerts.yaml"
DASHBOARD = DEPLOY_DIR / "grafana" / "sidecar-dashboard.json"

RELEASE = "rel"
NAMESPACE = "sidecar"
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in CI_DIR.glob("*-values.yaml"))

# shared/CONTRACT.md's metric table (names and labels are fixed there), plus the
# success_no_rotation refresh result the implementation adds.
METRIC_CATALOGUE: Mapping[str, frozenset[str]] = {
    "sidecar_http_requests_total": frozenset({"route", "method", "status"}),
    "sidecar_http_request_duration_seconds": frozenset({"route"}),
    "sidecar_upstream_requests_total": frozenset({"product", "status"}),
    "sidecar_upstream_duration_seconds": frozenset({"product"}),
    "sidecar_upstream_rate_limited_total": frozenset({"product"}),
    "sidecar_logins_total": frozenset({"result"}),
    "sidecar_token_refresh_total": frozenset({"result"}),
    "sidecar_token_refresh_duration_seconds": frozenset(),
    "sidecar_token_refresh_last_success_timestamp_seconds": frozenset(),
    "sidecar_sessions_ended_total": frozenset({"reason"}),
    "sidecar_session_store_errors_total": frozenset({"operation"}),
    "sidecar_open_streams": frozenset({"route"}),
}
# Target labels Prometheus adds when scraping, plus the histogram bucket label.
KNOWN_LABELS = frozenset({"job", "instance", "namespace", "pod", "le"})

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_METRIC_RE = re.compile(r"\bsidecar_[a-z_]+")

Manifest = dict[str, Any]


def metric_names(promql: str) -> set[str]:
    """Every sidecar_* metric named in a PromQL expression, histogram suffixes stripped."""
    names = set()
    for raw in _METRIC_RE.findall(promql):
        name = raw
        for suffix in _HISTOGRAM_SUFFIXES:
            if raw.endswith(suffix) and raw.removesuffix(suffix) in METRIC_CATALOGUE:
                name = raw.removesuffix(suffix)
        names.add(name)
    return names


def load_yaml_documents(text: str) -> list[Manifest]:
    """The non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing for plain maps: override wins, nested maps merge, lists replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_values(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def ci_values(scenario: str) -> dict[str, Any]:
    """The values of ci/<scenario>-values.yaml."""
    loaded = yaml.safe_load((CI_DIR / f"{scenario}-values.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def render(values: Mapping[str, Any]) -> list[Manifest]:
    """Render the chart with the real Helm engine (helm-python-sdk), NOTES.txt left out."""
    with helm_python.Chart.load(CHART_DIR) as chart:
        rendered = chart.render(values=dict(values), name=RELEASE, namespace=NAMESPACE)
    manifests: list[Manifest] = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            manifests.extend(load_yaml_documents(rendered[path]))
    return manifests


@functools.cache
def _render_cached(scenario: str) -> tuple[Manifest, ...]:
    return tuple(render(ci_values(scenario)))


def render_scenario(scenario: str) -> list[Manifest]:
    """Render ci/<scenario>-values.yaml (cached; each call returns fresh copies)."""
    return copy.deepcopy(list(_render_cached(scenario)))


def find_all(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    """Every manifest of one kind."""
    return [m for m in manifests if m.get("kind") == kind]


def find(manifests: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one manifest of a kind (and name, when given)."""
    matches = [
        m for m in find_all(manifests, kind) if name is None or m["metadata"]["name"] == name
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container(deployment: Manifest, name: str = "atlassian-sidecar") -> dict[str, Any]:
    """A named container of a Deployment's pod template."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    matches = [c for c in containers if c["name"] == name]
    assert len(matches) == 1, f"no container {name}"
    found: dict[str, Any] = matches[0]
    return found


def decoded_secret(secret: Manifest) -> dict[str, str]:
    """A Secret's data, base64-decoded."""
    data: dict[str, str] = secret.get("data") or {}
    return {key: base64.b64decode(value).decode() for key, value in data.items()}
