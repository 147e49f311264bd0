"""Configuration: one frozen, typed Settings object built once from an environment mapping.

Every variable ``X`` may instead be read from the file named by ``X_FILE``. All problems are
collected and reported together in one ``ConfigError``; secret values never appear in a repr.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from sidecar.errors import ConfigError

__all__ = [
    "DEFAULT_SCOPES",
    "LogSettings",
    "OAuthSettings",
    "RedisSettings",
    "Secret",
    "ServerSettings",
    "SessionSettings",
    "Settings",
    "UpstreamSettings",
    "load_settings",
]

DEFAULT_SCOPES = "read:jira-work read:jira-user read:confluence-content.summary read:me"
_T = TypeVar("_T")


@dataclass(frozen=True)
class Secret:
    """A string that never shows itself in repr/str (logs, tracebacks, config dumps)."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True)
class OAuthSettings:
    """The 3LO app and the Atlassian endpoints it talks to."""

    client_id: str
    client_secret: Secret
    public_url: str
    scopes: tuple[str, ...]
    auth_url: str
    api_url: str
    token_request_format: str  # "json" (Atlassian's documented form) or "form" (RFC 6749)

    @property
    def redirect_uri(self) -> str:
        """The callback URL registered in the developer console."""
        return f"{self.public_url}/auth/callback"


@dataclass(frozen=True)
class SessionSettings:
    """Session cookie and lifetime policy; keys seal tokens at rest (first seals, all open)."""

    secret_keys: tuple[Secret, ...]
    idle_timeout: float
    max_age: float
    secure_cookies: bool
    refresh_skew: float

    @property
    def cookie_name(self) -> str:
        """``__Host-`` prefixed under https so the browser pins it to this origin."""
        return "__Host-sidecar" if self.secure_cookies else "sidecar_session"

    @property
    def login_cookie_name(self) -> str:
        """The small pre-auth cookie that binds pending login states to this browser."""
        return "__Host-sidecar-login" if self.secure_cookies else "sidecar_login"


@dataclass(frozen=True)
class RedisSettings:
    """Where sessions live; ``url is None`` selects the in-process store."""

    url: Secret | None
    cluster: bool


@dataclass(frozen=True)
class UpstreamSettings:
    """Timeouts and limits for everything forwarded to Atlassian."""

    mcp_url: str
    max_body_bytes: int
    connect_timeout: float
    header_timeout: float
    read_timeout: float
    sse_heartbeat: float
    mcp_auth: str = "oauth"  # "oauth" (the MCP server's own OAuth) or "atlassian-token" (3LO)


@dataclass(frozen=True)
class ServerSettings:
    """Listeners and process behaviour."""

    listen_host: str
    listen_port: int
    metrics_host: str
    metrics_port: int
    allowed_origins: tuple[str, ...]
    shutdown_timeout: float
    workers: int


@dataclass(frozen=True)
class LogSettings:
    """Log format and level."""

    format: str
    level: str


@dataclass(frozen=True)
class Settings:
    """Everything the sidecar is configured with."""

    oauth: OAuthSettings
    session: SessionSettings
    redis: RedisSettings
    upstream: UpstreamSettings
    server: ServerSettings
    log: LogSettings


