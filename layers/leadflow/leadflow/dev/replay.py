"""``leadflow replay QUEUE``: send what a dead-letter queue holds back to the queue it came from.

Which DLQ belongs to which queue is read from template.yaml (every queue's RedrivePolicy), so
every such DLQ of the template can be replayed by its name: ``IntakeDLQ`` is ``intake``,
``NurtureNowDLQ`` ``nurture-now``; ``all`` replays each in turn. Queue URLs come from the
stack itself (CloudFormation's resources of ``--stack NAME``, or of a running ``leadflow dev``).
"""

from __future__ import annotations

import json
import re
from typing import Any


def queue_name(dlq_logical_id: str) -> str:
    """``NurtureNowDLQ`` -> ``nurture-now``."""
    words = re.findall(r"[A-Z][a-z0-9]*", dlq_logical_id.removesuffix("DLQ"))
    return "-".join(word.lower() for word in words)


def redrive_pairs(template: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Every DLQ of the template that a queue redrives to: name -> (DLQ, source queue) logical ids."""
    pairs: dict[str, tuple[str, str]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::SQS::Queue":
            continue
        target = ((resource.get("Properties") or {}).get("RedrivePolicy") or {}).get("deadLetterTargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            dlq = (
                target["Fn::GetAtt"][0]
                if isinstance(target["Fn::GetAtt"], list)
                else target["Fn::GetAtt"].split(".")[0]
            )
            pairs[queue_name(dlq)] = (dlq, logical_id)
    return dict(sorted(pairs.items()))


def mark_handoff_replay(body: str) -> str:
    """A hand-off delivery comes back marked as a replay (its failed destinations retry)."""
    message = json.loads(body)
    if message.get("kind") == "deliver":
        message["replay"] = True
    return json.dumps(message)


def stack_queue_urls(cloudformation: Any, sqs: Any, stack_name: str, logical_ids: set[str]) -> dict[str, str]:
    """Logical id -> queue URL of the stack's queues named in ``logical_ids``."""
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    urls: dict[str, str] = {}
    for resource in resources:
        logical_id, physical = resource.get("LogicalResourceId"), str(resource.get("PhysicalResourceId", ""))
        if logical_id in logical_ids and physical:
            # A queue's physical id is its URL; some emulators give its name.
            urls[logical_id] = (
                physical if physical.startswith("http") else sqs.get_queue_url(QueueName=physical)["QueueUrl"]
            )
    missing = logical_ids - set(urls)
    if missing:
        raise LookupError(f"stack {stack_name} has no queue {sorted(missing)}")
    return urls


# DLQs whose messages each name their target (EventBridge and EventBridge Scheduler add
# TARGET_ARN): the bus rules' EventDeliveryDLQ and the schedules' (and asynchronous
# invocations') AsyncDLQ. A message without a target (Lambda's own async-invocation DLQ does not
# name the function) is left where it is: the sweeps and ticks redo their work at their next run.
TARGETED_DLQS = {"event-delivery": "EventDeliveryDLQ", "async": "AsyncDLQ"}


def replay_targeted(sqs: Any, lambdas: Any, dlq_url: str, step: Any, keep_seconds: int = 3600) -> tuple[int, int]:
    """Send each message of ``dlq_url`` to the target it names: a queue (the event is its body)
    or a function (invoked asynchronously with the body). Returns (replayed, left without a target)."""
    moved = kept = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return moved, kept
        for message in messages:
            target = str(((message.get("MessageAttributes") or {}).get("TARGET_ARN") or {}).get("StringValue", ""))
            parts = target.split(":")
            if len(parts) >= 6 and parts[2] == "sqs":
                url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
                sqs.send_message(QueueUrl=url, MessageBody=message["Body"])
            elif len(parts) >= 7 and parts[2] == "lambda":
                lambdas.invoke(FunctionName=target, InvocationType="Event", Payload=message["Body"].encode())
            else:
                sqs.change_message_visibility(
                    QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=keep_seconds
                )
                kept += 1
                continue
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
            step()
