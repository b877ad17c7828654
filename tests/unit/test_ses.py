"""SES feedback parsing: every shared sample, both formats, every envelope, and what breaks it.

Samples: /work/shared/external/ses/ (provenance in its README.md), read in place. Every JSON
file there must have a row in EXPECTED: a new sample fails until someone decides what it is.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leadflow.domain.errors import LeadflowError
from leadflow.domain.ses import (
    FeedbackKind,
    MalformedFeedback,
    NotFeedback,
    SesFeedback,
    activity_type,
    suppresses,
    unsubscribes,
)
from leadflow.domain.ses_parsing import parse_eventbridge, parse_message, parse_sns_record
from leadflow.domain.ses_records import DIAGNOSTIC_LIMIT, normalize_recipient
from tests.conftest import EXTERNAL, external, load_json

pytestmark = pytest.mark.unit

SES_SAMPLES = EXTERNAL / "ses"
SAMPLE_FILES = sorted(SES_SAMPLES.glob("*.json"))

DOCS_MESSAGE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
RELAY_MESSAGE_ID = "0100017e6dde5594-4912fac5-bd85-4358-98d4-7b8d8b89fc60-000000"
RELAY_FEEDBACK_ID = "0100017e6dde5726-6164bdc9-7da9-42f7-ba58-8f4692799d89-000000"
CLICKED_LINK = "http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html"
HEX64 = re.compile(r"[0-9a-f]{64}")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- the table: what each shared sample is --------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A sample that is feedback: what ``entry`` returns for it."""

    entry: str  # "message" (parse_message), "sns_record" (Records[0]), "eventbridge"
    kind: FeedbackKind
    recipients: tuple[str, ...]
    message_id: str
    occurred_at: datetime
    source_format: str
    ses_feedback_id: str | None = None  # SES's bounce/complaint feedbackId, else a sha256 id
    attributes: dict[str, Any] = field(default_factory=dict)  # further SesFeedback fields
    decisions: tuple[str | None, bool, bool] = (None, False, False)  # activity, suppresses, unsubscribes


@dataclass(frozen=True)
class Refused:
    """A sample that is not usable feedback: the outcome of each entry point tried on it."""

    outcomes: dict[str, type[LeadflowError]]


def bounce(
    kind: FeedbackKind, recipients: tuple[str, ...], *, suppress: bool, **kwargs: Any
) -> dict[str, Any]:  # the parts shared by bounce rows
    return {"kind": kind, "recipients": recipients, "decisions": ("email_bounced", suppress, False), **kwargs}


