"""Rate limits and retry timing (pure: the clock and the random source are passed in)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime


class TokenBucket:
    """A per-minute limit as a bucket refilled continuously; a request may borrow, then waits off its debt.

    `reserve(amount, now)` takes `amount` at once and returns how long the caller must wait before sending;
    `refund(amount)` gives back an over-estimate (or takes more, when negative).
    """

    def __init__(self, per_minute: float, now: float, burst_s: float = 5.0) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def reserve(self, amount: float, now: float) -> float:
        self._refill(now)
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def refund(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


def retry_after_s(headers: Mapping[str, str] | None, now_epoch: float) -> float | None:
    """The server's requested wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_epoch)
    except (TypeError, ValueError):
        return None


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter for the wait after failed attempt number `attempt` (1-based)."""
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return ceiling * (0.5 + 0.5 * rng.random())


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None,
    *,
    base_s: float,
    cap_s: float,
    rng: random.Random,
    now_epoch: float,
) -> float:
    """Wait before the next attempt: the server's Retry-After when it gives one (capped), else backoff."""
    requested = retry_after_s(headers, now_epoch)
    if requested is not None:
        return min(requested, cap_s)
    return backoff_s(attempt, base_s, cap_s, rng)
