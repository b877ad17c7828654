"""The imports bucket (S3: presigned upload and download URLs, ranged reads, streamed writes) and
the state machine that runs large imports (Step Functions)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import IO, Any, Final

from leadflow.adapters.aws import LazyClient

PART: Final = 8 << 20
"""Bytes per multipart part (S3's minimum is 5 MiB): an object written as a stream holds one part
in memory at most."""


class S3ImportFiles(LazyClient):
    SERVICE = "s3"

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    def upload_url(self, key: str, seconds: int) -> str:
        """A presigned PUT of ``key`` (the bucket's default encryption applies; no header to send)."""
        return str(
            self.client.generate_presigned_url(
                "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds, HttpMethod="PUT"
            )
        )

    def download_url(self, key: str, seconds: int, file_name: str) -> str:
        disposition = f'attachment; filename="{file_name.replace(chr(34), "")}"'
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": disposition},
                ExpiresIn=seconds,
            )
        )

    def head(self, key: str, size: int) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{size - 1}")
        except self.client.exceptions.NoSuchKey:
            return None
        except self.client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
                return b""
            raise
        return bytes(answer["Body"].read())

    def open(self, key: str) -> IO[bytes]:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]  # type: ignore[no-any-return]

    def read_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        return bytes(answer["Body"].read())

    @contextlib.contextmanager
    def writer(self, key: str, content_type: str) -> Iterator[IO[bytes]]:
        """Write ``key`` as a stream: one PutObject when it fits a part, else a multipart upload
        (aborted when the writer fails)."""
        out = _PartWriter(self, key, content_type)
        try:
            yield out  # type: ignore[misc]
        except BaseException:
            out.abort()
            raise
        out.close()


class _PartWriter:
    """Bytes written are sent a part at a time."""

    def __init__(self, files: S3ImportFiles, key: str, content_type: str) -> None:
        self.files, self.key, self.content_type = files, key, content_type
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= PART:
            self._send(bytes(self.buffer[:PART]))
            del self.buffer[:PART]
        return len(data)

    def _send(self, data: bytes) -> None:
        client = self.files.client
        if self.upload_id is None:
            created = client.create_multipart_upload(
                Bucket=self.files.bucket, Key=self.key, ContentType=self.content_type
            )
            self.upload_id = str(created["UploadId"])
        number = len(self.parts) + 1
        sent = client.upload_part(
            Bucket=self.files.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    def close(self) -> None:
        client = self.files.client
        if self.upload_id is None:
            client.put_object(
                Bucket=self.files.bucket, Key=self.key, Body=bytes(self.buffer), ContentType=self.content_type
            )
            return
        if self.buffer:
            self._send(bytes(self.buffer))
        client.complete_multipart_upload(
            Bucket=self.files.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def abort(self) -> None:
        if self.upload_id is not None:
            self.files.client.abort_multipart_upload(Bucket=self.files.bucket, Key=self.key, UploadId=self.upload_id)


class StepFunctionsImportRuns(LazyClient):
    SERVICE = "stepfunctions"

    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self.arn = state_machine_arn
        self._client = client

    def start(self, name: str, payload: dict[str, Any]) -> None:
        """Start a run named ``name`` (a name already used is that run: nothing more to start)."""
        try:
            self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))
        except self.client.exceptions.ExecutionAlreadyExists:
            return

    def running(self, name: str) -> bool:
        """Whether the run named ``name`` is still running (not stopped, failed, timed out or done)."""
        arn = self.arn.replace(":stateMachine:", ":execution:", 1) + ":" + name
        try:
            answer = self.client.describe_execution(executionArn=arn)
        except self.client.exceptions.ExecutionDoesNotExist:
            return False
        return answer.get("status") == "RUNNING"
