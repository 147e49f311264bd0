"""Logging: structlog JSON (or console) to stdout, aiohttp's own loggers through the same
formatter, and a redaction step so no token, secret, code or cookie can reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from sidecar.config import LogSettings

__all__ = ["configure_logging", "redact"]

_SENSITIVE_KEY = re.compile(
    r"token|secret|password|authorization|cookie|code_verifier|^code$|verifier|credential",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _BEARER.sub(r"\1 " + _REDACTED, value)
    if isinstance(value, dict):
        return {
            k: _REDACTED if _SENSITIVE_KEY.search(str(k)) else _scrub(v) for k, v in value.items()
        }
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank sensitive keys, mask bearer/basic credentials in text."""
    for key in list(event_dict):
        if _SENSITIVE_KEY.search(key):
            event_dict[key] = _REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
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
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    # The access line is ours (one canonical line per request); aiohttp's would duplicate it.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
