"""A person's rights (GDPR Art. 15, 17, 20) and storage limitation: export, erasure, retention.

``export`` gathers everything the table holds about a lead into one document. ``erase``
deletes all of it in a resumable order: the erasure is first recorded on the profile (the
record a retry or the daily sweep finishes), the CRM destinations are told (``lead.erased``
webhooks through the hand-off queue), every other item goes in batches, and one last
transaction deletes the profile and the email guard, lists the address's keyed hash as
suppressed and writes the audit record. Until that transaction the lead can be found again
by id or address, and repeating the request carries on where the last one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadflow.config.workspace import Workspace
from leadflow.domain import gdpr
from leadflow.domain.emails import InvalidEmail, normalize_email
from leadflow.domain.errors import LeadNotFound
from leadflow.domain.gdpr import PersonItems
from leadflow.domain.handoff import CLOSED
from leadflow.domain.ids import new_id
from leadflow.ports.clock import Clock
from leadflow.ports.gdpr import GdprStore, NoticeQueue, ReportMarkers, SuppressionMigrationStore

logger = logging.getLogger("leadflow.gdpr")
SPAM_KEPT_DAYS = 30  # spam records' TTL (adapters.dynamo_capture.SPAM_TTL)


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: counts per kind, never the data."""

    lead_id: str
    status: str  # erased | already_erased
    erasure_id: str
    erased_at: str
    counts: dict[str, int]
    notified: list[str]
    """The webhook destinations told with a ``lead.erased`` event."""
    crm_records: list[dict[str, str]]
    """HubSpot / Salesforce records the hand-offs created: the operator deletes them there."""