EXPECTED: dict[str, Parsed | Refused] = {
    # configuration-set event publishing (eventType), the SNS Message payload itself
    "awsdocs_eventpublishing_Bounce.json": Parsed(
        "message",
        message_id=DOCS_MESSAGE_ID,
        # the bounce's own timestamp, not mail.timestamp (00:40:02.012Z)
        occurred_at=at("2017-08-05T00:41:02.669+00:00"),
        source_format="event",
        ses_feedback_id="01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        attributes={
            "bounce_type": "Permanent",
            "bounce_subtype": "General",
            "diagnostic": "smtp; 550 5.1.1 user unknown",
        },
        **bounce(FeedbackKind.BOUNCED_PERMANENT, ("recipient@example.com",), suppress=True),
    ),
    "awsdocs_eventpublishing_Complaint.json": Parsed(
        "message",
        FeedbackKind.COMPLAINED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2017-08-05T00:41:02.669+00:00"),
        "event",
        # the docs reuse the Bounce record's feedbackId here
        ses_feedback_id="01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        attributes={"complaint_type": "abuse", "bounce_type": None, "diagnostic": None},
        decisions=("email_complained", True, True),
    ),
    "awsdocs_eventpublishing_Delivery.json": Parsed(
        "message",
        FeedbackKind.DELIVERED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2016-10-19T23:21:04.133+00:00"),
        "event",
        attributes={"tags": {"myCustomTag1": ["myCustomTagValue1"]}},
        decisions=(None, False, False),
    ),
    "awsdocs_eventpublishing_Send.json": Parsed(
        "message",
        FeedbackKind.SENT,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2016-10-14T05:02:16.645+00:00"),  # Send has no timestamp of its own: mail.timestamp
        "event",
        decisions=(None, False, False),
    ),
    "awsdocs_eventpublishing_Reject.json": Parsed(
        "message",
        FeedbackKind.REJECTED,
        # the docs sample's mail.destination is the sender (commonHeaders.to says recipient@)
        ("sender@example.com",),
        DOCS_MESSAGE_ID,
        at("2016-10-14T17:38:15.211+00:00"),
        "event",
        attributes={"diagnostic": "Bad content"},
        decisions=("email_rejected", False, False),
    ),
    "awsdocs_eventpublishing_Open.json": Parsed(
        "message",
        FeedbackKind.OPENED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2017-08-09T22:00:19.652+00:00"),
        "event",
        attributes={"ip": "192.0.2.1", "link": None, "tags": {"ses:configuration-set": ["ConfigSet"]}},
        decisions=(None, False, False),  # leadflow counts opens itself,
    ),
    "awsdocs_eventpublishing_Click.json": Parsed(
        "message",
        FeedbackKind.CLICKED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2017-08-09T23:51:25.570+00:00"),
        "event",
        attributes={
            "ip": "192.0.2.1",
            "link": CLICKED_LINK,
            "link_tags": {"samplekey0": ["samplevalue0"], "samplekey1": ["samplevalue1"]},
        },
        decisions=(None, False, False),  # leadflow counts clicks itself,
    ),
    "awsdocs_eventpublishing_RenderingFailure.json": Parsed(
        "message",
        FeedbackKind.RENDERING_FAILED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2018-01-22T18:43:06.197+00:00"),
        "event",
        attributes={"diagnostic": "Attribute 'attributeName' is not present in the rendering data."},
        decisions=("email_rendering_failed", False, False),
    ),
    "awsdocs_eventpublishing_DeliveryDelay.json": Parsed(
        "message",
        FeedbackKind.DELIVERY_DELAYED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2020-06-16T00:25:40.095+00:00"),
        "event",
        attributes={"diagnostic": "smtp; 421 4.4.1 Unable to connect to remote host", "headers": {}},
        decisions=("email_delivery_delayed", False, False),
    ),
    "awsdocs_eventpublishing_Subscription.json": Parsed(
        "message",
        FeedbackKind.SUBSCRIPTION_CHANGED,
        ("recipient@example.com",),
        "EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000",
        at("2022-01-12T01:00:17.910+00:00"),
        "event",
        attributes={"unsubscribe_all": True},
        decisions=(None, False, True),
    ),
    # identity notifications (notificationType)
    "awsdocs_identitynotification_bounce_with_dsn.json": Parsed(
        "message",
        message_id="00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        occurred_at=at("2016-01-27T14:59:38.237+00:00"),
        source_format="notification",
        ses_feedback_id="00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
        # the diagnostic names the recipient itself, which is kept
        attributes={"diagnostic": "smtp; 550 5.1.1 <jane@example.com>... User", "bounce_subtype": "General"},
        # mail.destination has three addresses; only the bounced one counts
        **bounce(FeedbackKind.BOUNCED_PERMANENT, ("jane@example.com",), suppress=True),
    ),
    "awsdocs_identitynotification_bounce_without_dsn.json": Parsed(
        "message",
        message_id="00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
        occurred_at=at("2016-01-27T14:59:38.237+00:00"),
        source_format="notification",
        ses_feedback_id="00000137860315fd-869464a4-8680-4114-98d3-716fe35851f9-000000",
        attributes={"diagnostic": None},
        **bounce(FeedbackKind.BOUNCED_PERMANENT, ("jane@example.com", "richard@example.com"), suppress=True),
    ),
    "awsdocs_identitynotification_complaint_with_feedback_report.json": Parsed(
        "message",
        FeedbackKind.COMPLAINED,
        ("richard@example.com",),
        "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
        at("2016-01-27T14:59:38.237+00:00"),
        "notification",
        ses_feedback_id="000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        attributes={"complaint_type": "abuse", "user_agent": "AnyCompany Feedback Loop (V0.01)"},
        decisions=("email_complained", True, True),
    ),
    "awsdocs_identitynotification_complaint_without_feedback_report.json": Parsed(
        "message",
        FeedbackKind.COMPLAINED,
        ("richard@example.com",),
        "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000",
        at("2016-01-27T14:59:38.237+00:00"),
        "notification",
        ses_feedback_id="0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000",
        attributes={"complaint_type": None, "user_agent": None, "tags": {}},
        decisions=("email_complained", True, True),
    ),
    "awsdocs_identitynotification_delivery.json": Parsed(
        "message",
        FeedbackKind.DELIVERED,
        ("jane@example.com",),
        "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        at("2016-01-27T14:59:38.237+00:00"),
        "notification",
        decisions=(None, False, False),
    ),
    # SNS HTTPS delivery bodies captured by Mozilla Relay (subtypes edited by them: free text)
    "mozilla-relay_hard_bounce_sns_body.json": Parsed(
        "message",
        message_id=RELAY_MESSAGE_ID,
        occurred_at=at("2022-01-18T15:46:34+00:00"),
        source_format="notification",
        ses_feedback_id=RELAY_FEEDBACK_ID,
        attributes={"bounce_type": "Permanent", "bounce_subtype": "OnAccountSuppressionList"},
        **bounce(FeedbackKind.BOUNCED_PERMANENT, ("relayuser@test.com",), suppress=True),
    ),
    "mozilla-relay_soft_bounce_sns_body.json": Parsed(
        "message",
        message_id=RELAY_MESSAGE_ID,
        occurred_at=at("2022-01-18T15:46:34+00:00"),
        source_format="notification",
        ses_feedback_id=RELAY_FEEDBACK_ID,
        attributes={"bounce_type": "Transient", "bounce_subtype": "SRETeamEatenByDinosaurs"},
        **bounce(FeedbackKind.BOUNCED_TRANSIENT, ("relayuser@test.com",), suppress=False),
    ),
    "mozilla-relay_spam_bounce_sns_body.json": Parsed(
        "message",
        message_id=RELAY_MESSAGE_ID,
        occurred_at=at("2022-01-18T15:46:34+00:00"),
        source_format="notification",
        ses_feedback_id=RELAY_FEEDBACK_ID,
        attributes={"bounce_subtype": "StopRelayingSpamForThisUser", "diagnostic": "Message considered as spam."},
        **bounce(FeedbackKind.BOUNCED_TRANSIENT, ("relayuser@test.com",), suppress=False),
    ),
    "mozilla-relay_subscription_confirmation_invalid_sns_body.json": Refused({"message": NotFeedback}),
    # composed by us: the awsdocs Open/Click records inside Lambda SNS and EventBridge envelopes
    "DERIVED_sns-lambda_ses-open.json": Parsed(
        "sns_record",
        FeedbackKind.OPENED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2017-08-09T22:00:19.652+00:00"),
        "event",
        decisions=(None, False, False),  # leadflow counts opens itself,
    ),
    "DERIVED_sns-lambda_ses-click.json": Parsed(
        "sns_record",
        FeedbackKind.CLICKED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2017-08-09T23:51:25.570+00:00"),
        "event",
        attributes={"link": CLICKED_LINK},
        decisions=(None, False, False),  # leadflow counts clicks itself,
    ),
    "DERIVED_eventbridge_ses-open.json": Parsed(
        "eventbridge",
        FeedbackKind.OPENED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2017-08-09T22:00:19.652+00:00"),  # the open's timestamp, not the envelope's time
        "event",
        decisions=(None, False, False),  # leadflow counts opens itself,
    ),
    "DERIVED_eventbridge_ses-click.json": Parsed(
        "eventbridge",
        FeedbackKind.CLICKED,
        ("recipient@example.com",),
        DOCS_MESSAGE_ID,
        at("2017-08-09T23:51:25.570+00:00"),
        "event",
        attributes={"link": CLICKED_LINK},
        decisions=(None, False, False),  # leadflow counts clicks itself,
    ),
    # envelopes and inbound mail: not feedback about a sent email
    "powertools_snsEvent.json": Refused({"sns_record": MalformedFeedback, "message": MalformedFeedback}),
    "powertools_eventBridgeEvent.json": Refused({"eventbridge": MalformedFeedback, "message": MalformedFeedback}),
    "powertools_sesEvent_inbound-receipt.json": Refused(
        {"message": NotFeedback, "sns_record": NotFeedback, "record_ses": NotFeedback}
    ),
    "aws-lambda-go_ses-sns-event_inbound-receipt.json": Refused(
        {"message": NotFeedback, "sns_record": NotFeedback, "record_ses": NotFeedback}
    ),
}


