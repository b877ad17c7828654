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

    def offset_seconds(self) -> float:
        """How far this clock is ahead of real time (kept by ``leadflow dev --state``)."""
        with self._lock:
            return self._offset.total_seconds()

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
        self._install_sqs()

    def _install_sqs(self) -> None:
        """SQS delays and visibility timeouts follow this clock too (moto runs in this process).

        A hand-off retried with a 40-minute visibility timeout comes back when the dev clock
        has moved 40 minutes, so two simulated hours of a receiver being down take seconds.
        """
        from moto.sqs import models as sqs_models

        dev = self

        def unix_time_millis(dt: datetime | None = None) -> float:
            return (dt or dev.now()).timestamp() * 1000.0

        def unix_time(dt: datetime | None = None) -> float:
            return (dt or dev.now()).timestamp()

        setattr(sqs_models, "unix_time_millis", unix_time_millis)  # noqa: B010 - replacing moto's import
        setattr(sqs_models, "unix_time", unix_time)  # noqa: B010
