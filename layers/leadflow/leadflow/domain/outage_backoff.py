"""How long a queued message waits before its next try while the table is down.

A message the table could not take (a form post waiting in ``IntakeQueue``, an SES event in
``SesEventsQueue``) is tried again with exponential backoff (1, 2, 4 ... minutes, at most an
hour apart): an outage of hours costs a few dozen attempts, and nothing is dead-lettered before
``RETRY_HORIZON_HOURS``. Each such queue's ``maxReceiveCount`` in template.yaml is
``RECEIVES_WITHIN_HORIZON`` (tested against it). Without the backoff, a queue's 60 s visibility
and a few receives dead-letter its messages in an outage of minutes.
"""

from __future__ import annotations

FIRST_DELAY_SECONDS = 60
MAX_DELAY_SECONDS = 3600
RETRY_HORIZON_HOURS = 24


def outage_retry_delay(receive_count: int) -> int:
    """Seconds until the next try after the ``receive_count``-th failed one (1-based)."""
    exponent = max(0, min(receive_count, 32) - 1)
    return int(min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2**exponent))


def receives_within(horizon_seconds: float) -> int:
    """How many receives the backoff makes before ``horizon_seconds`` have passed."""
    waited, receives = 0, 0
    while waited < horizon_seconds:
        receives += 1
        waited += outage_retry_delay(receives)
    return receives


RECEIVES_WITHIN_HORIZON = receives_within(RETRY_HORIZON_HOURS * 3600)
