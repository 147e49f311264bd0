"""Sans-IO burst rate limiter: a fixed one-second window per access token."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["BurstLimiter", "RateDecision"]

_WINDOW = 1.0


@dataclass(frozen=True)
class RateDecision:
    """The outcome of counting one request against its budget."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float

    def retry_after(self, now: float) -> int:
        """Whole seconds until the window resets (at least 1, as Atlassian never sends 0)."""
        return max(1, math.ceil(self.reset_at - now))

    def reset_iso(self) -> str:
        """Return the reset time in Atlassian's `yyyy-MM-ddTHH:mmZ` form."""
        return datetime.fromtimestamp(self.reset_at, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")

    @property
    def near_limit(self) -> bool:
        """True when less than 20% of the budget remains (`X-RateLimit-NearLimit`)."""
        return self.remaining < 0.2 * self.limit


@dataclass
class BurstLimiter:
    """Allow `per_second` requests per key in each one-second window opened by its first request."""

    per_second: float
    clock: Callable[[], float]
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    @property
    def limit(self) -> int:
        """The whole number of requests a window admits (at least one)."""
        return max(1, math.floor(self.per_second))

    def hit(self, key: str) -> RateDecision:
        """Count one request for `key` and say whether it fits the current window."""
        now = self.clock()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= _WINDOW:
            start, used = now, 0
        reset_at = start + _WINDOW
        if used >= self.limit:
            return RateDecision(allowed=False, limit=self.limit, remaining=0, reset_at=reset_at)
        used += 1
        self._windows[key] = (start, used)
        return RateDecision(
            allowed=True, limit=self.limit, remaining=self.limit - used, reset_at=reset_at
        )
