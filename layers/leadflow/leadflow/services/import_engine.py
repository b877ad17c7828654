"""A large import: the file uploaded to S3 through a presigned URL, then read by a Step Functions
Distributed Map, a chunk per worker, with the rules of every import (``services.imports``).

The steps, each a use case here (the state machine ``infra/statemachines/import.asl.json`` runs
``plan``, the chunks and ``finish``; the admin API the others):

1. ``open_upload``: the import's record (``awaiting_upload``) and a presigned PUT URL.
2. ``start`` (``POST /api/v1/imports/{id}/start``, once the upload is done): the file's header
   checked (an email column, else a 400), the state machine started. Started again when its
   last run is no longer running (failed, stopped, timed out) it resumes: chunks already counted
   are skipped, rows already written are not written twice.
3. ``plan``: the file read once as a stream (``domain.import_chunks.split``): its chunks written as
   a CSV manifest the Distributed Map's CSV ItemReader hands out a line per worker. A gzip file
   (Pinpoint's endpoint export) is decompressed on the way into a copy the workers read ranges of.
4. ``chunk``: one worker's byte range read and imported (``ImportService.run_chunk``), counted once.
5. ``finish``: the rejected-rows CSV written next to the upload; the status ``done`` (``fail``:
   ``failed``, with the error's name).
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol

from leadflow.domain.ids import new_id
from leadflow.domain.import_chunks import CHUNK_ROWS, Chunk, Split, chunk_records, is_ndjson, manifest, split
from leadflow.domain.imports import (
    NDJSON_COLUMNS,
    ColumnMapping,
    ImportOptions,
    UnknownFormat,
    mapping_for,
    rejected_csv,
)
from leadflow.ports.clock import Clock
from leadflow.services.imports import ImportService

UPLOAD_SECONDS: Final = 3600
"""How long a presigned upload URL lasts (an hour: a few GB over a slow line)."""
DOWNLOAD_SECONDS: Final = 900
HEAD_BYTES: Final = 256 << 10
"""Bytes read to check a file's header before starting (a HubSpot export's 200 columns fit)."""
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
ACTIVE: Final = frozenset({"running", "done"})


class ImportFiles(Protocol):
    """The imports bucket."""

    bucket: str

    def upload_url(self, key: str, seconds: int) -> str: ...

    def download_url(self, key: str, seconds: int, file_name: str) -> str: ...

    def head(self, key: str, size: int) -> bytes | None:
        """The object's first ``size`` bytes; None: no such object."""
        ...

    def open(self, key: str) -> IO[bytes]:
        """The object as a stream (read as it arrives, never whole)."""
        ...

    def read_range(self, key: str, start: int, end: int) -> bytes: ...

    def writer(self, key: str, content_type: str) -> AbstractContextManager[IO[bytes]]:
        """A new object written as a stream (multipart beyond a part's size)."""
        ...


class ImportRuns(Protocol):
    """The state machine that runs large imports."""

    def start(self, name: str, payload: dict[str, Any]) -> None: ...

    def running(self, name: str) -> bool: ...


@dataclass(frozen=True)
class UploadRequest:
    file_name: str
    mapping: str = "auto"
    consent_basis: str | None = None
    tags: tuple[str, ...] = ()
    import_id: str | None = None


