"""The MCP server's own OAuth client: discovery, dynamic registration, code exchange, refresh.

Discovery answers are kept for ``DISCOVERY_TTL`` seconds only (Atlassian moved the MCP server to
another authorization server in 2026; a client that cached the issuer or its ``client_id`` broke).
The registration is sealed in the store under a key derived from the issuer and callback, so a
new issuer means a new registration; a registration the server refuses (``invalid_client``) is
dropped and made again on the next consent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import structlog

from sidecar.auth.flow import (
    Misconfigured,
    Refused,
    TokenResult,
    Transient,
    classify_token_response,
)
from sidecar.auth.seal import Sealer, SealError
from sidecar.errors import UpstreamTimeout, UpstreamUnavailable
from sidecar.mcp.metadata import (
    AuthServer,
    Registration,
    Resource,
    as_metadata_urls,
    parse_as_metadata,
    parse_registration,
    parse_resource_metadata,
    prm_urls,
    registration_request,
    resource_metadata_from_header,
)
from sidecar.metrics import Metrics
from sidecar.store.base import KeyValueStore

__all__ = ["DISCOVERY_TTL", "Discovered", "McpOAuthClient"]

log = structlog.get_logger("sidecar.mcp.oauth")

DISCOVERY_TTL = 300.0
REGISTRATION_TTL = 30 * 86400.0
_CALL_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)
_MAX_ANSWER = 1 << 20
_SEAL_SECRET = b"sidecar-mcp-client-registration"


@dataclass(frozen=True)
class Discovered:
    """The MCP resource and the authorization server that issues its tokens."""

    resource: Resource
    server: AuthServer

    @property
    def scopes(self) -> tuple[str, ...]:
        """What to ask for: the resource's scopes, plus offline_access when the server has it."""
        scopes = list(self.resource.scopes)
        if "offline_access" in self.server.scopes and "offline_access" not in scopes:
            scopes.append("offline_access")
        return tuple(scopes)


