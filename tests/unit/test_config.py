"""``load_settings``: every variable of README's configuration table, ``_FILE`` twins, every
problem reported at once, and secrets that never show in a repr or on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.config import DEFAULT_SCOPES, Settings, load_settings
from sidecar.errors import ConfigError

CLIENT_SECRET = "client-secret-value-7f3a"
KEY_NEW = "n" * 40
KEY_OLD = "o" * 36
REDIS_PASSWORD = "redis-pass-9c2e"
ANY = "0.0.0.0"  # noqa: S104 - the documented default listener host
BASE = {
    "SIDECAR_CLIENT_ID": "client-id-1",
    "SIDECAR_CLIENT_SECRET": CLIENT_SECRET,
    "SIDECAR_SECRET_KEYS": f"{KEY_NEW},{KEY_OLD}",
}


def load(**env: str) -> Settings:
    return load_settings({**BASE, **env})


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    return caught.value.problems


def test_defaults_follow_the_readme_table() -> None:
    """With only the required variables, every other setting takes README's default."""
    s = load_settings(BASE)
    assert s.oauth.client_id == "client-id-1"
    assert s.oauth.client_secret.value == CLIENT_SECRET
    assert s.oauth.public_url == "http://localhost:8080"
    assert s.oauth.redirect_uri == "http://localhost:8080/auth/callback"
    assert s.oauth.scopes == (*DEFAULT_SCOPES.split(), "offline_access")
    assert s.oauth.auth_url == "https://auth.atlassian.com"
    assert s.oauth.api_url == "https://api.atlassian.com"
    assert s.oauth.token_request_format == "json"
    assert [k.value for k in s.session.secret_keys] == [KEY_NEW, KEY_OLD]
    assert s.session.idle_timeout == 86400.0
    assert s.session.max_age == 604800.0
    assert s.session.refresh_skew == 60.0
    assert s.session.secure_cookies is False
    assert s.session.cookie_name == "sidecar_session"
    assert s.session.login_cookie_name == "sidecar_login"
    assert s.redis.url is None
    assert s.redis.cluster is False
    assert s.upstream.mcp_url == "https://mcp.atlassian.com/v1/mcp"
    assert s.upstream.mcp_auth == "oauth"
    assert s.upstream.max_body_bytes == 1073741824
    assert s.upstream.connect_timeout == 10.0
    assert s.upstream.header_timeout == 30.0
    assert s.upstream.read_timeout == 300.0
    assert s.upstream.sse_heartbeat == 15.0
    assert (s.server.listen_host, s.server.listen_port) == (ANY, 8080)
    assert (s.server.metrics_host, s.server.metrics_port) == (ANY, 9090)
    assert s.server.allowed_origins == ()
    assert s.server.shutdown_timeout == 25.0
    assert s.server.workers == 1
    assert (s.log.format, s.log.level) == ("json", "info")


