"""SQS on the local stack's moto, with a backlog in the queue: a ``SendMessage``, or draining the
queue as the local stack's pollers do (``ReceiveMessage`` of 10, then a ``DeleteMessage`` each);
moto as it comes against moto with leadflow's mends (``leadflow.dev.moto_patches.apply()``).

moto tells each queued message's visibility by reading the clock, and the local clock
(``leadflow.dev.clock.DevClock``) takes a lock per read; every send builds the queue's attributes,
whose message counts walk the whole queue; every delete asks each queued message, twice, whether it
had the receipt handle. The mends read the clock once per walk, leave the counts unwalked during a
send (it reads none of them), and stop a delete's walk at its message. Each mode runs in a child
process of its own (the mends cannot be taken back in a process): ``--queued`` messages are sent
first, then ``--timed`` more are sent (``--operation send``) or received and deleted
(``--operation drain``), one after the other, through boto3 on moto's in-process mock.

    .venv/bin/python bench/local_sqs_send.py [--operation send|drain] [--queued 1500] [--timed 200]
        [--repeat 3] [--modes moto,mended]

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


def child(mended: bool, operation: str, queued: int, timed: int) -> float:
    """Milliseconds a message sent, or received and deleted, with ``queued`` others in the queue."""
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
        for _ in range(queued):
            sqs.send_message(QueueUrl=url, MessageBody="x")
        if operation == "drain":
            for _ in range(timed):
                sqs.send_message(QueueUrl=url, MessageBody="x")
        started = time.perf_counter()
        done = 0
        while done < timed:
            if operation == "send":
                sqs.send_message(QueueUrl=url, MessageBody="x")
                done += 1
                continue
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, timed - done), WaitTimeSeconds=0)
            for message in received["Messages"]:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            done += len(received["Messages"])
        return (time.perf_counter() - started) / timed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", type=int, default=1500)
    parser.add_argument("--operation", choices=("send", "drain"), default="send")
    parser.add_argument("--timed", type=int, default=200, help="messages sent, or received and deleted, in the timing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="moto,mended", help="which to time, of moto and mended")
    parser.add_argument("--child", choices=("moto", "mended"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child == "mended", args.operation, args.queued, args.timed)))
        return 0
    what = "sent (SendMessage)" if args.operation == "send" else "drained (ReceiveMessage of 10, DeleteMessage)"
    for mode in (m for m in ("moto", "mended") if m in args.modes.split(",")):
        runs = []
        for _ in range(args.repeat):
            command = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--operation",
                args.operation,
                "--queued",
                str(args.queued),
                "--timed",
                str(args.timed),
            ]
            answer = subprocess.run(command, capture_output=True, text=True, check=True)  # nosec B603
            runs.append(float(answer.stdout.strip().splitlines()[-1]))
        print(
            f"{mode:>6}: {statistics.median(runs):.2f} ms a message {what} (median of {args.repeat}; "
            f"{', '.join(f'{r:.2f}' for r in runs)}) with {args.queued:,}-{args.queued + args.timed:,} messages queued"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
