"""The bench's processes on loopback: nginx (upstream and reference proxy), the Python upstream,
redis-server, the emulator, the bare aiohttp proxy and sidecars; plus the login and /proc reads.

Everything listens on 127.0.0.1 only. Every process started here is stopped by `Stack.close`
(by its own pid, never by name).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PYTHON = sys.executable
CLOUD_ID = "11111111-1111-4111-8111-111111111111"
CLIENT_ID = "bench-client"
SERVER_CPU = "0"  # the proxy under test
DRIVER_CPU = "1"  # load generator, upstream, redis, emulator
_CONSENT_ID = re.compile(r'name="consent_id" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/pid/clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Target:
    """One proxy under test: where to send requests, the pid whose memory counts, its cookie."""

    name: str
    url: str
    pid: int
    cookie: str = ""

    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie} if self.cookie else {}


@dataclass
class Stack:
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sidecar-bench-")))
    procs: list[Proc] = field(default_factory=list)
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    download_mib: int = 100  # size of the upstream's /download answer

    def __post_init__(self) -> None:
        self.tmp.chmod(0o755)  # nginx workers run as an unprivileged user and read www/

    # --- process management -------------------------------------------------------------
    def spawn(
        self, name: str, argv: list[str], *, cpus: str, env: dict[str, str] | None = None
    ) -> Proc:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                ["taskset", "-c", cpus, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env={**os.environ, **(env or {})},
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(5)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self, *, keep_logs: bool = False) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)
        if not keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the pieces -----------------------------------------------------------------------
    def redis(self) -> str:
        port = free_port()
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
        self.spawn("redis", [*argv, "--appendonly", "no"], cpus=DRIVER_CPU)
        wait_port(port)
        return f"redis://127.0.0.1:{port}/0"

    def _www(self) -> Path:
        www = self.tmp / "www"
        jira = www / "ex" / "jira" / CLOUD_ID
        (jira / "rest" / "api" / "3" / "search").mkdir(parents=True)
        (www / "oauth" / "token").mkdir(parents=True)
        myself = {
            "self": f"https://api.atlassian.com/ex/jira/{CLOUD_ID}/rest/api/3/user?accountId=5b10ac8d82e05b22cc7d4ef5",
            "accountId": "5b10ac8d82e05b22cc7d4ef5",
            "accountType": "atlassian",
            "emailAddress": "mia@example.com",
            "avatarUrls": {s: f"https://avatar.example/{s}.png" for s in ("48x48", "24x24")},
            "displayName": "Mia Krystof",
            "active": True,
            "timeZone": "Europe/Berlin",
            "locale": "en_US",
            "groups": {"size": 3, "items": []},
            "applicationRoles": {"size": 1, "items": []},
            "expand": "groups,applicationRoles",
        }
        (jira / "rest" / "api" / "3" / "myself").write_text(json.dumps(myself))
        issues = [
            {
                "id": str(10000 + i),
                "key": f"ACME-{i}",
                "fields": {
                    "summary": f"Issue number {i} " + "lorem ipsum " * 8,
                    "status": {"name": "In Progress", "id": "3"},
                    "assignee": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Mia"},
                    "labels": ["bench", "search"],
                },
            }
            for i in range(480)
        ]
        (jira / "rest" / "api" / "3" / "search" / "jql").write_text(
            json.dumps({"issues": issues, "isLast": True})
        )
        block = (b"0123456789abcdef" * 4096) * 16  # 1 MiB
        with (jira / "download").open("wb") as out:
            for _ in range(self.download_mib):
                out.write(block)
        resources = [
            {
                "id": CLOUD_ID,
                "name": "acme",
                "url": "https://acme.atlassian.net",
                "scopes": ["read:jira-work", "read:jira-user"],
                "avatarUrl": "x",
            }
        ]
        (www / "oauth" / "token" / "accessible-resources").write_text(json.dumps(resources))
        me = {"account_id": "5b10ac8d82e05b22cc7d4ef5", "email": "mia@example.com",
              "name": "Mia Krystof", "picture": "x", "nickname": "mia", "account_type": "atlassian",
              "account_status": "active"}  # fmt: skip
        (www / "me").write_text(json.dumps(me))
        return www

    def _nginx(self, name: str, server_block: str, cpus: str) -> Proc:
        temp = self.tmp / f"{name}-temp"
        temp.mkdir()
        conf = self.tmp / f"{name}.conf"
        conf.write_text(f"""
