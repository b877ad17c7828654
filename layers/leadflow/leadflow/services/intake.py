"""Parking on the intake queue: what the table could not take waits there for the intake replay."""

from __future__ import annotations

from typing import Any

from leadflow.domain.errors import IntakeUnavailable, StorageUnavailable
from leadflow.ports.leads import IntakeQueue


def park(intake: IntakeQueue, kind: str, fields: dict[str, Any]) -> None:
    """Keep ``fields`` on the intake queue as a message of ``kind`` (the replay dispatches on it).

    Raises:
        StorageUnavailable: the queue did not take it either.
    """
    try:
        intake.enqueue({"kind": kind, **fields})
    except IntakeUnavailable as error:
        raise StorageUnavailable("table and intake queue") from error