def run(entry: str, data: dict[str, Any]) -> list[SesFeedback]:
    if entry == "message":
        return parse_message(data)
    if entry == "sns_record":
        return parse_sns_record(data["Records"][0])
    if entry == "record_ses":
        return parse_message(data["Records"][0]["ses"])
    if entry == "eventbridge":
        return parse_eventbridge(data)
    raise AssertionError(entry)


def sample(name: str) -> dict[str, Any]:
    return copy.deepcopy(load_json(external(f"ses/{name}")))


def only(feedback: list[SesFeedback]) -> SesFeedback:
    assert len(feedback) == 1
    return feedback[0]


def sns_record(message: Any) -> dict[str, Any]:
    """A Lambda SNS record carrying ``message`` (serialized unless it is already a string)."""
    record = sample("DERIVED_sns-lambda_ses-open.json")["Records"][0]
    record["Sns"]["Message"] = message if isinstance(message, str) else json.dumps(message)
    return record


# --- every sample ---------------------------------------------------------------------------


def test_the_samples_are_beside_the_repo_and_all_have_a_row():
    # GIVEN the shared SES samples
    if not SES_SAMPLES.is_dir():
        pytest.skip(f"third-party material not found: {SES_SAMPLES}")

    # WHEN the files are compared with the table
    names = {path.name for path in SAMPLE_FILES}

    # THEN every file has a row and every row a file
    assert names == set(EXPECTED)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[path.name for path in SAMPLE_FILES])
def test_every_shared_sample_parses_or_is_refused_as_expected(path: Path):
    # GIVEN a shared sample and what it was judged to be
    assert path.name in EXPECTED, f"no expectation for {path.name}: read it and add a row"
    expected = EXPECTED[path.name]
    data = load_json(path)

    if isinstance(expected, Refused):
        # WHEN each entry point that could be handed it is tried
        for entry, error in expected.outcomes.items():
            # THEN it is refused with the expected outcome, nothing else
            with pytest.raises(error):
                run(entry, copy.deepcopy(data))
        return

    # WHEN it is parsed through its entry point
    feedback = run(expected.entry, data)

    # THEN there is one feedback per recipient, each as the row says
    assert [f.recipient for f in feedback] == list(expected.recipients)
    for f in feedback:
        assert f.kind is expected.kind
        assert f.message_id == expected.message_id
        assert f.occurred_at == expected.occurred_at
        assert f.occurred_at.tzinfo is UTC
        assert f.source_format == expected.source_format
        if expected.ses_feedback_id:  # SES's id, made per recipient by a hash (never the address)
            assert re.fullmatch(re.escape(expected.ses_feedback_id) + ":[0-9a-f]{16}", f.feedback_id)
        else:
            assert HEX64.fullmatch(f.feedback_id)
        for name, value in expected.attributes.items():
            actual = getattr(f, name)
            if name == "tags":  # a subset: the samples carry many SES tags
                assert {k: actual.get(k) for k in value} == value
            else:
                assert actual == value, name
        assert (activity_type(f), suppresses(f), unsubscribes(f)) == expected.decisions
    assert len({f.feedback_id for f in feedback}) == len(feedback)


@pytest.mark.parametrize("name", [n for n, e in EXPECTED.items() if isinstance(e, Parsed)])
def test_parsing_a_sample_twice_gives_the_same_feedback(name: str):
    # GIVEN a sample that is feedback, delivered twice
    expected = EXPECTED[name]
    assert isinstance(expected, Parsed)

    # WHEN both deliveries are parsed
    first, second = run(expected.entry, sample(name)), run(expected.entry, sample(name))

    # THEN they are equal, ids included, and de-duplicate as set members
    assert first == second
    assert set(first) == set(second)


# --- one event, many envelopes and both formats ----------------------------------------------


