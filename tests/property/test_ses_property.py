"""Whatever arrives on the SES events topic, parsing returns feedback or a named refusal.

Anything else (KeyError, TypeError, AttributeError...) would fail the whole SNS delivery
instead of sending one message to the DLQ.

Seeds: every JSON file of /work/shared/external/ses/ (provenance in its README.md), mutated.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from tests.conftest import EXTERNAL, load_json

pytestmark = pytest.mark.unit

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REFUSALS = (MalformedFeedback, NotFeedback)


def inner_messages(seed: dict[str, Any]) -> list[Any]:
    """The SES JSON that SNS bodies and Lambda records carry as strings."""
    texts = [seed.get("Message")] + [record.get("Sns", {}).get("Message") for record in seed.get("Records", [])]
    found = []
    for text in texts:
        if isinstance(text, str) and text.startswith("{"):
            found.append(json.loads(text))
    return found


SAMPLES = [load_json(path) for path in sorted((EXTERNAL / "ses").glob("*.json"))]
SEEDS = SAMPLES + [message for sample in SAMPLES for message in inner_messages(sample)]
KEYS = [
    "eventType", "notificationType", "mail", "messageId", "destination", "timestamp", "bounce", "bounceType",
    "bouncedRecipients", "emailAddress", "complaint", "complainedRecipients", "delivery", "recipients", "open",
    "click", "link", "linkTags", "tags", "headers", "name", "value", "Type", "Message", "Sns", "Records",
    "detail", "detail-type", "source", "receipt", "feedbackId", "diagnosticCode", "deliveryDelay",
    "delayedRecipients", "subscription", "newTopicPreferences", "unsubscribeAll", "failure",
]  # fmt: skip
SCALARS = [
    "Bounce", "Complaint", "Delivery", "Open", "Click", "Send", "Reject", "Rendering Failure", "DeliveryDelay",
    "Subscription", "Received", "Permanent", "Transient", "Undetermined", "Notification", "SubscriptionConfirmation",
    "aws.ses", "Email Opened", "a@example.com", "A@Example.COM", "2017-08-09T22:00:19.652Z",
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00", "X-Leadflow-Lead", "\ud800", "\x00", "", "@", "<>",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(SCALARS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), children, max_size=5),
    ),
    max_leaves=25,
)


def assert_contract(call: Any, *args: Any) -> None:
    """The call returns a list of well-formed feedback or raises a refusal; nothing else."""
    try:
        result = call(*args)
    except REFUSALS as refusal:
        assert isinstance(refusal.reason, str)
        return
    assert isinstance(result, list)
    assert result, "feedback is never an empty list: no usable recipient is a refusal"
    for feedback in result:
        assert isinstance(feedback, SesFeedback)
        assert isinstance(feedback.kind, FeedbackKind)
        assert feedback.recipient.count("@") == 1
        assert feedback.recipient == feedback.recipient.casefold()
        feedback.recipient.encode("utf-8")  # no lone surrogates reach storage
        assert feedback.message_id
        assert feedback.feedback_id
        assert feedback.occurred_at.tzinfo is UTC
        assert feedback.source_format in ("notification", "event")
        assert all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in feedback.tags.values())
        activity = activity_type(feedback)
        assert activity is None or activity.startswith("email_")
        assert isinstance(suppresses(feedback), bool)
        assert isinstance(unsubscribes(feedback), bool)
        hash(feedback)
    assert len({f.feedback_id for f in result}) == len(result)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated_seeds(draw: st.DrawFn) -> Any:
    """A shared sample with a few values replaced, deleted or given unknown siblings."""
    value = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        candidates = paths(value)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "sibling"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(json_values)
    return value


@PROPERTY
@given(json_values)
def test_any_json_value_is_feedback_or_a_refusal(value: Any):
    assert_contract(parse_message, value if isinstance(value, dict) else json.dumps(value))


@PROPERTY
@given(st.one_of(st.text(), st.binary()))
def test_any_text_or_bytes_is_feedback_or_a_refusal(text: str | bytes):
    assert_contract(parse_message, text)


@pytest.mark.skipif(not SEEDS, reason=f"third-party material not found: {EXTERNAL / 'ses'}")
@PROPERTY
@given(mutated_seeds())
def test_mutated_samples_are_feedback_or_a_refusal(value: Any):
    # as decoded, as text, and wrapped in the envelopes that carry them
    assert_contract(parse_message, value)
    assert_contract(parse_message, json.dumps(value))
    assert_contract(
        parse_sns_record, {"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": json.dumps(value)}}
    )
    assert_contract(parse_message, {"Type": "Notification", "Message": json.dumps(value)})
    assert_contract(parse_eventbridge, {"source": "aws.ses", "detail-type": "Email Opened", "detail": value})


@PROPERTY
@given(json_values)
def test_any_record_or_event_is_feedback_or_a_refusal(value: Any):
    assert_contract(parse_sns_record, value)
    assert_contract(parse_eventbridge, value)