class FileProblem(ValueError):
    """The uploaded file cannot be imported (no upload yet, no header, no email column)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Tee(io.RawIOBase):
    """A stream read through, each block also written to ``sink`` (the decompressed copy)."""

    def __init__(self, source: IO[bytes], sink: IO[bytes] | None) -> None:
        self._source = source
        self._sink = sink

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        if self._sink is not None and data:
            self._sink.write(data)
        buffer[: len(data)] = data
        return len(data)


class ImportEngine:
    def __init__(
        self, imports: ImportService, files: ImportFiles, runs: ImportRuns, clock: Clock, chunk_rows: int = CHUNK_ROWS
    ) -> None:
        self.chunk_rows = chunk_rows
        self.imports = imports
        self.store = imports.store
        self.files = files
        self.runs = runs
        self.clock = clock

    # ------------------------------------------------------------------ the admin API
    def open_upload(self, request: UploadRequest) -> dict[str, Any]:
        """The import's record and where to PUT the file; an import already running or done
        answers its view without a URL (its id names one file)."""
        now = self.clock.now()
        import_id = request.import_id or new_id(now).lower()
        record = self.store.import_status(import_id)
        if record is not None and record.get("status") in ACTIVE:
            return {**(self.view(import_id) or {}), "upload": None}
        name = _SAFE_NAME.sub("-", request.file_name).strip("-.")[:100] or "upload.csv"
        key = f"uploads/{import_id}/{name}"
        fields = {
            "file": request.file_name,
            "key": key,
            "mapping": request.mapping,
            "consent_basis": request.consent_basis or "none",
            "tags": list(request.tags),
            "format": request.mapping,
            "status": "awaiting_upload",
        }
        self.store.update_import(import_id, fields, now)
        upload = {
            "url": self.files.upload_url(key, UPLOAD_SECONDS),
            "method": "PUT",
            "expires_in": UPLOAD_SECONDS,
            "start": f"/api/v1/imports/{import_id}/start",
        }
        return {**(self.view(import_id) or {}), "upload": upload}

    def start(self, import_id: str) -> dict[str, Any] | None:
        """Start (or resume) the import of the uploaded file; None: no such import. Raises
        FileProblem when there is nothing to import."""
        record = self.store.import_status(import_id)
        if record is None:
            return None
        if not record.get("key"):
            raise FileProblem(409, "This import's rows came in the request body: it has no file to start.")
        attempt = int(record.get("attempts") or 0)
        if record.get("status") == "done" or (
            record.get("status") == "running" and self.runs.running(f"{import_id}-{attempt}")
        ):
            return self.view(import_id)
        head = self.files.head(str(record["key"]), HEAD_BYTES)
        if head is None:
            raise FileProblem(409, "No file uploaded yet: PUT it to the upload URL, then start the import.")
        self._check_header(head, str(record.get("mapping") or "auto"))
        attempt += 1
        self.store.update_import(import_id, {"status": "running", "attempts": attempt, "error": None}, self.clock.now())
        self.runs.start(f"{import_id}-{attempt}", {"import_id": import_id})
        return self.view(import_id)

    def _check_header(self, head: bytes, chosen: str) -> None:
        if head[:2] == b"\x1f\x8b":
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, HEAD_BYTES)
        if not head.strip():
            raise FileProblem(400, "The file is empty.")
        if is_ndjson(head) or chosen == "pinpoint":
            return  # each endpoint carries its own keys: checked line by line
        found, _ = split(io.BytesIO(head), False)
        try:
            mapping_for(found.header, chosen)
        except UnknownFormat as error:
            raise FileProblem(400, str(error)) from None

    def view(self, import_id: str) -> dict[str, Any] | None:
        """An import's status, counts, progress and, once done, where to download its rejected rows."""
        view = self.imports.status(import_id)
        record = self.store.import_status(import_id)
        if view is None or record is None:
            return None
        total = record.get("rows_total")
        view["rows_total"] = int(total) if total is not None else None
        view["progress"] = round(min(view["read"] / int(total), 1.0), 4) if total else None
        if view["status"] == "done" and total is not None and not view["read"]:
            view["progress"] = 1.0
        view["error"] = record.get("error")
        view["rejected_csv"] = None
        if record.get("rejected_key") and view["rejected"]:
            name = _SAFE_NAME.sub("-", f"{record.get('file') or 'import'}.rejected.csv")  # a header value
            view["rejected_csv"] = self.files.download_url(str(record["rejected_key"]), DOWNLOAD_SECONDS, name)
        return view

    # ------------------------------------------------------------------ the state machine's steps
    def plan(self, import_id: str) -> dict[str, Any]:
        """Read the file once and write its chunks' manifest; the job every worker is handed."""
        record = self.store.import_status(import_id)
        if record is None:
            raise LookupError(f"no import {import_id}")
        key = str(record["key"])
        chosen = str(record.get("mapping") or "auto")
        data_key, manifest_key = key, f"work/{import_id}/chunks.csv"
        with self.files.open(key) as body:
            source = io.BufferedReader(_Tee(body, None))
            gzipped = source.peek(2)[:2] == b"\x1f\x8b"
            if gzipped:
                data_key = f"work/{import_id}/unzipped"
            with self.files.writer(data_key, "application/octet-stream") if gzipped else nullcontext() as copy:
                raw: Any = gzip.GzipFile(fileobj=source) if gzipped else source
                stream = io.BufferedReader(_Tee(raw, copy))
                ndjson = chosen == "pinpoint" or is_ndjson(stream.peek(HEAD_BYTES))
                found, chunks = split(stream, ndjson, rows=self.chunk_rows)
                with self.files.writer(manifest_key, "text/csv") as out:
                    for line in manifest(chunks):
                        out.write(line.encode())
        mapping = self._mapping(found, "pinpoint" if ndjson else chosen)
        self.store.update_import(
            import_id, {"rows_total": found.rows, "format": mapping.format, "header": found.header}, self.clock.now()
        )
        return {
            "import_id": import_id,
            "bucket": self.files.bucket,
            "manifest": manifest_key,
            "data": data_key,
            "ndjson": ndjson,
            "header": found.header,
            "mapping": "pinpoint" if ndjson else chosen,
            "file": str(record.get("file") or ""),
            "consent_basis": None if record.get("consent_basis") in {None, "none"} else record["consent_basis"],
            "tags": [str(t) for t in record.get("tags") or []],
        }

    @staticmethod
    def _mapping(found: Split, chosen: str) -> ColumnMapping:
        return mapping_for(found.header if not found.ndjson else list(NDJSON_COLUMNS), chosen)

    def chunk(self, job: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        """Import one chunk of the file (a manifest line); counted once however often it runs."""
        chunk = Chunk.from_item(item)
        found = Split(bool(job["ndjson"]), list(job["header"]))
        mapping = self._mapping(found, str(job["mapping"]))
        options = ImportOptions(
            consent_basis=job.get("consent_basis"),
            source=f"import:{mapping.format}:{job['file']}",
            tags=tuple(job.get("tags") or ()),
        )
        data = self.files.read_range(str(job["data"]), chunk.start, chunk.end)
        records = chunk_records(data, chunk, found.header, found.ndjson)
        counts = self.imports.run_chunk(str(job["import_id"]), chunk.first_row, records, mapping, options)
        return {"first_row": chunk.first_row, "counted": counts is not None}

    def finish(self, import_id: str) -> dict[str, Any]:
        """Write the rejected-rows CSV (the file's columns, then ``leadflow_row``, ``leadflow_reason``)
        and mark the import done."""
        record = self.store.import_status(import_id) or {}
        fields: dict[str, Any] = {"status": "done"}
        if int(record.get("rejected") or 0):
            header = [str(h) for h in record.get("header") or NDJSON_COLUMNS]
            key = f"work/{import_id}/rejected.csv"
            with self.files.writer(key, "text/csv; charset=utf-8") as out:
                for line in rejected_csv(header, self.store.rejected_rows(import_id)):
                    out.write(line.encode("utf-8"))
            fields["rejected_key"] = key
        self.store.update_import(import_id, fields, self.clock.now())
        return {"import_id": import_id, "status": "done"}

    def fail(self, import_id: str, error: str) -> dict[str, Any]:
        """Mark the import failed (the error's name only: causes may quote the file's rows)."""
        self.store.update_import(import_id, {"status": "failed", "error": error[:200]}, self.clock.now())
        return {"import_id": import_id, "status": "failed"}