@dataclass
class SweepResult:
    resumed: int = 0
    erased: int = 0
    checked: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class GdprService:
    def __init__(  # noqa: PLR0917 - the service's ports
        self,
        workspace: Workspace,
        store: GdprStore,
        key: Callable[[], bytes],
        clock: Clock,
        notices: NoticeQueue | None,
        reports: ReportMarkers | None = None,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.key = key
        self.clock = clock
        self.notices = notices
        self.reports = reports

    # ------------------------------------------------------------------ finding the person
    def lead_for_email(self, email: str) -> str:
        """The lead id of an address.

        Raises:
            LeadNotFound: no lead has it (or it is not an address).
        """
        try:
            email_key = normalize_email(email).key
        except InvalidEmail:
            raise LeadNotFound(email) from None
        lead_id = self.store.lead_id_for_email(email_key)
        if lead_id is None:
            raise LeadNotFound("(address)")
        return lead_id

    def _crm_refs(self, partition: list[dict[str, Any]]) -> list[dict[str, str]]:
        handoffs = [i for i in partition if str(i.get("SK", "")).startswith("HANDOFF#")]
        types = {d.name: d.type for d in self.workspace.handoff.destinations}
        return gdpr.crm_ref_keys(handoffs, types)

    def _person(self, lead_id: str, partition: list[dict[str, Any]], refs: list[dict[str, str]]) -> PersonItems:
        """The person's items in the lead table and, when wired, their markers in the reports table."""
        items = self.store.person(lead_id, partition, refs)
        profile = gdpr.profile_of(items)
        if profile and profile.get("email"):
            days = gdpr.spam_partitions(self.workspace.form_ids(), self.clock.now(), SPAM_KEPT_DAYS)
            items.spam_records = self.store.spam_of(days, str(profile["email"]).casefold())
        if self.reports is not None:
            items.report_markers = self.reports.markers(lead_id, *gdpr.report_ids(items))
        return items

    def _counted(self, items: PersonItems) -> dict[tuple[str, str], dict[str, int]]:
        """What the person's records added to the report counters (imported here: only an erasure needs it)."""
        from leadflow.services.report_verify import erased_contribution

        forms = {form_id: self.workspace.form(form_id).lifecycle_stage for form_id in self.workspace.form_ids()}
        records = [*items.lead, *items.visitor_activities]
        try:
            return erased_contribution(records, items.report_markers, lambda form_id: forms.get(form_id, "lead"))
        except (KeyError, TypeError, ValueError):  # a record not as leadflow writes it: never stop an erasure
            logger.exception("report counts of an erased lead not kept (report verify will show them as drift)")
            return {}

    def _audit(self, lead_id: str, action: str, requested_by: str, via: str, **facts: Any) -> dict[str, Any]:
        now = self.clock.now()
        record = {"action": action, "requested_by": requested_by, "via": via, **facts}
        return gdpr.audit_item(gdpr.subject_ref(self.key(), lead_id), record, now, new_id(now))

    def recent_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest exports and erasures of this month and the one before, newest first: who asked,
        when, through what, the counts; the person only as a keyed hash (``subject``)."""
        today = self.clock.now().date()
        last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        return self.store.recent_audit([today.strftime("%Y-%m"), last_month], limit)

    # ------------------------------------------------------------------ export (Art. 15 / 20)
    def export(self, lead_id: str, requested_by: str, via: str) -> dict[str, Any]:
        """Everything held about the lead, as one document (``domain.gdpr.export_document``); the
        export is recorded in the audit trail (who, when, counts).

        Raises:
            LeadNotFound: no such lead.
        """
        profile = self.store.get_lead(lead_id)
        if profile is None:
            raise LeadNotFound(lead_id)
        partition = self.store.lead_partition(lead_id)
        items = self._person(lead_id, partition, self._crm_refs(partition))
        address = str(profile.get("email") or "")
        suppression = self.store.suppression(gdpr.address_hash(self.key(), address)) if address else None
        code = profile.get("referred_by")
        referrer = self.workspace.referrers.get(str(code)) if code else None
        document = gdpr.export_document(
            items,
            suppression,
            self._subjects(items, profile),
            {"name": referrer.name, "kind": referrer.kind} if referrer else None,
            self.clock.now(),
        )
        self.store.put_audit(self._audit(lead_id, "export", requested_by, via, counts=document["counts"]))
        return document

    def _subjects(self, items: PersonItems, profile: dict[str, Any]) -> dict[tuple[str, str, str], str]:
        """The subject line of each (sequence, step, variant) the lead was sent, rendered with its fields."""
        from jinja2 import StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        from leadflow.domain.definitions.steps import EmailStep

        environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        lead = {k: v for k, v in profile.items() if not k.startswith(gdpr.INTERNAL)}
        lead.update({k.removeprefix("cf_"): v for k, v in profile.items() if k.startswith("cf_")})
        subjects: dict[tuple[str, str, str], str] = {}
        wanted = {
            str(i.get("sequence_id") or str(i["SK"]).removeprefix("ENR#")) for i in items.by_kind()["enrollments"]
        }
        for log in items.by_kind()["mail_log"]:
            wanted |= set((log.get("held") or {}).keys()) | {str(s.get("s")) for s in log.get("sends") or []}
        for sequence_id in wanted:
            sequence = self.workspace.sequences.get(sequence_id)
            for step in sequence.steps if sequence else ():
                if not isinstance(step, EmailStep):
                    continue
                lines = [("", step.subject)] + [(v.id, v.subject) for v in step.variants if v.subject]
                for variant, text in lines:
                    try:
                        rendered = environment.from_string(text).render(lead=lead)
                    except Exception:  # noqa: BLE001 - a subject that needs what the lead lacks: shown as written
                        rendered = text
                    subjects[(sequence_id, step.id, variant)] = " ".join(rendered.split())
        return subjects

    # ------------------------------------------------------------------ erasure (Art. 17)
    def erase(self, lead_id: str, requested_by: str, via: str) -> Erasure:
        """Erase the lead everywhere (resumable: a repeat finishes an interrupted one).

        Returns:
            What was erased (counts per kind); ``already_erased`` with the earlier erasure's
            counts when the lead is gone and the audit trail has its erasure.

        Raises:
            LeadNotFound: no such lead, and none was ever erased under this id.
        """
        now = self.clock.now()
        profile = self.store.get_lead(lead_id)
        if profile is None:
            return self._earlier_erasure(lead_id)
        partition = self.store.lead_partition(lead_id)
        refs = self._crm_refs(partition)
        items = self._person(lead_id, partition, refs)
        started = self._erasure_record(items, refs, requested_by, via, now)
        erasure = self.store.mark_erasing(lead_id, started)
        if erasure is None:  # erased meanwhile by another request
            return self._earlier_erasure(lead_id)
        notified = self._notify(lead_id, erasure)
        if not erasure.get("released"):
            for owner_id in erasure.get("open_owners") or []:
                self.store.release_owner(owner_id)
            self.store.note_erasure(lead_id, "released", True)
        if self.reports is not None:  # the reports keep the counts the records made (report verify)
            self.reports.keep_counts(str(erasure["erasure_id"]), self._counted(items))
        keys = [k for k in items.item_keys() if k["SK"] != "PROFILE" and not k["PK"].startswith("EMAIL#")]
        self.store.delete_keys(keys)
        self.store.redact_change_audit(items.change_audit, lead_id, gdpr.subject_ref(self.key(), lead_id))
        if self.reports is not None and items.report_markers:
            self.reports.delete([{"PK": str(m["PK"]), "SK": str(m["SK"])} for m in items.report_markers])
        counts = dict(erasure.get("counts") or {})
        for kind, count in items.counts().items():
            counts[kind] = max(counts.get(kind, 0), count)
        address = str(profile.get("email") or "")
        audit = self._audit(
            lead_id,
            "erase",
            str(erasure.get("requested_by") or requested_by),
            str(erasure.get("via") or via),
            erasure_id=erasure["erasure_id"],
            started_at=erasure["started_at"],
            counts=counts,
            crm_records=erasure.get("crm_records") or [],
            notified=notified,
        )
        guard = {"PK": str(items.guard["PK"]), "SK": "EMAIL"} if items.guard else None
        key = gdpr.address_hash(self.key(), normalize_email(address).key) if address else None
        if not self.store.finish_erasure(lead_id, guard, key, audit, now.isoformat()):
            return self._earlier_erasure(lead_id)
        logger.info("lead erased", extra={"erasure_id": erasure["erasure_id"], "items": sum(counts.values())})
        return Erasure(
            lead_id,
            "erased",
            erasure["erasure_id"],
            now.isoformat(),
            counts,
            notified,
            list(erasure.get("crm_records") or []),
        )

    @staticmethod
    def _erasure_record(
        items: PersonItems, refs: list[dict[str, str]], requested_by: str, via: str, now: datetime
    ) -> dict[str, Any]:
        """The erasure's record, written before anything is deleted: what a repeat needs to finish it
        (the CRM records to tell, the hand-offs' owners to release)."""
        handoffs = items.by_kind()["handoffs"]
        return {
            "erasure_id": "er_" + new_id(now),
            "started_at": now.isoformat(),
            "requested_by": requested_by,
            "via": via,
            "counts": items.counts(),
            "crm_records": refs,
            "handoff_ids": [str(h["handoff_id"]) for h in handoffs if h.get("handoff_id")],
            "open_owners": [
                str((h.get("owner") or {}).get("id"))
                for h in handoffs
                if (h.get("owner") or {}).get("id") and h.get("status") not in CLOSED
            ],
            "notified": [],
            "released": False,
        }

    def _notify(self, lead_id: str, erasure: dict[str, Any]) -> list[str]:
        """Queue one ``lead.erased`` webhook per enabled webhook destination (once per erasure)."""
        webhooks = [d.name for d in self.workspace.handoff.destinations if d.type == "webhook" and d.enabled]
        done = list(erasure.get("notified") or [])
        pending = [name for name in webhooks if name not in done]
        if not pending or self.notices is None or not erasure.get("handoff_ids"):
            return done
        notice = gdpr.erased_notice(
            lead_id,
            erasure["erasure_id"],
            list(erasure.get("handoff_ids") or []),
            list(erasure.get("crm_records") or []),
            datetime.fromisoformat(erasure["started_at"]),
        )
        self.notices.enqueue(
            [
                {"kind": "erased", "destination": name, "erasure_id": erasure["erasure_id"], "payload": notice}
                for name in pending
            ]
        )
        done += pending
        self.store.note_erasure(lead_id, "notified", done)
        return done

    def _earlier_erasure(self, lead_id: str) -> Erasure:
        earlier = [r for r in self.store.audit_of(gdpr.subject_ref(self.key(), lead_id)) if r.get("action") == "erase"]
        if not earlier:
            raise LeadNotFound(lead_id)
        # What arrived for the id after its erasure (a late SES notice) goes now.
        leftovers = self.store.lead_partition(lead_id)
        if leftovers:
            self.store.delete_keys([{"PK": str(i["PK"]), "SK": str(i["SK"])} for i in leftovers])
            logger.info("late items of an erased lead deleted", extra={"items": len(leftovers)})
        last = earlier[-1]
        return Erasure(
            lead_id,
            "already_erased",
            str(last.get("erasure_id", "")),
            str(last.get("at", "")),
            dict(last.get("counts") or {}),
            list(last.get("notified") or []),
            list(last.get("crm_records") or []),
        )

    # ------------------------------------------------------------------ the daily sweep
    def sweep(self, deadline: Callable[[], bool] = lambda: False) -> SweepResult:
        """Finish interrupted erasures, then (when ``retention.yaml`` enables it) erase the leads
        inactive for longer than the retention, oldest first, at most ``max_erasures_per_run``.
        ``deadline()`` true stops early (the rest is done on the next run)."""
        result = SweepResult()
        for lead_id in self.store.erasing_leads():
            if deadline():
                return result
            self._count(result, self.erase(lead_id, "system:retention", "resume"))
            result.resumed += 1
        retention = self.workspace.retention
        if not retention.enabled:
            return result
        now = self.clock.now()
        cutoff = gdpr.retention_cutoff(now, retention.erase_inactive_after_months).isoformat()
        month = cutoff[:7]
        for _ in range(gdpr.MONTHS_KEPT_AT_MOST):
            for created, lead_id in sorted(self.store.leads_created_in(month)):
                if result.erased >= retention.max_erasures_per_run or deadline():
                    return result
                if created >= cutoff:
                    continue
                result.checked += 1
                profile = self.store.get_lead(lead_id)
                if profile is None or gdpr.last_seen(profile, self.store.last_activity_at(lead_id)) >= cutoff:
                    continue
                self._count(result, self.erase(lead_id, "system:retention", "retention"))
            month = gdpr.month_back(month)
            if month < "2000-01":
                break
        return result

    def reapply_erasures(self, requested_by: str) -> list[Erasure]:
        """Erase again every lead the audit trail says was erased (after a restore from a backup
        taken before those erasures): each lead id is hashed as the audit records' subjects are."""
        erased = self.store.erased_subjects()
        if not erased:
            return []
        key = self.key()
        return [
            self.erase(lead_id, requested_by, "reapply")
            for lead_id in self.store.lead_ids()
            if gdpr.subject_ref(key, lead_id) in erased
        ]

    def _count(self, result: SweepResult, erasure: Erasure) -> None:
        if erasure.status == "erased":
            result.erased += 1
            for kind, count in erasure.counts.items():
                result.counts[kind] = result.counts.get(kind, 0) + count


@dataclass
class MigrationResult:
    hashed: int = 0
    already_hashed: int = 0
    changed_meanwhile: int = 0


def migrate_suppressions(
    store: SuppressionMigrationStore, key: Callable[[], bytes], progress: Callable[[int], None] | None = None
) -> MigrationResult:
    """Replace every suppression entry that still holds a plain address (written before the list
    was hashed) by the entry of its keyed hash, keeping its reason and first listing time.
    Idempotent: hashed entries are left alone, so a second run changes nothing."""
    result = MigrationResult()
    secret = key()
    for entry in store.suppression_entries():
        plain = str(entry["PK"]).removeprefix("SUPPRESS#")
        if gdpr.is_hashed(plain):
            result.already_hashed += 1
        elif store.rekey_suppression(entry, gdpr.address_hash(secret, plain)):
            result.hashed += 1
        else:
            result.changed_meanwhile += 1
        if progress is not None:
            progress(1)
    return result