@pytest.mark.parametrize("record", ["Open", "Click"])
def test_the_same_event_through_sns_eventbridge_or_bare_is_the_same_feedback(record: str):
    # GIVEN one awsdocs record, bare and inside the Lambda SNS and EventBridge envelopes
    bare = parse_message(sample(f"awsdocs_eventpublishing_{record}.json"))
    via_sns = parse_sns_record(sample(f"DERIVED_sns-lambda_ses-{record.lower()}.json")["Records"][0])
    via_bus = parse_eventbridge(sample(f"DERIVED_eventbridge_ses-{record.lower()}.json"))

    # WHEN / THEN all three parse to equal feedback, so one of them is a duplicate of the other
    assert bare == via_sns == via_bus


def test_a_lambda_sns_record_and_an_sns_https_body_of_one_message_agree():
    # GIVEN the Mozilla SNS HTTPS body and a Lambda record carrying the same Message
    body = sample("mozilla-relay_hard_bounce_sns_body.json")

    # WHEN both are parsed
    from_body = parse_message(body)
    from_record = parse_sns_record(sns_record(body["Message"]))

    # THEN they agree, and parse_message also takes the record and the raw text
    assert from_body == from_record == parse_message(sns_record(body["Message"])) == parse_message(json.dumps(body))


def test_a_bounce_reported_in_both_formats_has_one_feedback_id():
    # GIVEN a bounce as an event-publishing record and the same bounce as an identity notification
    event = sample("awsdocs_eventpublishing_Bounce.json")
    notification = copy.deepcopy(event)
    notification["notificationType"] = notification.pop("eventType")

    # WHEN both are parsed
    from_event, from_notification = only(parse_message(event)), only(parse_message(notification))

    # THEN only the format differs: the second one changes nothing
    assert from_event.feedback_id == from_notification.feedback_id
    assert replace(from_notification, source_format="event") == from_event


def test_a_delivery_reported_in_both_formats_has_one_feedback_id():
    # GIVEN a delivery without an SES feedbackId, in both formats
    event = sample("awsdocs_eventpublishing_Delivery.json")
    notification = copy.deepcopy(event)
    notification["notificationType"] = notification.pop("eventType")

    # WHEN both are parsed
    # THEN the derived id does not depend on the format either
    assert only(parse_message(event)).feedback_id == only(parse_message(notification)).feedback_id


def test_a_bounce_and_a_complaint_sharing_an_ses_feedback_id_stay_apart():
    # GIVEN the docs' Bounce and Complaint records: same message, recipient and SES feedbackId
    bounced = only(parse_message(sample("awsdocs_eventpublishing_Bounce.json")))
    complained = only(parse_message(sample("awsdocs_eventpublishing_Complaint.json")))

    # WHEN / THEN de-duplication by feedback_id does not swallow the complaint
    assert bounced.feedback_id != complained.feedback_id
    # AND the Mozilla hard and soft bounces (one feedbackId, edited captures) stay apart too
    hard = only(parse_message(sample("mozilla-relay_hard_bounce_sns_body.json")))
    soft = only(parse_message(sample("mozilla-relay_soft_bounce_sns_body.json")))
    assert hard.feedback_id != soft.feedback_id


def test_the_feedback_id_ignores_the_sns_envelope():
    # GIVEN the same SES record published twice (new SNS message id, later SNS timestamp)
    first = sample("DERIVED_sns-lambda_ses-open.json")["Records"][0]
    second = copy.deepcopy(first)
    second["Sns"]["MessageId"] = "another-sns-message-id"
    second["Sns"]["Timestamp"] = "2030-01-01T00:00:00.000Z"

    # WHEN both are parsed
    # THEN they are one feedback: the id comes from the SES record only
    assert parse_sns_record(first) == parse_sns_record(second)


def test_out_of_order_events_keep_their_own_time():
    # GIVEN an open processed after a delivery of the same message, but published earlier
    delivery = sample("awsdocs_eventpublishing_Delivery.json")
    opened = sample("awsdocs_eventpublishing_Open.json")
    opened["open"]["timestamp"] = "2016-10-19T23:00:00.000Z"

    # WHEN both are parsed in arrival order
    first, second = only(parse_message(delivery)), only(parse_message(opened))

    # THEN each carries the time SES saw it, so the consumer can order them
    assert second.occurred_at < first.occurred_at


# --- recipients ---------------------------------------------------------------------------------


def test_a_bounce_of_some_recipients_names_only_those():
    # GIVEN a bounce of two of the message's three recipients
    message = sample("awsdocs_identitynotification_bounce_without_dsn.json")

    # WHEN it is parsed
    feedback = parse_message(message)

    # THEN mary, who did not bounce, is not suppressed; each bounce has its own id and the same SES id
    assert [f.recipient for f in feedback] == ["jane@example.com", "richard@example.com"]
    assert feedback[0].feedback_id != feedback[1].feedback_id
    assert {f.feedback_id.split(":")[0] for f in feedback} == {message["bounce"]["feedbackId"]}


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("awsdocs_eventpublishing_Delivery.json", ("delivery", "recipients")),
        ("awsdocs_eventpublishing_Open.json", ("mail", "destination")),
        ("awsdocs_eventpublishing_Click.json", ("mail", "destination")),
        ("awsdocs_eventpublishing_Send.json", ("mail", "destination")),
        ("awsdocs_eventpublishing_Reject.json", ("mail", "destination")),
        ("awsdocs_eventpublishing_RenderingFailure.json", ("mail", "destination")),
        ("awsdocs_eventpublishing_Complaint.json", ("complaint", "complainedRecipients")),
    ],
)
def test_one_feedback_per_recipient_in_the_right_list(name: str, path: tuple[str, str]):
    # GIVEN a message with three recipients in the list that counts for its type
    message = sample(name)
    as_objects = path[1] == "complainedRecipients"
    addresses = ["a@example.com", "B@Example.COM", "Carol Doe <carol@example.org>"]
    message[path[0]][path[1]] = [{"emailAddress": a} for a in addresses] if as_objects else addresses

    # WHEN it is parsed
    feedback = parse_message(message)

    # THEN there is one feedback each, normalized, with distinct ids
    assert [f.recipient for f in feedback] == ["a@example.com", "b@example.com", "carol@example.org"]
    assert len({f.feedback_id for f in feedback}) == 3


