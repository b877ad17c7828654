"""Reading a range of DynamoDB stream records back (DynamoDB Streams GetShardIterator, GetRecords)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.ports.outbox import StreamRecordsGone

PAGE = 1000  # GetRecords' own maximum
GONE = {"TrimmedDataAccessException", "ResourceNotFoundException"}  # past the stream's 24 hours


class DynamoStreamReader(LazyClient):
    SERVICE = "dynamodbstreams"

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def read(self, stream_arn: str, shard_id: str, first: str, last: str) -> list[dict[str, Any]]:
        """The records of ``shard_id`` from sequence number ``first`` to ``last``, as a Lambda
        stream event carries them (``ApproximateCreationDateTime`` in epoch seconds)."""
        try:
            iterator = self.client.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=first
            ).get("ShardIterator")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in GONE:
                raise StreamRecordsGone(shard_id) from error
            raise
        records: list[dict[str, Any]] = []
        while iterator:
            page = self.client.get_records(ShardIterator=iterator, Limit=PAGE)
            for record in page.get("Records", []):
                if int(record["dynamodb"]["SequenceNumber"]) > int(last):
                    return records
                records.append(lambda_shape(record, stream_arn))
            if not page.get("Records"):  # an open shard answers empty pages forever: the range is read
                return records
            iterator = page.get("NextShardIterator")
        return records


def lambda_shape(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it (epoch seconds, the stream's ARN)."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": dynamodb, "eventSourceARN": stream_arn}
