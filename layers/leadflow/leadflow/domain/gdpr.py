"""GDPR rules: what a person's items are, what an export holds, who is due for retention.

Pure: no boto3, no clock reads. The store hands over raw items; these functions sort them
by kind, shape the export (Art. 15 / 20), and decide retention. Addresses and lead ids that
must outlive an erasure (the suppression list, the audit trail) are kept only as keyed
hashes (HMAC-SHA256 with the workspace's suppression key): nobody without the key can
tell whose they are, and the key holder can only check an address they already know.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

EXPORT_TYPE = "leadflow.personal_data_export"
ERASED_TYPE = "lead.erased"
SCHEMA_VERSION = 1

# The sort-key prefixes of a lead's partition (``LEAD#<id>``), in the order an export lists them.
LEAD_ITEM_KINDS: tuple[tuple[str, str], ...] = (
    ("PROFILE", "profile"),
    ("ACT#", "activities"),
    ("CONSENT#", "consent_records"),
    ("LEDGER#", "score_ledger"),
    ("ENR#", "enrollments"),
    ("MAIL", "mail_log"),
    ("HANDOFF#", "handoffs"),
    ("EVENT#", "outbox_events"),
    ("MEMBER#", "memberships"),
)
# Items elsewhere in the table that belong to the person.
OTHER_KINDS = (
    "email_guard",
    "visitor_links",
    "visitor_activities",
    "idempotency_records",
    "crm_references",
    "crm_events_seen",
)
INTERNAL = (
    "PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "GSI4PK", "GSI4SK", "GSI5PK", "GSI5SK",
    "expires_at",
)  # fmt: skip
PROFILE_FIELDS = ("email", "first_name", "last_name", "company", "title", "phone", "country")
ERASING_INDEX_PK = "GDPR#ERASING"
AUDIT_INDEX_PK = "AUDIT#"
"""GSI3 partition of profiles whose erasure has started (the daily sweep finishes them)."""
MONTHS_KEPT_AT_MOST = 1200


def address_hash(key: bytes, email_key: str) -> str:
    """The suppression-list key of an address: HMAC-SHA256 (hex) of its case-folded form."""
    return hmac.new(key, b"address:" + email_key.casefold().encode("utf-8"), hashlib.sha256).hexdigest()


class AddressHasher:
    """``address_hash`` with the workspace's key, fetched on first use and kept (the key never
    changes: the list's hashes would no longer match).

    The senders hash every address of a batch: the keyed state (the key's two padded blocks and
    the ``address:`` prefix) is computed once and copied per address, half the work of a fresh
    ``hmac.new`` (tested equal to ``address_hash``)."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self.key = key
        self._base: hmac.HMAC | None = None

    def __call__(self, email_key: str) -> str:
        if self._base is None:
            self._base = hmac.new(self.key(), b"address:", hashlib.sha256)
        digest = self._base.copy()
        digest.update(email_key.casefold().encode("utf-8"))
        return digest.hexdigest()


def subject_ref(key: bytes, lead_id: str) -> str:
    """The audit trail's reference to a lead: HMAC-SHA256 (hex) of its id, never the id itself."""
    return hmac.new(key, b"lead:" + lead_id.encode("utf-8"), hashlib.sha256).hexdigest()


def is_hashed(suppression_key: str) -> bool:
    """Whether a ``SUPPRESS#`` key is already a hash (64 hex digits) rather than a plain address."""
    return len(suppression_key) == 64 and all(c in "0123456789abcdef" for c in suppression_key)


def lead_item_kind(sort_key: str) -> str:
    """The kind of an item of a lead's partition, by its sort key (``other`` when unknown)."""
    for prefix, kind in LEAD_ITEM_KINDS:
        if sort_key == prefix or (prefix.endswith("#") and sort_key.startswith(prefix)):
            return kind
    return "other"


