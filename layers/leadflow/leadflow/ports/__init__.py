"""Ports: what the services need from the outside world (Protocols, with the types they exchange).
Adapters implement them; services and adapters import them, never each other.

One module per area: ``clock``, ``leads`` (capture, intake, activities, audience), ``scoring``,
``nurture``, ``messaging`` (email sending and SES feedback), ``handoff``, ``crm_feedback``,
``gdpr``, ``reporting``, ``outbox``, ``console`` and ``secrets``.

This package lists every port here (``__all__``) on purpose: ``from leadflow.ports import X`` is
the project's documented way to name a port, used by a large number of modules, so a port's area
module is where to read it, and ``leadflow.ports`` is where to import it from. The area modules
import only from the domain (the layers contract: ports sit below services and adapters).
"""

from leadflow.ports.clock import Clock
from leadflow.ports.console import AuditLog, TokenVerifier
from leadflow.ports.crm_feedback import ApplyStatus, CrmFeedbackStore, CrmFeedbackWrite, FeedbackState
from leadflow.ports.gdpr import GdprStore, NoticeQueue, ReportMarkers, SuppressionMigrationStore
from leadflow.ports.handoff import Delivery, DeliveryQueue, DeliverySender, HandoffStore, Notifier
from leadflow.ports.leads import (
    ActivityStore,
    AudienceStore,
    IntakeQueue,
    LeadStore,
    ListIndex,
    SpamRecord,
    StoredCapture,
)
from leadflow.ports.messaging import (
    EmailSender,
    FeedbackStore,
    FeedbackWrite,
    SendConfirmations,
    SendRejected,
    SendThrottled,
    SendUncertain,
)
from leadflow.ports.nurture import (
    BroadcastRunner,
    DueNowQueue,
    EnrollmentsByKey,
    NurtureStore,
    PointsAwarder,
    ProfileChange,
    ScannedPage,
    VariantWinners,
)
from leadflow.ports.outbox import DeadLetters, EventPublisher, StreamReader, StreamRecordsGone
from leadflow.ports.reporting import CounterReader, LeadFacts, PageViewCounter, ReportWriter
from leadflow.ports.scoring import Explainer, RescoreStore, ScoreState, ScoreStore, ScoreWrite
from leadflow.ports.secrets import MissingSecret

__all__ = [
    "ActivityStore",
    "ApplyStatus",
    "AudienceStore",
    "AuditLog",
    "BroadcastRunner",
    "Clock",
    "CounterReader",
    "CrmFeedbackStore",
    "CrmFeedbackWrite",
    "DeadLetters",
    "Delivery",
    "DeliveryQueue",
    "DeliverySender",
    "DueNowQueue",
    "EmailSender",
    "EnrollmentsByKey",
    "EventPublisher",
    "Explainer",
    "FeedbackState",
    "FeedbackStore",
    "FeedbackWrite",
    "GdprStore",
    "HandoffStore",
    "IntakeQueue",
    "LeadFacts",
    "LeadStore",
    "ListIndex",
    "MissingSecret",
    "NoticeQueue",
    "Notifier",
    "NurtureStore",
    "PageViewCounter",
    "PointsAwarder",
    "ProfileChange",
    "ReportMarkers",
    "ReportWriter",
    "RescoreStore",
    "ScannedPage",
    "ScoreState",
    "ScoreStore",
    "ScoreWrite",
    "SendConfirmations",
    "SendRejected",
    "SendThrottled",
    "SendUncertain",
    "SpamRecord",
    "StoredCapture",
    "StreamReader",
    "StreamRecordsGone",
    "SuppressionMigrationStore",
    "TokenVerifier",
    "VariantWinners",
]
