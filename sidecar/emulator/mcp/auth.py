"""The MCP server's own authorization server, as Atlassian runs one for Rovo MCP: RFC 8414
metadata, RFC 7591 dynamic registration, PKCE-only authorize with the RFC 8707 ``resource``,
and a form-encoded token endpoint. Its tokens are a family of their own (a second ``AuthState``):
a 3LO token is not an MCP token, and the other way round.

Served under ``/mcp-auth`` of the emulator's aiohttp app; the issuer is ``{origin}/mcp-auth``.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from aiohttp import web

from ..config import EmulatorConfig
from ..keys import EMULATOR_KEY
from ..pages import consent_page, error_page
from ..state import AuthState, OAuthError, TokenGrant

__all__ = ["ISSUER_PATH", "SCOPES", "McpAuthServer", "RegisteredClient", "add_mcp_auth_routes"]

ISSUER_PATH = "/mcp-auth"
SCOPES = ("read:jira:agent-interface", "search:jira:agent-interface", "read:me", "offline_access")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class RegisteredClient:
    """A client made by dynamic registration."""

    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]


@dataclass
class McpAuthServer:
    """State of the MCP authorization server: clients, consents, codes and MCP token families."""

    config: EmulatorConfig
    # Atlassian's DCR was reported to hand out confidential clients even when a public one was
    # asked for; False hands out public (secret-less, PKCE-only) clients whatever is asked.
    confidential: bool = True
    clients: dict[str, RegisteredClient] = field(default_factory=dict)
    registrations: int = 0
    token_calls: list[dict[str, str]] = field(default_factory=list)
    state: AuthState = field(init=False)
    resources: dict[str, str] = field(default_factory=dict)  # consent id / code / family -> URL

    def __post_init__(self) -> None:
        self.state = AuthState(replace(self.config))

    def register(self, redirect_uris: tuple[str, ...]) -> RegisteredClient:
        """A new client (RFC 7591)."""
        secret = secrets.token_urlsafe(32) if self.confidential else None
        client = RegisteredClient(secrets.token_urlsafe(16), secret, redirect_uris)
        self.clients[client.client_id] = client
        self.registrations += 1
        return client

    def forget_clients(self) -> None:
        """Act as an auth-server change: every registered client becomes unknown."""
        self.clients.clear()

    def resource_of(self, access_token: str) -> tuple[str | None, Any] | None:
        """The live MCP token's (resource, record), or None."""
        record = self.state.access_token(access_token)
        if record is None:
            return None
        return self.resources.get(record.family.family_id), record

    def issued_secrets(self) -> set[str]:
        """Every MCP token and code ever issued, and every client secret."""
        secrets_ = {c.client_secret for c in self.clients.values() if c.client_secret}
        return self.state.issued_secrets() | secrets_


def _server(request: web.Request) -> McpAuthServer:
    return request.app[EMULATOR_KEY].mcp_auth


def _issuer(request: web.Request) -> str:
    return f"{request.url.origin()}{ISSUER_PATH}"


async def metadata(request: web.Request) -> web.StreamResponse:
    """GET /.well-known/oauth-authorization-server/mcp-auth (RFC 8414)."""
    issuer = _issuer(request)
    return web.json_response(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "registration_endpoint": f"{issuer}/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [
                "none",
                "client_secret_post",
                "client_secret_basic",
            ],
            "scopes_supported": list(SCOPES),
        }
    )


