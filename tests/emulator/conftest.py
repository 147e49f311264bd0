"""Fixtures for the emulator tests: a fake clock, a config, an Emulator served over loopback."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpClient

from sidecar.emulator import Emulator, EmulatorConfig

from .helpers import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Client, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(clock: FakeClock) -> EmulatorConfig:
    return EmulatorConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=(REDIRECT_URI,),
        clock=clock,
    )


@pytest.fixture
def emulator(config: EmulatorConfig) -> Emulator:
    return Emulator(config)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, emulator: Emulator) -> Client:
    return await aiohttp_client(emulator.app())