def public(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item without its table keys, index keys and TTL."""
    return {k: v for k, v in item.items() if k not in INTERNAL}


@dataclass
class PersonItems:
    """Everything the table holds about one person, as read by the store."""

    lead_id: str
    lead: list[dict[str, Any]] = field(default_factory=list)
    """The items of the lead's partition (``LEAD#<id>``)."""
    guard: dict[str, Any] | None = None
    visitor_links: list[dict[str, Any]] = field(default_factory=list)
    visitor_activities: list[dict[str, Any]] = field(default_factory=list)
    idempotency: list[dict[str, Any]] = field(default_factory=list)
    crm_refs: list[dict[str, Any]] = field(default_factory=list)
    crm_events: list[dict[str, Any]] = field(default_factory=list)
    """``CRMEVT`` records: sales feedback events applied to the lead (kept 30 days against replays)."""
    spam_records: list[dict[str, Any]] = field(default_factory=list)
    """Posts of the address kept as spam (honeypot, too fast: an autofilling person too), 30 days."""
    report_markers: list[dict[str, Any]] = field(default_factory=list)
    """The ReportsTable's ``LEADRPT#<id>`` markers (counted once: created, each stage reached)."""
    change_audit: list[dict[str, Any]] = field(default_factory=list)
    """Entries of the change audit log (``AUDIT#CHANGES``) whose target is the lead: exported; on
    erasure kept (who changed what, when) with the target replaced by the lead's keyed hash."""

    def by_kind(self) -> dict[str, list[dict[str, Any]]]:
        kinds: dict[str, list[dict[str, Any]]] = {kind: [] for _, kind in LEAD_ITEM_KINDS}
        for item in self.lead:
            kinds.setdefault(lead_item_kind(str(item["SK"])), []).append(item)
        return kinds

    def item_keys(self) -> list[dict[str, str]]:
        """The table keys of every item to erase (the suppression entry is kept, hashed)."""
        items: Iterable[dict[str, Any]] = (
            *self.lead,
            *([self.guard] if self.guard else []),
            *self.visitor_links,
            *self.visitor_activities,
            *self.idempotency,
            *self.crm_refs,
            *self.crm_events,
            *self.spam_records,
        )
        return [{"PK": str(i["PK"]), "SK": str(i["SK"])} for i in items]

    def counts(self) -> dict[str, int]:
        """How many items of each kind (the answer of an export or an erasure: counts, never data)."""
        counts = {kind: len(items) for kind, items in self.by_kind().items() if items}
        others = {
            "email_guard": 1 if self.guard else 0,
            "visitor_links": len(self.visitor_links),
            "visitor_activities": len(self.visitor_activities),
            "idempotency_records": len(self.idempotency),
            "crm_references": len(self.crm_refs),
            "crm_events_seen": len(self.crm_events),
            "spam_records": len(self.spam_records),
            "report_markers": len(self.report_markers),
            "change_audit": len(self.change_audit),
        }
        counts.update({k: v for k, v in others.items() if v})
        return counts


def redacted_target(target: str, lead_id: str, subject: str) -> str:
    """A change audit entry's target with the erased lead's id replaced by its keyed hash."""
    return target.replace(lead_id, subject)


def profile_of(items: PersonItems) -> dict[str, Any] | None:
    return next((i for i in items.lead if i.get("SK") == "PROFILE"), None)


def visitor_ids(items: PersonItems) -> list[str]:
    """The anonymous visitor ids stitched to the lead: its links, and the ids its activities name."""
    found = {str(i["PK"]).removeprefix("VISITOR#") for i in items.visitor_links}
    for item in items.lead:
        if str(item.get("SK", "")).startswith("ACT#"):
            visitor = item.get("visitor_id") or (item.get("fields") or {}).get("_lf_vid")
            if isinstance(visitor, list):
                visitor = visitor[0] if visitor else None
            if visitor:
                found.add(str(visitor))
    return sorted(found)


def idempotency_keys(items: PersonItems) -> list[str]:
    """The ``IDEM#`` keys the lead's form posts wrote (kept on each form activity since capture names them)."""
    return sorted(
        {str(i["idem_key"]) for i in items.lead if str(i.get("SK", "")).startswith("ACT#") and i.get("idem_key")}
    )


def crm_event_keys(items: PersonItems) -> list[str]:
    """The ``CRMEVT`` keys of the sales feedback applied to the lead (its ``sales_feedback`` activities)."""
    return sorted(
        {
            f"CRMEVT#{i['provider']}#{i['event_id']}"
            for i in items.lead
            if i.get("type") == "sales_feedback" and i.get("provider") and i.get("event_id")
        }
    )


def crm_ref_keys(handoffs: Iterable[Mapping[str, Any]], types: Mapping[str, str]) -> list[dict[str, str]]:
    """The CRM records the lead's hand-offs created (HubSpot contacts, Salesforce Leads): destination,
    provider (the destination's type, from ``types``) and record id, for each delivery that got one."""
    refs: dict[tuple[str, str], str] = {}
    for record in handoffs:
        for name, state in (record.get("destinations") or {}).items():
            external = (state or {}).get("external_id")
            if external:
                refs[(types.get(name, name), str(external))] = name
    return [
        {"destination": name, "provider": provider, "record_id": record}
        for (provider, record), name in sorted(refs.items())
    ]


def _emails_sent(
    lead_id: str, kinds: Mapping[str, list[dict[str, Any]]], subjects: Mapping[tuple[str, str, str], str]
) -> list[dict[str, Any]]:
    """Every email the lead was sent: from its enrollments, the ones its mail log holds, and the
    log's recent sends (one entry per message id, what each source knows merged)."""
    from leadflow.domain.nurture import message_id_for

    emails: dict[str, dict[str, Any]] = {}

    def add(message_id: str, entry: dict[str, Any]) -> None:
        known = emails.setdefault(message_id, {"message_id": message_id, "opened": False, "clicked": False})
        known.update({k: v for k, v in entry.items() if v not in (None, "", [], False)})

    for enrollment in kinds.get("enrollments", []):
        for email in enrollment.get("emails") or []:
            add(
                str(email["message_id"]),
                {
                    "sequence_id": enrollment.get("sequence_id"),
                    "step_id": email.get("step_id"),
                    "sent_at": email.get("sent_at"),
                    "opened": bool(email.get("opened")),
                    "clicked": bool(email.get("clicked")),
                    "link_tags": email.get("link_tags"),
                },
            )
    for log in kinds.get("mail_log", []):
        for sequence, held in (log.get("held") or {}).items():
            for email in held.get("em") or []:
                add(
                    message_id_for(lead_id, str(sequence), int(held["e"]), str(email["p"])),
                    {
                        "sequence_id": sequence,
                        "step_id": email["p"],
                        "sent_at": email.get("at"),
                        "opened": bool(email.get("o")),
                        "clicked": bool(email.get("c")),
                        "link_tags": email.get("t"),
                    },
                )
        for send in log.get("sends") or []:
            add(
                str(send["m"]),
                {
                    "sequence_id": send.get("s"),
                    "step_id": send.get("p"),
                    "sent_at": send.get("at"),
                    "variant": send.get("variant"),
                },
            )
    for entry in emails.values():
        sequence, step = str(entry.get("sequence_id")), str(entry.get("step_id"))
        subject = subjects.get((sequence, step, str(entry.get("variant") or ""))) or subjects.get((sequence, step, ""))
        if subject is not None:
            entry["subject"] = subject
    return sorted(emails.values(), key=lambda e: (str(e.get("sent_at") or ""), e["message_id"]))


def export_document(
    items: PersonItems,
    suppression: Mapping[str, Any] | None,
    subjects: Mapping[tuple[str, str, str], str],
    referrer: Mapping[str, Any] | None,
    exported_at: datetime,
) -> dict[str, Any]:
    """Everything held about one person as one machine-readable document.

    Args:
        items: the person's items (every store: lead partition, guard, visitor links and
            activities, idempotency records, CRM references).
        suppression: the hashed suppression entry of their address, if any (reason, time).
        subjects: the subject lines of the emails sent, by (sequence, step, variant).
        referrer: the share code's owner the lead came through, if any.
        exported_at: when.

    Returns:
        The export (``type`` ``leadflow.personal_data_export``, ``schema_version`` 1); every item
        read is in it, under its kind, without table keys.
    """
    kinds = items.by_kind()
    profile = public(profile_of(items) or {})
    handoffs = [public(h) for h in kinds.get("handoffs", [])]
    activities = [public(a) for a in kinds.get("activities", [])]
    return {
        "type": EXPORT_TYPE,
        "schema_version": SCHEMA_VERSION,
        "exported_at": exported_at.isoformat(),
        "lead_id": items.lead_id,
        "profile": {k: profile[k] for k in PROFILE_FIELDS if profile.get(k) not in (None, "")},
        "custom_fields": {k.removeprefix("cf_"): v for k, v in profile.items() if k.startswith("cf_")},
        "lead_record": profile,
        "attribution": {
            "first_touch": profile.get("first_touch") or {},
            "last_touch": profile.get("last_touch") or {},
            "referred_by": (
                {"code": profile.get("referred_by"), **dict(referrer or {})} if profile.get("referred_by") else None
            ),
        },
        "stage": profile.get("stage"),
        "grade": {"grade": profile.get("grade"), "points": profile.get("grade_points")},
        "scores": profile.get("scores") or {},
        "consent": {k.removeprefix("consent_"): v for k, v in profile.items() if k.startswith("consent_")},
        "consent_history": [public(c) for c in kinds.get("consent_records", [])],
        "activities": activities,
        "score_ledger": [public(e) for e in kinds.get("score_ledger", [])],
        "enrollments": [public(e) for e in kinds.get("enrollments", [])],
        "mail_log": [public(m) for m in kinds.get("mail_log", [])],
        "emails_sent": _emails_sent(items.lead_id, kinds, subjects),
        "handoffs": handoffs,
        "crm_feedback": [a for a in activities if a.get("type") == "sales_feedback"],
        "crm_references": [public(r) for r in items.crm_refs],
        "crm_events_seen": [public(e) for e in items.crm_events],
        "spam_records": [public(r) for r in items.spam_records],
        "report_markers": [public(m) for m in items.report_markers],
        "change_audit": [public(e) for e in items.change_audit],
        "suppression": (
            {"suppressed": True, "reason": suppression.get("reason"), "at": suppression.get("at")}
            if suppression
            else {"suppressed": False}
        ),
        "visitor_ids": visitor_ids(items),
        "visitor_links": [public(v) for v in items.visitor_links],
        "visitor_activities": [public(a) for a in items.visitor_activities],
        "email_guard": public(items.guard) if items.guard else None,
        "idempotency_records": [public(i) for i in items.idempotency],
        "pending_events": [public(e) for e in kinds.get("outbox_events", [])],
        "memberships": [public(m) for m in kinds.get("memberships", [])],
        "other_records": [public(i) for i in kinds.get("other", [])],
        "counts": items.counts(),
    }


def report_ids(items: PersonItems) -> tuple[list[str], list[str]]:
    """The hand-off ids and email ids (leadflow's and SES's message ids) the reports may hold markers of."""
    kinds = items.by_kind()
    handoffs = sorted({str(h["handoff_id"]) for h in kinds["handoffs"] if h.get("handoff_id")})
    messages = {e["message_id"] for e in _emails_sent(items.lead_id, kinds, {})}
    messages |= {str(a["message_id"]) for a in kinds["activities"] if a.get("message_id")}
    return handoffs, sorted(messages)


def erased_notice(
    lead_id: str, erasure_id: str, handoff_ids: list[str], records: list[dict[str, str]], at: datetime
) -> dict[str, Any]:
    """The ``lead.erased`` webhook payload: ids only (the receiver deletes what it holds under them)."""
    return {
        "type": ERASED_TYPE,
        "schema_version": SCHEMA_VERSION,
        "erasure_id": erasure_id,
        "lead_id": lead_id,
        "handoff_ids": handoff_ids,
        "crm_records": records,
        "erased_at": at.isoformat(),
    }


def spam_partitions(form_ids: Iterable[str], now: datetime, days: int) -> list[str]:
    """The ``SPAM#<form>#<day>`` partitions that can still hold records (the last ``days`` days)."""
    from datetime import timedelta

    return [f"SPAM#{form}#{(now - timedelta(days=back)):%Y-%m-%d}" for form in form_ids for back in range(days + 1)]


def posted_by(record: Mapping[str, Any], email_key: str) -> bool:
    """Whether a spam record's posted fields hold this address (any field, any case)."""
    for values in (record.get("fields") or {}).values():
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str) and value.strip().casefold() == email_key:
                return True
    return False