def test_explicit_values_are_parsed() -> None:
    """Every variable set explicitly lands, typed, in its field."""
    s = load(
        SIDECAR_PUBLIC_URL="https://sidecar.example.test/",
        SIDECAR_SCOPES="read:jira-work  write:jira-work",
        SIDECAR_REDIS_URL=f"redis://:{REDIS_PASSWORD}@redis.internal:6380/2",
        SIDECAR_REDIS_CLUSTER="yes",
        SIDECAR_AUTH_URL="http://127.0.0.1:9000/",
        SIDECAR_API_URL="http://127.0.0.1:9001",
        SIDECAR_MCP_URL="http://127.0.0.1:9002/v1/mcp",
        SIDECAR_MCP_AUTH="Atlassian-Token",
        SIDECAR_TOKEN_REQUEST_FORMAT="FORM",
        SIDECAR_LISTEN="127.0.0.1:8443",
        SIDECAR_METRICS_LISTEN="[::]:9100",
        SIDECAR_LOG_FORMAT="console",
        SIDECAR_LOG_LEVEL="DEBUG",
        SIDECAR_MAX_BODY_BYTES="1048576",
        SIDECAR_SESSION_IDLE_TIMEOUT="600",
        SIDECAR_SESSION_MAX_AGE="3600.5",
        SIDECAR_REFRESH_SKEW="0",
        SIDECAR_UPSTREAM_CONNECT_TIMEOUT="1.5",
        SIDECAR_UPSTREAM_HEADER_TIMEOUT="2",
        SIDECAR_UPSTREAM_READ_TIMEOUT="3",
        SIDECAR_SSE_HEARTBEAT="4",
        SIDECAR_SHUTDOWN_TIMEOUT="5",
        SIDECAR_WORKERS="3",
    )
    assert s.oauth.public_url == "https://sidecar.example.test"
    assert s.oauth.redirect_uri == "https://sidecar.example.test/auth/callback"
    assert s.oauth.scopes == ("read:jira-work", "write:jira-work", "offline_access")
    assert s.redis.url is not None
    assert s.redis.url.value == f"redis://:{REDIS_PASSWORD}@redis.internal:6380/2"
    assert s.redis.cluster is True
    assert s.oauth.auth_url == "http://127.0.0.1:9000"
    assert s.oauth.api_url == "http://127.0.0.1:9001"
    assert s.upstream.mcp_url == "http://127.0.0.1:9002/v1/mcp"
    assert s.upstream.mcp_auth == "atlassian-token"
    assert s.oauth.token_request_format == "form"
    assert (s.server.listen_host, s.server.listen_port) == ("127.0.0.1", 8443)
    assert (s.server.metrics_host, s.server.metrics_port) == ("::", 9100)
    assert (s.log.format, s.log.level) == ("console", "debug")
    assert s.upstream.max_body_bytes == 1048576
    assert (s.session.idle_timeout, s.session.max_age) == (600.0, 3600.5)
    assert s.session.refresh_skew == 0.0
    assert s.upstream.connect_timeout == 1.5
    assert s.upstream.header_timeout == 2.0
    assert s.upstream.read_timeout == 3.0
    assert s.upstream.sse_heartbeat == 4.0
    assert s.server.shutdown_timeout == 5.0
    assert s.server.workers == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{ANY}:8080", (ANY, 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("localhost:65535", ("localhost", 65535)),
        ("[::]:8080", ("::", 8080)),
        ("[::1]:9090", ("::1", 9090)),
    ],
)
def test_listeners_parse_host_and_port(value: str, expected: tuple[str, int]) -> None:
    """host:port, IPv6 in brackets (brackets dropped for the bind)."""
    s = load(SIDECAR_LISTEN=value, SIDECAR_METRICS_LISTEN=value)
    assert (s.server.listen_host, s.server.listen_port) == expected
    assert (s.server.metrics_host, s.server.metrics_port) == expected


@pytest.mark.parametrize(
    "value", ["8080", ":8080", "host", "host:", "host:http", "h:65536", "h:-1"]
)
def test_bad_listeners_are_refused(value: str) -> None:
    """A listener without a host, or a port that is no port, is a problem."""
    assert problems({**BASE, "SIDECAR_LISTEN": value}) == [
        f"SIDECAR_LISTEN={value!r} is not host:port"
    ]


def test_allowed_origins_are_normalised() -> None:
    """Comma or space separated, lower-cased, trailing slash dropped, order kept."""
    s = load(
        SIDECAR_ALLOWED_ORIGINS="https://App.Example.TEST:8443/, http://localhost:3000  "
        "HTTPS://other.test"
    )
    assert s.server.allowed_origins == (
        "https://app.example.test:8443",
        "http://localhost:3000",
        "https://other.test",
    )


