"""What the nurture functions did, counted per sequence, version, step and variant for the reports.

Every part of the service adds to one ``SequenceCounts`` as it works (a send, a skip at a gate,
an exit, a goal, an enrollment); the function's handler publishes what was counted as one
``nurture.counted`` bus event per invocation (``services.nurture.publishing.publish_counts``), so the
reporting function's writes grow with invocations, not with emails.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

NO_VARIANT = "-"
# A gate's answer (domain.nurture._gate) -> the skip it is reported as.
SKIPS = {
    "suppressed": "skipped_suppressed",
    "unsubscribed": "skipped_unsubscribed",
    "unconfirmed": "skipped_no_consent",
    "no_consent": "skipped_no_consent",
    "awaiting_confirmation": "skipped_no_consent",
    "frequency_cap": "skipped_capped",
    "quiet_hours": "skipped_quiet_hours",
}
DEFERRALS_REPORTED = frozenset({"frequency_cap", "quiet_hours"})
"""Deferrals counted as skips each time (awaiting a confirmation is looked at again and again: only
its end, ``unconfirmed``, is a skip)."""


class SequenceCounts:
    """Counters shared by the service's worker threads; ``take`` empties them."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int, str, str, str]] = Counter()
        self._lock = threading.Lock()

    def add(  # noqa: PLR0917 - the counter's key, then the number
        self, sequence_id: str, version: int, step_id: str, variant: str | None, metric: str, n: int = 1
    ) -> None:
        with self._lock:
            self._counts[(sequence_id, version, step_id, variant or NO_VARIANT, metric)] += n

    def take(self) -> list[list[Any]]:
        """Everything counted since the last ``take``: ``[sequence, version, step, variant, metric, n]``."""
        with self._lock:
            counted, self._counts = self._counts, Counter()
        return [[*key, n] for key, n in sorted(counted.items()) if n]
