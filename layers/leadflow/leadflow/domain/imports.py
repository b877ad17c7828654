"""Importing contacts from another system: which export a file is, how its columns map, each row
checked. Pure: rows come in as dicts of strings (a CSV row, or a flattened Pinpoint endpoint).

Formats are told apart by their headers (``detect``); the header sets in
``tests/fixtures/imports/`` are real exports' (provenance in each file). A mapping names, per
column (case-folded, trimmed), what it fills: a profile field, ``custom:<name>``, ``tags``,
``consent_at`` (evidence of an opt-in, with its time), ``opt_out`` (a non-blank, non-"no" value:
the person opted out), or ``skip``. Columns no mapping names are kept as custom fields under
their snake_case name in ``auto`` mode, and ignored (and reported) under a named format.

What a row becomes (``parse_row``): its values checked as capture checks a form post
(``audience.stated_submission``), or a rejection naming its row number and why. Consent is
never invented: a row carries consent only when its format holds opt-in evidence *and* the
import names a lawful basis; every other row is imported as not consented.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from leadflow.domain.audience import IMPORT, StatedConsent, stated_submission
from leadflow.domain.definitions.forms import PROFILE_FIELDS
from leadflow.domain.errors import InvalidSubmission
from leadflow.domain.submissions import Submission

REJECTED_PREFIX: Final = "leadflow_"
"""Columns the rejected-rows file adds (``leadflow_row``, ``leadflow_reason``): skipped on re-import."""
MAX_CELL: Final = 10_000
"""Longest cell read (characters); a longer one rejects its row (a 10 MB cell is no contact)."""
PROFILE = frozenset(PROFILE_FIELDS)
_SNAKE = re.compile(r"[^a-z0-9]+")
_TAG_CHARS = re.compile(r"[^a-z0-9_:.-]+")
_FALSE = frozenset({"", "no", "false", "0", "n", "none", "off"})

HUBSPOT: Final = {
    "email": "email",
    "first name": "first_name",
    "last name": "last_name",
    "company name": "company",
    "job title": "title",
    "phone number": "phone",
    "country/region": "country",
    "record id": "custom:hubspot_id",
    "lifecycle stage": "custom:hubspot_lifecycle_stage",
    "lead status": "custom:hubspot_lead_status",
    "mobile phone number": "custom:mobile_phone",
    "city": "custom:city",
    "industry": "custom:industry",
    "website url": "custom:website",
    "unsubscribed from all email": "opt_out",
}
MAILCHIMP: Final = {
    "email address": "email",
    "first name": "first_name",
    "last name": "last_name",
    "phone number": "phone",
    "cc": "country",
    "optin_time": "consent_at",
    "confirm_time": "consent_at",
    "member_rating": "custom:mailchimp_rating",
    "notes": "custom:notes",
    "tags": "tags",
    "unsub_time": "opt_out",
    "leid": "skip",
    "euid": "skip",
    "optin_ip": "skip",
    "confirm_ip": "skip",
    "latitude": "skip",
    "longitude": "skip",
    "gmtoff": "skip",
    "dstoff": "skip",
    "timezone": "skip",
    "region": "skip",
    "last_changed": "skip",
}
MAUTIC: Final = {  # the stock fields of Mautic's contact export (tests/fixtures/imports/README.md)
    "email": "email",
    "firstname": "first_name",
    "lastname": "last_name",
    "company": "company",
    "position": "title",
    "phone": "phone",
    "country": "country",
    "mobile": "custom:mobile_phone",
    "fax": "custom:fax",
    "address1": "custom:address1",
    "address2": "custom:address2",
    "city": "custom:city",
    "state": "custom:state",
    "zipcode": "custom:zipcode",
    "preferred_locale": "custom:locale",
    "timezone": "custom:timezone",
    "website": "custom:website",
    "facebook": "custom:facebook",
    "foursquare": "custom:foursquare",
    "instagram": "custom:instagram",
    "linkedin": "custom:linkedin",
    "skype": "custom:skype",
    "twitter": "custom:twitter",
    "points": "custom:mautic_points",
    "stage": "custom:mautic_stage",
    "id": "custom:mautic_id",
    "tags": "tags",  # not in Mautic's own export; a column added by hand or by a plugin
    "title": "skip",  # Mautic's "title" is the salutation (Mr, Mrs), not a job title
    "last_active": "skip",
    "attribution": "skip",
    "attribution_date": "skip",
}
PINPOINT: Final = {
    "address": "email",
    "optout": "opt_out",
    "user.userattributes.firstname": "first_name",
    "user.userattributes.first_name": "first_name",
    "user.userattributes.lastname": "last_name",
    "user.userattributes.last_name": "last_name",
    "user.userattributes.company": "company",
    "user.userattributes.title": "title",
    "user.userid": "custom:pinpoint_user_id",
    "id": "custom:pinpoint_endpoint_id",
    "location.country": "country",
    "demographic.timezone": "custom:timezone",
    "channeltype": "skip",
    "endpointstatus": "skip",
    "effectivedate": "skip",
    "creationdate": "skip",
    "cohortid": "skip",
    "applicationid": "skip",
    "requestid": "skip",
}
GENERIC: Final = {
    "email": "email",
    "e-mail": "email",
    "email address": "email",
    "first name": "first_name",
    "first_name": "first_name",
    "firstname": "first_name",
    "last name": "last_name",
    "last_name": "last_name",
    "lastname": "last_name",
    "company": "company",
    "title": "title",
    "job title": "title",
    "phone": "phone",
    "country": "country",
    "tags": "tags",
}
FORMATS: Final = {"hubspot": HUBSPOT, "mailchimp": MAILCHIMP, "mautic": MAUTIC, "pinpoint": PINPOINT, "auto": GENERIC}
_SIGNATURES: Final = (
    ("hubspot", {"record id", "email"}),
    ("mailchimp", {"email address", "member_rating"}),
    ("mailchimp", {"email address", "optin_time"}),
    ("mautic", {"firstname", "lastname", "email"}),
    ("pinpoint", {"channeltype", "address"}),
)


NDJSON_COLUMNS: Final = ("Address", "OptOut", "ChannelType")
"""The columns a Pinpoint export's rejected endpoints are written with (their keys differ by line)."""


