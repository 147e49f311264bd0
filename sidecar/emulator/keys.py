"""The one `web.AppKey` through which handlers reach the Emulator instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["EMULATOR_KEY"]

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("sidecar.emulator")
