"""Prometheus metrics: one object owning its registry and every collector of the contract.

Labels are bounded (route names, methods, status codes, products, results): never a user,
session, cloudId or path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class Metrics:
    """Every metric the sidecar exports, registered on a private registry."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    with_process_collectors: bool = True

    def __post_init__(self) -> None:
        r = self.registry
        if self.with_process_collectors:
            process_collector.ProcessCollector(registry=r)
            platform_collector.PlatformCollector(registry=r)
            gc_collector.GCCollector(registry=r)
        self.http_requests = Counter(
            "sidecar_http_requests",
            "Requests answered, by route group, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "sidecar_http_request_duration_seconds",
            "Time to answer (to the last byte).",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_requests = Counter(
            "sidecar_upstream_requests",
            "Requests sent to Atlassian, by product and status.",
            ["product", "status"],
            registry=r,
        )
        self.upstream_duration = Histogram(
            "sidecar_upstream_duration_seconds",
            "Time until Atlassian's response headers.",
            ["product"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_rate_limited = Counter(
            "sidecar_upstream_rate_limited",
            "429 answers from Atlassian, by product.",
            ["product"],
            registry=r,
        )
        self.logins = Counter(
            "sidecar_logins",
            "Completed login callbacks, by result.",
            ["result"],
            registry=r,
        )
        self.token_refresh = Counter(
            "sidecar_token_refresh",
            "Token refreshes sent to Atlassian, by result.",
            ["result"],
            registry=r,
        )
        self.token_refresh_coalesced = Counter(
            "sidecar_token_refresh_coalesced",
            "Requests that needed a refresh and used one another request ran.",
            registry=r,
        )
        self.token_refresh_duration = Histogram(
            "sidecar_token_refresh_duration_seconds",
            "Duration of token refresh calls.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.token_refresh_last_success = Gauge(
            "sidecar_token_refresh_last_success_timestamp_seconds",
            "Unix time of the last successful refresh in this process.",
            registry=r,
            multiprocess_mode="max",
        )
        self.sessions_ended = Counter(
            "sidecar_sessions_ended",
            "Sessions ended, by reason.",
            ["reason"],
            registry=r,
        )
        self.session_store_errors = Counter(
            "sidecar_session_store_errors",
            "Failed session-store operations.",
            ["operation"],
            registry=r,
        )
        self.open_streams = Gauge(
            "sidecar_open_streams",
            "Responses being streamed right now.",
            ["route"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.upstream_auth_errors = Counter(
            "sidecar_upstream_auth_errors",
            "401s from Atlassian that are not expiry, by kind.",
            ["kind"],
            registry=r,
        )
        self.proxy_rejected = Counter(
            "sidecar_proxy_rejected",
            "Requests refused before reaching Atlassian, by reason.",
            ["reason"],
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