worker_processes 1;
pid {self.tmp}/{name}.pid;
error_log {self.tmp}/{name}-error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 10000000; keepalive_timeout 300s;
  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fcgi; uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
  default_type application/json;
{server_block}
}}
""")
        return self.spawn(name, ["nginx", "-c", str(conf), "-g", "daemon off;"], cpus=cpus)

    def upstream(self) -> str:
        """nginx serving the static answers; stream and upload go to bench/upstream.py."""
        py_port, port = free_port(), free_port()
        self.spawn(
            "py-upstream",
            [PYTHON, str(BENCH / "upstream.py"), "--port", str(py_port)],
            cpus=DRIVER_CPU,
        )
        www = self._www()
        self._nginx(
            "upstream",
            f"""
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location ~ ^/ex/jira/[^/]+/(stream|upload)$ {{
      proxy_pass http://127.0.0.1:{py_port};
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_request_buffering off;
      client_max_body_size 0; proxy_read_timeout 3600s;
    }}
  }}""",
            DRIVER_CPU,
        )
        wait_port(py_port)
        wait_port(port)
        return f"http://127.0.0.1:{port}"

    def nginx_proxy(self, upstream: str) -> Target:
        """The reference: nginx adding a fixed Authorization header, streaming both ways."""
        port = free_port()
        proc = self._nginx(
            "nginx-proxy",
            f"""
  upstream up {{ server {upstream.removeprefix("http://")}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location /jira/ {{
      proxy_pass http://up/ex/jira/;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer bench-fixed-token";
      proxy_buffering off; proxy_request_buffering off;
      proxy_buffer_size 64k; proxy_buffers 8 64k; client_body_buffer_size 64k;
      client_max_body_size 0; proxy_read_timeout 3600s;
    }}
  }}""",
            SERVER_CPU,
        )
        wait_port(port)
        return Target("nginx", f"http://127.0.0.1:{port}", children(proc.pid)[0])

    def bare_proxy(self, upstream: str) -> Target:
        port = free_port()
        argv = [PYTHON, str(BENCH / "bare_proxy.py"), "--port", str(port), "--upstream", upstream]
        proc = self.spawn("bare-proxy", argv, cpus=SERVER_CPU)
        wait_port(port)
        return Target("bare", f"http://127.0.0.1:{port}", proc.pid)

    def emulator(self, *, access_token_ttl: float = 3600.0, token_delay: float = 0.0) -> str:
        """The emulator (with the bench's stats route and token delay)."""
        port = free_port()
        argv = [PYTHON, str(BENCH / "emulator_host.py"), "--port", str(port)]
        argv += ["--client-id", CLIENT_ID, "--client-secret", self.client_secret]
        argv += ["--access-token-ttl", str(access_token_ttl), "--token-delay", str(token_delay)]
        self.spawn(f"emulator-{port}", argv, cpus=DRIVER_CPU)
        wait_port(port)
        return f"http://127.0.0.1:{port}"

    def sidecar_env(
        self, *, port: int, public_port: int, api: str, auth: str, redis: str
    ) -> dict[str, str]:
        return {
            "SIDECAR_CLIENT_ID": CLIENT_ID,
            "SIDECAR_CLIENT_SECRET": self.client_secret,
            "SIDECAR_SECRET_KEYS": self.secret_key,
            "SIDECAR_PUBLIC_URL": f"http://127.0.0.1:{public_port}",
            "SIDECAR_AUTH_URL": auth,
            "SIDECAR_API_URL": api,
            "SIDECAR_REDIS_URL": redis,
            "SIDECAR_LISTEN": f"127.0.0.1:{port}",
            "SIDECAR_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
            "SIDECAR_LOG_FORMAT": "json",
            "SIDECAR_LOG_LEVEL": "info",
        }

    def sidecar(
        self,
        name: str,
        env: dict[str, str],
        *,
        cpus: str = SERVER_CPU,
        wait: bool = True,
    ) -> Proc:
        proc = self.spawn(name, [PYTHON, "-m", "sidecar", "serve"], cpus=cpus, env=env)
        if wait:
            wait_port(int(env["SIDECAR_LISTEN"].rpartition(":")[2]))
        return proc


async def login(sidecar: str, emulator: str) -> str:
    """Drive /auth/login → the emulator's consent (accept) → /auth/callback; the Cookie header."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{sidecar}/auth/login", allow_redirects=False) as resp:
            authorize = resp.headers["Location"]
        async with http.get(authorize) as page:
            found = _CONSENT_ID.search(await page.text())
        if found is None:
            raise RuntimeError("no consent_id on the emulator's consent page")
        async with http.post(
            f"{emulator}/authorize/decision",
            data={"consent_id": found.group(1), "decision": "accept"},
            allow_redirects=False,
        ) as resp:
            callback = resp.headers["Location"]
        async with http.get(callback, allow_redirects=False) as resp:
            if resp.status not in (302, 303):
                raise RuntimeError(f"callback answered {resp.status}: {await resp.text()}")
        for morsel in jar:
            if morsel.key == "sidecar_session":
                return f"sidecar_session={morsel.value}"
    raise RuntimeError("no session cookie after the login")
