"""Nurture: enroll leads in sequences, and move whole batches of enrollments a step on.

``NurtureService.process`` is the step function's use case: one batch of enrollments (a
tick's shard page, or the due-now queue's messages) is read with two BatchGetItems
(enrollments, profiles and mail logs; the suppression list), each enrollment is advanced by
the pure engine (``domain.nurture.advance``), emails are rendered, claimed and sent (the
lead's mail log first, with one conditional write, then SES, within the account's send
rate), and the enrollments are stored with one conditional write each. The leads of a batch
are worked on by a few threads at once, so SES and DynamoDB round trips overlap. One lead's
failure (a broken template, a rejected address) is recorded on its enrollment and never
stops the batch.

``handle_event`` turns bus events into enrollments (triggers), engagement (opens and
clicks end waits at once) and goal checks. ``broadcast`` enrolls a whole segment with
conditional writes, split into as many parallel Scan segments as the SES rate keeps busy,
each run hop after hop by the broadcast state machine (``start_broadcast``, ``broadcast_hop``)
so that a segment of any size is never one Lambda invocation.
``unsubscribe`` and ``confirm`` are the preference page's use cases.

The package, by what a reader looks for: ``stepping`` (a batch of due enrollments: advance,
render, claim, send, actions), ``enrollment`` (triggers, engagement, waking waits, segments
joined, exits), ``broadcasts``, ``preferences`` (unsubscribe, confirmation, double opt-in),
``links`` (the signed links of an email) and ``base`` (the state and reads they share).
"""

from leadflow.services.nurture.base import (
    HOP_SECONDS,
    PART_RATE,
    SLOT_BLOCK,
    BatchResult,
    StepFailed,
    _personal,
    _recent_sends,
    broadcast_parts,
)
from leadflow.services.nurture.links import EmailLinks, TokenIssuer
from leadflow.services.nurture.service import NurtureService
from leadflow.services.nurture.stepping import ERROR_RETRY, SUPPRESSION_LAG, slot_block

__all__ = [
    "ERROR_RETRY",
    "HOP_SECONDS",
    "PART_RATE",
    "SLOT_BLOCK",
    "SUPPRESSION_LAG",
    "BatchResult",
    "EmailLinks",
    "NurtureService",
    "StepFailed",
    "TokenIssuer",
    "_personal",
    "_recent_sends",
    "broadcast_parts",
    "slot_block",
]
