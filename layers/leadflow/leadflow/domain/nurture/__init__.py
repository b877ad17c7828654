"""The nurture engine: for one enrollment of one lead in one sequence, what happens next.

``advance`` walks an active enrollment from its current step as far as it can go now:

- the sequence-wide ``goal`` is checked before every step: once it holds, the lead leaves
  as converted;
- ``branch`` goes to ``then`` or ``otherwise``; ``goal`` leaves (converted) when its
  condition holds, else goes on; ``action`` collects its actions for the caller to run;
- ``wait`` wakes ``duration`` after the step began, then (with ``until``) at the first
  allowed weekday and time in the lead's timezone; ``until_event`` ends it early; until
  then the enrollment sleeps with ``due_at`` at the wake time, and an early look puts it
  back to sleep with the same ``due_at``;
- ``email`` passes its gates in order: suppressed (exit), unsubscribed from everything or
  from the email's topic (exit), consent for the email's purpose (``domain.consent``: exit as
  ``no_consent`` without it; wait while a double opt-in is pending, exit once the link has
  expired), quiet hours in the lead's timezone (wait for their end), frequency caps across
  every sequence (wait until a counted send leaves its window); a transactional email (the
  reply to the person's own request) passes only the suppression gate and quiet hours; then
  it is sent, at most one email per call, never two with the same message id (an email
  already in the enrollment is passed over);
- ``end`` completes the enrollment; more than ``MAX_STEPS`` steps in one call fails it.

The message id of an email is a hash of lead, sequence, entry and step: a retry after a
crash produces the same id, and the sender refuses an id it has already sent.

Pure: no AWS, no environment, no clock reads; the time of evaluation is always ``now``.
Sequences and conditions are compiled on first use (step index, condition closures) and
the compiled form is kept per object, so a warm Lambda pays for it once.
"""

from leadflow.domain.countries import COUNTRY_TIMEZONES
from leadflow.domain.nurture.conditions import MAX_SEGMENT_DEPTH, Predicate, in_segment, matches
from leadflow.domain.nurture.engine import (
    CONFIRMATION_RECHECK,
    GATE_EXITS,
    MAX_STEPS,
    PAUSE_RECHECK,
    advance,
    choose_variant,
    message_id_for,
    skipped,
)
from leadflow.domain.nurture.enrollment import enroll, migrate
from leadflow.domain.nurture.held import ENGAGEMENT_KEYS, WAKING_KEYS, held_state, holdable, lapses_quietly
from leadflow.domain.nurture.state import (
    ACTIVE,
    COMPLETED,
    CONVERTED,
    EXITED,
    FAILED,
    TERMINAL_STATUSES,
    ActivityView,
    EmailToSend,
    Enrollment,
    LeadView,
    Outcome,
    SentEmail,
)
from leadflow.domain.nurture.timing import lead_timezone

__all__ = [
    "ACTIVE",
    "COMPLETED",
    "CONFIRMATION_RECHECK",
    "CONVERTED",
    "COUNTRY_TIMEZONES",
    "ENGAGEMENT_KEYS",
    "EXITED",
    "FAILED",
    "GATE_EXITS",
    "MAX_SEGMENT_DEPTH",
    "MAX_STEPS",
    "PAUSE_RECHECK",
    "TERMINAL_STATUSES",
    "WAKING_KEYS",
    "ActivityView",
    "EmailToSend",
    "Enrollment",
    "LeadView",
    "Outcome",
    "Predicate",
    "SentEmail",
    "advance",
    "choose_variant",
    "enroll",
    "held_state",
    "holdable",
    "in_segment",
    "lapses_quietly",
    "lead_timezone",
    "matches",
    "message_id_for",
    "migrate",
    "skipped",
]
