"""Sans-IO cross-origin policy: which origins may call with credentials, what a preflight is
answered with, and which headers every answer to such an origin carries.

The same origin list serves CORS (who may *read* answers) and the CSRF check (who may *send*
state-changing requests with the cookie): the sidecar's own public origin plus
``SIDECAR_ALLOWED_ORIGINS``. Methods and request headers are echoed only within fixed lists;
Atlassian's own ``Access-Control-*`` headers never reach the browser (they describe
api.atlassian.com, not the sidecar).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "ALLOW_HEADERS",
    "ALLOW_METHODS",
    "EXPOSE_HEADERS",
    "MAX_AGE",
    "CorsPolicy",
    "is_preflight",
    "normalize_origin",
    "origin_of_url",
]

ALLOW_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# What a frontend may send besides the CORS-safelisted headers. Never Authorization or Cookie:
# the sidecar drops the client's credentials and adds its own.
ALLOW_HEADERS: tuple[str, ...] = (
    "Accept",
    "Accept-Language",
    "Content-Language",
    "Content-Type",
    "Cache-Control",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Range",
    "X-Atlassian-Token",
    "X-ExperimentalApi",
    "X-Force-Accept-Language",
    "X-Request-ID",
    "X-Requested-With",
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "Last-Event-ID",
)
# What a frontend may read besides the CORS-safelisted response headers.
EXPOSE_HEADERS: tuple[str, ...] = (
    "Mcp-Session-Id",
    "X-Sidecar-Error",
    "X-Request-ID",
    "Retry-After",
    "ETag",
    "Link",
    "Location",
    "Content-Disposition",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-RateLimit-NearLimit",
    "RateLimit-Reason",
    "Beta-Retry-After",
    "X-AREQUESTID",
)
MAX_AGE = 600  # seconds a browser may cache a preflight answer (Chromium caps it at 7200)

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_ALLOWED_METHODS = frozenset(ALLOW_METHODS)
_ALLOWED_HEADERS = {h.lower(): h for h in ALLOW_HEADERS}


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` lowercased, default port dropped; None for anything else.

    ``null`` (sandboxed frames, file pages, privacy redirects) is never an origin we trust.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or str(port) == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_of_url(value: str) -> str | None:
    """The normalized origin of a full URL (a Referer), or None."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return normalize_origin(f"{parts.scheme}://{parts.netloc}")


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """A browser's CORS preflight: OPTIONS with Origin and Access-Control-Request-Method."""
    return (
        method == "OPTIONS" and "Origin" in headers and "Access-Control-Request-Method" in headers
    )


@dataclass(frozen=True)
class CorsPolicy:
    """The trusted origins: the sidecar's own public origin and the configured extra ones."""

    own_origin: str
    allowed: frozenset[str]

    @classmethod
    def build(cls, public_url: str, allowed_origins: Iterable[str]) -> CorsPolicy:
        """A policy from the public URL and ``SIDECAR_ALLOWED_ORIGINS``."""
        own = origin_of_url(public_url) or ""
        extra = {o for o in (normalize_origin(v) for v in allowed_origins) if o is not None}
        return cls(own_origin=own, allowed=frozenset(extra))

    def trusts(self, origin: str | None) -> bool:
        """Whether ``origin`` (as a browser sent it) may call with credentials."""
        if origin is None:
            return False
        normalized = normalize_origin(origin)
        return normalized is not None and (
            normalized == self.own_origin or normalized in self.allowed
        )

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """Headers for an actual (non-preflight) answer to ``origin``; empty when untrusted."""
        if origin is None or not self.trusts(origin):
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": ", ".join(EXPOSE_HEADERS),
        }

    def preflight_headers(
        self, origin: str | None, request_method: str, request_headers: str
    ) -> dict[str, str] | None:
        """The answer to a preflight, or None to refuse it (untrusted origin or method).

        The method is echoed when it is one of ALLOW_METHODS; of the requested headers, only
        those in ALLOW_HEADERS are echoed (the browser then refuses the request itself when one
        it needs is missing).
        """
        if origin is None or not self.trusts(origin):
            return None
        method = request_method.strip()
        if method not in _ALLOWED_METHODS:
            return None
        wanted = [h.strip().lower() for h in request_headers.split(",") if h.strip()]
        echoed = [_ALLOWED_HEADERS[h] for h in wanted if h in _ALLOWED_HEADERS]
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": method,
            "Access-Control-Max-Age": str(MAX_AGE),
        }
        if echoed:
            headers["Access-Control-Allow-Headers"] = ", ".join(dict.fromkeys(echoed))
        return headers
