"""Hostile input never makes the form endpoint fail: every outcome is a 2xx, 3xx or a named 4xx.

Sample event: /work/shared/external/apigw/sam_HttpApi_v2_POST_form-urlencoded_base64.json
(aws-sam-cli 1.170.0 `sam local generate-event apigateway http-api-proxy`), copied per request.
Strings: /work/shared/external/suites/blns.json (minimaxir/big-list-of-naughty-strings @db33ec7b).
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.memory import InMemoryIntakeQueue
from leadflow.config.workspace import Workspace
from leadflow.domain.definitions.forms import ATTRIBUTION_FIELDS
from leadflow.domain.errors import InvalidSubmission, MalformedBody, PayloadTooLarge, UnsupportedContentType
from leadflow.domain.leads import CapturePlan, apply_changes
from leadflow.domain.ratelimit import RateWindow
from leadflow.domain.submissions import ClientInfo, FormPost, Submission, validate_submission
from leadflow.ports.leads import SpamRecord, StoredCapture
from leadflow.services.capture import CaptureService
from leadflow.transport.form_body import decode_fields
from leadflow.transport.forms import handle_form_request
from tests.conftest import WORKSPACE, external, load_json

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECODE_ERRORS = (MalformedBody, UnsupportedContentType, PayloadTooLarge)
BOUNDARY = "leadflowBoundary"
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    f"multipart/form-data; boundary={BOUNDARY}",
    "multipart/form-data",
    "application/json",
    "application/problem+json; charset=utf-8",
    "text/plain",
    "",
]
DEMO = Workspace(WORKSPACE).form("demo-signup")

# Characters that break naive code: lone surrogates, NUL and other controls, bidi overrides,
# combining marks, separators, full-width look-alikes of URL and email syntax, non-characters.
AWKWARD = [
    "\ud800", "\udfff", "\udbff", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\u202e", "\u200b", "\ufeff",
    "\u0301", "\ufffe", "\uffff", "\U0010ffff", "\uff20", "\uff0e", "\uff03", "\u2100", "%", "[", "]", "@", ":",
    "/", "?", "#", "&", "=", "+", ";", ",", '"', "\\", "<", ">", " ", "\t", "\r", "\n",
]  # fmt: skip
hostile_text = st.text(st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(AWKWARD)))
emailish = st.one_of(
    hostile_text,
    st.builds(lambda local, domain: f"{local}@{domain}", hostile_text, hostile_text),
    st.builds(
        lambda local, domain: f"{local}@{domain}.com", st.from_regex(r"[a-z.]{1,70}", fullmatch=True), hostile_text
    ),
)


def assert_fields(result: tuple[dict[str, list[str]], str]) -> None:
    fields, media_type = result
    assert media_type in {"application/x-www-form-urlencoded", "multipart/form-data", "application/json"}
    assert all(isinstance(n, str) and all(isinstance(v, str) for v in vs) for n, vs in fields.items())


# ---------------------------------------------------------------------------- (1) decode_fields


@PROPERTY
@given(body=st.binary(max_size=3000), content_type=st.sampled_from(CONTENT_TYPES) | st.text(max_size=80))
def test_decoding_arbitrary_bytes_gives_fields_or_a_named_refusal(body: bytes, content_type: str):
    # GIVEN any bytes posted (base64, as API Gateway passes binary bodies) with any content type
    event = {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}

    # WHEN they are decoded
    try:
        result = decode_fields(event, {"content-type": content_type})
    except DECODE_ERRORS:
        return

    # THEN the outcome is fields of strings (or one of the three refusals above)
    assert_fields(result)


@PROPERTY
@given(body=hostile_text, content_type=st.sampled_from(CONTENT_TYPES), flagged_base64=st.booleans())
def test_decoding_arbitrary_text_gives_fields_or_a_named_refusal(body: str, content_type: str, flagged_base64: bool):
    # GIVEN any text body (lone surrogates included), flagged as base64 or not
    event = {"body": body, "isBase64Encoded": flagged_base64}

    # WHEN it is decoded
    try:
        result = decode_fields(event, {"content-type": content_type})
    except DECODE_ERRORS:
        return

    # THEN the outcome is fields of strings
    assert_fields(result)


form_pairs = st.lists(st.tuples(hostile_text, hostile_text), max_size=12)


@PROPERTY
@given(pairs=form_pairs, mangle=st.sampled_from(["none", "truncate", "raw"]))
def test_decoding_urlencoded_posts_gives_fields_or_a_named_refusal(pairs: list[tuple[str, str]], mangle: str):
    # GIVEN a urlencoded post of any names and values, well encoded, cut short or not encoded at all
    encoded = "&".join(
        f"{quote(n.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}" for n, v in pairs
    )
    body = {"none": encoded, "truncate": encoded[: len(encoded) // 2], "raw": "&".join(f"{n}={v}" for n, v in pairs)}

    # WHEN it is decoded
    try:
        result = decode_fields({"body": body[mangle]}, {"content-type": "application/x-www-form-urlencoded"})
    except DECODE_ERRORS:
        return

    # THEN the outcome is fields of strings
    assert_fields(result)


part_headers = st.dictionaries(
    st.sampled_from(["Content-Disposition", "Content-Type", "Content-Transfer-Encoding", "X-Other"]),
    st.one_of(
        st.builds(lambda n: f'form-data; name="{n}"', hostile_text),
        st.builds(lambda n, f: f'form-data; name="{n}"; filename="{f}"', hostile_text, hostile_text),
        st.sampled_from(["base64", "quoted-printable", "7bit", "binary", "weird", "text/plain; charset=latin-1"]),
        hostile_text,
    ),
)


@PROPERTY
@given(parts=st.lists(st.tuples(part_headers, st.binary(max_size=200)), max_size=6), truncate=st.booleans())
def test_decoding_multipart_posts_gives_fields_or_a_named_refusal(
    parts: list[tuple[dict[str, str], bytes]], truncate: bool
):
    # GIVEN a multipart post of parts with any headers (names, files, transfer encodings) and contents
    chunks = []
    for headers, content in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        chunks.append(f"--{BOUNDARY}\r\n{head}\r\n".encode("utf-8", "surrogatepass") + content + b"\r\n")
    body = b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()
    if truncate:
        body = body[: len(body) // 2]

    # WHEN it is decoded
    event = {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}
    try:
        result = decode_fields(event, {"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    except DECODE_ERRORS:
        return

    # THEN the outcome is fields of strings
    assert_fields(result)


# Integers are kept under Python's 4300-digit conversion limit here: longer ones are a known bug,
# see tests/unit/test_form_body.py::test_a_json_integer_too_long_to_convert_is_malformed.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(document=json_values | st.dictionaries(hostile_text, json_values, max_size=8))
def test_decoding_json_posts_gives_fields_or_a_named_refusal(document: Any):
    # GIVEN any JSON document (NaN and Infinity, lone surrogate escapes and nesting included)
    body = json.dumps(document)

    # WHEN it is decoded
    try:
        result = decode_fields({"body": body}, {"content-type": "application/json"})
    except DECODE_ERRORS:
        return

    # THEN the outcome is fields of strings
    assert_fields(result)


# ---------------------------------------------------------------------------- (2) validate_submission


# Every field the demo form takes, except the two whose values are parsed as URLs (see below).
DEMO_FIELDS = sorted(
    ({f.name for f in DEMO.fields} | set(ATTRIBUTION_FIELDS) | {"consent", "website", "_lf_ts", "_lf_nonce"})
    - {"page_url"}
)


def outcome(post: FormPost) -> Submission | InvalidSubmission:
    try:
        return validate_submission(DEMO, post, NOW)
    except InvalidSubmission as refused:
        return refused


@PROPERTY
@given(
    values=st.fixed_dictionaries({name: st.lists(hostile_text, max_size=2) for name in DEMO_FIELDS}),
    email=emailish,
    user_agent=hostile_text,
    key=st.none() | hostile_text,
)
def test_any_text_in_any_demo_field_is_a_submission_or_a_named_refusal(
    values: dict[str, list[str]], email: str, user_agent: str, key: str | None
):
    # GIVEN a post of the demo form with any text in every field, the user agent and the idempotency key
    post = FormPost(
        fields={**values, "email": [email]}, client=ClientInfo("203.0.113.7", user_agent), idempotency_key=key
    )

    # WHEN it is validated
    result = outcome(post)

    # THEN it is a refusal naming fields, or a submission of valid Unicode that DynamoDB can store
    if isinstance(result, InvalidSubmission):
        assert all(error.field for error in result.errors)
        return
    kept = [*result.profile.values(), *map(str, result.custom.values()), *result.touch.values()]
    kept += [v for vs in result.raw_fields.values() for v in vs] + list(result.raw_fields)
    for text in kept:
        text.encode("utf-8")  # raises on a lone surrogate
    write = CapturePlan(result, "A" * 26, "B" * 26, ("C" * 26, "D" * 26), None).for_lead("B" * 26, is_new=True)
    refuse_unstorable(apply_changes(None, write.changes))
    refuse_unstorable(write.activity)


@PROPERTY
@given(page_url=hostile_text | st.builds("http://{}".format, hostile_text), referer=hostile_text)
@example(page_url="http://[", referer="")
def test_any_page_url_or_referer_is_a_submission_or_a_named_refusal(page_url: str, referer: str):
    # GIVEN a post of the demo form with any page_url and any Referer header
    post = FormPost(
        fields={"email": ["jane@example.com"], "page_url": [page_url]},
        client=ClientInfo("203.0.113.7", referer=referer),
    )

    # WHEN it is validated
    result = outcome(post)

    # THEN it is a submission (attribution is best effort) or a refusal
    assert isinstance(result, Submission | InvalidSubmission)


# ---------------------------------------------------------------------------- (3) the Big List of Naughty Strings


def refuse_unstorable(item: dict[str, Any]) -> None:
    """Raise where DynamoDB would refuse the item: numbers out of its range, empty map keys."""
    serialize(item)  # boto3's serializer raises on numbers DynamoDB cannot hold
    maps = [item]
    while maps:
        current = maps.pop()
        if "" in current:
            raise ValueError("DynamoDB refuses an empty map key")
        maps.extend(v for v in current.values() if isinstance(v, dict))


class FakeLeadStore:
    """``LeadStore`` in memory: one lead per email key, replays by idempotency key; refuses what
    DynamoDB would refuse, as the real store would fail on it."""

    def __init__(self) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        self.lead_by_email: dict[str, str] = {}
        self.replays: dict[str, StoredCapture] = {}
        self.activities: list[dict[str, Any]] = []
        self.spam: list[SpamRecord] = []

    def capture(self, plan: CapturePlan, window: RateWindow | None, day: str) -> StoredCapture:
        if plan.idempotency_key in self.replays:
            stored = self.replays[plan.idempotency_key]
            return StoredCapture(stored.lead_id, stored.created, replayed=True)
        existing = self.lead_by_email.get(plan.submission.email.key)
        write = plan.for_lead(existing or plan.new_lead_id, is_new=existing is None)
        lead = apply_changes(self.leads.get(write.lead_id), write.changes)
        for item in (lead, write.activity, write.consent or {}):
            refuse_unstorable(item)
        self.leads[write.lead_id] = lead
        self.lead_by_email[write.email_key] = write.lead_id
        self.activities.append(write.activity)
        stored = StoredCapture(write.lead_id, created=write.is_new)
        if plan.idempotency_key:
            self.replays[plan.idempotency_key] = stored
        return stored

    def record_spam(self, spam: SpamRecord, window: RateWindow | None, day: str) -> None:
        refuse_unstorable({"fields": spam.fields})
        self.spam.append(spam)

    def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        return self.leads.get(lead_id)

    def lead_id_for_email(self, email_key: str) -> str | None:
        return self.lead_by_email.get(email_key)

    def lead_history(self, lead_id: str, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return [a for a in reversed(self.activities) if a["lead_id"] == lead_id][:limit], []

    def recent_leads(self, limit: int) -> list[dict[str, Any]]:
        return list(self.leads.values())[-limit:]

    def form_stats(self, day: str) -> dict[str, dict[str, int]]:
        return {}


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture(scope="module")
def sam_event() -> dict[str, Any]:
    return load_json(external("apigw/sam_HttpApi_v2_POST_form-urlencoded_base64.json"))


@pytest.fixture(scope="module")
def naughty_strings() -> list[str]:
    strings = load_json(external("suites/blns.json"))
    assert isinstance(strings, list)
    assert all(isinstance(s, str) for s in strings)
    return strings


def form_event(
    sam_event: dict[str, Any], fields: dict[str, str], *, as_json: bool, referer: str = ""
) -> dict[str, Any]:
    """The SAM sample event carrying a post of the demo form."""
    event = copy.deepcopy(sam_event)
    event["pathParameters"] = {"form_id": "demo-signup"}
    event["requestContext"]["http"]["method"] = "POST"
    event["headers"] = {"user-agent": "Mozilla/5.0", "origin": "https://www.example.com"}
    if referer:
        event["headers"]["referer"] = referer
    if as_json:
        event["headers"]["content-type"] = "application/json"
        event["body"], event["isBase64Encoded"] = json.dumps(fields), False
    else:
        event["headers"]["content-type"] = "application/x-www-form-urlencoded"
        event["body"] = base64.b64encode(urlencode(fields).encode("ascii")).decode("ascii")
        event["isBase64Encoded"] = True
    return event


RENDERED = str(int((NOW - timedelta(seconds=30)).timestamp() * 1000))


@pytest.mark.parametrize("as_json", [False, True], ids=["urlencoded", "json"])
@pytest.mark.parametrize(
    "field", ["first_name", "company", "interest", "utm_source", "page_url", "ref", "email", "referer"]
)
def test_no_naughty_string_in_a_field_makes_the_endpoint_fail(
    sam_event: dict[str, Any], naughty_strings: list[str], field: str, as_json: bool
):
    # GIVEN the capture service on an in-memory store
    store = FakeLeadStore()
    service = CaptureService(
        Workspace(WORKSPACE), store, InMemoryIntakeQueue(), FixedClock(), rate_limit_per_minute=10**6
    )

    # WHEN each naughty string is posted as the field's value (or as the Referer header)
    failures = []
    statuses = set()
    for index, naughty in enumerate(naughty_strings):
        fields = {"email": f"lead{index}@example.com", "_lf_ts": RENDERED}
        if field != "referer":
            fields[field] = naughty
        event = form_event(sam_event, fields, as_json=as_json, referer=naughty if field == "referer" else "")
        try:
            response = handle_form_request(event, service)
        except Exception as error:  # noqa: BLE001 - any escape is the failure being looked for
            failures.append((naughty, f"{type(error).__name__}: {error}"))
            continue
        statuses.add(response["statusCode"])
        if response["statusCode"] >= 500:
            failures.append((naughty, response))

    # THEN every post got an answer below 500
    assert failures == []
    assert statuses <= {200, 201, 303, 400, 422}


@pytest.mark.parametrize(
    ("fields", "as_json", "referer"),
    [
        pytest.param({"page_url": "http://["}, False, "", id="page_url http://["),
        pytest.param({"page_url": "https://[::1/demo"}, True, "", id="page_url https://[::1/demo"),
        pytest.param({}, False, "http://[", id="Referer http://["),
        pytest.param({"page_url": "https://www.example.com/[x]"}, False, "", id="page_url with brackets in the path"),
    ],
)
def test_hostile_attribution_gets_an_answer_below_500(
    sam_event: dict[str, Any], fields: dict[str, str], as_json: bool, referer: str
):
    # GIVEN the capture service on an in-memory store
    service = CaptureService(Workspace(WORKSPACE), FakeLeadStore(), InMemoryIntakeQueue(), FixedClock(), 30)

    # WHEN a post with an unparseable page URL or Referer arrives
    event = form_event(sam_event, {"email": "jane@example.com", **fields}, as_json=as_json, referer=referer)
    response = handle_form_request(event, service)

    # THEN it is answered below 500 (attribution is best effort)
    assert response["statusCode"] < 500


def test_a_json_post_with_a_huge_integer_gets_an_answer_below_500(sam_event: dict[str, Any]):
    # GIVEN the capture service on an in-memory store
    service = CaptureService(Workspace(WORKSPACE), FakeLeadStore(), InMemoryIntakeQueue(), FixedClock(), 30)

    # WHEN a JSON post carries a 5000-digit number
    event = form_event(sam_event, {"email": "jane@example.com"}, as_json=True)
    event["body"] = event["body"][:-1] + ', "company_size": ' + "1" * 5000 + "}"
    response = handle_form_request(event, service)

    # THEN it is answered below 500
    assert response["statusCode"] < 500
