"""Relaying a server-sent-event stream: event by event, unbuffered, with heartbeats.

The relay writes every complete event as soon as its closing blank line arrives (one write and
so one flush per upstream chunk), holds back only the unfinished tail of an event, and writes an
SSE comment (``: keepalive``) when nothing was written for ``heartbeat`` seconds. Because only
whole events reach the client, a heartbeat is always written *between* events, never inside
one. An event larger than ``MAX_HELD`` is passed on in pieces; heartbeats then wait until it
ends. ``endpoint`` events (the legacy SSE transport) go through a rewrite hook.

``EventSplitter`` is the pure part (bytes in, complete events out); ``relay_events`` does the I/O.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web

__all__ = [
    "HEARTBEAT",
    "MAX_HELD",
    "EventSplitter",
    "RelayEnd",
    "relay_events",
    "rewrite_endpoint_event",
]

log = structlog.get_logger("sidecar.mcp")

HEARTBEAT = b": keepalive\n\n"
MAX_HELD = 1 << 20
# A blank line: two line terminators in a row (CRLF, LF or a lone CR). A CR at the very end of
# what arrived so far may be the first half of a CRLF, so it does not count yet.
_TERMINATOR = rb"(?:\r\n|\r(?!\n|\Z)|\n)"
_BLANK_LINE = re.compile(_TERMINATOR + _TERMINATOR)
_LINE = re.compile(rb"\r\n|\r|\n")


@dataclass
class EventSplitter:
    """Splits a byte stream into whole events (each with its closing blank line) and a held tail.

    ``inside`` is True while bytes of an unfinished event have already been passed on (an event
    over ``max_held``): nothing may be written until that event ends.
    """

    max_held: int = MAX_HELD
    held: bytes = b""
    inside: bool = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """What may be written now, in order: whole events, or pieces of an oversized one."""
        data = self.held + chunk
        pieces: list[bytes] = []
        start = 0
        for match in _BLANK_LINE.finditer(data):
            pieces.append(data[start : match.end()])
            start = match.end()
        rest = data[start:]
        if pieces:
            self.inside = False  # an oversized event being passed on has ended
        if self.inside or len(rest) > self.max_held:
            self.inside = True
            # Line terminators at the end stay held: with the next chunk they may end the event.
            cut = len(rest.rstrip(b"\r\n"))
            self.held = rest[cut:]
            if cut:
                pieces.append(rest[:cut])
            return pieces
        self.held = rest
        return pieces

    @property
    def at_boundary(self) -> bool:
        """Whether a heartbeat may be written now (no event is half-written to the client)."""
        return not self.inside


def _retrieve(future: asyncio.Future[bytes]) -> None:
    """Mark an abandoned read's outcome as seen (it may fail once the connection closes)."""
    if not future.cancelled():
        future.exception()


def _event_name(event: bytes) -> bytes | None:
    for line in _LINE.split(event):
        if line.startswith(b"event:"):
            return line[6:].strip()
    return None


def rewrite_endpoint_event(event: bytes, rewrite: Callable[[str], str]) -> bytes:
    """An ``endpoint`` event with its ``data`` URL passed through ``rewrite``; others unchanged."""
    if _event_name(event) != b"endpoint":
        return event
    lines = _LINE.split(event)
    out: list[bytes] = []
    for line in lines:
        if line.startswith(b"data:"):
            value = line[5:].decode("utf-8", "replace")
            value = value.removeprefix(" ")
            out.append(b"data: " + rewrite(value).encode("utf-8"))
        else:
            out.append(line)
    # The event ended with a blank line: the split left two empty items at the end.
    return b"\n".join(out)


class RelayEnd:
    """Why a relay stopped (for the caller's log and metrics)."""

    EOF = "eof"
    CLIENT_GONE = "client_gone"
    IDLE = "idle_timeout"
    BROKEN = "upstream_broken"
    SHUTDOWN = "shutdown"


async def relay_events(
    upstream: aiohttp.ClientResponse,
    response: web.StreamResponse,
    *,
    heartbeat: float,
    idle_limit: float,
    closing: asyncio.Event,
    rewrite: Callable[[bytes], bytes] = lambda event: event,
    clock: Callable[[], float] | None = None,
) -> str:
    """Pump ``upstream`` into ``response`` until it ends; returns a ``RelayEnd`` value."""
    loop = asyncio.get_running_loop()
    now: Callable[[], float] = clock or loop.time
    splitter = EventSplitter()
    last_read = last_write = now()
    stop = asyncio.ensure_future(closing.wait())
    read: asyncio.Future[bytes] | None = None
    try:
        while True:
            wait = max(0.0, min(last_write + heartbeat, last_read + idle_limit) - now())
            read = asyncio.ensure_future(upstream.content.readany())
            read.add_done_callback(_retrieve)
            done, _ = await asyncio.wait({read, stop}, timeout=wait, return_when="FIRST_COMPLETED")
            if read not in done:
                read.cancel()
                if stop in done:
                    return RelayEnd.SHUTDOWN
                if now() - last_read >= idle_limit:
                    return RelayEnd.IDLE
                if splitter.at_boundary:
                    await response.write(HEARTBEAT)
                last_write = now()
                continue
            try:
                chunk = read.result()
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
                log.warning("mcp_stream_broken", error=type(exc).__name__)
                return RelayEnd.BROKEN
            if not chunk:
                return RelayEnd.EOF
            last_read = now()
            out = b"".join(rewrite(piece) for piece in splitter.feed(chunk))
            if out:
                await response.write(out)
                last_write = now()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        return RelayEnd.CLIENT_GONE
    finally:
        stop.cancel()
        if read is not None and not read.done():
            read.cancel()