def month_back(month: str, count: int = 1) -> str:
    """``yyyy-mm`` ``count`` months before ``month``."""
    year, number = int(month[:4]), int(month[5:7])
    total = year * 12 + number - 1 - count
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def retention_cutoff(now: datetime, months: int) -> datetime:
    """The instant ``months`` calendar months before ``now`` (the day clamped to the month's end)."""
    import calendar

    target = month_back(f"{now:%Y-%m}", months)
    year, month = int(target[:4]), int(target[5:7])
    day = min(now.day, calendar.monthrange(year, month)[1])
    return now.replace(year=year, month=month, day=day)


def last_seen(profile: Mapping[str, Any], last_activity_at: str | None) -> str:
    """The lead's last sign of life: its newest activity, or else its profile's last change."""
    candidates = [str(v) for v in (last_activity_at, profile.get("updated_at"), profile.get("created_at")) if v]
    return max(candidates) if candidates else ""


def audit_item(subject: str, record: dict[str, Any], at: datetime, audit_id: str) -> dict[str, Any]:
    """An audit record's item: under its subject's hash, and listed by month in GSI2 (``AUDIT#<yyyy-mm>``)."""
    return {
        "PK": f"{AUDIT_INDEX_PK}{subject}",
        "SK": f"{at.isoformat()}#{record['action']}#{audit_id}",
        "GSI2PK": f"{AUDIT_INDEX_PK}{at:%Y-%m}",
        "GSI2SK": f"{at.isoformat()}#{audit_id}",
        "audit_id": audit_id,
        "subject": subject,
        "at": at.isoformat(),
        **record,
    }