def test_bad_allowed_origins_are_each_reported() -> None:
    """Paths, other schemes and bare hosts are no origins; each one is named."""
    env = {
        **BASE,
        "SIDECAR_ALLOWED_ORIGINS": "https://ok.test,https://a.test/app,null,ftp://f.test",
    }
    assert problems(env) == [
        "SIDECAR_ALLOWED_ORIGINS: 'https://a.test/app' is not an origin",
        "SIDECAR_ALLOWED_ORIGINS: 'null' is not an origin",
        "SIDECAR_ALLOWED_ORIGINS: 'ftp://f.test' is not an origin",
    ]


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ("read:me", ("read:me", "offline_access")),
        ("offline_access read:me", ("offline_access", "read:me")),
        ("read:me offline_access", ("read:me", "offline_access")),
    ],
)
def test_scopes_always_gain_offline_access_once(scopes: str, expected: tuple[str, ...]) -> None:
    """offline_access is appended when missing and never duplicated."""
    assert load(SIDECAR_SCOPES=scopes).oauth.scopes == expected


def test_openid_scope_is_refused() -> None:
    """Atlassian 3LO has no OpenID Connect: asking for openid is a configuration error."""
    assert problems({**BASE, "SIDECAR_SCOPES": "openid read:me"}) == [
        "SIDECAR_SCOPES: Atlassian 3LO apps do not support 'openid'"
    ]


def test_idle_timeout_never_exceeds_max_age() -> None:
    """An idle timeout longer than the absolute lifetime is capped to it."""
    s = load(SIDECAR_SESSION_IDLE_TIMEOUT="100000", SIDECAR_SESSION_MAX_AGE="500")
    assert (s.session.idle_timeout, s.session.max_age) == (500.0, 500.0)


@pytest.mark.parametrize(
    "name",
    [
        "SIDECAR_SESSION_IDLE_TIMEOUT",
        "SIDECAR_SESSION_MAX_AGE",
        "SIDECAR_UPSTREAM_CONNECT_TIMEOUT",
        "SIDECAR_UPSTREAM_HEADER_TIMEOUT",
        "SIDECAR_UPSTREAM_READ_TIMEOUT",
        "SIDECAR_SSE_HEARTBEAT",
        "SIDECAR_SHUTDOWN_TIMEOUT",
    ],
)
@pytest.mark.parametrize("value", ["0", "-5", "soon", "inf", "nan"])
def test_timeouts_must_be_positive_finite_seconds(name: str, value: str) -> None:
    """Zero, negative, non-numeric and non-finite timeouts are refused."""
    assert problems({**BASE, name: value}) == [f"{name}={value!r} is not > 0 seconds"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False), ("Off", False)],
)
def test_redis_cluster_flag_spellings(value: str, expected: bool) -> None:
    """The usual boolean spellings, case-insensitive."""
    s = load(SIDECAR_REDIS_URL="redis://127.0.0.1:7000/0", SIDECAR_REDIS_CLUSTER=value)
    assert s.redis.cluster is expected


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/0",
        "rediss://h:6380/0",
        "unix:///run/redis.sock",
        "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/0",
    ],
)
def test_redis_url_schemes_accepted(url: str) -> None:
    """The four documented URL forms are accepted as they are."""
    s = load(SIDECAR_REDIS_URL=url)
    assert s.redis.url is not None
    assert s.redis.url.value == url


def test_bad_redis_settings_are_refused_without_echoing_the_url() -> None:
    """A non-Redis URL is named by variable only (it may hold a password); cluster needs a URL."""
    url = f"http://:{REDIS_PASSWORD}@redis.internal/"
    listed = problems({**BASE, "SIDECAR_REDIS_URL": url})
    assert listed == [
        "SIDECAR_REDIS_URL must start with one of redis://, rediss://, unix://, redis+sentinel://"
    ]
    assert problems({**BASE, "SIDECAR_REDIS_CLUSTER": "true"}) == [
        "SIDECAR_REDIS_CLUSTER=true needs SIDECAR_REDIS_URL"
    ]


def test_mcp_auth_choices() -> None:
    """SIDECAR_MCP_AUTH is oauth or atlassian-token, nothing else."""
    assert load(SIDECAR_MCP_AUTH="oauth").upstream.mcp_auth == "oauth"
    assert problems({**BASE, "SIDECAR_MCP_AUTH": "bearer"}) == [
        "SIDECAR_MCP_AUTH='bearer' must be one of oauth, atlassian-token"
    ]


