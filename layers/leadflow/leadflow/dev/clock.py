"""The local clock: real time plus an offset that `POST /_dev/clock` moves forward."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class DevClock:
    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def install(self) -> None:
        """Make every handler's SystemClock read this clock (handlers run in this process)."""
        from leadflow.adapters import clock as clock_module

        dev = self

        def now(_self: object) -> datetime:
            return dev.now()

        clock_module.SystemClock.now = now  # type: ignore[method-assign,assignment]
