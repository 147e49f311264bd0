"""Sans-IO MCP authorization discovery and registration (RFC 9728, RFC 8414, RFC 7591, RFC 8707).

Where to look for the protected-resource and authorization-server metadata, how to read them,
what to register, and the authorize URL. The MCP server's OAuth is its own token family: nothing
here touches the 3LO app's settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

__all__ = [
    "AuthServer",
    "Registration",
    "Resource",
    "as_metadata_urls",
    "authorize_url",
    "parse_as_metadata",
    "parse_registration",
    "parse_resource_metadata",
    "prm_urls",
    "registration_request",
    "resource_metadata_from_header",
]

_RESOURCE_METADATA = re.compile(
    r'resource_metadata\s*=\s*"([^"]*)"|resource_metadata\s*=\s*([^\s,]+)'
)


def _origin_and_path(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


def resource_metadata_from_header(www_authenticate: str) -> str | None:
    """The ``resource_metadata`` URL of a ``WWW-Authenticate: Bearer`` challenge (RFC 9728)."""
    match = _RESOURCE_METADATA.search(www_authenticate)
    if match is None:
        return None
    value = match.group(1) or match.group(2)
    return value if value.startswith(("https://", "http://")) else None


def prm_urls(mcp_url: str) -> list[str]:
    """RFC 9728 §3.1 well-known locations for a resource: path-inserted, then the origin's."""
    origin, path = _origin_and_path(mcp_url)
    urls = [f"{origin}/.well-known/oauth-protected-resource{path}"] if path else []
    return [*urls, f"{origin}/.well-known/oauth-protected-resource"]


def as_metadata_urls(issuer: str) -> list[str]:
    """RFC 8414 §3.1 (path-inserted) then OpenID Connect discovery locations for an issuer."""
    origin, path = _origin_and_path(issuer)
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{issuer.rstrip('/')}/.well-known/openid-configuration",
    ]


@dataclass(frozen=True)
class Resource:
    """What the protected-resource metadata says: the resource id, its issuers, its scopes."""

    resource: str
    authorization_servers: tuple[str, ...]
    scopes: tuple[str, ...]


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _is_http_url(value: Any) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in {"http", "https"}


def parse_resource_metadata(data: Any, mcp_url: str) -> Resource | None:
    """Read RFC 9728 metadata; None when it names no authorization server."""
    if not isinstance(data, dict):
        return None
    servers = tuple(s for s in _strings(data.get("authorization_servers")) if _is_http_url(s))
    if not servers:
        return None
    resource = data.get("resource")
    return Resource(
        resource=str(resource) if _is_http_url(resource) else mcp_url,
        authorization_servers=servers,
        scopes=_strings(data.get("scopes_supported")),
    )


@dataclass(frozen=True)
class AuthServer:
    """The parts of RFC 8414 metadata the sidecar uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    scopes: tuple[str, ...]
    auth_methods: tuple[str, ...]


def parse_as_metadata(data: Any, issuer: str) -> AuthServer | None:
    """Read RFC 8414 metadata for ``issuer``; None when unusable (wrong issuer, no S256, …)."""
    if not isinstance(data, dict):
        return None
    if str(data.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        return None  # RFC 8414 §3.3: metadata for another issuer must not be used
    authorize, token = data.get("authorization_endpoint"), data.get("token_endpoint")
    if not _is_http_url(authorize) or not _is_http_url(token):
        return None
    methods = _strings(data.get("code_challenge_methods_supported"))
    if methods and "S256" not in methods:
        return None
    registration = data.get("registration_endpoint")
    return AuthServer(
        issuer=issuer,
        authorization_endpoint=str(authorize),
        token_endpoint=str(token),
        registration_endpoint=str(registration) if _is_http_url(registration) else None,
        scopes=_strings(data.get("scopes_supported")),
        auth_methods=_strings(data.get("token_endpoint_auth_methods_supported"))
        or ("client_secret_basic",),
    )


@dataclass(frozen=True)
class Registration:
    """A dynamically registered client; ``client_secret`` None is a public (PKCE-only) client."""

    client_id: str
    client_secret: str | None
    auth_method: str  # none | client_secret_post | client_secret_basic
    expires_at: float | None  # client_secret_expires_at; None or 0: never

    def to_dict(self) -> dict[str, Any]:
        """For sealing in the store."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth_method": self.auth_method,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Registration:
        """Read what ``to_dict`` wrote."""
        return cls(
            str(data["client_id"]),
            data.get("client_secret"),
            str(data["auth_method"]),
            data.get("expires_at"),
        )


def registration_request(redirect_uri: str, server: AuthServer) -> dict[str, Any]:
    """The RFC 7591 request: a confidential client when the server takes secrets, else public."""
    method = next(
        (m for m in ("client_secret_post", "client_secret_basic") if m in server.auth_methods),
        "none",
    )
    return {
        "client_name": "atlassian-sidecar",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
    }


def parse_registration(data: Any) -> Registration | None:
    """Read an RFC 7591 answer. A returned secret is used whatever was asked for (and the other
    way round: no secret means a public client), because servers differ on this.
    """
    if not isinstance(data, dict) or not isinstance(data.get("client_id"), str):
        return None
    secret = data.get("client_secret")
    secret = secret if isinstance(secret, str) and secret else None
    method = data.get("token_endpoint_auth_method")
    if secret is None:
        method = "none"
    elif method not in {"client_secret_post", "client_secret_basic"}:
        method = "client_secret_post"
    expires = data.get("client_secret_expires_at")
    expires_at = float(expires) if isinstance(expires, int | float) and expires > 0 else None
    return Registration(data["client_id"], secret, str(method), expires_at)


def authorize_url(
    server: AuthServer,
    registration: Registration,
    *,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    resource: str,
    scopes: tuple[str, ...],
) -> str:
    """The authorization request: PKCE S256 and the RFC 8707 ``resource`` indicator."""
    params = {
        "response_type": "code",
        "client_id": registration.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "resource": resource,
    }
    if scopes:
        params["scope"] = " ".join(scopes)
    separator = "&" if "?" in server.authorization_endpoint else "?"
    return server.authorization_endpoint + separator + urlencode(params, quote_via=quote)
