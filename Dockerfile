# syntax=docker/dockerfile:1
#
# atlassian-sidecar container image.
#
# Two stages: the builder resolves the runtime dependencies into /opt/venv before any
# source is copied (so editing sidecar/ reuses the dependency layer), then installs the
# package itself without dependencies. The runtime stage copies only that venv.
#
# Nothing secret or environment-specific is baked in: configuration arrives as SIDECAR_*
# environment variables or *_FILE mounts at run time (see the Helm chart).
#
#   docker build -t atlassian-sidecar .
#   docker run --rm -p 8080:8080 -p 9090:9090 atlassian-sidecar dev

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first: this layer changes only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip install --requirement /tmp/requirements.txt

# Then the package itself, without touching the dependencies installed above.
COPY README.md ./
COPY sidecar/ ./sidecar/
RUN pip install --no-deps . \
    && python -c "import sidecar.cli"


FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="atlassian-sidecar" \
      org.opencontainers.image.description="Reverse-proxy auth sidecar: Atlassian OAuth 2.0 (3LO) login, Redis-backed sessions, bearer-token proxy for Jira, Confluence and Rovo MCP." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in Kubernetes; pip already
# compiled the bytecode in the builder.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

# A fixed numeric UID/GID so Kubernetes can verify runAsNonRoot without reading /etc/passwd.
RUN groupadd --system --gid 10001 sidecar \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin sidecar

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /tmp

EXPOSE 8080 9090

# Stdlib only (the slim image has no curl). Follows SIDECAR_LISTEN's port when it is changed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('SIDECAR_LISTEN', '0.0.0.0:8080').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/livez', timeout=4)"]

ENTRYPOINT ["atlassian-sidecar"]
CMD ["serve"]
