"""What the emulator saw: one record per token call and per API request, for tests to assert on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from multidict import CIMultiDict

__all__ = ["ApiRequest", "InjectedFault", "TokenCall", "TokenContentType"]

TokenContentType = Literal["json", "form", "other"]


@dataclass
class TokenCall:
    """One POST /oauth/token as received; `status` is 0 until the answer is sent."""

    grant_type: str | None
    client_id: str | None
    code: str | None
    code_verifier: str | None
    redirect_uri: str | None
    refresh_token: str | None
    content_type: TokenContentType
    at: float
    status: int = 0
    injected: bool = False


@dataclass(frozen=True)
class ApiRequest:
    """One request to the API gateway (`/ex/...`, `/me`, accessible-resources)."""

    method: str
    raw_path: str
    headers: CIMultiDict[str]
    token: str | None
    status: int
    body_length: int
    at: float


@dataclass(frozen=True)
class InjectedFault:
    """A canned token-endpoint answer queued by `Emulator.fail_next_token_calls`."""

    status: int
    body: str
    content_type: str
    delay: float