class _Reader:
    """Reads variables (or their ``_FILE`` twins) and records every problem instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._env = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        file_name = self._env.get(f"{name}_FILE")
        if file_name:
            if name in self._env:
                self.problems.append(f"{name} and {name}_FILE are both set; set only one")
            try:
                return Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.problems.append(f"{name}_FILE: cannot read {file_name!r} ({exc.strerror})")
                return None
        value = self._env.get(name)
        return None if value is None else value.strip()

    def text(self, name: str, default: str | None = None) -> str:
        value = self.raw(name)
        if value is None or value == "":
            if default is None:
                self.problems.append(f"{name} is required")
                return ""
            return default
        return value

    def parsed(self, name: str, default: _T, parse: Callable[[str], _T], what: str) -> _T:
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            return parse(value)
        except ValueError:
            self.problems.append(f"{name}={value!r} is not {what}")
            return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            self.problems.append(f"{name}={value!r} must be one of {', '.join(choices)}")
            return default
        return value


def _non_negative_float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(value)
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(value)
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(value)
    return host.strip("[]"), number


def _base_url(reader: _Reader, name: str, default: str) -> str:
    value = reader.text(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
        reader.problems.append(f"{name}={value!r} must be an http(s) URL without query")
    return value


def _origin(value: str) -> str | None:
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")


def _oauth(reader: _Reader) -> OAuthSettings:
    scopes = reader.text("SIDECAR_SCOPES", DEFAULT_SCOPES).split()
    if "openid" in scopes:
        reader.problems.append("SIDECAR_SCOPES: Atlassian 3LO apps do not support 'openid'")
    if "offline_access" not in scopes:
        scopes.append("offline_access")
    return OAuthSettings(
        client_id=reader.text("SIDECAR_CLIENT_ID"),
        client_secret=Secret(reader.text("SIDECAR_CLIENT_SECRET")),
        public_url=_base_url(reader, "SIDECAR_PUBLIC_URL", "http://localhost:8080"),
        scopes=tuple(scopes),
        auth_url=_base_url(reader, "SIDECAR_AUTH_URL", "https://auth.atlassian.com"),
        api_url=_base_url(reader, "SIDECAR_API_URL", "https://api.atlassian.com"),
        token_request_format=reader.choice(
            "SIDECAR_TOKEN_REQUEST_FORMAT", "json", ("json", "form")
        ),
    )


def _session(reader: _Reader, public_url: str) -> SessionSettings:
    keys = tuple(k.strip() for k in reader.text("SIDECAR_SECRET_KEYS").split(",") if k.strip())
    if any(len(k) < 32 for k in keys):
        reader.problems.append("SIDECAR_SECRET_KEYS: every key must be at least 32 characters")
    idle = reader.parsed("SIDECAR_SESSION_IDLE_TIMEOUT", 86400.0, _positive_float, "> 0 seconds")
    max_age = reader.parsed("SIDECAR_SESSION_MAX_AGE", 604800.0, _positive_float, "> 0 seconds")
    return SessionSettings(
        secret_keys=tuple(Secret(k) for k in keys),
        idle_timeout=min(idle, max_age),
        max_age=max_age,
        secure_cookies=public_url.startswith("https://"),
        refresh_skew=reader.parsed(
            "SIDECAR_REFRESH_SKEW", 60.0, _non_negative_float, "a number of seconds >= 0"
        ),
    )


def _redis(reader: _Reader) -> RedisSettings:
    url = reader.raw("SIDECAR_REDIS_URL") or None
    if url is not None and not url.startswith(_REDIS_SCHEMES):
        reader.problems.append(
            "SIDECAR_REDIS_URL must start with one of " + ", ".join(_REDIS_SCHEMES)
        )
    if url is not None and url.startswith("redis+sentinel://"):
        path = urlsplit(url).path.strip("/")
        if not path:
            reader.problems.append(
                "SIDECAR_REDIS_URL: a redis+sentinel:// URL must name the master "
                "(redis+sentinel://host:26379,host:26379/mymaster)"
            )
    cluster = reader.parsed("SIDECAR_REDIS_CLUSTER", False, _boolean, "true or false")  # noqa: FBT003
    if cluster and url is None:
        reader.problems.append("SIDECAR_REDIS_CLUSTER=true needs SIDECAR_REDIS_URL")
    return RedisSettings(url=None if url is None else Secret(url), cluster=cluster)


def _upstream(reader: _Reader) -> UpstreamSettings:
    return UpstreamSettings(
        mcp_url=_base_url(reader, "SIDECAR_MCP_URL", "https://mcp.atlassian.com/v1/mcp"),
        max_body_bytes=reader.parsed(
            "SIDECAR_MAX_BODY_BYTES", 1 << 30, _positive_int, "a positive byte count"
        ),
        connect_timeout=reader.parsed(
            "SIDECAR_UPSTREAM_CONNECT_TIMEOUT", 10.0, _positive_float, "> 0 seconds"
        ),
        header_timeout=reader.parsed(
            "SIDECAR_UPSTREAM_HEADER_TIMEOUT", 30.0, _positive_float, "> 0 seconds"
        ),
        read_timeout=reader.parsed(
            "SIDECAR_UPSTREAM_READ_TIMEOUT", 300.0, _positive_float, "> 0 seconds"
        ),
        sse_heartbeat=reader.parsed("SIDECAR_SSE_HEARTBEAT", 15.0, _positive_float, "> 0 seconds"),
        mcp_auth=reader.choice("SIDECAR_MCP_AUTH", "oauth", ("oauth", "atlassian-token")),
    )


def _server(reader: _Reader) -> ServerSettings:
    host, port = reader.parsed("SIDECAR_LISTEN", ("0.0.0.0", 8080), _host_port, "host:port")  # noqa: S104
    m_host, m_port = reader.parsed(
        "SIDECAR_METRICS_LISTEN",
        ("0.0.0.0", 9090),  # noqa: S104
        _host_port,
        "host:port",
    )
    origins: list[str] = []
    for item in reader.text("SIDECAR_ALLOWED_ORIGINS", " ").replace(",", " ").split():
        origin = _origin(item)
        if origin is None:
            reader.problems.append(f"SIDECAR_ALLOWED_ORIGINS: {item!r} is not an origin")
        else:
            origins.append(origin)
    return ServerSettings(
        listen_host=host,
        listen_port=port,
        metrics_host=m_host,
        metrics_port=m_port,
        allowed_origins=tuple(origins),
        shutdown_timeout=reader.parsed(
            "SIDECAR_SHUTDOWN_TIMEOUT", 25.0, _positive_float, "> 0 seconds"
        ),
        workers=reader.parsed("SIDECAR_WORKERS", 1, _positive_int, "a positive integer"),
    )


_LEVELS = ("debug", "info", "warning", "error", "critical")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from ``environ``; raise ConfigError listing every problem at once."""
    reader = _Reader(environ)
    oauth = _oauth(reader)
    settings = Settings(
        oauth=oauth,
        session=_session(reader, oauth.public_url),
        redis=_redis(reader),
        upstream=_upstream(reader),
        server=_server(reader),
        log=LogSettings(
            format=reader.choice("SIDECAR_LOG_FORMAT", "json", ("json", "console")),
            level=reader.choice("SIDECAR_LOG_LEVEL", "info", _LEVELS),
        ),
    )
    if settings.server.workers > 1 and settings.redis.url is None:
        reader.problems.append(
            "SIDECAR_WORKERS > 1 needs SIDECAR_REDIS_URL (workers share sessions)"
        )
    if reader.problems:
        raise ConfigError(reader.problems)
    return settings
