"""``NurtureService``: the nurture use cases, put together from the parts a reader looks for."""

from __future__ import annotations

from leadflow.services.nurture.broadcasts import Broadcasts
from leadflow.services.nurture.enrollment import Enrolling
from leadflow.services.nurture.preferences import Preferences
from leadflow.services.nurture.stepping import Stepping


class NurtureService(Stepping, Enrolling, Broadcasts, Preferences):
    """Enroll leads in sequences and move whole batches of enrollments a step on.

    Its parts share one state (``NurtureBase``: the workspace, the store, the sender, the clock,
    the sequence versions read): ``Stepping`` (``process``: a batch of due enrollments),
    ``Enrolling`` (``enroll_lead``, ``exit``, ``handle_event``: triggers, engagement, waking
    waits), ``Broadcasts`` (``broadcast``, ``start_broadcast``, ``broadcast_hop``,
    ``scheduled_broadcasts``) and ``Preferences`` (``unsubscribe``, ``confirm``, double opt-in).
    """
