"""The pre-auth cookie that binds pending logins (3LO and MCP) to one browser."""

from __future__ import annotations

from aiohttp import web

from sidecar.auth.pending import PENDING_TTL, new_browser_id, parse_browser_id
from sidecar.config import SessionSettings

__all__ = ["browser_of", "login_browser", "remember_browser"]


def browser_of(request: web.Request, settings: SessionSettings) -> bytes | None:
    """The browser id from the request's pre-auth cookie, or None."""
    return parse_browser_id(request.cookies.get(settings.login_cookie_name))


def login_browser(request: web.Request, settings: SessionSettings) -> tuple[bytes, str]:
    """This browser's id and cookie value, minting both when it has none yet."""
    value = request.cookies.get(settings.login_cookie_name, "")
    browser = parse_browser_id(value)
    if browser is None:
        value = new_browser_id()
        browser = parse_browser_id(value)
    assert browser is not None  # noqa: S101 - just minted
    return browser, value


def remember_browser(response: web.StreamResponse, settings: SessionSettings, value: str) -> None:
    """Set the pre-auth cookie (as long as a pending login lives)."""
    response.set_cookie(
        settings.login_cookie_name,
        value,
        max_age=int(PENDING_TTL),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
    )
