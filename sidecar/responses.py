"""How the sidecar's own answers look: contract JSON errors, small HTML pages, safe headers."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

from aiohttp import web

from sidecar.errors import LoginRequired, SidecarError, TemporarilyUnavailable

__all__ = [
    "SECURITY_HEADERS",
    "error_response",
    "html_page",
    "is_navigation",
    "json_response",
    "login_url",
    "redirect",
    "wants_html",
]

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
}


def redirect(location: str, status: int = 302) -> web.Response:
    """A redirect with ``location`` exactly as given (aiohttp's HTTPFound would re-quote it)."""
    return web.Response(status=status, headers={**SECURITY_HEADERS, "Location": location})


def wants_html(request: web.Request) -> bool:
    """Whether the client prefers an HTML page over JSON (a person in a browser)."""
    accept = request.headers.get("Accept", "")
    if "text/html" not in accept:
        return False
    json_at = accept.find("application/json")
    return json_at == -1 or accept.find("text/html") < json_at


def is_navigation(request: web.Request) -> bool:
    """A top-level browser navigation (may be redirected to the login), not an API call.

    Fetch metadata decides when present (``Sec-Fetch-Mode: navigate`` on a GET, and a
    ``Sec-Fetch-Dest`` of ``document`` if any: frames and embeds get the JSON 401); otherwise
    a GET preferring ``text/html`` without ``X-Requested-With``.
    """
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        dest = request.headers.get("Sec-Fetch-Dest", "document")
        return mode == "navigate" and dest == "document" and request.method == "GET"
    xhr = request.headers.get("X-Requested-With", "").lower() == "xmlhttprequest"
    return request.method == "GET" and not xhr and wants_html(request)


def login_url(request: web.Request) -> str:
    """Where to log in and come back to this request's path and query."""
    return "/auth/login?return_to=" + quote(request.raw_path, safe="")


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer with the sidecar's safe headers."""
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def html_page(title: str, message: str, status: int) -> web.Response:
    """A small self-contained page (escaped text only)."""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>body{{font:16px/1.5 system-ui,sans-serif;"
        "max-width:36rem;margin:10vh auto;padding:0 1rem;color:#172b4d}h1{font-size:1.4rem}"
        "a{color:#0c66e4}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        '<p><a href="/auth/login">Sign in again</a></p></body></html>'
    )
    return web.Response(
        text=body, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def error_response(request: web.Request, error: SidecarError, request_id: str) -> web.Response:
    """The contract's error answer for ``error`` (JSON, or a page for a person)."""
    headers = {"X-Sidecar-Error": error.code}
    if isinstance(error, TemporarilyUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    # A page for a person; a fetch()/XHR (Sec-Fetch-Mode other than navigate) always gets JSON.
    if wants_html(request) and request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate":
        page = html_page(error.code.replace("_", " ").capitalize(), error.message, error.status)
        page.headers.update(headers)
        return page
    body: dict[str, str] = {"error": error.code, "message": error.message, "request_id": request_id}
    if isinstance(error, LoginRequired):
        body["login_url"] = login_url(request)
    return json_response(body, error.status, headers)