class UnknownFormat(ValueError):
    """No email column in the file's header (or a mapping file that names none)."""


def header_key(name: str) -> str:
    """A column name as mappings name it: without a BOM and surrounding blanks, case-folded."""
    return name.replace("\ufeff", "").strip().casefold()


def snake(name: str) -> str:
    """A column name as a custom field name (a lowercase identifier)."""
    text = _SNAKE.sub("_", header_key(name)).strip("_")[:60]
    return text if text[:1].isalpha() else f"c_{text}"[:64] if text else "column"


def detect(headers: Iterable[str]) -> str:
    """Which export the headers are (``hubspot``, ``mailchimp``, ``mautic``, ``pinpoint``), else ``auto``."""
    keys = {header_key(h) for h in headers}
    return next((name for name, needed in _SIGNATURES if needed <= keys), "auto")


@dataclass(frozen=True)
class ColumnMapping:
    """How one file's columns map (``targets``: header key -> target), and what it ignores."""

    format: str
    targets: dict[str, str]
    ignored: tuple[str, ...] = ()

    def target(self, key: str) -> str | None:
        """What a column fills (a Pinpoint endpoint's keys differ from line to line: its
        attributes are custom fields wherever they appear)."""
        found = self.targets.get(key)
        if found is None and self.format == "pinpoint":
            found = PINPOINT.get(key) or _pinpoint_attribute(key)
        return None if found == "skip" else found


def mapping_for(headers: list[str], chosen: str = "auto", custom: Mapping[str, str] | None = None) -> ColumnMapping:
    """The mapping of a file with ``headers``: a named format's, the detected one (``auto``), or
    ``custom`` (a mapping file: column -> target). Raises UnknownFormat without an email column."""
    fmt = detect(headers) if chosen == "auto" else chosen
    table = {header_key(k): v for k, v in (custom or FORMATS.get(fmt, GENERIC)).items()}
    targets: dict[str, str] = {}
    ignored: list[str] = []
    for header in headers:
        key = header_key(header)
        target = "skip" if key.startswith(REJECTED_PREFIX) else table.get(key)
        if target is None and fmt == "pinpoint":
            target = _pinpoint_attribute(key)
        if target is None and (fmt == "auto" and custom is None):
            target = "custom:" + snake(header)
        if target is None or target == "skip":
            ignored.append(header)
            continue
        targets[key] = target
    if "email" not in targets.values():
        raise UnknownFormat(f"no column holds the email address (read as {fmt}: {', '.join(headers[:8])}...)")
    return ColumnMapping(fmt, targets, tuple(ignored))


