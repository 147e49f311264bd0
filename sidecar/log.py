"""Logging: structlog JSON (or console) lines written straight to stdout, aiohttp's own loggers
through the same processors, and a redaction step so no token, secret, code or cookie can reach
a log line.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from sidecar.config import LogSettings

__all__ = ["configure_logging", "redact"]

_SENSITIVE_KEY = re.compile(
    r"token|secret|password|authorization|cookie|verifier|^code$|credential|session_id",
    re.IGNORECASE,
)
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_REDACTED = "[redacted]"


@functools.lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        if "bearer" in lowered or "basic" in lowered:
            return _CREDENTIAL.sub(r"\1 " + _REDACTED, value)
        return value
    if isinstance(value, dict):
        return {k: _REDACTED if _sensitive(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank sensitive keys, mask bearer/basic credentials in text."""
    for key, value in event_dict.items():
        if _sensitive(key):
            event_dict[key] = _REDACTED
        elif not isinstance(value, int | float | bool | None):
            event_dict[key] = _scrub(value)
    return event_dict


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def configure_logging(settings: LogSettings) -> None:
    """Route structlog and stdlib logging to stdout in one format (call once, at the edge)."""
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if settings.format == "console"
        else structlog.processors.JSONRenderer()
    )
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    # The sidecar's own events skip the stdlib logging machinery (a measurable share of each
    # request): filtered by level at the call, rendered once, written straight to stdout.
    structlog.configure(
        processors=[*_processors(), structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_processors(), structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The access line is ours (one canonical line per request); aiohttp's would duplicate it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