def test_a_delivery_uses_its_own_recipients_not_the_destination():
    # GIVEN a delivery to one of two destinations
    message = sample("awsdocs_eventpublishing_Delivery.json")
    message["mail"]["destination"] = ["recipient@example.com", "other@example.com"]

    # WHEN it is parsed
    # THEN only the delivered recipient gets a feedback
    assert [f.recipient for f in parse_message(message)] == ["recipient@example.com"]


def test_repeated_and_unusable_recipients_are_dropped():
    # GIVEN a bounce listing one address twice (in two cases) and entries that are no address
    message = sample("awsdocs_eventpublishing_Bounce.json")
    message["bounce"]["bouncedRecipients"] = [
        {"emailAddress": "Jane@Example.com"},
        {"emailAddress": "jane@example.com"},
        "mary@example.com",
        {"emailAddress": "no-at-sign"},
        {"emailAddress": "a b@example.com"},
        {"emailAddress": None},
        {"status": "5.1.1"},
        42,
        None,
    ]

    # WHEN it is parsed
    # THEN each mailbox is there once
    assert [f.recipient for f in parse_message(message)] == ["jane@example.com", "mary@example.com"]


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("Jane Doe <Jane@Example.com>", "jane@example.com"),
        ('"sender@test.com [via Relay]" <relay@unfck.email>', "relay@unfck.email"),
        ("Jane <jane@example.com>, Mary <mary@example.com>", None),
        ("jane@example.com, mary@example.com", None),
        ("e\u0301lodie@example.com", "élodie@example.com"),
        ("STRASSE@example.com", "strasse@example.com"),
        ("", None),
        ("@example.com", None),
        ("jane@", None),
        ("a@b@example.com", None),
        ("jane\x00@example.com", None),
        ("\ud800@example.com", None),
        ("x" * 400 + "@example.com", None),
        (None, None),
        (["jane@example.com"], None),
    ],
)
def test_recipients_are_normalized_like_lead_keys(raw: Any, normalized: str | None):
    # GIVEN an address as SES might list it
    # WHEN it is normalized
    # THEN it is trimmed, NFC, case-folded, or refused
    assert normalize_recipient(raw) == normalized


# --- tolerance: unknown fields added, optional fields removed -------------------------------------


def add_unknown_fields(value: Any) -> Any:
    """Every object gets extra keys, recursively (what a future SES version might add)."""
    if isinstance(value, dict):
        out = {key: add_unknown_fields(item) for key, item in value.items()}
        out.update({"futureField": {"nested": [1, None, "x"]}, "anotherNewFlag": True})
        return out
    if isinstance(value, list):
        return [add_unknown_fields(item) for item in value]
    return value


@pytest.mark.parametrize(
    "name", [n for n, e in EXPECTED.items() if isinstance(e, Parsed) and e.entry == "message" and "sns" not in n]
)
def test_unknown_fields_anywhere_change_nothing(name: str):
    # GIVEN a sample with unknown fields added to every object, recipient entries included
    message = sample(name)
    extended = add_unknown_fields(message)
    extended["mail"]["tags"] = message["mail"].get("tags", {})  # tag values must stay lists

    # WHEN both are parsed
    # THEN the result is the same
    assert parse_message(extended) == parse_message(message)


@pytest.mark.parametrize(
    "name", [n for n, e in EXPECTED.items() if isinstance(e, Parsed) and e.entry == "message" and "sns" not in n]
)
@pytest.mark.parametrize(
    "optional", ["commonHeaders", "headers", "tags", "source", "sourceArn", "timestamp_of_event", "headersTruncated"]
)
def test_optional_fields_can_be_missing(name: str, optional: str):
    # GIVEN a sample without one optional field
    message = sample(name)
    if optional == "timestamp_of_event":
        for details in message.values():
            if isinstance(details, dict) and details is not message["mail"]:
                details.pop("timestamp", None)
    else:
        message["mail"].pop(optional, None)

    # WHEN it is parsed
    feedback = parse_message(message)

    # THEN it still gives its feedback (the mail timestamp stands in for the event's)
    expected = EXPECTED[name]
    assert isinstance(expected, Parsed)
    assert [f.recipient for f in feedback] == list(expected.recipients)
    assert all(f.kind is expected.kind for f in feedback)
    if optional == "timestamp_of_event":
        assert {f.occurred_at for f in feedback} == {at(message["mail"]["timestamp"].replace("Z", "+00:00"))}


def test_a_bounce_without_feedback_id_gets_a_derived_one():
    # GIVEN a bounce whose feedbackId is missing
    message = sample("awsdocs_eventpublishing_Bounce.json")
    del message["bounce"]["feedbackId"]

    # WHEN it is parsed twice
    # THEN the id is a stable sha256
    first, second = only(parse_message(message)), only(parse_message(copy.deepcopy(message)))
    assert HEX64.fullmatch(first.feedback_id)
    assert first.feedback_id == second.feedback_id


