"""One enrollment being advanced by the nurture step (``services.nurture.stepping``): the write it
is at, and what is done once it is first written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadflow.domain.nurture import Enrollment
from leadflow.domain.nurture.mail_log import MailLog
from leadflow.ports.nurture import NurtureStore
from leadflow.services.nurture.base import BatchResult, _Job


class Progress:
    """One enrollment being advanced: the write it is at (``rev``; ``new``: there must be no item;
    ``fresh``: not stored yet, written whatever its step does), the lead's mail log as it now is,
    the batch's result it counts into, and what to do once the enrollment is first written
    (``first_written``: a broadcast's new enrollment is counted then)."""

    __slots__ = ("first_written", "fresh", "log", "new", "now", "result", "rev", "write")

    def __init__(  # noqa: PLR0917 - the job's state and where it counts
        self,
        store: NurtureStore,
        job: _Job,
        log: MailLog,
        now: datetime,
        result: BatchResult,
        first_written: Callable[[_Job], None] | None = None,
    ) -> None:
        self.write = store.put_enrollment
        self.rev, self.new, self.fresh = job.rev, job.new, job.fresh
        self.log, self.now, self.result = log, now, result
        self.first_written = (lambda: first_written(job)) if first_written is not None else None

    def store(self, state: Enrollment) -> bool:
        """Write the enrollment over the one read; once written, the next write is over it."""
        if not self.write(state, self.rev, new=self.new):
            return False
        self.rev, self.new, self.fresh = self.rev + 1, False, False
        if state.status != "failed":
            self.written()
        return True

    def written(self) -> None:
        """The enrollment is written (stored, or held by its email's claim): the first time, say so."""
        then, self.first_written = self.first_written, None
        if then is not None:
            then()
