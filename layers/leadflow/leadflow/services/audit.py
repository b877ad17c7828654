"""Who changed what, when: every change made through the console or the admin API is recorded."""

from __future__ import annotations

from typing import Any

from leadflow.domain.ids import new_id
from leadflow.ports.clock import Clock
from leadflow.ports.console import AuditLog


class AuditTrail:
    def __init__(self, log: AuditLog, clock: Clock) -> None:
        self.log, self.clock = log, clock

    def record(self, who: str, role: str, via: str, action: str, target: str, *, status: int) -> dict[str, Any]:
        """Record one change: ``who`` (an email, or an IAM principal), their role (or ``machine``),
        ``via`` (console or api), what (``POST /api/v1/leads/{id}/handoff``), on what, and the answer."""
        now = self.clock.now()
        entry = {
            "id": new_id(now),
            "at": now.isoformat(),
            "who": who,
            "role": role,
            "via": via,
            "action": action,
            "target": target,
            "status": status,
        }
        self.log.record(entry)
        return entry

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.log.recent(limit)
