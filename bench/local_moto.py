"""The local stack's moto, as it comes against moto with leadflow's mends
(``leadflow.dev.moto_patches.apply()``), on the paths a long soak leans on:

- ``--operation send``: an SQS ``SendMessage`` with ``--queued`` messages in the queue;
- ``--operation drain``: draining the queue as the local stack's pollers do (``ReceiveMessage`` of
  10, then a ``DeleteMessage`` each) with ``--queued`` messages in it;
- ``--operation deliver``: an EventBridge ``PutEvents`` entry that a rule delivers to an SQS queue
  (as the template's rules deliver the bus's events to their functions' queues).

moto tells each queued message's visibility by reading the clock, and the local clock
(``leadflow.dev.clock.DevClock``) takes a lock per read; every send builds the queue's attributes,
whose message counts walk the whole queue; every delete asks each queued message, twice, whether it
had the receipt handle; every delivered event is built through an input template whose eight
JSONPath expressions are parsed anew. The mends read the clock once per walk, leave the counts
unwalked during a send (it reads none of them), stop a delete's walk at its message, and parse each
expression once. Each mode runs in a child process of its own (the mends cannot be taken back in a
process): ``--queued`` messages are sent first, then ``--timed`` messages are sent, drained, or put
as events and delivered, one after the other, through boto3 on moto's in-process mock.

    .venv/bin/python bench/local_moto.py [--operation send|drain|deliver] [--queued 1500]
        [--timed 200] [--repeat 3] [--modes moto,mended]

moto as it comes is quadratic in the backlog (every queued send walks the queue): for a large
``--queued``, time the mended mode alone (``--modes mended``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess  # nosec B404 - this script runs itself
import sys
import time
from typing import Any

WHAT = {
    "send": "sent (SendMessage)",
    "drain": "drained (ReceiveMessage of 10, DeleteMessage)",
    "deliver": "put and delivered (PutEvents, a rule to SQS)",
}


def child(mended: bool, operation: str, queued: int, timed: int) -> float:
    """Milliseconds a message sent, drained, or put as an event and delivered, with ``queued`` others in the queue."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        from leadflow.dev.clock import DevClock

        if mended:
            from leadflow.dev import moto_patches

            moto_patches.apply()
        DevClock().install()
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
        for _ in range(queued + (timed if operation == "drain" else 0)):
            sqs.send_message(QueueUrl=url, MessageBody="x")
        timed_one = {"send": _sender, "drain": _drainer, "deliver": _deliverer}[operation](sqs, url)
        started = time.perf_counter()
        done = 0
        while done < timed:
            done += timed_one(min(10, timed - done))
        return (time.perf_counter() - started) / timed * 1000


def _sender(sqs: Any, url: str) -> Any:
    def send(_: int) -> int:
        sqs.send_message(QueueUrl=url, MessageBody="x")
        return 1

    return send


def _drainer(sqs: Any, url: str) -> Any:
    def drain(most: int) -> int:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=most, WaitTimeSeconds=0)["Messages"]
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    return drain


def _deliverer(sqs: Any, url: str) -> Any:
    import boto3

    events = boto3.client("events", region_name="us-east-1")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="to-queue", EventPattern=json.dumps({"source": ["leadflow.tracking"]}))
    events.put_targets(Rule="to-queue", Targets=[{"Id": "queue", "Arn": arn}])

    def deliver(_: int) -> int:
        entry = {"Source": "leadflow.tracking", "DetailType": "activity.recorded", "Detail": '{"type": "email_open"}'}
        assert not events.put_events(Entries=[entry])["FailedEntryCount"]  # nosec B101 - a bench's own check
        return 1

    return deliver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operation", choices=tuple(WHAT), default="send")
    parser.add_argument("--queued", type=int, default=1500)
    parser.add_argument("--timed", type=int, default=200, help="messages timed")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="moto,mended", help="which to time, of moto and mended")
    parser.add_argument("--child", choices=("moto", "mended"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "mended", args.operation, args.queued, args.timed)))
        return 0
    for mode in (m for m in ("moto", "mended") if m in args.modes.split(",")):
        runs = []
        for _ in range(args.repeat):
            command = [sys.executable, __file__, "--child", mode, "--operation", args.operation]
            command += ["--queued", str(args.queued), "--timed", str(args.timed)]
            answer = subprocess.run(command, capture_output=True, text=True, check=True)  # nosec B603
            runs.append(float(answer.stdout.strip().splitlines()[-1]))
        print(
            f"{mode:>6}: {statistics.median(runs):.2f} ms a message {WHAT[args.operation]} (median of {args.repeat}; "
            f"{', '.join(f'{r:.2f}' for r in runs)}) with {args.queued:,}-{args.queued + args.timed:,} messages queued"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
