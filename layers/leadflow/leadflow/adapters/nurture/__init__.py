"""The nurture store on DynamoDB (``DynamoNurtureStore``, the ``NurtureStore`` port) and the start of
the broadcast state machine with a broadcast's parts.

``items`` maps enrollments and mail logs to the table's items (see ``store`` for the layout);
``store`` reads and writes leads, enrollments, mail logs, sequence versions and suppressions;
``due`` the due index, the ticks' shard leases and the shared send rate; ``broadcasts`` the
broadcast scan, runs and claims.
"""

from leadflow.adapters.nurture.broadcasts import StepFunctionsBroadcastRunner
from leadflow.adapters.nurture.items import DEFAULT_SHARDS, MAIL_SK, enrollment_from, enrollment_item, shard_of
from leadflow.adapters.nurture.store import DynamoNurtureStore, profile_update

__all__ = [
    "DEFAULT_SHARDS",
    "MAIL_SK",
    "DynamoNurtureStore",
    "StepFunctionsBroadcastRunner",
    "enrollment_from",
    "enrollment_item",
    "profile_update",
    "shard_of",
]
