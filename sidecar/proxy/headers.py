"""Sans-IO header policy for proxied requests and responses (RFC 9110 §7.6.1 hop-by-hop rules,
plus the sidecar's own credential rules).
"""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["request_headers", "response_headers"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
    }
)
# Never forwarded upstream: the client's credentials, our cookie, and what the client
# library sets for its own connection (Host, Content-Length are set from the request itself).
_REQUEST_DROP = _HOP_BY_HOP | {"host", "cookie", "authorization", "expect", "content-length"}
# Never passed back: cookies of api.atlassian.com must not land on the sidecar's origin;
# framing is the sidecar's own.
_RESPONSE_DROP = _HOP_BY_HOP | {"set-cookie", "content-length"}


def _connection_named(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    named: set[str] = set()
    for value in headers.getall("Connection", ()):
        named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def _filtered(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: Iterable[str]
) -> CIMultiDict[str]:
    removed = set(drop) | _connection_named(headers)
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in removed)


def request_headers(
    incoming: CIMultiDictProxy[str], access_token: str, content_length: int | None
) -> CIMultiDict[str]:
    """What goes to Atlassian: the client's end-to-end headers plus our bearer token."""
    out = _filtered(incoming, _REQUEST_DROP)
    out["Authorization"] = f"Bearer {access_token}"
    if content_length is not None:
        out["Content-Length"] = str(content_length)
    if "Accept-Encoding" not in out:
        # Without this the client library would ask for gzip on the client's behalf.
        out["Accept-Encoding"] = "identity"
    return out


def response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """What goes back to the client: Atlassian's end-to-end headers, unchanged."""
    return _filtered(upstream, _RESPONSE_DROP)
