"""The composition root: every service and adapter a function uses is built here, and only here.

Each builder reads its function's settings (``leadflow.settings``: checked on first use, a
missing variable fails with its name) and is cached (``functools.cache``), so a warm Lambda
container builds each thing once. Nothing is built at import time: no boto3 client exists
before a handler first asks for it. The builders are named after what they return
(``nurture_service``, ``handoff_queue``, ...); handlers, the dev stack and the command line
take what they need from here instead of importing adapters.

``*_for(...)`` builders take their tables as arguments instead (the command line names them).

The builders live in one module per area: ``intake`` (capture, intake, redrive, outbox),
``scoring`` (scoring, tracking, SES feedback), ``nurture``, ``admin_api``, ``handoff`` (with CRM
feedback), ``gdpr``, ``reporting``, ``pages`` (the console, 404 and landing pages) and ``clock``.
This package exposes the builders the handlers in ``functions/`` call, so a handler imports
``from leadflow.bootstrap import ...``; the dev tools import the rest from their module.
"""

from leadflow.bootstrap.admin_api import (
    api_imports,
    api_scoring,
    api_segments,
    audience_service,
    broadcast_starter,
    handoff_store,
    import_engine,
    lead_queries,
    segment_service,
)
from leadflow.bootstrap.clock import system_clock
from leadflow.bootstrap.gdpr import gdpr_service
from leadflow.bootstrap.handoff import (
    crm_feedback_service,
    crm_secret,
    handoff_queue,
    handoff_service,
    handoff_sla_service,
)
from leadflow.bootstrap.intake import (
    capture_service,
    dead_letter_redrive,
    intake_queue,
    outbox_publisher,
    outbox_replay_parts,
    replay_capture_service,
)
from leadflow.bootstrap.nurture import (
    broadcast_runner,
    hop_seconds,
    nurture_admin_service,
    nurture_service,
    publish_nurture_counts,
    publishes_counts,
    ses_account_rate,
)
from leadflow.bootstrap.pages import audit_trail, console, landing_pages, not_found_pages
from leadflow.bootstrap.reporting import reporting_service
from leadflow.bootstrap.scoring import feedback_service, scoring_parts, tracking_service

__all__ = [
    "api_imports",
    "api_scoring",
    "api_segments",
    "audience_service",
    "audit_trail",
    "broadcast_runner",
    "broadcast_starter",
    "capture_service",
    "console",
    "crm_feedback_service",
    "crm_secret",
    "dead_letter_redrive",
    "feedback_service",
    "gdpr_service",
    "handoff_queue",
    "handoff_service",
    "handoff_sla_service",
    "handoff_store",
    "hop_seconds",
    "import_engine",
    "intake_queue",
    "landing_pages",
    "lead_queries",
    "not_found_pages",
    "nurture_admin_service",
    "nurture_service",
    "outbox_publisher",
    "outbox_replay_parts",
    "publish_nurture_counts",
    "publishes_counts",
    "replay_capture_service",
    "reporting_service",
    "scoring_parts",
    "segment_service",
    "ses_account_rate",
    "system_clock",
    "tracking_service",
]