@pytest.mark.parametrize("bounce_type", ["Undetermined", None, "", "SomethingNew", 7])
def test_a_bounce_of_unclear_type_is_recorded_but_not_suppressed(bounce_type: Any):
    # GIVEN a bounce whose type SES could not determine (or that is missing or unknown)
    message = sample("awsdocs_eventpublishing_Bounce.json")
    if bounce_type is None:
        del message["bounce"]["bounceType"]
    else:
        message["bounce"]["bounceType"] = bounce_type

    # WHEN it is parsed
    f = only(parse_message(message))

    # THEN it is an undetermined bounce: recorded, not suppressed
    assert f.kind is FeedbackKind.BOUNCED_UNDETERMINED
    assert (activity_type(f), suppresses(f), unsubscribes(f)) == ("email_bounced", False, False)


def test_bounce_types_are_read_case_insensitively():
    # GIVEN a permanent bounce spelled in lower case
    message = sample("awsdocs_eventpublishing_Bounce.json")
    message["bounce"]["bounceType"] = "permanent"

    # WHEN / THEN it still suppresses
    assert suppresses(only(parse_message(message)))


@pytest.mark.parametrize("event_type", ["Rendering Failure", "RenderingFailure", "renderingfailure"])
def test_rendering_failure_is_recognized_however_spaced(event_type: str):
    # GIVEN the rendering failure event type as SNS (with a space) or EventBridge might spell it
    message = sample("awsdocs_eventpublishing_RenderingFailure.json")
    message["eventType"] = event_type

    # WHEN / THEN it is a rendering failure
    assert only(parse_message(message)).kind is FeedbackKind.RENDERING_FAILED


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2017-08-09T22:00:19.652Z", "2017-08-09T22:00:19.652+00:00"),
        ("2017-08-10T00:00:19.652+02:00", "2017-08-09T22:00:19.652+00:00"),
        ("2017-08-09T22:00:19", "2017-08-09T22:00:19+00:00"),  # no zone: SES means UTC
        ("not a time", "2017-08-09T21:59:49.927+00:00"),  # unusable: the mail's timestamp
        (1502316019, "2017-08-09T21:59:49.927+00:00"),
    ],
)
def test_timestamps_become_utc(timestamp: Any, expected: str):
    # GIVEN an open with its own timestamp in some spelling
    message = sample("awsdocs_eventpublishing_Open.json")
    message["open"]["timestamp"] = timestamp

    # WHEN it is parsed
    # THEN occurred_at is that instant in UTC, or the mail's when the event's is unusable
    occurred_at = only(parse_message(message)).occurred_at
    assert occurred_at == at(expected)
    assert occurred_at.tzinfo is UTC


def test_tags_and_leadflow_headers_are_kept():
    # GIVEN a click on an email leadflow sent, with its tags and X-Leadflow headers
    message = sample("awsdocs_eventpublishing_Click.json")
    message["mail"]["tags"].update(
        {"lead_id": ["L-123"], "sequence": ["welcome"], "step": ["2"], "campaign": "spring", "odd": [1, "x"]}
    )
    message["mail"]["headers"] += [
        {"name": "X-Leadflow-Lead", "value": "L-123"},
        {"name": "x-leadflow-message", "value": "M-9"},
        {"name": "X-Other", "value": "ignored"},
        {"name": "X-Leadflow-Empty", "value": ""},
        {"name": None, "value": "x"},
        "not a header",
    ]

    # WHEN it is parsed
    f = only(parse_message(message))

    # THEN the tags leadflow set are readable, lone strings become lists, non-strings are dropped
    assert (f.tag("lead_id"), f.tag("sequence"), f.tag("step"), f.tag("campaign")) == (
        "L-123",
        "welcome",
        "2",
        "spring",
    )
    assert f.tags["odd"] == ["x"]
    assert f.tag("missing") is None
    # AND only the X-Leadflow headers are kept, by lowercase name
    assert f.headers == {"x-leadflow-lead": "L-123", "x-leadflow-message": "M-9"}


def test_feedback_of_one_message_does_not_share_mutable_state():
    # GIVEN the feedback for two recipients of one message
    first, second = parse_message(sample("awsdocs_identitynotification_bounce_without_dsn.json"))

    # WHEN a consumer mutates one feedback's tags
    first.tags["x"] = ["y"]

    # THEN the other is untouched
    assert "x" not in second.tags


# --- decisions ------------------------------------------------------------------------------------

DECISIONS = {
    # one Send and one Delivery per email: they confirm it in the mail log, no activity (issue 17)
    FeedbackKind.DELIVERED: (None, False, False),
    # leadflow's pixel and click redirect count opens and clicks: SES's would count them twice
    FeedbackKind.OPENED: (None, False, False),
    FeedbackKind.CLICKED: (None, False, False),
    FeedbackKind.BOUNCED_PERMANENT: ("email_bounced", True, False),
    FeedbackKind.BOUNCED_TRANSIENT: ("email_bounced", False, False),
    FeedbackKind.BOUNCED_UNDETERMINED: ("email_bounced", False, False),
    FeedbackKind.COMPLAINED: ("email_complained", True, True),
    FeedbackKind.REJECTED: ("email_rejected", False, False),
    FeedbackKind.RENDERING_FAILED: ("email_rendering_failed", False, False),
    FeedbackKind.DELIVERY_DELAYED: ("email_delivery_delayed", False, False),
    FeedbackKind.SENT: (None, False, False),
    FeedbackKind.SUBSCRIPTION_CHANGED: (None, False, False),
}


