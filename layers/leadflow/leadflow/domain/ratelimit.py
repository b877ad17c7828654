"""Fixed-window rate limiting per client: the window a post falls in and its counter key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateWindow:
    """The counter a post increments: at most ``limit`` posts per client per window."""

    counter_key: str
    limit: int
    retry_after_seconds: int
    expires_at: int


# No __eq__, __hash__ or __repr__: nothing compares or prints these, and each generated
# method is compiled at import, on every cold start of form capture (docs/benchmarks.md).
@dataclass(frozen=True, eq=False, repr=False)
class HitCounter:
    """Caps how often one tracking token is recorded: at most ``cap`` hits, counted under ``key``."""

    key: str
    cap: int
    expires_at: int


def rate_window(client_ip: str, now: datetime, limit: int) -> RateWindow:
    """The one-minute window of ``client_ip`` at ``now``."""
    epoch = int(now.timestamp())
    start = epoch - epoch % WINDOW_SECONDS
    return RateWindow(
        counter_key=f"RATE#{client_ip}#{start}",
        limit=limit,
        retry_after_seconds=start + WINDOW_SECONDS - epoch,
        expires_at=start + WINDOW_SECONDS * 10,
    )
