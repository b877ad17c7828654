"""``/api/v1/imports``: a small CSV imported from the request body, or a file of any size
uploaded to S3 (``{"upload": true}`` answers a presigned PUT URL; ``POST
/api/v1/imports/{import_id}/start`` then runs the import state machine over it), and an import's
status, counts, progress and rejected rows (a Router the lead API includes).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from leadflow.domain.audience import Basis
from leadflow.domain.imports import ImportOptions, RejectedRow, UnknownFormat, csv_records, mapping_for
from leadflow.services.import_engine import FileProblem, ImportEngine, UploadRequest
from leadflow.services.imports import ImportService
from leadflow.transport.api_contract import ErrorBody, responses

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
TagName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_:.-]{0,63}$")]
ImportId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_BODY_ROWS = 1000
"""Rows one request imports (each is one transaction: about 10 s at most); more: ``leadflow import``."""


def imports() -> ImportService:
    """The import service: the including app puts its builder in the context (``imports``)."""
    build: Callable[[], ImportService] = router.context["imports"]
    return build()


def engine() -> ImportEngine:
    """The large-import engine: the including app puts its builder in the context (``import_engine``)."""
    build: Callable[[], ImportEngine] = router.context["import_engine"]
    return build()


class ImportRequest(BaseModel):
    """A small CSV to import from the body (at most 1,000 rows and 1 MB), or, with ``upload``, a
    file of any size to upload to the presigned URL the answer holds."""

    model_config = ConfigDict(extra="forbid")

    csv: str | None = Field(
        None, min_length=1, max_length=1_000_000, description="The file's text: a header row, then rows."
    )
    upload: bool = Field(
        False,
        description="Answer a presigned PUT URL for the file instead (any size, CSV or a Pinpoint export, gzip "
        "too), then POST /api/v1/imports/{import_id}/start.",
    )
    import_id: str | None = Field(
        None,
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="With upload: the import's id (e.g. the file's digest); an import already running or done "
        "under it is answered as it stands. Default: a new id.",
    )
    file_name: str = Field("upload.csv", min_length=1, max_length=200, description="Named on consent records.")
    mapping: Literal["auto", "hubspot", "mautic", "mailchimp", "pinpoint"] = "auto"
    consent_basis: Basis | None = Field(None, description="The lawful basis of the opt-ins the file records.")
    tags: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_:.-]{0,63}$")]] = Field(
        default_factory=list, max_length=10
    )
    dry_run: bool = False


class RejectedView(BaseModel):
    row: int = Field(description="The row number as a spreadsheet shows it (the header is row 1).")
    reason: str


class UploadView(BaseModel):
    url: str = Field(description="PUT the file's bytes here (no other header needed).")
    method: Literal["PUT"] = "PUT"
    expires_in: int = Field(description="Seconds the URL stays valid.")
    start: str = Field(description="POST here once the upload is done.")


class ImportView(BaseModel):
    """An import: its status, counts, progress and first rejected rows."""

    import_id: str
    status: str = Field(
        description="awaiting_upload, running, done, failed (POST .../start resumes it), or checked (a dry run)."
    )
    file: str
    format: str = Field(description="hubspot, mautic, mailchimp, pinpoint or auto.")
    rows_done: int = Field(description="The last row of the last finished chunk (progress).")
    read: int
    created: int
    updated: int
    rejected: int
    skipped: int
    suppressed: int
    rejected_rows: list[RejectedView] = Field(description="The first 100 rejected rows.")
    updated_at: str | None = None
    rows_total: int | None = Field(None, description="An uploaded file's data rows (known once it was read).")
    progress: float | None = Field(None, description="Rows read / rows_total, 0 to 1 (an uploaded file).")
    rejected_csv: str | None = Field(
        None,
        description="Once done: a presigned URL of every rejected row (the file's columns, then leadflow_row "
        "and leadflow_reason), valid 15 minutes.",
    )
    error: str | None = Field(None, description="Why a failed import stopped (the error's name).")
    upload: UploadView | None = Field(None, description="Where to upload the file (POST with upload: true).")


def _problem(status: int, message: str) -> Response[str]:
    return Response(status, "application/json", ErrorBody(message=message).model_dump_json())


@router.post(
    "/api/v1/imports",
    summary="Import a small CSV (HubSpot, Mautic, Mailchimp or any with an email column) from the body",
    responses=responses(
        201,
        ImportView,
        "Imported (or checked, with dry_run): counts and rejected rows",
        errors={400: "No email column in the header", 413: "More than 1,000 rows: use leadflow import"},
        body=True,
    ),
)
def create_import(body: ImportRequest) -> Response[str]:
    if body.upload == (body.csv is not None):
        return _problem(400, "Send either csv (a small file in the body) or upload: true (a presigned upload).")
    if body.upload and body.dry_run:
        return _problem(400, "dry_run goes with csv: an uploaded file is checked when its import starts.")
    if body.upload:
        request = UploadRequest(body.file_name, body.mapping, body.consent_basis, tuple(body.tags), body.import_id)
        opened = engine().open_upload(request)
        return Response(201, "application/json", ImportView.model_validate(opened).model_dump_json())
    if body.import_id is not None:
        return _problem(400, "import_id goes with upload: an inline import's id is its text's digest.")
    status, view = import_small_csv(imports(), body)
    if status != 201:
        return _problem(status, str(view["message"]))
    return Response(201, "application/json", ImportView.model_validate(view).model_dump_json())


def import_small_csv(service: ImportService, body: ImportRequest) -> tuple[int, dict[str, Any]]:
    """Import (or check, with ``dry_run``) a small CSV: ``201`` and the import as ``ImportView``
    shows it, or ``400`` / ``413`` and ``{"message"}``. ``POST /api/v1/imports`` and the console's
    upload both come here."""
    text = body.csv or ""
    records = list(csv_records(io.StringIO(text, newline="")))
    if not records or isinstance(records[0], RejectedRow):
        return 400, {"message": "The CSV has no header row."}
    if len(records) - 1 > MAX_BODY_ROWS:
        return 413, {"message": f"More than {MAX_BODY_ROWS:,} rows: import the file with leadflow import."}
    header = [str(h) for h in records[0][1]]
    try:
        mapping = mapping_for(header, body.mapping)
    except UnknownFormat as error:
        return 400, {"message": str(error)}
    import_id = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    options = ImportOptions(
        consent_basis=body.consent_basis, source=f"import:{mapping.format}:{body.file_name}", tags=tuple(body.tags)
    )
    meta = {"file": body.file_name, "consent_basis": body.consent_basis or "none"}
    result = service.run(import_id, records[1:], mapping, options, meta, dry_run=body.dry_run)
    view: dict[str, Any] | None = None if body.dry_run else service.status(import_id)
    if view is None:
        view = {
            "import_id": import_id,
            "status": "checked",
            "file": body.file_name,
            "format": mapping.format,
            "rows_done": 0,
            **result.counts,
            "rejected_rows": [{"row": r.row, "reason": r.reason} for r in result.rejected[:100]],
        }
    return 201, view


@router.get(
    "/api/v1/imports/<import_id>",
    summary="An import's status: counts, progress and the first rejected rows",
    responses=responses(200, ImportView, "The import", errors={404: "No such import (or older than 30 days)"}),
)
def get_import(import_id: ImportId) -> Response[str]:
    view = engine().view(import_id)
    if view is None:
        return _problem(404, "No import by that id (imports are kept 30 days).")
    return Response(200, "application/json", ImportView.model_validate(view).model_dump_json())


@router.post(
    "/api/v1/imports/<import_id>/start",
    summary="Start (or resume) the import of an uploaded file: a Step Functions Distributed Map reads it in chunks",
    responses=responses(
        202,
        ImportView,
        "Started (or already running or done): poll GET /api/v1/imports/{import_id}",
        errors={
            400: "The file has no header row or no email column",
            404: "No such import",
            409: "Nothing uploaded yet, or an inline import",
        },
    ),
)
def start_import(import_id: ImportId) -> Response[str]:
    try:
        view = engine().start(import_id)
    except FileProblem as problem:
        return _problem(problem.status, str(problem))
    if view is None:
        return _problem(404, "No import by that id (imports are kept 30 days).")
    return Response(202, "application/json", ImportView.model_validate(view).model_dump_json())
