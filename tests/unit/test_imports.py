"""Import logic (domain.imports, issue 16): formats detected from real headers, rows mapped and
checked, malformed input (BLNS values, bad emails, wrong cell counts, BOMs, CRLF, quoted newlines,
10 MB cells) reported and never a crash; a hypothesis test of the row parser.

BLNS: ../shared/external/suites/blns.json (minimaxir/big-list-of-naughty-strings @db33ec7b).
"""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.imports import (
    ImportOptions,
    ParsedRow,
    RejectedRow,
    clean_tags,
    csv_records,
    detect,
    mapping_for,
    ndjson_records,
    parse_row,
)
from tests.conftest import FIXTURES, external, load_json

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
IMPORTS = FIXTURES / "imports"


def records(text: str) -> list[object]:
    return list(csv_records(io.StringIO(text, newline="")))


def header_of(name: str) -> list[str]:
    with (IMPORTS / name).open(encoding="utf-8-sig", newline="") as f:
        return next(csv.reader(f))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("hubspot_contacts.csv", "hubspot"), ("mailchimp_members.csv", "mailchimp"), ("mautic_contacts.csv", "mautic")],
)
def test_real_export_headers_are_detected(name: str, fmt: str) -> None:
    assert detect(header_of(name)) == fmt
    assert "email" in mapping_for(header_of(name)).targets.values()


def test_a_pinpoint_export_is_read_line_by_line() -> None:
    with gzip.open(IMPORTS / "pinpoint_endpoints.json.gz", "rt", encoding="utf-8") as f:
        found = list(ndjson_records(f))
    assert isinstance(found[-1], RejectedRow) and found[-1].row == 4
    number, row = found[0]  # type: ignore[misc]
    assert (number, row["Address"], row["User.UserAttributes.FirstName"]) == (1, "pia@pinpoint-import.example", "Pia")
    mapping = mapping_for(["Address", "OptOut", "ChannelType"], "pinpoint")
    parsed = parse_row(mapping, number, row, ImportOptions(), NOW)
    assert isinstance(parsed, ParsedRow)
    assert parsed.submission.custom["interests"] == "Science;Music" and parsed.submission.profile["country"] == "DE"


def test_bom_crlf_and_quoted_newlines_are_read() -> None:
    found = records('\ufeffEmail,Notes\r\na@x.example,"one\r\ntwo, three"\r\n\r\nb@x.example,plain\r\n')
    assert found[0] == (1, {"Email": "Email", "Notes": "Notes"})
    assert found[1] == (2, {"Email": "a@x.example", "Notes": "one\r\ntwo, three"})
    assert found[2] == (4, {"Email": "b@x.example", "Notes": "plain"})


def test_wrong_cell_counts_bad_emails_and_huge_cells_are_rejected_with_reasons() -> None:
    big = "x" * 10_000_001
    lines = ["email,first_name", "a@x.example,Ann,extra", "b@x.example", "not-an-email,Bob", f"c@x.example,{big}"]
    text = "\r\n".join([*lines, "d@x.example,Dee", ""])
    mapping = mapping_for(["email", "first_name"])
    outcome = []
    for record in records(text)[1:]:
        outcome.append(record if isinstance(record, RejectedRow) else parse_row(mapping, *record, ImportOptions(), NOW))  # type: ignore[misc]
    reasons = {r.row: r.reason for r in outcome if isinstance(r, RejectedRow)}
    assert "more cell" in reasons[2] and "fewer cells" in reasons[3] and reasons[4].startswith("email:")
    assert 5 in reasons  # the 10 MB cell: unreadable or over the limit, never a crash
    assert isinstance(outcome[-1], ParsedRow) and outcome[-1].submission.profile["first_name"] == "Dee"


def test_consent_needs_evidence_and_a_basis_and_opt_outs_withdraw() -> None:
    mapping = mapping_for([*header_of("mailchimp_members.csv"), "UNSUB_TIME"])
    row = {"Email Address": "m@x.example", "OPTIN_TIME": "2019-04-01 08:00:00", "CONFIRM_TIME": "2019-04-01 08:05:00"}
    without = parse_row(mapping, 2, row, ImportOptions(), NOW)
    assert isinstance(without, ParsedRow) and without.submission.consent is None
    granted = parse_row(mapping, 2, row, ImportOptions(consent_basis="consent", source="import:mc"), NOW)
    assert isinstance(granted, ParsedRow) and granted.submission.consent is not None
    assert (granted.submission.consent.at, granted.submission.consent.basis) == ("2019-04-01T08:05:00+00:00", "consent")
    out = parse_row(
        mapping, 3, {**row, "UNSUB_TIME": "2020-01-01 00:00:00"}, ImportOptions(consent_basis="consent"), NOW
    )
    assert isinstance(out, ParsedRow) and out.opt_out and out.submission.consent.granted is False  # type: ignore[union-attr]


def test_tags_from_any_spelling() -> None:
    assert clean_tags(['"VIP", Blog', "Spring Import;  ", "!!"]) == {"vip", "blog", "spring-import"}


def test_blns_values_never_crash_a_row() -> None:
    mapping = mapping_for(["email", "first_name", "company", "phone", "country", "notes"])
    for value in load_json(external("suites/blns.json")):
        for column in ("email", "first_name", "company", "phone", "country", "notes"):
            values = {
                "email": "blns@x.example",
                "first_name": "",
                "company": "",
                "phone": "",
                "country": "",
                "notes": "",
            }
            values[column] = value
            assert isinstance(parse_row(mapping, 2, values, ImportOptions(), NOW), ParsedRow | RejectedRow)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(max_size=40), min_size=0, max_size=6), min_size=1, max_size=8))
def test_any_csv_text_gives_rows_or_reasons_never_a_crash(cells: list[list[str]]) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["email", "first_name", "tags"])
    writer.writerows(cells)
    mapping = mapping_for(["email", "first_name", "tags"])
    for record in list(csv_records(io.StringIO(out.getvalue(), newline="")))[1:]:
        if isinstance(record, RejectedRow):
            assert record.reason
            continue
        parsed = parse_row(mapping, record[0], record[1], ImportOptions(tags=("t",)), NOW)
        assert isinstance(parsed, ParsedRow | RejectedRow)
        if isinstance(parsed, RejectedRow):
            assert parsed.row == record[0] and parsed.reason
        else:
            assert "t" in parsed.tags and "@" in parsed.submission.email.address
