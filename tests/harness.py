"""Test harness: sidecar apps on real loopback servers wired to the emulator, a shared fake
clock, and the browser steps of a login (consent page included).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from sidecar.app import Overrides, create_app
from sidecar.config import Settings, load_settings
from sidecar.emulator import Emulator
from sidecar.metrics import Metrics

from .emulator.helpers import FakeClock as Clock

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SECRET_KEY",
    "SITE_A",
    "SITE_B",
    "SITE_X",
    "Clock",
    "Sidecar",
    "Stack",
]

CLIENT_ID = "sidecar-test-client"
CLIENT_SECRET = "sidecar-test-secret-value"
SECRET_KEY = "k" * 40
SITE_A = "11111111-1111-4111-8111-111111111111"
SITE_B = "22222222-2222-4222-8222-222222222222"
SITE_X = "99999999-9999-4999-8999-999999999999"
TEST_SCOPES = (
    "read:jira-work write:jira-work read:jira-user read:confluence-content.summary "
    "read:confluence-content.all read:me"
)
_CONSENT_ID = re.compile(r'name="consent_id" value="([^"]+)"')

Client = TestClient[web.Request, web.Application]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Sidecar:
    """One sidecar app (a replica) on its own loopback port, with a cookie-keeping client."""

    def __init__(self, client: Client, settings: Settings, metrics: Metrics, stack: Stack) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.stack = stack

    @property
    def url(self) -> str:
        return self.settings.oauth.public_url

    def metric(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when never touched)."""
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def cookie(self, name: str | None = None) -> str | None:
        """A cookie the client holds for the sidecar."""
        wanted = name or self.settings.session.cookie_name
        for morsel in self.client.session.cookie_jar:
            if morsel.key == wanted:
                return morsel.value
        return None

    def use_cookie(self, value: str) -> None:
        """Make the client present exactly this session cookie (and nothing else)."""
        self.client.session.cookie_jar.clear()
        self.client.session.cookie_jar.update_cookies(
            {self.settings.session.cookie_name: value}, URL(self.url)
        )

    async def start_login(self, return_to: str = "/app") -> str:
        """GET /auth/login; the authorize URL it redirects to."""
        resp = await self.client.get(
            "/auth/login", params={"return_to": return_to}, allow_redirects=False
        )
        assert resp.status == 302, await resp.text()
        return resp.headers["Location"]

    async def finish(self, callback_url: str) -> aiohttp.ClientResponse:
        """The browser coming back to /auth/callback."""
        return await self.client.get(URL(callback_url).path_qs, allow_redirects=False)

    async def login(
        self, return_to: str = "/app", decision: str = "accept"
    ) -> aiohttp.ClientResponse:
        """A whole login through the emulator's consent page; the callback's response."""
        authorize = await self.start_login(return_to)
        callback = await self.stack.consent(authorize, decision)
        return await self.finish(callback)

    async def get(self, path: str, **headers: str) -> aiohttp.ClientResponse:
        """An XHR-style GET (Accept: application/json) with the session cookie."""
        return await self.client.get(
            path, headers={"Accept": "application/json", **headers}, allow_redirects=False
        )


class Stack:
    """The emulator plus any number of sidecars sharing one Redis (or in-process stores)."""

    def __init__(
        self,
        emulator: Emulator,
        emulator_url: str,
        clock: Clock,
        redis_url: str | None,
        *,
        cluster: bool = False,
    ) -> None:
        self.cluster = cluster
        self.emulator = emulator
        self.emulator_url = emulator_url
        self.clock = clock
        self.redis_url = redis_url
        self.browser = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self._clients: list[Client] = []

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        for client in self._clients:
            await client.close()
        await self.browser.close()

    def settings(self, port: int, env: Mapping[str, str]) -> Settings:
        """Settings for a sidecar on ``port`` talking to the emulator."""
        base = {
            "SIDECAR_CLIENT_ID": CLIENT_ID,
            "SIDECAR_CLIENT_SECRET": CLIENT_SECRET,
            "SIDECAR_SECRET_KEYS": SECRET_KEY,
            "SIDECAR_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "SIDECAR_AUTH_URL": self.emulator_url,
            "SIDECAR_API_URL": self.emulator_url,
            "SIDECAR_SCOPES": TEST_SCOPES,
        }
        if self.redis_url:
            base["SIDECAR_REDIS_URL"] = self.redis_url
        if self.cluster:
            base["SIDECAR_REDIS_CLUSTER"] = "true"
        return load_settings({**base, **env})

    async def sidecar(self, env: Mapping[str, str] | None = None, **overrides: Any) -> Sidecar:
        """Start one more sidecar (replica) on a free port."""
        port = _free_port()
        settings = self.settings(port, env or {})
        metrics = Metrics(with_process_collectors=False)
        app = create_app(
            settings, overrides=Overrides(clock=self.clock, metrics=metrics, **overrides)
        )
        server = TestServer(app, host="127.0.0.1", port=port)
        client: Client = TestClient(server, cookie_jar=aiohttp.CookieJar(unsafe=True))
        await client.start_server()
        self._clients.append(client)
        return Sidecar(client, settings, metrics, self)

    def redis(self) -> Any:
        """A synchronous client for inspecting the store (cluster-aware)."""
        if self.cluster:
            return redis.RedisCluster.from_url(self.redis_url or "")
        return redis.Redis.from_url(self.redis_url or "")

    async def consent(self, authorize_url: str, decision: str = "accept") -> str:
        """The user on Atlassian's consent page: returns where Atlassian sends the browser."""
        async with self.browser.get(authorize_url) as page:
            assert page.status == 200, await page.text()
            match = _CONSENT_ID.search(await page.text())
        assert match is not None
        async with self.browser.post(
            f"{self.emulator_url}/authorize/decision",
            data={"consent_id": match.group(1), "decision": decision},
            allow_redirects=False,
        ) as answer:
            assert answer.status == 302, await answer.text()
            return answer.headers["Location"]