class McpOAuthClient:
    """Talks to the MCP server's authorization server on behalf of the sidecar."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        mcp_url: str,
        redirect_uri: str,
        store: KeyValueStore,
        sealer: Sealer,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._mcp_url = mcp_url
        self.redirect_uri = redirect_uri
        self._store = store
        self._sealer = sealer
        self._metrics = metrics
        self._clock = clock
        self._cached: tuple[float, Discovered] | None = None

    # -- discovery ---------------------------------------------------------------------------

    async def _get(self, url: str, **headers: str) -> tuple[int, Any, str]:
        started = time.perf_counter()
        status = "error"
        try:
            async with self._http.get(
                url,
                timeout=_CALL_TIMEOUT,
                allow_redirects=False,
                headers={"Accept": "application/json", **headers},
            ) as resp:
                status = str(resp.status)
                body = await resp.content.read(_MAX_ANSWER)
                challenge = resp.headers.get("WWW-Authenticate", "")
        except TimeoutError as exc:
            raise UpstreamTimeout from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable("The MCP server could not be reached.") from exc
        finally:
            self._metrics.upstream_requests.labels("mcp", status).inc()
            self._metrics.upstream_duration.labels("mcp").observe(time.perf_counter() - started)
        try:
            return resp.status, json.loads(body), challenge
        except ValueError:
            return resp.status, None, challenge

    async def discover(self) -> Discovered:
        """The resource and its authorization server (fresh at most DISCOVERY_TTL seconds)."""
        now = time.monotonic()
        if self._cached is not None and self._cached[0] > now:
            return self._cached[1]
        resource = await self._resource()
        server = await self._server(resource.authorization_servers[0])
        found = Discovered(resource, server)
        self._cached = (now + DISCOVERY_TTL, found)
        log.info("mcp_discovered", issuer=server.issuer, resource=resource.resource)
        return found

    def forget_discovery(self) -> None:
        """Drop the cached discovery (the server refused what it told us)."""
        self._cached = None

    async def _resource(self) -> Resource:
        # An unauthenticated request gets 401 with WWW-Authenticate naming the metadata.
        status, _, challenge = await self._get(
            self._mcp_url, Accept="application/json, text/event-stream"
        )
        candidates = prm_urls(self._mcp_url)
        if status == 401:
            named = resource_metadata_from_header(challenge)
            if named is not None:
                candidates = [named, *candidates]
        for url in candidates:
            code, data, _ = await self._get(url)
            resource = parse_resource_metadata(data, self._mcp_url) if code == 200 else None
            if resource is not None:
                return resource
        raise UpstreamUnavailable("The MCP server publishes no protected-resource metadata.")

    async def _server(self, issuer: str) -> AuthServer:
        for url in as_metadata_urls(issuer):
            code, data, _ = await self._get(url)
            server = parse_as_metadata(data, issuer) if code == 200 else None
            if server is not None:
                return server
        raise UpstreamUnavailable("The MCP authorization server publishes no usable metadata.")

    # -- registration ------------------------------------------------------------------------

    def _registration_key(self, issuer: str) -> str:
        digest = hashlib.sha256(f"{issuer}\n{self.redirect_uri}".encode()).hexdigest()[:32]
        return "sc:mcp:client:" + digest

    async def registration(self, found: Discovered) -> Registration:
        """The sidecar's client at this issuer: stored, or registered now (RFC 7591)."""
        key = self._registration_key(found.server.issuer)
        raw = await self._store.get(key)
        if raw is not None:
            try:
                opened = self._sealer.open(raw, secret=_SEAL_SECRET, context=key.encode())
                stored = Registration.from_dict(json.loads(opened.plaintext))
            except (SealError, ValueError, KeyError):
                stored = None
            if stored is not None and (
                stored.expires_at is None or stored.expires_at > self._clock() + 60
            ):
                return stored
        return await self._register(found, key)

    async def _register(self, found: Discovered, key: str) -> Registration:
        endpoint = found.server.registration_endpoint
        if endpoint is None:
            raise UpstreamUnavailable("The MCP authorization server offers no client registration.")
        body = registration_request(self.redirect_uri, found.server)
        started = time.perf_counter()
        status = "error"
        try:
            async with self._http.post(
                endpoint,
                json=body,
                timeout=_CALL_TIMEOUT,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as resp:
                status = str(resp.status)
                answer = await resp.content.read(_MAX_ANSWER)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable("The MCP authorization server could not be reached.") from exc
        finally:
            self._metrics.upstream_requests.labels("auth", status).inc()
            self._metrics.upstream_duration.labels("auth").observe(time.perf_counter() - started)
        try:
            registration = (
                parse_registration(json.loads(answer)) if status in {"200", "201"} else None
            )
        except ValueError:
            registration = None
        if registration is None:
            log.warning("mcp_registration_failed", status=status)
            raise UpstreamUnavailable("The MCP authorization server refused the registration.")
        ttl = REGISTRATION_TTL
        if registration.expires_at is not None:
            ttl = max(60.0, min(ttl, registration.expires_at - self._clock()))
        blob = self._sealer.seal(
            json.dumps(registration.to_dict()).encode(), secret=_SEAL_SECRET, context=key.encode()
        )
        await self._store.put(key, blob, ttl)
        log.info(
            "mcp_client_registered",
            issuer=found.server.issuer,
            confidential=registration.client_secret is not None,
        )
        return registration

    async def forget_registration(self, found: Discovered) -> None:
        """Drop the stored client (the server no longer knows it); the next consent registers."""
        await self._store.delete(self._registration_key(found.server.issuer))
        self.forget_discovery()

    # -- tokens ------------------------------------------------------------------------------

    async def _token_call(
        self, fields: dict[str, str], previous_refresh: str | None
    ) -> TokenResult:
        try:
            found = await self.discover()
            registration = await self.registration(found)
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            return Transient(type(exc).__name__)
        body = {**fields, "client_id": registration.client_id}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if registration.client_secret is not None:
            if registration.auth_method == "client_secret_basic":
                user = quote(registration.client_id, safe="")
                pair = f"{user}:{quote(registration.client_secret, safe='')}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
            else:
                body["client_secret"] = registration.client_secret
        started = time.perf_counter()
        status = "error"
        try:
            async with self._http.post(
                found.server.token_endpoint,
                data=urlencode(body).encode(),
                timeout=_CALL_TIMEOUT,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                status = str(resp.status)
                answer = await resp.content.read(_MAX_ANSWER)
                result = classify_token_response(
                    resp.status, answer, now=self._clock(), previous_refresh=previous_refresh
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Transient(type(exc).__name__)
        finally:
            self._metrics.upstream_requests.labels("auth", status).inc()
            self._metrics.upstream_duration.labels("auth").observe(time.perf_counter() - started)
        if isinstance(result, Misconfigured) and result.error in {
            "invalid_client",
            "unauthorized_client",
        }:
            # The server forgot our client (or moved to another auth server): register anew on
            # the next consent; the grant made with the old client cannot be used any more.
            log.warning("mcp_client_refused", error=result.error)
            await self.forget_registration(found)
            return Refused(result.error)
        return result

    async def exchange_code(self, code: str, verifier: str) -> TokenResult:
        """Trade the MCP consent's code (with its PKCE verifier) for the MCP token pair."""
        found = await self.discover()
        return await self._token_call(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": verifier,
                "resource": found.resource.resource,
            },
            previous_refresh=None,
        )

    async def refresh(self, refresh_token: str) -> TokenResult:
        """Spend the MCP refresh token (RefreshClient, for the MCP RefreshCoordinator)."""
        try:
            found = await self.discover()
        except (UpstreamUnavailable, UpstreamTimeout) as exc:
            return Transient(type(exc).__name__)
        return await self._token_call(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "resource": found.resource.resource,
            },
            previous_refresh=refresh_token,
        )
