"""The Helm chart, rendered by the real Helm engine for every ci/*-values.yaml scenario."""

from __future__ import annotations

from typing import Any

import helm_python
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from ._support import (
    ALERTS_CHART,
    CHART_DIR,
    RELEASE,
    SCENARIOS,
    Manifest,
    ci_values,
    container,
    decoded_secret,
    find,
    find_all,
    merge_values,
    render,
    render_scenario,
)

FULLNAME = f"{RELEASE}-atlassian-sidecar"
SECRET_DIR = "/var/run/secrets/sidecar"
# Session keys as in ci/*-values.yaml (the sidecar wants 32 characters or more each).
KEY_ONE = "ci-session-key-one-0123456789abcdef01"
KEY_TWO = "ci-session-key-two-0123456789abcdef02"
KEY_NEW = "ci-session-key-new-0123456789abcdef00"
SECRET_FILE_VARS = {
    "SIDECAR_CLIENT_ID_FILE": "client-id",
    "SIDECAR_CLIENT_SECRET_FILE": "client-secret",
    "SIDECAR_SECRET_KEYS_FILE": "secret-keys",
    "SIDECAR_REDIS_URL_FILE": "redis-url",
}
# The chart's kubeVersion floor and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
# Custom resources whose schemas kubernetes-validate does not ship (it covers built-in kinds
# only); they get structural assertions of their own below instead.
CRD_KINDS = frozenset({"ServiceMonitor", "PrometheusRule"})


def _sidecar(manifests: list[Manifest]) -> Manifest:
    return find(manifests, "Deployment", FULLNAME)


def _annotations(manifests: list[Manifest]) -> dict[str, str]:
    annotations: dict[str, str] = _sidecar(manifests)["spec"]["template"]["metadata"]["annotations"]
    return annotations


def _env(manifests: list[Manifest]) -> dict[str, Any]:
    return {e["name"]: e for e in container(_sidecar(manifests))["env"]}


