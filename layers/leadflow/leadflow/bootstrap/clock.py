"""The clock every builder hands its service (and the command line, which names its own tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadflow.ports.clock import Clock


def system_clock() -> Clock:
    from leadflow.adapters.clock import SystemClock

    return SystemClock()
