"""A/B winners promoted to the remaining leads (``variants: {promote_winner: {after, confidence}}``).

The nurture step asks, for an email step with variants, whether its test has a winner to promote;
``ReportedWinners`` answers from the sequence's report counters (one Query of the sequence's
counters per step and version, remembered for ``ttl`` seconds per function instance) through
``domain.sequence_reports.winner_to_promote``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.sequence_reports import winner_to_promote
from leadflow.ports.reporting import CounterReader

WINNER_TTL_SECONDS = 300.0


class ReportedWinners:
    def __init__(
        self, reports: CounterReader, ttl: float = WINNER_TTL_SECONDS, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.reports = reports
        self.ttl = ttl
        self.monotonic = monotonic
        self._known: dict[tuple[str, int, str], tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def winner(self, sequence: Sequence, version: int, step_id: str, now: datetime) -> str | None:
        """The variant every remaining lead gets at this step now, or None (no rule, no winner yet)."""
        promote = sequence.variants.promote_winner
        if promote is None:
            return None
        key = (sequence.id, version, step_id)
        with self._lock:
            known = self._known.get(key)
        if known is not None and self.monotonic() - known[0] < self.ttl:
            return known[1]
        found = winner_to_promote(
            self.reports.query(f"SEQRPT#{sequence.id}", "", "\uffff"),
            version=version,
            step_id=step_id,
            metric=sequence.variants.metric,
            confidence=promote.confidence,
            after_seconds=promote.after_seconds,
            now=now,
        )
        with self._lock:
            self._known[key] = (self.monotonic(), found)
        return found