@pytest.mark.parametrize("kind", list(FeedbackKind))
def test_each_kind_maps_to_its_activity_and_decisions(kind: FeedbackKind):
    # GIVEN feedback of one kind
    f = SesFeedback(kind, "a@example.com", "m", "id", datetime(2026, 1, 1, tzinfo=UTC), "event")

    # WHEN the decisions are asked
    # THEN they are the product's
    assert (activity_type(f), suppresses(f), unsubscribes(f)) == DECISIONS[kind]


@pytest.mark.parametrize(("unsubscribe_all", "expected"), [(True, True), (False, False), ("yes", False)])
def test_a_subscription_change_unsubscribes_only_when_it_opts_out_of_everything(unsubscribe_all: Any, expected: bool):
    # GIVEN a Subscription event with some new preferences
    message = sample("awsdocs_eventpublishing_Subscription.json")
    message["subscription"]["newTopicPreferences"]["unsubscribeAll"] = unsubscribe_all

    # WHEN it is parsed
    f = only(parse_message(message))

    # THEN it unsubscribes only for a real opt-out of everything, and never suppresses
    assert (unsubscribes(f), suppresses(f)) == (expected, False)


# --- diagnostics ----------------------------------------------------------------------------------


def test_a_huge_diagnostic_is_clipped_and_other_addresses_are_masked():
    # GIVEN a bounce whose diagnostic is huge, names other people and holds control characters
    message = sample("awsdocs_eventpublishing_Bounce.json")
    message["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = (
        "smtp; 550 <Recipient@Example.com> forwarded to boss@example.org\x00\r\n failed; " + "x" * 1_000_000
    )

    # WHEN it is parsed
    diagnostic = only(parse_message(message)).diagnostic

    # THEN it is short, keeps the recipient, masks the other address and has no control characters
    assert diagnostic is not None
    assert len(diagnostic) <= DIAGNOSTIC_LIMIT
    assert diagnostic.startswith("smtp; 550 <Recipient@Example.com> forwarded to [address]")
    assert "boss" not in diagnostic
    assert not any(c in diagnostic for c in "\x00\r\n")


def test_a_bounce_without_diagnostic_code_reports_its_status():
    # GIVEN a bounced recipient with a status but no diagnostic code
    message = sample("awsdocs_eventpublishing_Bounce.json")
    del message["bounce"]["bouncedRecipients"][0]["diagnosticCode"]

    # WHEN / THEN the status stands in
    assert only(parse_message(message)).diagnostic == "5.1.1"


def test_long_links_and_user_agents_are_clipped():
    # GIVEN a click with an absurdly long link and user agent
    message = sample("awsdocs_eventpublishing_Click.json")
    message["click"]["link"] = "https://example.com/?" + "a" * 100_000
    message["click"]["userAgent"] = "UA" * 100_000

    # WHEN it is parsed
    f = only(parse_message(message))

    # THEN both are bounded
    assert f.link is not None and len(f.link) <= 4096
    assert f.user_agent is not None and len(f.user_agent) <= 1024


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "{",
        "null",
        "42",
        '"a string"',
        "[]",
        "Hello from SNS!",
        "NaN",
        "[" * 100_000 + "]" * 100_000,
        '{"eventType": "Open"',
    ],
    ids=["empty", "blank", "truncated", "null", "number", "string", "list", "prose", "nan", "deep", "cut"],
)
def test_malformed_json_is_malformed_feedback(text: str):
    # GIVEN text that is not an SES JSON object
    # WHEN it is parsed, as a message or inside an SNS record
    # THEN it is malformed feedback, never another exception
    with pytest.raises(MalformedFeedback):
        parse_message(text)
    with pytest.raises(MalformedFeedback):
        parse_sns_record(sns_record(text))


def test_bytes_that_are_not_utf8_are_malformed():
    with pytest.raises(MalformedFeedback):
        parse_message(b"\xff\xfe{")


def test_an_sns_message_that_is_a_json_list_is_malformed():
    # GIVEN an SNS record whose Message is a JSON list of SES records
    record = sns_record([sample("awsdocs_eventpublishing_Open.json")])

    # WHEN / THEN it is malformed (SES publishes one record per message)
    with pytest.raises(MalformedFeedback):
        parse_sns_record(record)


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"Sns": None},
        {"Sns": {}},
        {"Sns": {"Message": None}},
        {"Sns": {"Message": {"eventType": "Open"}}},
        [],
        None,
    ],
    ids=["empty", "sns-null", "no-message", "message-null", "message-object", "list", "none"],
)
def test_a_record_that_is_not_an_sns_record_is_malformed(record: Any):
    with pytest.raises(MalformedFeedback):
        parse_sns_record(record)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda m: m.pop("mail"),
        lambda m: m.update(mail="a string"),
        lambda m: m["mail"].pop("messageId"),
        lambda m: m["mail"].update(messageId="  "),
        lambda m: m["mail"].update(messageId=["x"]),
        lambda m: m["mail"].update(messageId="x" * 5000),
        lambda m: m.pop("bounce"),
        lambda m: m.update(bounce=[]),
        lambda m: m["bounce"].pop("bouncedRecipients"),
        lambda m: m["bounce"].update(bouncedRecipients=[]),
        lambda m: m["bounce"].update(bouncedRecipients={"emailAddress": "a@example.com"}),
        lambda m: m["bounce"].update(bouncedRecipients=[{"emailAddress": "nobody"}]),
        lambda m: (m["bounce"].pop("timestamp"), m["mail"].pop("timestamp")),
        lambda m: (m["bounce"].update(timestamp="soon"), m["mail"].update(timestamp=None)),
        lambda m: m.pop("eventType"),
        lambda m: m.update(eventType=None),
        lambda m: m.update(eventType="Teleport"),
        lambda m: m.update(eventType=""),
        lambda m: m.update(eventType="Open for evil@example.com"),
    ],
    ids=[
        "no-mail",
        "mail-string",
        "no-message-id",
        "blank-message-id",
        "list-message-id",
        "huge-message-id",
        "no-bounce",
        "bounce-list",
        "no-recipient-list",
        "empty-recipients",
        "recipients-object",
        "no-usable-recipient",
        "no-timestamp",
        "bad-timestamps",
        "no-type",
        "null-type",
        "unknown-type",
        "empty-type",
        "type-with-address",
    ],
)
def test_a_message_missing_what_it_needs_is_malformed(break_it: Any):
    # GIVEN a bounce with an essential part broken
    message = sample("awsdocs_eventpublishing_Bounce.json")
    break_it(message)

    # WHEN / THEN it is malformed (DLQ), with a reason that names no address
    with pytest.raises(MalformedFeedback) as refused:
        parse_message(message)
    assert "@" not in refused.value.reason


