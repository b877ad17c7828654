"""The large-import engine's decisions (``services.import_engine``), on fakes: an upload opened
once per import id, a start refused with a clear reason (no upload, no email column, an inline
import), a run started once while it runs and resumed under a new name once it no longer does,
progress from the rows read."""

from __future__ import annotations

import contextlib
import gzip
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

import pytest

from leadflow.services.import_engine import FileProblem, ImportEngine, UploadRequest
from leadflow.services.imports import ImportService

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return NOW


class Store:
    """The import records' part of the store."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def import_status(self, import_id: str) -> dict[str, Any] | None:
        found = self.records.get(import_id)
        return dict(found) if found is not None else None

    def update_import(self, import_id: str, fields: dict[str, Any], at: datetime) -> None:
        record = self.records.setdefault(import_id, {})
        for key, value in fields.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value

    def rejected_rows(self, import_id: str, page: int | None = None) -> Iterator[dict[str, Any]]:
        return iter(())


class Files:
    bucket = "imports"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def upload_url(self, key: str, seconds: int) -> str:
        return f"https://s3.example/{key}?expires={seconds}"

    def download_url(self, key: str, seconds: int, file_name: str) -> str:
        return f"https://s3.example/{key}"

    def head(self, key: str, size: int) -> bytes | None:
        data = self.objects.get(key)
        return None if data is None else data[:size]

    def open(self, key: str) -> IO[bytes]:
        return io.BytesIO(self.objects[key])

    def read_range(self, key: str, start: int, end: int) -> bytes:
        return self.objects[key][start:end]

    @contextlib.contextmanager
    def writer(self, key: str, content_type: str) -> Iterator[IO[bytes]]:
        out = io.BytesIO()
        yield out
        self.objects[key] = out.getvalue()


class Runs:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.live: set[str] = set()

    def start(self, name: str, payload: dict[str, Any]) -> None:
        self.started.append(name)
        self.live.add(name)

    def running(self, name: str) -> bool:
        return name in self.live


@pytest.fixture
def parts() -> tuple[ImportEngine, Store, Files, Runs]:
    store, files, runs = Store(), Files(), Runs()
    engine = ImportEngine(ImportService(store, Clock()), files, runs, Clock())  # type: ignore[arg-type]
    return engine, store, files, runs


def test_an_upload_is_opened_then_started_once_and_resumed_when_its_run_stopped(parts: Any) -> None:
    engine, _, files, runs = parts
    opened = engine.open_upload(UploadRequest("crm export.csv", tags=("spring",), import_id="import-0001"))
    assert opened["status"] == "awaiting_upload" and opened["upload"]["method"] == "PUT"
    assert opened["upload"]["url"].startswith("https://s3.example/uploads/import-0001/crm-export.csv")
    # Started before the upload: a 409 that says what to do
    with pytest.raises(FileProblem) as problem:
        engine.start("import-0001")
    assert problem.value.status == 409 and "PUT" in str(problem.value)
    files.objects["uploads/import-0001/crm-export.csv"] = b"Email,Name\r\nada@example.com,Ada\r\n"
    assert engine.start("import-0001")["status"] == "running"
    assert runs.started == ["import-0001-1"]
    # Started again while it runs: the same run
    engine.start("import-0001")
    assert runs.started == ["import-0001-1"]
    # Its run stopped (failed, timed out) without marking the import: a new run resumes it
    runs.live.clear()
    engine.start("import-0001")
    assert runs.started == ["import-0001-1", "import-0001-2"]
    # Opening the same id again while it runs answers it as it stands, without a new upload
    assert engine.open_upload(UploadRequest("crm export.csv", import_id="import-0001"))["upload"] is None
    # Unknown import: None (the route's 404)
    assert engine.start("import-9999") is None


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"name,company\nAda,Acme\n", 400, "email"),
        (b"", 400, "empty"),
        (gzip.compress(b"name\nAda\n", mtime=0), 400, "email"),  # mtime 0: the same test id in every worker
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_at_start(parts: Any, data: bytes, status: int, words: str) -> None:
    engine, _, files, runs = parts
    engine.open_upload(UploadRequest("bad.csv", import_id="import-bad"))
    files.objects["uploads/import-bad/bad.csv"] = data
    with pytest.raises(FileProblem) as problem:
        engine.start("import-bad")
    assert problem.value.status == status and words in str(problem.value)
    assert runs.started == []


def test_a_gzip_csv_and_a_pinpoint_export_pass_the_header_check(parts: Any) -> None:
    engine, _, files, runs = parts
    for name, data in (
        ("a.csv.gz", gzip.compress(b"Email Address,MEMBER_RATING\na@example.com,2\n")),
        ("b.json.gz", gzip.compress(b'{"ChannelType": "EMAIL", "Address": "b@example.com"}\n')),
    ):
        engine.open_upload(UploadRequest(name, import_id=f"import-{name[0]}"))
        files.objects[f"uploads/import-{name[0]}/{name}"] = data
        engine.start(f"import-{name[0]}")
    assert runs.started == ["import-a-1", "import-b-1"]


def test_an_inline_import_has_nothing_to_start_and_progress_follows_the_rows_read(parts: Any) -> None:
    engine, store, _, _ = parts
    store.records["inline"] = {"status": "done", "file": "small.csv", "read": 3}
    with pytest.raises(FileProblem) as problem:
        engine.start("inline")
    assert problem.value.status == 409
    store.records["big"] = {"status": "running", "key": "uploads/big/f.csv", "rows_total": 1000, "read": 250}
    view = engine.view("big")
    assert (view["progress"], view["rows_total"], view["rejected_csv"]) == (0.25, 1000, None)
    store.records["big"].update(status="done", read=1000, rejected=2, rejected_key="work/big/rejected.csv")
    done = engine.view("big")
    assert done["progress"] == 1.0 and done["rejected_csv"] == "https://s3.example/work/big/rejected.csv"


def test_the_command_line_picks_the_engine_as_its_help_says(tmp_path: Any) -> None:
    import argparse

    from leadflow.dev.import_cli import _through_engine

    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_text("email\n" + "a@example.com\n" * 10)
    big.write_text("email\n" + "a@example.com\n" * 1001)

    def args(**given: Any) -> argparse.Namespace:
        base = {"via": "auto", "dev": None, "api": None, "table": None, "dry_run": False, "enroll": None}
        return argparse.Namespace(**{**base, "mapping": "auto", **given})

    dev = "http://127.0.0.1:8000"
    assert not _through_engine(args(dev=dev), small)
    assert _through_engine(args(dev=dev), big)
    assert _through_engine(args(dev=dev, via="engine"), small)
    assert not _through_engine(args(dev=dev, via="direct"), big)
    assert _through_engine(args(api="https://api.example"), small)  # a deployed stack without --table
    assert not _through_engine(args(dev=dev, dry_run=True), big)
    assert not _through_engine(args(table="leads", api="https://api.example"), big)
    assert not _through_engine(args(dev=dev, mapping="columns.yaml"), big)
    with pytest.raises(SystemExit, match="--dry-run"):
        _through_engine(args(dev=dev, via="engine", dry_run=True), small)


def test_a_chunk_count_meeting_another_workers_is_tried_again_and_counted_once() -> None:
    import boto3
    from botocore.stub import Stubber

    from leadflow.adapters.imports import DynamoImportStore

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    store = DynamoImportStore("leads", lambda key: key, client=client)
    with Stubber(client) as stub:
        # Another worker's count held the record: cancelled, then through
        conflict = {"CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}]}
        stub.add_client_error("transact_write_items", "TransactionCanceledException", modeled_fields=conflict)
        stub.add_response("transact_write_items", {})
        assert store.count_chunk("import-1", 2, {"read": 100}, NOW) is True
        # An earlier try of the chunk counted it: its marker's condition fails, nothing added
        counted = {"CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]}
        stub.add_client_error("transact_write_items", "TransactionCanceledException", modeled_fields=counted)
        assert store.count_chunk("import-1", 2, {"read": 100}, NOW) is False
        stub.assert_no_pending_responses()