def _pinpoint_attribute(key: str) -> str | None:
    """A Pinpoint user or endpoint attribute not named in the table: a custom field."""
    for prefix in ("user.userattributes.", "attributes."):
        if key.startswith(prefix):
            return "custom:" + snake(key.removeprefix(prefix))
    return None


def flatten_endpoint(line: str) -> dict[str, str]:
    """One line of a Pinpoint endpoint export (JSON) as a row: nested keys joined with dots,
    lists of values joined with ``;``. Raises ValueError for a line that is no JSON object."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    row: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            row[prefix] = ";".join(str(v) for v in value)
        elif value is not None:
            row[prefix] = str(value)

    walk("", data)
    return row


@dataclass(frozen=True)
class ImportOptions:
    """What the person importing states for every row."""

    consent_basis: str | None = None
    """The lawful basis of the opt-ins the file records; None: no row is imported as consented."""
    source: str = "import"
    """Where the contacts come from (kept on each consent record)."""
    purpose: str = "marketing_email"
    tags: tuple[str, ...] = ()
    """Tags every imported lead gets."""


@dataclass(frozen=True)
class ParsedRow:
    row: int
    submission: Submission
    tags: frozenset[str]
    opt_out: bool


@dataclass(frozen=True)
class RejectedRow:
    row: int
    reason: str
    values: dict[str, str] = field(default_factory=dict)


def clean_tags(values: Iterable[str]) -> frozenset[str]:
    """Tags as leadflow keeps them (``a-z 0-9 _ : . -``, at most 64), from any export's spelling."""
    found = set()
    for value in values:
        for part in re.split(r"[,;]", value):
            tag = _TAG_CHARS.sub("-", part.strip().strip('"').casefold()).strip("-")[:64]
            if tag and tag[0].isalnum():
                found.add(tag)
    return frozenset(found)


def _shape_problem(values: Mapping[str | None, Any]) -> str | None:
    """Why a row's cells cannot be read as its header says, or None."""
    if None in values:  # cells beyond the header
        extra = values[None]
        return f"{len(extra) if isinstance(extra, list) else 1} more cell(s) than the header has columns"
    if any(v is None for v in values.values()):
        return "fewer cells than the header has columns"
    long = next((k for k, v in values.items() if len(str(v)) > MAX_CELL), None)
    return f"column {long!r} holds more than {MAX_CELL:,} characters" if long is not None else None


@dataclass
class _Gathered:
    """A row's values by what they fill."""

    profile: dict[str, str | None] = field(default_factory=dict)
    custom: dict[str, str | float | bool | None] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consent_at: str | None = None
    opt_out: bool = False

    def add(self, target: str, value: str) -> None:
        if target in PROFILE:
            self.profile.setdefault(target, value)
        elif target.startswith("custom:"):
            self.custom[target.removeprefix("custom:")] = value
        elif target == "tags":
            self.tags.append(value)
        elif target == "consent_at":
            self.consent_at = max(self.consent_at or "", value)
        elif target == "opt_out":
            self.opt_out = self.opt_out or value.casefold() not in _FALSE


