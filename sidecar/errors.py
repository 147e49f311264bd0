"""The sidecar's own exception tree and the error codes of the outside contract.

SidecarError                     (code, status: rendered as the contract's JSON error)
├── LoginRequired                401 login_required
│   └── ReauthRequired           401 reauth_required  (refresh token refused; session ended)
├── McpLoginRequired             401 mcp_login_required (no MCP token for the session; added)
├── ForbiddenSite                403 forbidden_site
├── CsrfFailed                   403 csrf_failed
├── BadRequest                   400 bad_request
├── NotFound                     404 not_found (no such route; added)
├── MethodNotAllowed             405 method_not_allowed (added)
├── PayloadTooLarge              413 payload_too_large
├── UpstreamUnavailable          502 upstream_unavailable
│   └── AuthMisconfigured        502 upstream_unavailable (token endpoint refused our client)
├── TemporarilyUnavailable       503 temporarily_unavailable (+ Retry-After)
│   ├── StoreUnavailable         session store down
│   └── RefreshTransient         token endpoint down or answered garbage
└── UpstreamTimeout              504 upstream_timeout
ConfigError                      bad configuration (exit code 2), not an HTTP error
"""

from __future__ import annotations

__all__ = [
    "AuthMisconfigured",
    "BadRequest",
    "ConfigError",
    "CsrfFailed",
    "ForbiddenSite",
    "LoginRequired",
    "McpLoginRequired",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ReauthRequired",
    "RefreshTransient",
    "SidecarError",
    "StoreUnavailable",
    "TemporarilyUnavailable",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class SidecarError(Exception):
    """An error the sidecar answers itself, with a contract code and HTTP status."""

    code = "internal_error"
    status = 500
    default_message = "The sidecar failed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class LoginRequired(SidecarError):
    """No session, or it expired."""

    code = "login_required"
    status = 401
    default_message = "Sign in to continue."


class ReauthRequired(LoginRequired):
    """Atlassian refused the refresh token; the session has been ended."""

    code = "reauth_required"
    default_message = "Your Atlassian authorization has ended; sign in again."


class McpLoginRequired(SidecarError):
    """A live session without an MCP token (never connected, or refused): consent again.

    Not a LoginRequired: the session itself is fine, and the way out is ``/auth/mcp/login``.
    """

    code = "mcp_login_required"
    status = 401
    default_message = "Connect the Atlassian MCP server to continue."


class ForbiddenSite(SidecarError):
    """The site in the path is not one of the session's sites for that product."""

    code = "forbidden_site"
    status = 403
    default_message = "This site is not among the sites you authorized for this product."


class CsrfFailed(SidecarError):
    """A state-changing request that a cross-site page could have made."""

    code = "csrf_failed"
    status = 403
    default_message = "Cross-site request refused."


class BadRequest(SidecarError):
    """Malformed request: dot-segments, bad encoding, bad callback."""

    code = "bad_request"
    status = 400
    default_message = "Malformed request."


class NotFound(SidecarError):
    """No such route on the sidecar (an addition to the contract's codes)."""

    code = "not_found"
    status = 404
    default_message = "No such route."


class MethodNotAllowed(SidecarError):
    """The route exists but not for this method (an addition to the contract's codes)."""

    code = "method_not_allowed"
    status = 405
    default_message = "Method not allowed on this route."


class PayloadTooLarge(SidecarError):
    """Body over the configured maximum."""

    code = "payload_too_large"
    status = 413
    default_message = "Request body too large."


class UpstreamUnavailable(SidecarError):
    """Atlassian unreachable or answered garbage."""

    code = "upstream_unavailable"
    status = 502
    default_message = "Atlassian could not be reached or answered garbage."


class AuthMisconfigured(UpstreamUnavailable):
    """The token endpoint refused the sidecar's own client credentials (not the user's)."""

    default_message = "The sidecar's Atlassian app credentials were refused."


class TemporarilyUnavailable(SidecarError):
    """A dependency is down for now; the session is kept and the client may retry."""

    code = "temporarily_unavailable"
    status = 503
    default_message = "Temporarily unavailable; try again shortly."
    retry_after = 5


class StoreUnavailable(TemporarilyUnavailable):
    """The session store did not answer."""

    default_message = "The session store is unavailable; try again shortly."


class RefreshTransient(TemporarilyUnavailable):
    """The token endpoint failed in a way that may pass (network, 5xx, 429, garbage)."""

    default_message = "Atlassian's token service is unavailable; try again shortly."


class UpstreamTimeout(SidecarError):
    """Atlassian did not answer in time."""

    code = "upstream_timeout"
    status = 504
    default_message = "Atlassian did not answer in time."


class ConfigError(Exception):
    """Bad configuration: every problem, listed at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems
