"""``leadflow report verify``'s recomputation, pure: every report from its raw records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from leadflow.domain.form_reports import form_posted
from leadflow.domain.reporting import Fact, lead_created, merge_increments
from leadflow.domain.sales_reports import handoff_created, handoff_outcome
from leadflow.domain.sequence_reports import (
    SendRecord,
    email_engaged,
    nurture_counted,
    sequence_key,
)
from leadflow.services.report_drift import report_of
from leadflow.services.report_verify import erased_contribution, verify_reports

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SEND = SendRecord("m-1", "welcome", 3, "nudge", "b", AT.isoformat())


def engagement(kind: str, lead_id: str, activity: dict[str, Any], sends: list[SendRecord]) -> list[Fact]:
    """The reporting function's placement, as the mail log would give it (here: one known email)."""
    send = next((s for s in sends if s.message_id == activity["message_id"]), None)
    return [email_engaged(kind, str(activity["message_id"]), send, AT)] if send else []


def counters(*facts: Fact) -> list[dict[str, Any]]:
    """The counter items the reporting function would have written for these facts."""
    return [{"PK": pk, "SK": sk, **fields} for (pk, sk), fields in merge_increments(facts).items()]


def markers(*facts: Fact) -> list[dict[str, Any]]:
    return [{"PK": f.marker[0], "SK": f.marker[1], **f.marker_item} for f in facts]


def verify(lead_items: list[dict[str, Any]], report_items: list[dict[str, Any]]) -> Any:
    return verify_reports(lead_items, report_items, lambda _: "lead", engagement, AT)


def test_counter_items_belong_to_their_reports():
    assert report_of(("FUNNEL#events#source", "2026-12-01#x")) == "funnel"
    assert report_of(("FUNNEL#cohort#ref", "2026-12-01#tom")) == "reps"
    assert report_of(("SEQRPT#welcome", "2026-12-01#3#nudge#-")) == "sequences"
    assert report_of(("SEQRPT#welcome", "2026-12-01#3#nudge#b")) == "ab"
    assert report_of(("PAGES", "2026-12-01#example.com/")) == "forms"
    assert report_of(("FORMPAGES#demo", "2026-12-01#example.com/")) == "forms"
    assert report_of(("HANDOFFS#team", "2026-12-01#inbound")) == "handoffs"
    assert report_of(("MSGRPT#m-1", "unique_opens")) is None


def test_sequences_from_the_counted_events_and_each_email_once_where_its_marker_placed_it():
    # GIVEN a nurture.counted event and two opens of one email, counted once (marker at send day, variant b)
    counted = nurture_counted(
        "e-1", AT, [["welcome", 3, "nudge", "b", "sent", 2], ["welcome", 3, "nudge", "-", "enrolled", 2]]
    )
    opened = email_engaged("email_opened", "m-1", SEND, AT)
    activities = [
        {
            "PK": "LEAD#L1",
            "SK": f"ACT#{AT.isoformat()}#{i}",
            "type": "email_opened",
            "message_id": "m-1",
            "at": AT.isoformat(),
        }
        for i in range(2)
    ]
    mail = {
        "PK": "LEAD#L1",
        "SK": "MAIL",
        "sends": [{"at": SEND.at, "m": "m-1", "s": "welcome", "p": "nudge", "variant": "b", "v": 3}],
    }
    stored = counters(counted, opened) + markers(counted, opened)
    # WHEN verified THEN both reports are clean
    result = verify([mail, *activities], stored)
    assert result.clean, result.summary()
    assert result.checked == {"sequences": 1, "ab": 1}
    # AND a counter written twice is drift in its report, at its key and field
    doubled = [dict(i, sent=i["sent"] * 2) if i["SK"].endswith("#b") else i for i in stored]
    drift = verify([mail, *activities], doubled).drift
    assert [(d.report, d.field, d.stored, d.expected) for d in drift] == [("ab", "sent", 4, 2)]
    # AND an open whose marker is missing was never counted: uncounted, and drift
    result = verify([mail, *activities], counters(counted) + markers(counted))
    assert result.uncounted == {"ab": 1}
    assert [(d.field, d.stored, d.expected) for d in result.drift] == [("unique_opens", 0, 1)]


def test_an_engagement_counted_before_the_mail_log_dropped_its_email_stays_where_it_was_counted():
    # GIVEN an open counted on the send's day and version; the mail log no longer lists the email
    opened = email_engaged("email_opened", "m-1", SEND, AT)
    activity = {"PK": "LEAD#L1", "SK": "ACT#x", "type": "email_opened", "message_id": "m-1", "at": AT.isoformat()}

    def guessed(kind: str, lead_id: str, act: dict[str, Any], sends: list[SendRecord]) -> list[Fact]:
        return [
            email_engaged(kind, "m-1", SendRecord("m-1", "welcome", 0, "nudge", "b", "2026-12-09T00:00:00+00:00"), AT)
        ]

    # WHEN verified with today's placement (version 0, another day) THEN the marker's placement holds
    assert verify_reports([activity], counters(opened) + markers(opened), lambda _: "lead", guessed, AT).clean


def test_forms_from_the_captures_and_the_page_views_once_each():
    page = "https://www.example.com/signup?utm_source=x"
    profile = {"PK": "LEAD#L1", "SK": "PROFILE", "lead_id": "L1", "created_at": AT.isoformat(), "first_touch": {}}
    first = {"PK": "LEAD#L1", "SK": "ACT#1", "activity_id": "a1", "type": "form_submitted", "at": AT.isoformat(),
             "form_id": "demo", "touch": {"form_id": "demo", "page_url": page}}  # fmt: skip
    later = {**first, "SK": "ACT#2", "activity_id": "a2", "at": "2026-12-02T09:00:00+00:00"}
    view = {
        "PK": "VISITOR#v",
        "SK": "ACT#3",
        "activity_id": "a3",
        "type": "page_viewed",
        "at": AT.isoformat(),
        "url": page,
    }
    copied = {**view, "PK": "LEAD#L1"}  # the visitor's view copied to the lead when it signed up
    posts = [
        form_posted("e1", AT, "demo", first["touch"], True),
        form_posted("e2", datetime.fromisoformat(later["at"]), "demo", later["touch"], False),
    ]
    stored = counters(*posts)
    stored[0]["views"] = 1  # PAGES 2026-12-01: the tracking function's ADD
    created = [i for i in verify([profile, first, later, copied, view], stored).drift if i.report == "forms"]
    assert created == []
    stored[0]["views"] = 2
    (drift,) = [d for d in verify([profile, first, later, copied, view], stored).drift if d.report == "forms"]
    assert (drift.key, drift.field, drift.stored, drift.expected) == (
        ("PAGES", "2026-12-01#www.example.com/signup"),
        "views",
        2,
        1,
    )


def test_handoffs_from_the_records_and_the_first_feedback_of_each_outcome():
    record = {"PK": "LEAD#L1", "SK": "HANDOFF#h1", "handoff_id": "h1", "created_at": AT.isoformat(),
              "owner": {"id": "ana", "team": "inbound"}}  # fmt: skip
    accepted_at = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
    feedback = [
        {"PK": "LEAD#L1", "SK": f"ACT#{i}", "type": "sales_feedback", "handoff_id": "h1", "outcome": "accepted",
         "at": accepted_at.isoformat(), "recorded_at": f"2026-12-01T13:0{i}:00+00:00"}
        for i in range(2)
    ]  # fmt: skip
    created = handoff_created("h1", AT, "ana", "inbound")
    outcome = handoff_outcome("h1", "accepted", None, accepted_at, created.marker_item)
    assert outcome is not None
    stored = counters(created, outcome) + markers(created, outcome)
    assert verify([record, *feedback], stored).clean
    # a hand-off record whose creation the reports never counted
    result = verify([record, {**record, "SK": "HANDOFF#h2", "handoff_id": "h2"}, *feedback], stored)
    assert result.uncounted == {"handoffs": 1}
    assert {(d.key[0], d.field, d.stored, d.expected) for d in result.drift} == {
        ("HANDOFFS#owner", "assigned", 1, 2),
        ("HANDOFFS#team", "assigned", 1, 2),
    }


def test_delivered_counts_stored_before_delivery_events_were_dropped_are_kept_as_they_are():
    # GIVEN a mail log of a week's sends, and counters holding delivered counts from SES's Delivery
    # events (no longer published: a report now works delivered out from sent and bounces)
    mail = {"PK": "LEAD#L1", "SK": "MAIL", "sends": [{"at": SEND.at, "m": "m-1", "s": "welcome", "p": "nudge",
                                                       "variant": "b", "v": 3, "c": True, "d": True}]}  # fmt: skip
    key = sequence_key("welcome", "2026-12-01", 3, "nudge", "b")
    old = {"PK": "SEQRPT#welcome", "SK": "2026-11-20#3#nudge#b", "delivered": 5}
    stored = [{"PK": key[0], "SK": key[1], "delivered": 1}, old]
    # THEN nothing recounts them and none is drift; the mail logs' week is named
    result = verify([mail], stored)
    assert result.clean, result.summary()
    assert result.summary()["mail_logs_since"] == "2026-11-25"


def test_an_erased_persons_counts_are_kept_beside_the_counters_and_verify_stays_clean():
    # GIVEN a lead with a capture, an opened email and a hand-off, all counted
    profile = {"PK": "LEAD#L1", "SK": "PROFILE", "lead_id": "L1", "created_at": AT.isoformat(),
               "first_touch": {"utm_source": "linkedin", "form_id": "demo"}, "stage": "lead"}  # fmt: skip
    capture = {"PK": "LEAD#L1", "SK": "ACT#1", "activity_id": "a1", "type": "form_submitted", "at": AT.isoformat(),
               "form_id": "demo", "touch": profile["first_touch"]}  # fmt: skip
    opened = {"PK": "LEAD#L1", "SK": "ACT#2", "type": "email_opened", "message_id": "m-1", "at": AT.isoformat()}
    mail = {"PK": "LEAD#L1", "SK": "MAIL", "sends": [{"at": SEND.at, "m": "m-1", "s": "welcome", "p": "nudge",
                                                       "variant": "b", "v": 3}]}  # fmt: skip
    record = {
        "PK": "LEAD#L1",
        "SK": "HANDOFF#h1",
        "handoff_id": "h1",
        "created_at": AT.isoformat(),
        "owner": {"id": "ana"},
    }
    facts = [
        *lead_created("L1", AT, profile["first_touch"], "lead"),
        form_posted("e1", AT, "demo", capture["touch"], True),
        email_engaged("email_opened", "m-1", SEND, AT),
        handoff_created("h1", AT, "ana", None),
    ]
    person = [profile, capture, opened, mail, record]
    person_markers = markers(*(f for f in facts if not f.marker[0].startswith("EVT#")))
    stored = counters(*facts) + markers(*facts)
    assert verify(person, stored).clean
    # WHEN the person is erased: their records and markers go, what they counted is kept
    kept = erased_contribution(person, person_markers, lambda _: "lead")
    left = [i for i in stored if i not in person_markers]
    left += [{"PK": "ERASED#" + pk, "SK": sk, **fields} for (pk, sk), fields in kept.items()]
    # THEN verify, with none of the person's records, finds every counter as stored
    result = verify([], left)
    assert result.clean, result.summary()
    assert set(result.checked) == {"funnel", "reps", "ab", "forms", "handoffs"}
    # AND without what was kept, the erased person's counts would be drift
    assert verify([], [i for i in left if not i["PK"].startswith("ERASED#")]).drift


def test_records_not_as_leadflow_writes_them_count_nothing_and_stop_nothing():
    odd = [
        {"PK": "LEAD#L1", "SK": "HANDOFF#h1"},
        {"PK": "LEAD#L1", "SK": "ACT#1", "type": "form_submitted", "touch": {}},
    ]
    markers = [{"PK": "LEADRPT#L1", "SK": "REACHED#mql", "at": AT.isoformat()}]
    assert erased_contribution(odd, markers, lambda _: "lead") == {}


def test_a_partition_whose_items_came_apart_is_refused():
    items = [{"PK": "LEAD#L1", "SK": "ACT#1"}, {"PK": "VISITOR#v", "SK": "ACT#2"}, {"PK": "LEAD#L1", "SK": "PROFILE"}]
    with pytest.raises(ValueError, match="came apart"):
        verify(items, [])


def test_emails_in_the_mail_logs_not_counted_as_sent_are_noted_not_drift():
    mail = {"PK": "LEAD#L1", "SK": "MAIL", "sends": [{"at": SEND.at, "m": "m-1", "s": "welcome", "p": "nudge",
                                                       "variant": "b", "v": 3}]}  # fmt: skip
    key = sequence_key("welcome", "2026-12-01", 3, "nudge", "b")
    counted = nurture_counted("e-1", AT, [["welcome", 3, "nudge", "b", "sent", 1]])
    assert verify([mail], counters(counted) + markers(counted)).sends_unlike_sent == []
    rejected = {**mail, "sends": [*mail["sends"], {**mail["sends"][0], "m": "m-2"}]}  # SES refused it: logged, not sent
    result = verify([rejected], counters(counted) + markers(counted))
    assert result.clean
    assert result.sends_unlike_sent == [(key, 2, 1)]
