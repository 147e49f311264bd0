"""The emulated auth.atlassian.com: /authorize (consent screen), its decision, and /oauth/token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from aiohttp import web
from yarl import URL

from .keys import EMULATOR_KEY
from .pages import consent_page, error_page
from .records import TokenCall, TokenContentType
from .state import AuthState, OAuthError, TokenGrant

__all__ = ["authorize", "authorize_decision", "token"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_DENIED = "User did not authorize the request"


class _AuthorizeError(Exception):
    """An /authorize problem shown to the user; Atlassian never redirects these to the app."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=_NO_STORE)


def _callback(redirect_uri: str, params: Mapping[str, str]) -> web.Response:
    """302 to the app's callback; spaces as %20, as Atlassian encodes them."""
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    separator = "&" if URL(redirect_uri).raw_query_string else "?"
    location = f"{redirect_uri}{separator}{query}"
    return web.Response(status=302, headers={"Location": location, **_NO_STORE})


def _require(query: Mapping[str, str], name: str, expected: str | None = None) -> str:
    value = query.get(name, "")
    if not value:
        raise _AuthorizeError("invalid_request", f"Missing required parameter: {name}")
    if expected is not None and value != expected:
        raise _AuthorizeError("invalid_request", f"Parameter {name} must be {expected}")
    return value


def _check_client(request: web.Request) -> str:
    """Validate client_id and redirect_uri, the two errors that must never reach the app."""
    config = request.app[EMULATOR_KEY].config
    query = request.query
    if query.get("client_id") != config.client_id:
        raise _AuthorizeError("unauthorized_client", "Unknown client_id")
    redirect_uri = _require(query, "redirect_uri")
    url = URL(redirect_uri)
    allowed = redirect_uri in config.redirect_uris if config.redirect_uris else url.absolute
    if not allowed or url.scheme not in ("http", "https"):
        raise _AuthorizeError(
            "unauthorized_client",
            f"Callback URL mismatch. {redirect_uri} is not in the list of allowed callback URLs",
        )
    return redirect_uri


def _scopes(query: Mapping[str, str]) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(_require(query, "scope").split()))
    if "openid" in scopes:  # 3LO apps are not OIDC clients; Atlassian's flow breaks on it
        raise _AuthorizeError("invalid_scope", "There's nothing here: openid is not a 3LO scope")
    return scopes


def _pkce(query: Mapping[str, str]) -> str | None:
    challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
    if challenge is None and method is None:
        return None
    if not challenge or method != "S256":
        raise _AuthorizeError("invalid_request", "code_challenge with code_challenge_method=S256")
    return challenge


async def authorize(request: web.Request) -> web.StreamResponse:
    """GET /authorize: validate the request and show the consent screen."""
    state_store: AuthState = request.app[EMULATOR_KEY].state
    query = request.query
    try:
        redirect_uri = _check_client(request)
        _require(query, "audience", "api.atlassian.com")
        _require(query, "response_type", "code")
        _require(query, "prompt", "consent")
        scopes = _scopes(query)
        state = _require(query, "state")
        challenge = _pkce(query)
    except _AuthorizeError as exc:
        return _html(error_page(exc.error, exc.description), status=400)
    consent = state_store.create_consent(
        client_id=query["client_id"],
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        code_challenge=challenge,
    )
    config = request.app[EMULATOR_KEY].config
    return _html(consent_page(config, consent.consent_id, consent.scopes))


async def authorize_decision(request: web.Request) -> web.StreamResponse:
    """POST /authorize/decision: Accept issues a code, Deny sends access_denied (302 to the app)."""
    emulator = request.app[EMULATOR_KEY]
    form = dict(parse_qsl((await request.read()).decode("utf-8", "replace")))
    consent = emulator.state.take_consent(form.get("consent_id", ""))
    if consent is None:
        return _html(error_page("invalid_request", "This consent request has expired."), 400)
    decision = form.get("decision")
    if decision == "deny":
        params = {"error": "access_denied", "error_description": _DENIED, "state": consent.state}
        return _callback(consent.redirect_uri, params)
    user = emulator.config.user(form.get("account_id"))
    if decision != "accept" or user is None:
        return _html(error_page("invalid_request", "Unknown decision or account."), 400)
    code = emulator.state.issue_code(consent, user.account_id)
    return _callback(consent.redirect_uri, {"code": code, "state": consent.state})


def _parse_body(content_type: str, raw: bytes) -> tuple[TokenContentType, dict[str, str] | None]:
    """Decode a token request body (JSON or form); None when it cannot be read."""
    text = raw.decode("utf-8", "replace")
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            return "json", None
        if not isinstance(data, dict):
            return "json", None
        return "json", {k: v for k, v in data.items() if isinstance(v, str)}
    if content_type == "application/x-www-form-urlencoded":
        return "form", dict(parse_qsl(text, keep_blank_values=True))
    return "other", None


def _grant(state: AuthState, params: Mapping[str, str] | None) -> TokenGrant:
    if params is None:
        raise OAuthError(400, "invalid_request", "Malformed or unsupported request body")
    state.check_client(params.get("client_id"), params.get("client_secret"))
    grant_type = params.get("grant_type")
    if grant_type == "authorization_code":
        return state.exchange_code(
            params.get("code"), params.get("redirect_uri"), params.get("code_verifier")
        )
    if grant_type == "refresh_token":
        return state.refresh(params.get("refresh_token"))
    raise OAuthError(400, "unsupported_grant_type", "Unsupported grant type")


async def token(request: web.Request) -> web.StreamResponse:
    """POST /oauth/token: code exchange and refresh-token rotation, with fault injection."""
    emulator = request.app[EMULATOR_KEY]
    kind, params = _parse_body(request.content_type, await request.read())
    fields = params or {}
    call = TokenCall(
        grant_type=fields.get("grant_type"),
        client_id=fields.get("client_id"),
        code=fields.get("code"),
        code_verifier=fields.get("code_verifier"),
        redirect_uri=fields.get("redirect_uri"),
        refresh_token=fields.get("refresh_token"),
        content_type=kind,
        at=emulator.config.clock(),
    )
    emulator.token_calls.append(call)
    fault = emulator.take_fault()
    if emulator.token_delay > 0:
        await asyncio.sleep(emulator.token_delay)
    if fault is not None:
        await asyncio.sleep(fault.delay)
        call.status, call.injected = fault.status, True
        headers = {"Content-Type": fault.content_type, **_NO_STORE}
        return web.Response(status=fault.status, body=fault.body.encode(), headers=headers)
    try:
        grant = _grant(emulator.state, params)
    except OAuthError as exc:
        call.status = exc.status
        return web.json_response(exc.body(), status=exc.status, headers=_NO_STORE)
    call.status = 200
    return web.json_response(grant.body(), headers=_NO_STORE)