@pytest.mark.parametrize("name", ["awsdocs_eventpublishing_Open.json", "awsdocs_eventpublishing_Send.json"])
def test_an_event_without_destination_is_malformed(name: str):
    message = sample(name)
    message["mail"]["destination"] = []
    with pytest.raises(MalformedFeedback):
        parse_message(message)


def test_an_open_without_its_open_object_still_counts():
    # GIVEN an open whose details object is missing (recipients come from mail.destination)
    message = sample("awsdocs_eventpublishing_Open.json")
    del message["open"]

    # WHEN it is parsed
    f = only(parse_message(message))

    # THEN it is an open at the mail's time, with nothing more known
    assert (f.kind, f.occurred_at, f.ip, f.user_agent) == (
        FeedbackKind.OPENED,
        at("2017-08-09T21:59:49.927+00:00"),
        None,
        None,
    )


@pytest.mark.parametrize(
    "message",
    [
        {"Type": "UnsubscribeConfirmation", "Message": "You have chosen to deactivate subscription"},
        {"notificationType": "Received", "mail": {}, "receipt": {}},
        {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have successfully subscribed"},
        {"mail": {"messageId": "x"}, "receipt": {"recipients": ["a@example.com"]}},
    ],
    ids=["unsubscribe-confirmation", "inbound-received", "ses-topic-subscribed", "inbound-receipt-action"],
)
def test_messages_that_are_not_about_a_sent_email_are_not_feedback(message: dict[str, Any]):
    with pytest.raises(NotFeedback):
        parse_message(message)


def test_an_inbound_notification_inside_an_sns_body_is_not_feedback():
    # GIVEN an SNS body whose message is an inbound receipt notification
    body = sample("mozilla-relay_hard_bounce_sns_body.json")
    inbound = sample("aws-lambda-go_ses-sns-event_inbound-receipt.json")["Records"][0]["ses"]
    body["Message"] = json.dumps({"notificationType": "Received", **inbound})

    # WHEN / THEN it is not feedback
    with pytest.raises(NotFeedback):
        parse_message(body)


@pytest.mark.parametrize("sns_type", ["Notificationx", None, 3])
def test_an_sns_body_of_unknown_type_is_malformed(sns_type: Any):
    body = sample("mozilla-relay_hard_bounce_sns_body.json")
    body["Type"] = sns_type
    with pytest.raises(MalformedFeedback):
        parse_message(body)


def test_a_lambda_event_batch_is_not_one_message():
    # GIVEN a whole Lambda SNS event handed to parse_message
    # WHEN / THEN it is refused: the handler parses record by record
    with pytest.raises(MalformedFeedback):
        parse_message(sample("DERIVED_sns-lambda_ses-open.json"))


# --- EventBridge ----------------------------------------------------------------------------------


def test_an_eventbridge_detail_without_event_type_is_typed_by_its_detail_type():
    # GIVEN an SES click on EventBridge whose detail lacks eventType
    event = sample("DERIVED_eventbridge_ses-click.json")
    del event["detail"]["eventType"]

    # WHEN / THEN the detail-type tells what it is
    assert only(parse_eventbridge(event)).kind is FeedbackKind.CLICKED


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"detail-type": "Sending Status Disabled"}, NotFeedback),
        ({"detail-type": "Advisor Recommendation Status Open"}, NotFeedback),
        ({"source": "aws.ec2"}, MalformedFeedback),
        ({"detail": "not an object"}, MalformedFeedback),
        ({"detail": {}}, MalformedFeedback),
    ],
)
def test_eventbridge_events_that_are_not_ses_sending_events_are_refused(
    change: dict[str, Any], error: type[LeadflowError]
):
    # GIVEN an EventBridge event that is another SES event or not from SES at all
    event = {**sample("DERIVED_eventbridge_ses-open.json"), **change}

    # WHEN / THEN it is refused as the right outcome
    with pytest.raises(error):
        parse_eventbridge(event)


def test_an_unknown_detail_type_without_event_type_is_malformed():
    event = sample("DERIVED_eventbridge_ses-open.json")
    del event["detail"]["eventType"]
    event["detail-type"] = "Email Teleported"
    with pytest.raises(MalformedFeedback):
        parse_eventbridge(event)