def parse_row(
    mapping: ColumnMapping, number: int, values: Mapping[str | None, Any], options: ImportOptions, at: datetime
) -> ParsedRow | RejectedRow:
    """One row of the file (``number``: its 1-based row number, the header being row 1)."""
    problem = _shape_problem(values)
    if problem is not None:
        return RejectedRow(number, problem, _kept(values))
    row = _Gathered(tags=list(options.tags))
    for header, raw in values.items():
        target = mapping.target(header_key(str(header)))
        value = str(raw).strip()
        if target is not None and value:
            row.add(target, value)
    if not row.profile.get("email"):
        return RejectedRow(number, "no email address", _kept(values))
    consent = None
    if row.opt_out:
        consent = StatedConsent(options.purpose, options.consent_basis or "consent", options.source, granted=False)
    elif row.consent_at and options.consent_basis:
        consent = StatedConsent(options.purpose, options.consent_basis, options.source, at=_iso(row.consent_at))
    try:
        submission = stated_submission(IMPORT, row.profile, row.custom, at, consent)
    except InvalidSubmission as invalid:
        reason = "; ".join(f"{e.field}: {e.message}" for e in invalid.errors)
        return RejectedRow(number, reason, _kept(values))
    return ParsedRow(number, submission, clean_tags(row.tags), row.opt_out)


def _iso(value: str) -> str | None:
    """An export's time (``2015-03-16 14:40:47``, ISO 8601) as ISO 8601 UTC, None when it is none."""
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "T", 1).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.isoformat() if parsed.tzinfo else parsed.isoformat() + "+00:00"


def _kept(values: Mapping[str | None, Any]) -> dict[str, str]:
    """A rejected row's values as the rejected-rows file keeps them (cells cut at ``MAX_CELL``)."""
    return {str(k): str(v)[:MAX_CELL] for k, v in values.items() if k is not None and v is not None}


def csv_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str | None, Any]] | RejectedRow]:
    """The records of a CSV text (a BOM dropped, CRLF or LF, quoted newlines kept), numbered as a
    spreadsheet shows them (the header is row 1), read one at a time. The header comes first as
    row 1 with its column names as keys mapped to themselves."""
    reader = csv.reader(lines, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.replace("\ufeff", "") for h in header]
    yield 1, {h: h for h in header}
    yield from csv_rows(reader, header, 1)


def csv_rows(
    reader: Iterator[list[str]], header: list[str], number: int
) -> Iterator[tuple[int, dict[str | None, Any]] | RejectedRow]:
    """The records ``reader`` reads after row ``number``, as dicts keyed by ``header``: cells
    beyond the header under ``None``, missing ones ``None``; a blank line is skipped (its number
    counted), an unreadable record (a NUL byte, a cell over the reader's limit) rejected."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            number += 1
            yield RejectedRow(number, f"unreadable CSV: {error}")
            continue
        number += 1
        if not any(c.strip() for c in cells):
            continue  # a blank line
        record: dict[str | None, Any] = dict(zip(header, cells, strict=False))
        if len(cells) > len(header):
            record[None] = cells[len(header) :]
        elif len(cells) < len(header):
            record.update({h: None for h in header[len(cells) :]})
        yield number, record


def ndjson_records(lines: Iterable[str], first: int = 1) -> Iterator[tuple[int, dict[str | None, Any]] | RejectedRow]:
    """The endpoints of a Pinpoint export (one JSON object a line; the first numbered ``first``),
    flattened (the caller skips those whose ``ChannelType`` is not ``EMAIL``); a line that is no
    JSON object is rejected."""
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        try:
            row = flatten_endpoint(line)
        except ValueError as error:
            yield RejectedRow(number, f"not a JSON endpoint: {str(error)[:200]}")
            continue
        record: dict[str | None, Any] = {key: value for key, value in row.items()}
        yield number, record


def rejected_csv(header: list[str], rows: Iterable[RejectedRow | Mapping[str, Any]]) -> Iterator[str]:
    """The rejected-rows file, a line at a time: the file's columns, then ``leadflow_row`` and
    ``leadflow_reason`` (skipped when the fixed file is imported again)."""
    out = io.StringIO()
    writer = csv.writer(out)

    def line(cells: list[Any]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(cells)
        return out.getvalue()

    yield line([*header, f"{REJECTED_PREFIX}row", f"{REJECTED_PREFIX}reason"])
    for row in rows:
        number, reason, values = (
            (row.row, row.reason, row.values)
            if isinstance(row, RejectedRow)
            else (int(row["row"]), str(row["reason"]), row.get("values") or {})
        )
        yield line([*(values.get(h, "") for h in header), number, reason])
