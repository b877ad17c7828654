"""Where a benchmark runs and how fast the host is now: shared by the scripts in ``bench/``.

Run as ``python bench/<script>.py``, a script finds this module beside it (``bench/`` is first on
``sys.path``)."""

from __future__ import annotations

import os
import time
import timeit


def pin(cpu: str = "first") -> tuple[int | None, list[int] | None]:
    """Pin the process to one CPU (``cpu``: its number, or "first" for the lowest it may run on), or
    leave it on every CPU it may use ("all"). Returns the CPU pinned to (None when not pinned) and the
    CPUs it runs on (None where the OS does not tell).

    A benchmark of one core's work is pinned: threads it starts (send workers, and in the local
    stack moto's own, which serve every call from the same process) would otherwise run on the
    other cores, and their GIL hand-offs count as CPU time of the measured threads. Threads started
    later inherit the pinning."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    if cpu == "all":
        return None, sorted(os.sched_getaffinity(0))
    chosen = min(os.sched_getaffinity(0)) if cpu == "first" else int(cpu)
    os.sched_setaffinity(0, {chosen})
    return chosen, [chosen]


def reference_loop_ms() -> float:
    """The host's speed now: the best of 5 runs of a fixed pure-Python loop, CPU time (ms; lower is
    faster). This shared machine's speed varies by up to ~1.6x with what runs on its other vCPU, and
    CPU figures move with it: print this beside them."""
    runs = timeit.repeat("sum(i * i for i in range(100000))", number=20, repeat=5, timer=time.thread_time)
    return min(runs) / 20 * 1000
