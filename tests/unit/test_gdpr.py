"""GDPR domain rules without AWS: keyed hashes, item kinds, the export document, retention dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadflow.domain import gdpr
from leadflow.domain.definitions.retention import RetentionConfig
from leadflow.domain.gdpr import PersonItems
from leadflow.domain.nurture import message_id_for

pytestmark = pytest.mark.unit
KEY = b"k" * 32
NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def test_address_hashes_are_keyed_case_blind_and_never_the_address() -> None:
    # GIVEN an address in two spellings and two keys
    one = gdpr.address_hash(KEY, "Ada@Example.com")
    # THEN the hash is the same for any case, differs per key, is 64 hex digits, holds no address
    assert one == gdpr.address_hash(KEY, "ada@example.com")
    assert one != gdpr.address_hash(b"other-key", "ada@example.com")
    assert gdpr.is_hashed(one) and "@" not in one
    assert not gdpr.is_hashed("ada@example.com")
    # AND a lead id's reference is another hash (an address and an id never collide by design)
    assert gdpr.subject_ref(KEY, "ada@example.com") != one
    hasher = gdpr.AddressHasher(lambda: KEY)
    assert hasher("ADA@example.com") == one
    assert [hasher(a) for a in ("b@x.org", "ada@example.com")] == [gdpr.address_hash(KEY, "b@x.org"), one]


@pytest.mark.parametrize(
    ("sort_key", "kind"),
    [
        ("PROFILE", "profile"),
        ("ACT#2026-01-01T00:00:00+00:00#a1", "activities"),
        ("CONSENT#2026#a1", "consent_records"),
        ("LEDGER#2026#a1:smb:r1", "score_ledger"),
        ("ENR#welcome", "enrollments"),
        ("MAIL", "mail_log"),
        ("HANDOFF#h1", "handoffs"),
        ("EVENT#e1", "outbox_events"),
        ("SOMETHING", "other"),
        ("MAILBOX", "other"),
    ],
)
def test_every_item_of_a_lead_has_a_kind(sort_key: str, kind: str) -> None:
    assert gdpr.lead_item_kind(sort_key) == kind


def person() -> PersonItems:
    lead = "L1"
    sent = {"p": "discount", "at": "2026-11-02T10:00:00+00:00", "o": True}
    held = {"v": 1, "e": 1, "st": "wait", "in": "2026-11-01T00:00:00+00:00", "ss": "x", "em": [sent]}
    return PersonItems(
        lead_id=lead,
        lead=[
            {
                "PK": "LEAD#L1",
                "SK": "PROFILE",
                "lead_id": lead,
                "email": "ada@example.com",
                "first_name": "Ada",
                "cf_size": "11-50",
                "consent_marketing_email": {"granted": True},
                "GSI3PK": "STAGE#lead",
            },
            {
                "PK": "LEAD#L1",
                "SK": "ACT#2026-11-01#a1",
                "type": "form_submitted",
                "fields": {"_lf_vid": ["v-1"]},
                "idem_key": "IDEM#demo#abc",
            },
            {
                "PK": "LEAD#L1",
                "SK": "ACT#2026-11-03#a2",
                "type": "sales_feedback",
                "provider": "generic",
                "event_id": "ev1",
            },
            {
                "PK": "LEAD#L1",
                "SK": "ENR#welcome",
                "sequence_id": "welcome",
                "emails": [
                    {
                        "step_id": "welcome",
                        "message_id": "m_w",
                        "sent_at": "2026-11-01T00:00:01+00:00",
                        "opened": True,
                        "clicked": False,
                        "link_tags": [],
                    }
                ],
            },
            {
                "PK": "LEAD#L1",
                "SK": "MAIL",
                "held": {"push": held},
                "sends": [
                    {"m": "m_w", "s": "welcome", "p": "welcome", "at": "2026-11-01T00:00:01+00:00", "variant": None}
                ],
            },
            {
                "PK": "LEAD#L1",
                "SK": "HANDOFF#h1",
                "handoff_id": "h1",
                "destinations": {"crm": {"external_id": "501", "status": "delivered"}, "hook": {"status": "delivered"}},
            },
            {"PK": "LEAD#L1", "SK": "EVENT#e1", "detail": "{}"},
        ],
        guard={"PK": "EMAIL#ada@example.com", "SK": "EMAIL", "lead_id": lead},
        visitor_links=[{"PK": "VISITOR#v-1", "SK": "LINK", "lead_id": lead}],
    )


def test_the_persons_other_items_are_found_from_the_lead_partition() -> None:
    items = person()
    assert gdpr.visitor_ids(items) == ["v-1"]
    assert gdpr.idempotency_keys(items) == ["IDEM#demo#abc"]
    assert gdpr.crm_event_keys(items) == ["CRMEVT#generic#ev1"]
    handoffs = items.by_kind()["handoffs"]
    assert gdpr.crm_ref_keys(handoffs, {"crm": "hubspot", "hook": "webhook"}) == [
        {"destination": "crm", "provider": "hubspot", "record_id": "501"}
    ]
    # AND every item is erased but the suppression entry (kept, hashed, by the last step)
    assert len(items.item_keys()) == len(items.lead) + 2
    assert items.counts() == {
        "profile": 1,
        "activities": 2,
        "enrollments": 1,
        "mail_log": 1,
        "handoffs": 1,
        "outbox_events": 1,
        "email_guard": 1,
        "visitor_links": 1,
    }


def test_the_export_document_holds_each_item_and_the_emails_with_their_subjects() -> None:
    # GIVEN a person's items and the subject lines of the steps they were sent
    items = person()
    subjects = {("welcome", "welcome", ""): "Welcome, Ada", ("push", "discount", ""): "20% off"}
    # WHEN the export is built
    export = gdpr.export_document(items, {"reason": "erased", "at": "x"}, subjects, {"name": "Ana"}, NOW)
    # THEN profile and custom fields are split out, keys are gone, every item is there
    assert export["profile"] == {"email": "ada@example.com", "first_name": "Ada"}
    assert export["custom_fields"] == {"size": "11-50"}
    assert "PK" not in export["lead_record"] and "GSI3PK" not in export["lead_record"]
    assert export["consent"] == {"marketing_email": {"granted": True}}
    assert len(export["activities"]) == 2 and export["crm_feedback"][0]["event_id"] == "ev1"
    assert export["pending_events"] == [{"detail": "{}"}]
    assert export["suppression"] == {"suppressed": True, "reason": "erased", "at": "x"}
    assert export["visitor_ids"] == ["v-1"]
    # AND each email once: the enrollment's, the one the mail log holds (its id recomputed), with subjects
    emails = {e["message_id"]: e for e in export["emails_sent"]}
    assert set(emails) == {"m_w", message_id_for("L1", "push", 1, "discount")}
    assert emails["m_w"]["subject"] == "Welcome, Ada" and emails["m_w"]["opened"] is True
    held = emails[message_id_for("L1", "push", 1, "discount")]
    assert held["subject"] == "20% off" and held["opened"] is True and held["clicked"] is False
    assert export["counts"] == items.counts()


def test_the_erased_notice_carries_ids_only() -> None:
    notice = gdpr.erased_notice(
        "L1", "er_1", ["h1"], [{"destination": "crm", "provider": "hubspot", "record_id": "5"}], NOW
    )
    assert notice["type"] == "lead.erased" and notice["lead_id"] == "L1" and notice["handoff_ids"] == ["h1"]
    assert "@" not in str(notice)


@pytest.mark.parametrize(
    ("now", "months", "cutoff"),
    [
        (datetime(2026, 12, 4, tzinfo=UTC), 36, datetime(2023, 12, 4, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2028, 3, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 13, datetime(2024, 12, 15, tzinfo=UTC)),
    ],
)
def test_the_retention_cutoff_is_calendar_months_back(now: datetime, months: int, cutoff: datetime) -> None:
    assert gdpr.retention_cutoff(now, months) == cutoff


@given(st.integers(2000, 2100), st.integers(1, 12), st.integers(0, 600))
def test_month_back_is_the_month_count_months_earlier(year: int, month: int, count: int) -> None:
    back = gdpr.month_back(f"{year:04d}-{month:02d}", count)
    assert (int(back[:4]) * 12 + int(back[5:7])) == year * 12 + month - count
    assert len(back) == 7 and 1 <= int(back[5:7]) <= 12


def test_last_seen_is_the_newest_sign_of_life() -> None:
    profile = {"created_at": "2020-01-01T00:00:00+00:00", "updated_at": "2021-01-01T00:00:00+00:00"}
    assert gdpr.last_seen(profile, "2022-05-01T00:00:00+00:00") == "2022-05-01T00:00:00+00:00"
    assert gdpr.last_seen(profile, None) == "2021-01-01T00:00:00+00:00"


def test_retention_config_is_validated() -> None:
    assert RetentionConfig.model_validate(None) == RetentionConfig()
    assert RetentionConfig.model_validate({"enabled": True, "erase_inactive_after_months": 24}).enabled
    from pydantic import ValidationError

    for bad in ({"erase_inactive_after_months": 0}, {"enabled": "sometimes"}, {"keep_forever": True}):
        with pytest.raises(ValidationError):
            RetentionConfig.model_validate(bad)


def test_spam_records_of_an_address_are_found_in_their_days() -> None:
    # GIVEN two forms and a 2-day window
    partitions = gdpr.spam_partitions(["a", "b"], NOW, 2)
    # THEN every form's partition of today and the two days before is read
    assert partitions == [f"SPAM#{f}#2026-12-0{d}" for f in ("a", "b") for d in (4, 3, 2)]
    # AND a record is the person's when any posted field holds the address, in any case
    assert gdpr.posted_by({"fields": {"email": [" Ada@Example.com "]}}, "ada@example.com")
    assert gdpr.posted_by({"fields": {"e": "ada@example.com"}}, "ada@example.com")
    assert not gdpr.posted_by({"fields": {"email": ["bob@example.com"], "n": [3]}}, "ada@example.com")
    assert not gdpr.posted_by({}, "ada@example.com")