def test_several_workers_need_redis() -> None:
    """Workers share sessions, so SIDECAR_WORKERS=2 without Redis is refused; with it, fine."""
    assert problems({**BASE, "SIDECAR_WORKERS": "2"}) == [
        "SIDECAR_WORKERS > 1 needs SIDECAR_REDIS_URL (workers share sessions)"
    ]
    assert load(SIDECAR_WORKERS="2", SIDECAR_REDIS_URL="redis://h/0").server.workers == 2


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_workers_must_be_a_positive_integer(value: str) -> None:
    """Zero, negative, words and fractions are refused."""
    assert problems({**BASE, "SIDECAR_WORKERS": value}) == [
        f"SIDECAR_WORKERS={value!r} is not a positive integer"
    ]


def test_https_public_url_makes_cookies_secure_and_host_prefixed() -> None:
    """Under https the cookies are Secure and carry the __Host- prefix."""
    s = load(SIDECAR_PUBLIC_URL="https://sidecar.example.test")
    assert s.session.secure_cookies is True
    assert s.session.cookie_name == "__Host-sidecar"
    assert s.session.login_cookie_name == "__Host-sidecar-login"


def test_file_variants_are_read_and_stripped(tmp_path: Path) -> None:
    """X_FILE supplies X (trailing newline stripped), for secrets and plain settings alike."""
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(CLIENT_SECRET + "\n", encoding="utf-8")
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{KEY_NEW},{KEY_OLD}\n", encoding="utf-8")
    redis_file = tmp_path / "redis"
    redis_file.write_text(f"redis://:{REDIS_PASSWORD}@h:6379/0", encoding="utf-8")
    workers_file = tmp_path / "workers"
    workers_file.write_text("4\n", encoding="utf-8")
    s = load_settings(
        {
            "SIDECAR_CLIENT_ID": "client-id-1",
            "SIDECAR_CLIENT_SECRET_FILE": str(secret_file),
            "SIDECAR_SECRET_KEYS_FILE": str(keys_file),
            "SIDECAR_REDIS_URL_FILE": str(redis_file),
            "SIDECAR_WORKERS_FILE": str(workers_file),
        }
    )
    assert s.oauth.client_secret.value == CLIENT_SECRET
    assert [k.value for k in s.session.secret_keys] == [KEY_NEW, KEY_OLD]
    assert s.redis.url is not None
    assert s.redis.url.value == f"redis://:{REDIS_PASSWORD}@h:6379/0"
    assert s.server.workers == 4


def test_file_variant_and_plain_variable_both_set_is_refused(tmp_path: Path) -> None:
    """X and X_FILE together are ambiguous; an unreadable X_FILE is reported by path."""
    secret_file = tmp_path / "client_secret"
    secret_file.write_text(CLIENT_SECRET, encoding="utf-8")
    missing = tmp_path / "nope"
    env = {
        **BASE,
        "SIDECAR_CLIENT_SECRET_FILE": str(secret_file),
        "SIDECAR_SECRET_KEYS": "",
        "SIDECAR_SECRET_KEYS_FILE": str(missing),
    }
    assert problems(env) == [
        "SIDECAR_CLIENT_SECRET and SIDECAR_CLIENT_SECRET_FILE are both set; set only one",
        "SIDECAR_SECRET_KEYS and SIDECAR_SECRET_KEYS_FILE are both set; set only one",
        f"SIDECAR_SECRET_KEYS_FILE: cannot read {str(missing)!r} (No such file or directory)",
        "SIDECAR_SECRET_KEYS is required",
    ]


