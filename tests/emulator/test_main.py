"""`python -m sidecar.emulator` runs a real server from the command line."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp

from sidecar.emulator.__main__ import parse_args

_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_parse_args_defaults_and_repeated_callbacks() -> None:
    """The CLI takes the client, repeatable callbacks and defaults to port 9000."""
    args = parse_args(
        ["--client-id", "id", "--client-secret", "s", "--redirect-uri", "a", "--redirect-uri", "b"]
    )
    assert (args.host, args.port, args.client_id, args.redirect_uri) == (
        "127.0.0.1",
        9000,
        "id",
        ["a", "b"],
    )
    assert args.rate_limit is None


async def test_standalone_server_serves_authorize() -> None:
    """The module entry point serves the index and checks callbacks against --redirect-uri."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.emulator",
        "--port",
        str(port),
        "--client-id",
        "cli-client",
        "--client-secret",
        "cli-secret",
        "--redirect-uri",
        "http://localhost:8080/auth/callback",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{base}/") as resp:
                        index = await resp.text()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("emulator did not start")
            assert "cli-client" in index
            params = {
                "audience": "api.atlassian.com",
                "client_id": "cli-client",
                "scope": "read:me",
                "redirect_uri": "http://localhost:9999/elsewhere",
                "state": "s",
                "response_type": "code",
                "prompt": "consent",
            }
            async with session.get(f"{base}/authorize", params=params) as resp:
                assert resp.status == 400
                assert "Callback URL mismatch" in await resp.text()
    finally:
        proc.terminate()
        await proc.wait()
