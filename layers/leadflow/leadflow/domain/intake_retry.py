"""How long a queued form post waits before its next replay while the table is down.

A post the table could not take waits in ``IntakeQueue``. Its replays back off exponentially
(1, 2, 4 ... minutes, at most an hour apart) so that an outage of hours costs a few dozen
attempts and nothing is dead-lettered before ``RETRY_HORIZON_HOURS``: the queue's
``maxReceiveCount`` in template.yaml is ``RECEIVES_WITHIN_HORIZON`` (tested against it).
"""

from __future__ import annotations

FIRST_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 3600
RETRY_HORIZON_HOURS = 24


def intake_retry_delay(receive_count: int) -> int:
    """Seconds until the next replay after the ``receive_count``-th failed one (1-based)."""
    exponent = max(0, min(receive_count, 32) - 1)
    return int(min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2**exponent))


def receives_within(horizon_seconds: float) -> int:
    """How many receives the backoff makes before ``horizon_seconds`` have passed."""
    waited, receives = 0, 0
    while waited < horizon_seconds:
        receives += 1
        waited += intake_retry_delay(receives)
    return receives


RECEIVES_WITHIN_HORIZON = receives_within(RETRY_HORIZON_HOURS * 3600)