BAD_ENV = {
    "SIDECAR_CLIENT_SECRET": CLIENT_SECRET,
    "SIDECAR_SECRET_KEYS": f"too-short,{KEY_NEW}",
    "SIDECAR_SCOPES": "openid read:me",
    "SIDECAR_PUBLIC_URL": "ftp://sidecar.example.test",
    "SIDECAR_TOKEN_REQUEST_FORMAT": "xml",
    "SIDECAR_REDIS_URL": f"http://:{REDIS_PASSWORD}@redis.internal/0",
    "SIDECAR_MAX_BODY_BYTES": "1.5",
    "SIDECAR_UPSTREAM_READ_TIMEOUT": "-1",
    "SIDECAR_MCP_AUTH": "basic",
    "SIDECAR_LISTEN": "8080",
    "SIDECAR_METRICS_LISTEN": "h:70000",
    "SIDECAR_ALLOWED_ORIGINS": "https://a.test/path",
    "SIDECAR_WORKERS": "0",
    "SIDECAR_LOG_LEVEL": "loud",
}
BAD_ENV_PROBLEMS = [
    "SIDECAR_SCOPES: Atlassian 3LO apps do not support 'openid'",
    "SIDECAR_CLIENT_ID is required",
    "SIDECAR_PUBLIC_URL='ftp://sidecar.example.test' must be an http(s) URL without query",
    "SIDECAR_TOKEN_REQUEST_FORMAT='xml' must be one of json, form",
    "SIDECAR_SECRET_KEYS: every key must be at least 32 characters",
    "SIDECAR_REDIS_URL must start with one of redis://, rediss://, unix://, redis+sentinel://",
    "SIDECAR_MAX_BODY_BYTES='1.5' is not a positive byte count",
    "SIDECAR_UPSTREAM_READ_TIMEOUT='-1' is not > 0 seconds",
    "SIDECAR_MCP_AUTH='basic' must be one of oauth, atlassian-token",
    "SIDECAR_LISTEN='8080' is not host:port",
    "SIDECAR_METRICS_LISTEN='h:70000' is not host:port",
    "SIDECAR_ALLOWED_ORIGINS: 'https://a.test/path' is not an origin",
    "SIDECAR_WORKERS='0' is not a positive integer",
    "SIDECAR_LOG_LEVEL='loud' must be one of debug, info, warning, error, critical",
]
SECRET_VALUES = (CLIENT_SECRET, KEY_NEW, "too-short", REDIS_PASSWORD)


def test_every_problem_is_reported_at_once() -> None:
    """One ConfigError lists each mistake of the environment, in order, and no secret."""
    with pytest.raises(ConfigError) as caught:
        load_settings(BAD_ENV)
    assert caught.value.problems == BAD_ENV_PROBLEMS
    text = str(caught.value)
    assert text.startswith("invalid configuration:\n  - ")
    assert all(problem in text for problem in BAD_ENV_PROBLEMS)
    assert not [v for v in SECRET_VALUES if v in text]


def test_secrets_never_show_in_repr_or_str() -> None:
    """Client secret, server keys and a Redis URL with a password stay out of repr/str."""
    s = load(SIDECAR_REDIS_URL=f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0")
    assert "client_id='client-id-1'" in repr(s)
    for text in (repr(s), str(s), repr(s.oauth), repr(s.session), repr(s.redis)):
        assert not [v for v in (CLIENT_SECRET, KEY_NEW, KEY_OLD, REDIS_PASSWORD) if v in text]
    assert str(s.oauth.client_secret) == "Secret('**********')"


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "check-config"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_check_config_command_exits_2_with_every_problem_and_0_when_good() -> None:
    """check-config: exit 2 listing every problem on stderr (no secret); exit 0 when valid."""
    bad = run_cli(BAD_ENV)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert [line.removeprefix("  - ") for line in bad.stderr.splitlines()[1:]] == (BAD_ENV_PROBLEMS)
    assert bad.stderr.splitlines()[0] == "invalid configuration:"
    assert not [v for v in SECRET_VALUES if v in bad.stderr]
    good = run_cli(BASE)
    assert (good.returncode, good.stdout, good.stderr) == (0, "configuration ok\n", "")
