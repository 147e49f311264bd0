"""An in-memory Atlassian Cloud (auth.atlassian.com and api.atlassian.com) for dev and tests."""

from .app import create_emulator_app
from .config import DEFAULT_SITES, DEFAULT_USER, EmulatorConfig, Site, User
from .emulator import Emulator
from .keys import EMULATOR_KEY
from .records import ApiRequest, TokenCall
from .state import pkce_s256

__all__ = [
    "DEFAULT_SITES",
    "DEFAULT_USER",
    "EMULATOR_KEY",
    "ApiRequest",
    "Emulator",
    "EmulatorConfig",
    "Site",
    "TokenCall",
    "User",
    "create_emulator_app",
    "pkce_s256",
]
