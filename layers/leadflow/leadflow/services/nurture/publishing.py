"""Publishing what the nurture service counted, as one ``nurture.counted`` bus event.

The handlers of the nurture functions publish once per invocation (``bootstrap.publishes_counts``),
so the reporting function's writes grow with invocations, not with emails.

An event the bus refuses is written to the outbox, whose stream relay publishes it: kept in memory
for the next invocation, it would be lost with the container (a broadcast's parts end, and a
function scaled out for one is not invoked again), and the sequence report would count fewer sent
than the mail logs hold. The reporting function counts an event once by its id, so one the bus
took after all (an answer lost) and the relay publishes again is counted once.
"""

from __future__ import annotations

import json
import logging

from leadflow.domain.events import DomainEvent, OutboxEvent
from leadflow.domain.ids import new_id
from leadflow.ports.outbox import EventPublisher
from leadflow.services.nurture.base import SOURCE_NURTURE
from leadflow.services.nurture.service import NurtureService

log = logging.getLogger(__name__)


def publish_counts(service: NurtureService, publisher: EventPublisher) -> int:
    """Publish what the service counted since the last call as one ``nurture.counted`` event.

    Returns how many counters went out (on the bus, or into the outbox when the bus refused them).
    Only when the table refuses them too are the counts kept, for the next call."""
    counted = service.counts.take()
    if not counted:
        return 0
    now = service.clock.now()
    event = DomainEvent(new_id(now), SOURCE_NURTURE, "nurture.counted", now.isoformat(), {"counts": counted})
    outgoing = OutboxEvent(event.event_id, event.source, event.detail_type, json.dumps(event.envelope()))
    try:
        refused = publisher.publish([outgoing])
    except Exception:
        log.exception("nurture counts not published")
        refused = [event.event_id]
    if not refused:
        return len(counted)
    try:
        service.store.put_events([event])
    except Exception:
        log.exception("nurture counts not written to the outbox either: kept for the next call")
        for sequence_id, version, step_id, variant, metric, n in counted:
            service.counts.add(sequence_id, version, step_id, variant, metric, n)
        return 0
    return len(counted)
