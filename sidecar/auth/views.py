"""The auth routes: login, callback, logout and the session report."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp_session import get_session, new_session

from sidecar.auth.browser import browser_of, login_browser, remember_browser
from sidecar.auth.flow import (
    Misconfigured,
    Transient,
    Updated,
    authorize_url,
    new_pkce,
    safe_return_to,
)
from sidecar.auth.model import SessionRecord
from sidecar.auth.sessions import require_session
from sidecar.auth.tokens import SessionRef
from sidecar.errors import AuthMisconfigured, BadRequest, RefreshTransient, SidecarError
from sidecar.keys import AUTH_CLIENT, CLOCK, MCP_AUTH, METRICS, PENDING, SESSIONS, SETTINGS
from sidecar.responses import SECURITY_HEADERS, json_response, redirect

__all__ = ["callback", "login", "logout", "session_info"]

log = structlog.get_logger("sidecar.auth")


class AccessDenied(SidecarError):
    """The user declined consent on Atlassian's page (an addition to the contract's codes)."""

    code = "access_denied"
    status = 403
    default_message = "Access to Atlassian was not granted. You can sign in again at any time."


def _return_to(request: web.Request, value: str | None) -> str:
    safe = safe_return_to(value)
    if value and safe is None:
        request.app[METRICS].proxy_rejected.labels("bad_return_to").inc()
    return safe or "/"


async def login(request: web.Request) -> web.StreamResponse:
    """Start a 3LO login: record the state for this browser, redirect to Atlassian."""
    app = request.app
    settings = app[SETTINGS]
    return_to = _return_to(request, request.query.get("return_to"))
    browser, browser_cookie = login_browser(request, settings.session)
    verifier, challenge = new_pkce()
    state = await app[PENDING].begin(browser, verifier, return_to)
    location = authorize_url(
        settings.oauth.auth_url,
        client_id=settings.oauth.client_id,
        scopes=settings.oauth.scopes,
        redirect_uri=settings.oauth.redirect_uri,
        state=state,
        code_challenge=challenge,
    )
    response = redirect(location)
    remember_browser(response, settings.session, browser_cookie)
    log.info("login_started")
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    """Finish a login: check the state, exchange the code, start a brand-new session."""
    app = request.app
    metrics = app[METRICS]
    state = request.query.get("state", "")
    browser = browser_of(request, app[SETTINGS].session)
    pending = await app[PENDING].take(browser, state) if state else None
    if pending is None:
        metrics.logins.labels("state_invalid").inc()
        log.info("login_state_invalid")
        raise BadRequest(
            "This sign-in link is not valid any more (unknown, used or expired state)."
        )
    if "error" in request.query:
        metrics.logins.labels("denied").inc()
        log.info("login_denied", error=request.query["error"][:64])
        raise AccessDenied
    code = request.query.get("code", "")
    if not code:
        metrics.logins.labels("exchange_failed").inc()
        raise BadRequest("The callback carries no authorization code.")
    result = await app[AUTH_CLIENT].exchange_code(code, pending.verifier)
    if not isinstance(result, Updated):
        metrics.logins.labels("exchange_failed").inc()
        log.warning("login_exchange_failed", outcome=type(result).__name__)
        if isinstance(result, Transient):
            raise RefreshTransient(
                "Atlassian's token service is unavailable; try signing in again."
            )
        if isinstance(result, Misconfigured) and result.error in {
            "access_denied",
            "invalid_client",
        }:
            raise AuthMisconfigured
        raise BadRequest("Atlassian refused the authorization code; sign in again.")
    await _start_session(request, result)
    metrics.logins.labels("success").inc()
    log.info("login_succeeded")
    return redirect(pending.return_to)


async def _start_session(request: web.Request, result: Updated) -> None:
    app = request.app
    tokens = result.tokens
    client = app[AUTH_CLIENT]
    sites = await client.accessible_resources(tokens.access_token)
    user = await client.me(tokens.access_token) if "read:me" in tokens.scopes else None
    repository = app[SESSIONS]
    old = await get_session(request)
    old_ref = SessionRef.parse(old.identity) if not old.new else None
    if old_ref is not None:  # never carry a pre-login id across a login (fixation)
        await repository.end(old_ref, old.get("account_id"), "replaced")
    record = SessionRecord(
        account_id=user.account_id if user else None,
        user=user,
        sites=sites,
        scopes=tokens.scopes,
        created_at=app[CLOCK](),
        touched_at=app[CLOCK](),
        sites_checked_at=app[CLOCK](),
    )
    ref = await repository.start(record, tokens)
    session = await new_session(request)
    session.set_new_identity(ref.cookie_value)
    session.update(record.to_dict())


async def logout(request: web.Request) -> web.StreamResponse:
    """End this session (``?everywhere=1``: every session of the account)."""
    app = request.app
    session = await get_session(request)
    ref = SessionRef.parse(session.identity) if not session.new else None
    if ref is not None:
        account_id = session.get("account_id")
        everywhere = request.query.get("everywhere", "").lower() in {"1", "true", "yes"}
        if everywhere and account_id:
            await app[SESSIONS].end_account(account_id, "logout")
        else:
            await app[SESSIONS].end(ref, account_id, "logout")
    session.invalidate()
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        target = request.query.get("return_to") or await _form_return_to(request)
        location = _return_to(request, target)
        return redirect(location, 303)
    return web.Response(status=204, headers=SECURITY_HEADERS)


async def _form_return_to(request: web.Request) -> str | None:
    """``return_to`` from a logout form; a body that does not parse is simply ignored (the
    session is already ended; the answer must still clear the cookie).
    """
    try:
        form = await request.post()
    except (ValueError, LookupError, HttpProcessingError, web.HTTPRequestEntityTooLarge):
        return None
    value = form.get("return_to")
    return value if isinstance(value, str) else None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def session_info(request: web.Request) -> web.StreamResponse:
    """Who is signed in, on which sites, until when. Never a token."""
    app = request.app
    ctx = await require_session(request, app[SESSIONS])
    stored = await app[SESSIONS].tokens.load(ctx.ref)
    record = ctx.record
    user = record.user
    body = {
        "authenticated": True,
        "user": None
        if user is None
        else {
            "account_id": user.account_id,
            "name": user.name,
            "email": user.email,
            "picture": user.picture,
        },
        "sites": [
            {
                "cloud_id": s.cloud_id,
                "name": s.name,
                "url": s.url,
                "products": list(s.products),
                "scopes": list(s.scopes),
            }
            for s in record.sites
        ],
        "scopes": list(record.scopes),
        "access_token_expires_at": _iso(stored.tokens.expires_at) if stored else None,
        "session_expires_at": _iso(app[SESSIONS].expires_at(record)),
        "mcp": {"connected": await app[MCP_AUTH].connected(ctx.ref)},  # added to the contract
    }
    return json_response(body)