def _pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _projected_sources(manifests: list[Manifest]) -> list[dict[str, Any]]:
    volumes = {v["name"]: v for v in _sidecar(manifests)["spec"]["template"]["spec"]["volumes"]}
    sources: list[dict[str, Any]] = volumes["secrets"]["projected"]["sources"]
    return sources


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_lint_passes(scenario: str) -> None:
    """`helm lint --strict` reports no warnings or errors for the scenario's values."""
    report = helm_python.lint(CHART_DIR, values=ci_values(scenario), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems, problems
    assert not report["errors"]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_manifests_match_kubernetes_schemas(scenario: str, kube_version: str) -> None:
    """Every rendered built-in object validates strictly against the Kubernetes OpenAPI schema."""
    manifests = render_scenario(scenario)
    assert manifests
    for manifest in manifests:
        if manifest["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(manifest, kube_version, strict=True)


def test_schema_validation_is_live() -> None:
    """kubernetes-validate rejects an unknown field, so the checks above are not vacuous."""
    deployment = _sidecar(render_scenario("default"))
    container(deployment)["securityContext"]["runAsRoot"] = False
    with pytest.raises(kubernetes_validate.ValidationError, match="runAsRoot"):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


def test_scenarios_cover_the_documented_cases() -> None:
    """ci/ holds one values file per deployment scenario the chart supports."""
    assert set(SCENARIOS) >= {
        "default",
        "existing-secret",
        "sentinel",
        "cluster",
        "bundled-redis",
        "production",
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_security_context_is_restricted(scenario: str) -> None:
    """The sidecar runs as UID 10001, non-root, read-only, no privilege escalation, no caps."""
    deployment = _sidecar(render_scenario(scenario))
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    ctx = container(deployment)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 10001
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 - a path in the container


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_probes_and_ports(scenario: str) -> None:
    """Liveness hits /livez and readiness /readyz on the http port; both ports are exposed."""
    manifests = render_scenario(scenario)
    sidecar = container(_sidecar(manifests))
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/livez"
    service = find(manifests, "Service", FULLNAME)
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "http": 8080,
        "metrics": 9090,
    }
    config = find(manifests, "ConfigMap", FULLNAME)["data"]
    assert config["SIDECAR_LISTEN"] == "0.0.0.0:8080"
    assert config["SIDECAR_METRICS_LISTEN"] == "0.0.0.0:9090"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_grace_period_exceeds_shutdown_timeout(scenario: str) -> None:
    """Kubernetes waits longer than the preStop sleep plus the sidecar's own drain."""
    manifests = render_scenario(scenario)
    pod = _sidecar(manifests)["spec"]["template"]["spec"]
    shutdown = float(find(manifests, "ConfigMap", FULLNAME)["data"]["SIDECAR_SHUTDOWN_TIMEOUT"])
    pre_stop = container(_sidecar(manifests))["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > shutdown + int(pre_stop[1])


def test_grace_period_too_short_is_refused() -> None:
    """Values whose grace period would cut the drain short fail to render, naming the problem."""
    values = merge_values(ci_values("default"), {"terminationGracePeriodSeconds": 20})
    with pytest.raises(helm_python.HelmRenderError, match="terminationGracePeriodSeconds"):
        render(values)


def test_missing_credentials_and_redis_are_all_reported() -> None:
    """Without credentials or a Redis choice the chart refuses to render and lists every gap."""
    with pytest.raises(helm_python.HelmRenderError) as excinfo:
        render({})
    message = str(excinfo.value)
    for needle in ("auth.clientId", "auth.clientSecret", "auth.secretKeys", "redis: choose one"):
        assert needle in message


def test_two_redis_choices_are_refused() -> None:
    """Choosing two Redis modes at once fails instead of silently preferring one."""
    values = merge_values(ci_values("default"), {"redis": {"bundled": {"enabled": True}}})
    with pytest.raises(helm_python.HelmRenderError, match="choose only one"):
        render(values)


def test_default_scenario_has_two_replicas_and_a_pdb() -> None:
    """By default two replicas run, guarded by a PodDisruptionBudget, without an HPA."""
    manifests = render_scenario("default")
    assert _sidecar(manifests)["spec"]["replicas"] == 2
    pdb = find(manifests, "PodDisruptionBudget", FULLNAME)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == _sidecar(manifests)["spec"]["selector"]["matchLabels"]
    )
    assert not find_all(manifests, "HorizontalPodAutoscaler")
    for kind in ("Ingress", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"):
        assert not find_all(manifests, kind), kind


def test_default_scenario_spreads_pods() -> None:
    """Without explicit constraints, pods spread softly across nodes and zones."""
    pod = _sidecar(render_scenario("default"))["spec"]["template"]["spec"]
    keys = {c["topologyKey"]: c["whenUnsatisfiable"] for c in pod["topologySpreadConstraints"]}
    assert keys == {
        "kubernetes.io/hostname": "ScheduleAnyway",
        "topology.kubernetes.io/zone": "ScheduleAnyway",
    }


def test_production_scenario_enables_every_option() -> None:
    """HPA (replicas then left to it), PDB, Ingress, NetworkPolicy and monitoring all render."""
    manifests = render_scenario("production")
    assert "replicas" not in _sidecar(manifests)["spec"]
    hpa = find(manifests, "HorizontalPodAutoscaler", FULLNAME)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert hpa["spec"]["scaleTargetRef"]["name"] == FULLNAME
    find(manifests, "PodDisruptionBudget", FULLNAME)
    find(manifests, "NetworkPolicy", FULLNAME)
    assert container(_sidecar(manifests))["image"].endswith(
        "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )


def test_ingress_streams_sse_unbuffered() -> None:
    """The Ingress turns off nginx buffering and allows long-lived streams."""
    ingress = find(render_scenario("production"), "Ingress", FULLNAME)
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": FULLNAME, "port": {"name": "http"}}


def test_service_monitor_scrapes_the_metrics_port() -> None:
    """The ServiceMonitor selects the sidecar Service's metrics port and fixes the job label."""
    manifests = render_scenario("production")
    monitor = find(manifests, "ServiceMonitor", FULLNAME)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = find(manifests, "Service", FULLNAME)
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    # The alert rules select job="atlassian-sidecar"; jobLabel takes it from this Service label.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "atlassian-sidecar"


def test_prometheus_rule_carries_the_alert_file() -> None:
    """The PrometheusRule's groups are exactly files/alerts.yaml's groups."""
    rule = find(render_scenario("production"), "PrometheusRule", FULLNAME)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    expected = yaml.safe_load(ALERTS_CHART.read_text(encoding="utf-8"))
    assert rule["spec"] == expected


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secrets_are_files_referenced_by_file_variables(scenario: str) -> None:
    """Credentials reach the container only as mounted files named by SIDECAR_*_FILE."""
    manifests = render_scenario(scenario)
    env = _env(manifests)
    for name, filename in SECRET_FILE_VARS.items():
        assert env[name] == {"name": name, "value": f"{SECRET_DIR}/{filename}"}
        assert name.removesuffix("_FILE") not in env
    assert not any("valueFrom" in e for e in env.values()), "no secretKeyRef env values"
    mounts = {m["mountPath"]: m for m in container(_sidecar(manifests))["volumeMounts"]}
    assert mounts[SECRET_DIR]["name"] == "secrets"
    assert mounts[SECRET_DIR]["readOnly"] is True
    paths = {
        item["path"] for src in _projected_sources(manifests) for item in src["secret"]["items"]
    }
    assert paths == set(SECRET_FILE_VARS.values())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_secret_value_in_the_config_map(scenario: str) -> None:
    """No value stored in the chart's Secret appears in the ConfigMap or the pod spec."""
    manifests = render_scenario(scenario)
    config = find(manifests, "ConfigMap", FULLNAME)["data"]
    assert not any(key.endswith("_FILE") for key in config)
    secrets = find_all(manifests, "Secret")
    pod_spec = yaml.safe_dump(_sidecar(manifests)["spec"]["template"])
    values = ci_values(scenario)
    candidates = {v for s in secrets for v in decoded_secret(s).values()}
    candidates |= {
        str(values.get("auth", {}).get(k, "")) for k in ("clientSecret", "secretKeys")
    } - {""}
    for secret_value in candidates:
        for setting in config.values():
            assert secret_value not in setting
        assert secret_value not in pod_spec


def test_chart_secret_holds_credentials_and_redis_url() -> None:
    """Without existingSecret the chart's Secret holds the credentials and the Redis URL."""
    manifests = render_scenario("default")
    data = decoded_secret(find(manifests, "Secret", FULLNAME))
    assert data == {
        "client-id": "ci-client-id",
        "client-secret": "ci-client-secret-value",
        "secret-keys": f"{KEY_ONE},{KEY_TWO}",
        "redis-url": "redis://:ci-redis-password@redis.example.internal:6379/0",
    }
    assert {s["secret"]["name"] for s in _projected_sources(manifests)} == {FULLNAME}


def test_existing_secret_uses_configured_key_names() -> None:
    """With existingSecret the chart makes no Secret and maps the configured keys to files."""
    manifests = render_scenario("existing-secret")
    assert not find_all(manifests, "Secret")
    by_name = {s["secret"]["name"]: s["secret"]["items"] for s in _projected_sources(manifests)}
    assert by_name == {
        "sidecar-credentials": [
            {"key": "ATLASSIAN_CLIENT_ID", "path": "client-id"},
            {"key": "ATLASSIAN_CLIENT_SECRET", "path": "client-secret"},
            {"key": "SESSION_KEYS", "path": "secret-keys"},
        ],
        "sidecar-redis": [{"key": "url", "path": "redis-url"}],
    }
    config = find(manifests, "ConfigMap", FULLNAME)["data"]
    assert config["SIDECAR_ALLOWED_ORIGINS"] == "https://app.example.com,https://admin.example.com"


def test_existing_auth_secret_with_chart_made_redis_url() -> None:
    """existingSecret for credentials still lets the chart store a Redis URL of its own."""
    manifests = render_scenario("production")
    assert decoded_secret(find(manifests, "Secret", FULLNAME)) == {
        "redis-url": "rediss://:ci-redis-password@redis.example.internal:6380/2"
    }


def test_sentinel_url_is_built_from_hosts_and_master() -> None:
    """redis.sentinel builds redis+sentinel://h1:p,h2:p,h3:p/master."""
    manifests = render_scenario("sentinel")
    url = decoded_secret(find(manifests, "Secret", FULLNAME))["redis-url"]
    assert url == (
        "redis+sentinel://redis-sentinel-0.redis-sentinel:26379,"
        "redis-sentinel-1.redis-sentinel:26379,"
        "redis-sentinel-2.redis-sentinel:26379/sidecar-master"
    )
    assert find(manifests, "ConfigMap", FULLNAME)["data"]["SIDECAR_REDIS_CLUSTER"] == "false"


def test_sentinel_password_is_escaped_into_the_url() -> None:
    """A Sentinel master password goes into the Secret's URL, percent-escaped."""
    values = merge_values(ci_values("sentinel"), {"redis": {"sentinel": {"password": "p@ss/w"}}})
    url = decoded_secret(find(render(values), "Secret", FULLNAME))["redis-url"]
    assert url.startswith("redis+sentinel://:p%40ss%2Fw@redis-sentinel-0.redis-sentinel:26379,")


def test_cluster_mode_sets_the_cluster_flag() -> None:
    """redis.cluster sets SIDECAR_REDIS_CLUSTER=true and keeps the seed URL in the Secret."""
    manifests = render_scenario("cluster")
    assert find(manifests, "ConfigMap", FULLNAME)["data"]["SIDECAR_REDIS_CLUSTER"] == "true"
    url = decoded_secret(find(manifests, "Secret", FULLNAME))["redis-url"]
    assert url == "rediss://:ci-redis-password@redis-cluster.example.internal:6379"


def test_bundled_redis_is_hardened_and_labelled_evaluation_only() -> None:
    """The bundled Redis is one non-persistent, non-root pod, marked evaluation-only."""
    manifests = render_scenario("bundled-redis")
    name = f"{FULLNAME}-redis"
    redis = find(manifests, "Deployment", name)
    assert redis["metadata"]["labels"]["app.kubernetes.io/component"] == "redis-evaluation-only"
    assert redis["metadata"]["annotations"]["atlassian-sidecar/evaluation-only"] == "true"
    assert redis["spec"]["replicas"] == 1
    pod = redis["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    ctx = container(redis, "redis")["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert find(manifests, "Service", name)["spec"]["ports"][0]["port"] == 6379
    url = decoded_secret(find(manifests, "Secret", FULLNAME))["redis-url"]
    assert url == f"redis://{name}:6379/0"
    # The sidecar's Service must not select the Redis pod, nor the other way round.
    sidecar_selector = find(manifests, "Service", FULLNAME)["spec"]["selector"]
    assert not sidecar_selector.items() <= _pod_labels(redis).items()
    isolation = find(manifests, "NetworkPolicy", name)
    assert isolation["spec"]["policyTypes"] == ["Ingress", "Egress"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_checksum_annotations_present(scenario: str) -> None:
    """The pod template carries sha256 checksums of the ConfigMap and the Secret."""
    annotations = _annotations(render_scenario(scenario))
    for key in ("checksum/config", "checksum/secret"):
        assert len(annotations[key]) == 64
        int(annotations[key], 16)


def test_config_change_rolls_only_the_config_checksum() -> None:
    """Changing a setting changes checksum/config and leaves checksum/secret alone."""
    base = ci_values("default")
    before = _annotations(render(base))
    after = _annotations(render(merge_values(base, {"config": {"logLevel": "debug"}})))
    assert after["checksum/config"] != before["checksum/config"]
    assert after["checksum/secret"] == before["checksum/secret"]


def test_secret_change_rolls_only_the_secret_checksum() -> None:
    """Rotating a credential changes checksum/secret and leaves checksum/config alone."""
    base = ci_values("default")
    before = _annotations(render(base))
    rotated = merge_values(base, {"auth": {"secretKeys": f"{KEY_NEW},{KEY_ONE}"}})
    after = _annotations(render(rotated))
    assert after["checksum/secret"] != before["checksum/secret"]
    assert after["checksum/config"] == before["checksum/config"]


def test_switching_existing_secret_rolls_the_pods() -> None:
    """Pointing auth.existingSecret elsewhere changes checksum/secret."""
    base = ci_values("existing-secret")
    before = _annotations(render(base))
    after = _annotations(render(merge_values(base, {"auth": {"existingSecret": "other"}})))
    assert after["checksum/secret"] != before["checksum/secret"]
