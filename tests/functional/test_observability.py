"""Metrics and logs as SREs see them: the contract's metric names, counter deltas for a login,
a refresh, a refusal, a 429 and a store outage, bounded labels only, and the access line.
"""

from __future__ import annotations

import json
import re

import structlog
from prometheus_client.parser import text_string_to_metric_families

from sidecar.metrics import Metrics

from ..harness import SITE_A, Stack

CONTRACT = {
    "sidecar_http_requests_total": {"route", "method", "status"},
    "sidecar_http_request_duration_seconds": {"route"},
    "sidecar_upstream_requests_total": {"product", "status"},
    "sidecar_upstream_duration_seconds": {"product"},
    "sidecar_upstream_rate_limited_total": {"product"},
    "sidecar_logins_total": {"result"},
    "sidecar_token_refresh_total": {"result"},
    "sidecar_token_refresh_duration_seconds": set(),
    "sidecar_token_refresh_last_success_timestamp_seconds": set(),
    "sidecar_sessions_ended_total": {"reason"},
    "sidecar_session_store_errors_total": {"operation"},
    "sidecar_open_streams": {"route"},
}
BOUNDED = re.compile(r"^[a-z_0-9]{1,32}$|^[A-Z]{3,7}$")


def families(metrics: Metrics) -> dict[str, set[str]]:
    """Metric family name -> label names, from the rendered exposition."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        name = family.name + ("_total" if family.type == "counter" else "")
        found[name] = labels
    return found


def test_every_contract_metric_is_exported_with_its_labels() -> None:
    """A fresh registry exports each contract metric, typed, with exactly its labels."""
    metrics = Metrics(with_process_collectors=False)
    metrics.http_requests.labels("auth", "GET", "200").inc()
    metrics.http_duration.labels("auth").observe(0.1)
    metrics.upstream_requests.labels("jira", "200").inc()
    metrics.upstream_duration.labels("jira").observe(0.1)
    metrics.upstream_rate_limited.labels("jira").inc()
    metrics.logins.labels("success").inc()
    metrics.token_refresh.labels("success").inc()
    metrics.sessions_ended.labels("logout").inc()
    metrics.session_store_errors.labels("get").inc()
    metrics.open_streams.labels("mcp").set(0)
    exported = families(metrics)
    for name, labels in CONTRACT.items():
        assert name in exported, name
        assert exported[name] == labels, name
    types = {f.name: f.type for f in text_string_to_metric_families(metrics.render().decode())}
    assert types["sidecar_http_request_duration_seconds"] == "histogram"
    assert types["sidecar_token_refresh_last_success_timestamp_seconds"] == "gauge"
    assert types["sidecar_open_streams"] == "gauge"


def test_process_and_python_collectors_are_included() -> None:
    """The standard process_* and python_* series come with the sidecar's own."""
    text = Metrics().render().decode()
    assert "process_resident_memory_bytes" in text
    assert "python_gc_objects_collected_total" in text


async def test_a_full_run_produces_the_right_deltas_and_bounded_labels(stack: Stack) -> None:
    """Login, proxy, refresh, refusal: counters move as expected and no label is unbounded."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    assert (await sidecar.get(f"/jira/{SITE_A}/rest/api/3/myself")).status == 200
    stack.clock.advance(3600)
    assert (await sidecar.get("/jira/acme/rest/api/3/myself")).status == 200
    stack.emulator.revoke_grant()
    stack.clock.advance(3600)
    assert (await sidecar.get(f"/wiki/{SITE_A}/api/v2/pages")).status == 401
    m = sidecar.metric
    assert m("sidecar_logins_total", result="success") == 1
    assert m("sidecar_token_refresh_total", result="success") == 1
    assert m("sidecar_token_refresh_total", result="rejected") == 1
    assert m("sidecar_sessions_ended_total", reason="reauth") == 1
    assert m("sidecar_upstream_requests_total", product="jira", status="200") == 2
    assert m("sidecar_upstream_requests_total", product="auth", status="200") == 2
    assert m("sidecar_upstream_requests_total", product="auth", status="403") == 1
    assert m("sidecar_http_requests_total", route="jira", method="GET", status="200") == 2
    assert m("sidecar_http_requests_total", route="wiki", method="GET", status="401") == 1
    assert m("sidecar_token_refresh_duration_seconds_count") == 2
    text = sidecar.metrics.render().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for key, value in sample.labels.items():
                if key != "le":
                    assert BOUNDED.match(value), (family.name, key, value)
    for secret in stack.emulator.issued_secrets():
        assert secret not in text
    assert SITE_A not in text
    assert "acme" not in text


async def test_access_line_has_the_fields_and_no_secrets(stack: Stack) -> None:
    """One access line per request with request id, route, method, status and duration."""
    sidecar = await stack.sidecar()
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        await sidecar.login()
        resp = await sidecar.get(
            f"/jira/{SITE_A}/rest/api/3/myself?secret=x", **{"X-Request-ID": "req-123"}
        )
    assert resp.headers["X-Request-ID"] == "req-123"
    lines = [e for e in logs if e["event"] == "request" and e.get("request_id") == "req-123"]
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "jira"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert line["path"] == f"/jira/{SITE_A}/rest/api/3/myself"
    assert line["product"] == "jira"
    assert line["upstream_status"] == 200
    assert line["bytes"] == len(await resp.read())
    dumped = json.dumps(logs, default=str)
    for secret in stack.emulator.issued_secrets():
        assert secret not in dumped
    cookie = sidecar.cookie()
    assert cookie is not None
    assert cookie not in dumped
    assert "secret=x" not in dumped
