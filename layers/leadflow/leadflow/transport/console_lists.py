"""The console's suppression list and imports pages.

Suppression (``/console/suppression``): the list newest first, a page at a time; an address looked
up by typing it whole (the list holds keyed hashes, never addresses: ``services.suppression``);
adding one (marketer, admin) and lifting one (admin), each after a question.

Imports (``/console/imports``): the imports of the last 30 days with their status and progress,
each with its counts, first rejected rows and all of them as a CSV download; a small CSV uploaded
here is first checked (a dry run: what would be created, what rejected and why), then imported once
the person confirms, through the same code as ``POST /api/v1/imports`` (at most 1,000 rows; a
bigger file: ``leadflow import``).
"""

from __future__ import annotations

import csv
import io
import re
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import ValidationError

from leadflow.domain.emails import InvalidEmail
from leadflow.domain.roles import Action
from leadflow.transport.import_routes import ImportRequest, import_small_csv

if TYPE_CHECKING:
    from leadflow.transport.console import Console, Request

HASH = re.compile(r"[0-9a-f]{64}")
PAGE = 50
MAX_UPLOAD = 1_000_000  # the API's limit for a CSV in the body (ImportRequest.csv)
MAPPINGS = ("auto", "hubspot", "mautic", "mailchimp")
BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests")


# ---------------------------------------------------------------------------- suppression
def suppression_page(console: Console, request: Request) -> str:
    person = console.require(request, Action.READ)
    service = console.parts.suppression()
    address = request.query.get("address", "").strip()[:320]
    looked_up: dict[str, Any] | None = None
    error = ""
    if address:
        try:
            key = service.key_of(address)
            looked_up = {"key": key, "entry": service.entry(key)}
        except InvalidEmail:
            error = "That is not an email address: type the whole address."
    entries, after = service.page(PAGE, request.query.get("after") or None)
    return console.render(
        "suppression.html.j2",
        request,
        entries=entries,
        after=after,
        address=address,
        looked_up=looked_up,
        error=error,
        done=request.query.get("done", ""),
        may=person.may,
    )


def _suppression_target(console: Console, request: Request, step: str, values: dict[str, str]) -> dict[str, str]:
    """What to add (an address) or lift (a key, or an address), checked."""
    service = console.parts.suppression()
    address, key = values.get("address", "").strip()[:320], values.get("key", "").strip()
    if address:
        try:
            key = service.key_of(address)
        except InvalidEmail:
            raise console.message(request, 400, "Not an address", "Type the whole email address.") from None
    if not HASH.fullmatch(key):
        raise console.message(request, 400, "Nothing to change", "Give an email address (or an entry of the list).")
    return {"address": address, "key": key, "step": step}


def confirm_suppression(console: Console, request: Request, step: str) -> str:
    """The question before adding (``?address=``) or lifting (``?key=`` or ``?address=``)."""
    console.require(request, Action.CHANGE if step == "add" else Action.UNSUPPRESS)
    target = _suppression_target(console, request, step, request.query)
    entry = console.parts.suppression().entry(target["key"])
    return console.render("suppression_confirm.html.j2", request, target=target, entry=entry)


def change_suppression(console: Console, request: Request, step: str) -> str:
    person = console.changing(request, Action.CHANGE if step == "add" else Action.UNSUPPRESS)
    target = _suppression_target(console, request, step, request.form())
    service = console.parts.suppression()
    if step == "add":
        created = service.add(target["key"])
        what, done = "suppress address", "added" if created else "listed"
    else:
        if service.lift(target["key"]) is None:
            raise console.message(request, 409, "Not listed", "That address is not on the suppression list.")
        what, done = "lift suppression", "lifted"
    # the audit log names the entry by its hash: it never holds an address
    console.parts.audit().record(person.email, str(person.role), "console", what, target["key"][:16], status=200)
    raise _redirect(f"/console/suppression?done={done}")


# ---------------------------------------------------------------------------- imports
def imports_page(console: Console, request: Request) -> str:
    person = console.require(request, Action.READ)
    return console.render(
        "imports.html.j2",
        request,
        imports=console.parts.imports().recent(PAGE),
        may=person.may,
        mappings=MAPPINGS,
        bases=BASES,
        max_rows=1000,
    )


def import_page(console: Console, request: Request, import_id: str) -> str:
    console.require(request, Action.READ)
    found = console.parts.imports().status(import_id)
    if found is None:
        raise console.message(request, 404, "No such import", "Imports are kept 30 days.")
    return console.render("import.html.j2", request, item=found)


def rejected_csv(console: Console, request: Request, import_id: str) -> str:
    """Every rejected row of an import: its row number, why, and its values as the file had them."""
    from leadflow.transport.console import Page

    console.require(request, Action.READ)
    service = console.parts.imports()
    if service.status(import_id, rejected_limit=1) is None:
        raise console.message(request, 404, "No such import", "Imports are kept 30 days.")
    rows = list(service.rejected(import_id))
    columns = list(dict.fromkeys(k for r in rows for k in (r.get("values") or {})))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "reason", *columns])
    for row in rows:
        values = row.get("values") or {}
        writer.writerow([row["row"], row["reason"], *(_cell(values.get(c)) for c in columns)])
    headers = {"Content-Disposition": f'attachment; filename="import-{import_id}-rejected.csv"'}
    raise Page(200, out.getvalue(), download=("text/csv; charset=utf-8", headers))


def _cell(value: Any) -> str:
    """A value as a spreadsheet cell; one a spreadsheet would run as a formula is quoted (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def start_import(console: Console, request: Request) -> str:
    """An upload is checked first (a dry run, shown with its question); the confirmed form imports."""
    person = console.changing(request, Action.CHANGE)
    values = upload_form(request)
    confirmed = values.get("step") == "import"
    try:
        body = ImportRequest(
            csv=values.get("csv", ""),
            file_name=(values.get("file_name") or "upload.csv")[:200],
            mapping=values.get("mapping") or "auto",  # type: ignore[arg-type]
            consent_basis=values.get("consent_basis") or None,  # type: ignore[arg-type]
            tags=[t for t in re.split(r"[\s,]+", values.get("tags", "").strip().lower()) if t],
            dry_run=not confirmed,
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise console.message(request, 400, "Not imported", problems or "Choose a CSV file.") from None
    status, view = import_small_csv(console.parts.imports(), body)
    if status != 201:
        raise console.message(request, status, "Not imported", str(view["message"]))
    if not confirmed:
        return console.render("import_check.html.j2", request, item=view, body=body)
    who, target = person.email, str(view["import_id"])
    console.parts.audit().record(who, str(person.role), "console", f"import {body.file_name}", target, status=201)
    raise _redirect(f"/console/imports/{quote(target)}")


def upload_form(request: Request) -> dict[str, str]:
    """The fields of the upload (``multipart/form-data``: the file's text as ``csv``, its name as
    ``file_name``) or of the confirmation (urlencoded, the text in a hidden field)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return request.form(limit=3 * MAX_UPLOAD)
    raw = request.body_bytes()[: 2 * MAX_UPLOAD]
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, str] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else ""
        if name == "file":
            fields["csv"] = text
            filename = part.get_filename()
            if filename:
                fields.setdefault("file_name", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
        else:
            fields[name] = text
    return fields


def _redirect(location: str) -> Exception:
    from leadflow.transport.console import Page

    return Page(303, location=location)
