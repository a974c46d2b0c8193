"""A figure with its 95% interval, and how every table, card and report writes it (a plain value: no numerics
library is imported)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Interval:
    """A figure with its 95% interval, bootstrap percentile or Wilson (None where resamples left it undefined too often)."""

    value: float
    low: float | None
    high: float | None


def interval_text(value: Interval | Mapping[str, Any] | None, digits: int = 3, missing: str = "—") -> str:
    """`0.613 [0.512, 0.701]`; the figure alone without an interval; `missing` where there is no figure. A mapping
    is an interval as JSON reports carry it (`{"value", "low", "high"}`)."""
    if value is None:
        return missing
    found = value if isinstance(value, Interval) else Interval(value["value"], value.get("low"), value.get("high"))
    if found.low is None or found.high is None:
        return f"{found.value:.{digits}f}"
    return f"{found.value:.{digits}f} [{found.low:.{digits}f}, {found.high:.{digits}f}]"
