"""deploy/: the docker-compose file and the Kubernetes sidecar-in-pod example."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

from ._support import DEPLOY_DIR, container, find, load_yaml_documents

_SECRET_FILE_VARS = {
    "SIDECAR_CLIENT_ID_FILE",
    "SIDECAR_CLIENT_SECRET_FILE",
    "SIDECAR_SECRET_KEYS_FILE",
    "SIDECAR_REDIS_URL_FILE",
}


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY_DIR / "docker-compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _pod_example() -> list[dict[str, Any]]:
    text = (DEPLOY_DIR / "kubernetes" / "sidecar-in-pod.yaml").read_text(encoding="utf-8")
    return load_yaml_documents(text)


def test_compose_runs_dev_mode_against_redis() -> None:
    """The compose sidecar runs `dev` against the compose Redis, after Redis is healthy."""
    services = _compose()["services"]
    sidecar = services["sidecar"]
    assert sidecar["command"] == ["dev", "--emulator-host", "0.0.0.0"]  # noqa: S104
    assert sidecar["environment"]["SIDECAR_REDIS_URL"] == "redis://redis:6379/0"
    assert sidecar["depends_on"]["redis"]["condition"] == "service_healthy"
    assert sidecar["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert "healthcheck" in services["redis"]


def test_compose_keeps_the_production_constraints() -> None:
    """Locally too: non-root, read-only root with a tmpfs /tmp, no capabilities, loopback ports."""
    sidecar = _compose()["services"]["sidecar"]
    assert sidecar["user"] == "10001:10001"
    assert sidecar["read_only"] is True
    assert sidecar["tmpfs"] == ["/tmp"]  # noqa: S108 - a path in the container
    assert sidecar["cap_drop"] == ["ALL"]
    assert all(port.startswith("127.0.0.1:") for port in sidecar["ports"])


def test_pod_example_validates() -> None:
    """Every object of the sidecar-in-pod example validates against the Kubernetes schemas."""
    for manifest in _pod_example():
        kubernetes_validate.validate(manifest, "1.37.0", strict=True)


def test_pod_example_wires_frontend_to_localhost() -> None:
    """The frontend proxies sidecar routes to localhost:8080; secrets reach the sidecar as files."""
    manifests = _pod_example()
    deployment = find(manifests, "Deployment", "frontend")
    names = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert names == ["frontend", "atlassian-sidecar"]
    nginx = find(manifests, "ConfigMap", "frontend-nginx")["data"]["default.conf"]
    assert "proxy_pass http://127.0.0.1:8080;" in nginx
    assert "location /mcp" in nginx
    assert "proxy_buffering off;" in nginx
    sidecar = container(deployment)
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert set(env) == _SECRET_FILE_VARS
    mounts = {m["mountPath"] for m in sidecar["volumeMounts"]}
    assert all(value.rsplit("/", 1)[0] in mounts for value in env.values() if value)
    ctx = sidecar["securityContext"]
    assert ctx["runAsUser"] == 10001
    assert ctx["readOnlyRootFilesystem"] is True
    frontend_mounts = {m["name"] for m in container(deployment, "frontend")["volumeMounts"]}
    assert "sidecar-secrets" not in frontend_mounts