async def register(request: web.Request) -> web.StreamResponse:
    """POST /mcp-auth/register (RFC 7591)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    uris = body.get("redirect_uris") if isinstance(body, dict) else None
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        return web.json_response(
            {"error": "invalid_redirect_uri", "error_description": "redirect_uris required"},
            status=400,
        )
    client = _server(request).register(tuple(uris))
    answer: dict[str, Any] = {
        "client_id": client.client_id,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post" if client.client_secret else "none",
    }
    if client.client_secret:
        answer["client_secret"] = client.client_secret
        answer["client_secret_expires_at"] = 0
    return web.json_response(answer, status=201, headers=_NO_STORE)


async def authorize(request: web.Request) -> web.StreamResponse:
    """GET /mcp-auth/authorize: PKCE S256 and ``resource`` required; shows the consent page."""
    server = _server(request)
    query = request.query
    client = server.clients.get(query.get("client_id", ""))
    redirect_uri = query.get("redirect_uri", "")
    problem = None
    if client is None:
        problem = ("invalid_client", "Unknown client_id")
    elif redirect_uri not in client.redirect_uris:
        problem = (
            "unauthorized_client",
            f"redirect_uri is not registered for client: {redirect_uri}",
        )
    elif query.get("response_type") != "code" or not query.get("state"):
        problem = ("invalid_request", "response_type=code and state are required")
    elif not query.get("code_challenge") or query.get("code_challenge_method") != "S256":
        problem = ("invalid_request", "PKCE with code_challenge_method=S256 is required")
    elif not query.get("resource", "").startswith(("http://", "https://")):
        problem = ("invalid_target", "resource (RFC 8707) is required")
    if problem is not None:
        return web.Response(
            text=error_page(*problem), status=400, content_type="text/html", headers=_NO_STORE
        )
    scopes = tuple(s for s in query.get("scope", " ".join(SCOPES)).split() if s in SCOPES)
    consent = server.state.create_consent(
        client_id=query["client_id"],
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=query["state"],
        code_challenge=query["code_challenge"],
    )
    server.resources[consent.consent_id] = query["resource"]
    page = consent_page(
        server.config,
        consent.consent_id,
        consent.scopes,
        action=f"{ISSUER_PATH}/authorize/decision",
    )
    return web.Response(text=page, content_type="text/html", headers=_NO_STORE)


def _to_callback(redirect_uri: str, params: dict[str, str]) -> web.Response:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    separator = "&" if "?" in redirect_uri else "?"
    return web.Response(
        status=302, headers={"Location": f"{redirect_uri}{separator}{query}", **_NO_STORE}
    )


async def decision(request: web.Request) -> web.StreamResponse:
    """POST /mcp-auth/authorize/decision: Accept issues a code, Deny sends access_denied."""
    server = _server(request)
    form = dict(parse_qsl((await request.read()).decode("utf-8", "replace")))
    consent_id = form.get("consent_id", "")
    consent = server.state.take_consent(consent_id)
    resource = server.resources.pop(consent_id, None)
    if consent is None or resource is None:
        return web.Response(text="This consent request has expired.", status=400)
    if form.get("decision") != "accept":
        return _to_callback(
            consent.redirect_uri,
            {
                "error": "access_denied",
                "error_description": "User did not authorize the request",
                "state": consent.state,
            },
        )
    code = server.state.issue_code(consent, server.config.users[0].account_id)
    server.resources[code] = resource
    return _to_callback(consent.redirect_uri, {"code": code, "state": consent.state})


def _client_auth(request: web.Request, params: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, None
        return unquote(user), unquote(password)
    return params.get("client_id"), params.get("client_secret")


def _check_client(server: McpAuthServer, client_id: str | None, secret: str | None) -> None:
    client = server.clients.get(client_id or "")
    if client is None:
        raise OAuthError(401, "invalid_client", "Unknown client")
    if client.client_secret is not None and not (
        secret and hmac.compare_digest(secret.encode(), client.client_secret.encode())
    ):
        raise OAuthError(401, "invalid_client", "Client authentication failed")


def _grant(server: McpAuthServer, params: dict[str, str]) -> TokenGrant:
    grant_type = params.get("grant_type")
    if grant_type == "authorization_code":
        code = params.get("code", "")
        resource = server.resources.pop(code, None)
        if resource is not None and params.get("resource") not in {None, resource}:
            raise OAuthError(400, "invalid_target", "resource does not match the authorization")
        grant = server.state.exchange_code(
            code, params.get("redirect_uri"), params.get("code_verifier")
        )
        record = server.state.access_token(grant.access_token)
        if record is not None and resource is not None:
            server.resources[record.family.family_id] = resource
        return grant
    if grant_type == "refresh_token":
        try:
            return server.state.refresh(params.get("refresh_token"))
        except OAuthError as exc:
            raise OAuthError(400, "invalid_grant", exc.description) from exc
    raise OAuthError(400, "unsupported_grant_type", "Unsupported grant type")


async def token(request: web.Request) -> web.StreamResponse:
    """POST /mcp-auth/token (form-encoded, RFC 6749)."""
    server = _server(request)
    params = dict(parse_qsl((await request.read()).decode("utf-8", "replace")))
    client_id, secret = _client_auth(request, params)
    server.token_calls.append({k: v for k, v in params.items() if k == "grant_type"})
    try:
        _check_client(server, client_id, secret)
        grant = _grant(server, params)
    except OAuthError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=_NO_STORE)
    return web.json_response(grant.body(), headers=_NO_STORE)


def add_mcp_auth_routes(app: web.Application) -> None:
    """Mount the MCP authorization server on the emulator's application."""
    app.router.add_get(f"/.well-known/oauth-authorization-server{ISSUER_PATH}", metadata)
    app.router.add_post(f"{ISSUER_PATH}/register", register)
    app.router.add_get(f"{ISSUER_PATH}/authorize", authorize)
    app.router.add_post(f"{ISSUER_PATH}/authorize/decision", decision)
    app.router.add_post(f"{ISSUER_PATH}/token", token)
