"""HandoffService with in-memory ports: starting once, assignment under capacity and hours,
delivery decisions (retry schedule, Retry-After, 410, final, give-up), the SLA sweep."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadflow.domain.definitions.handoff import Assignment, Destination, HandoffConfig, Owner, Team, WorkingHours
from leadflow.domain.errors import InvalidWorkspace, LeadNotFound, StorageUnavailable
from leadflow.domain.events import DomainEvent
from leadflow.domain.handoff import HandoffDisabled
from leadflow.domain.handoff_delivery import Outcome
from leadflow.ports.handoff import Delivery
from leadflow.services.handoff import HandoffService

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # Wednesday noon UTC: 21:00 in Tokyo


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at


class Store:
    def __init__(self) -> None:
        self.profiles: dict[str, dict[str, Any]] = {}
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.sla: dict[tuple[str, str], datetime | None] = {}
        self.tickets: dict[str, int] = {}
        self.load: dict[str, int] = {}
        self.disabled: dict[str, dict[str, Any]] = {}
        self.refs: list[tuple[str, str, str, str]] = []
        self.events: list[DomainEvent] = []

    def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.profiles.get(lead_id))

    def get_handoff(self, lead_id: str, handoff_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.records.get((lead_id, handoff_id)))

    def lead_handoffs(self, lead_id: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for (lead, _), r in sorted(self.records.items(), reverse=True) if lead == lead_id]

    def create_handoff(self, record: dict[str, Any], previous: str | None, sla_due: Any, events: list[Any]) -> bool:
        profile = self.profiles[record["lead_id"]]
        if profile.get("handoff_id") != previous:
            return False
        profile["handoff_id"] = record["handoff_id"]
        self.records[(record["lead_id"], record["handoff_id"])] = copy.deepcopy(record)
        self.sla[(record["lead_id"], record["handoff_id"])] = sla_due
        self.events += events
        return True

    def save_handoff(self, record: dict[str, Any], sla_due: Any, events: Any = None, stage: str | None = None) -> bool:
        key = (record["lead_id"], record["handoff_id"])
        if self.records[key]["rev"] != record["rev"]:
            return False
        record["rev"] += 1
        self.records[key] = copy.deepcopy(record)
        self.sla[key] = sla_due
        self.events += events or []
        if stage is not None:
            self.profiles[record["lead_id"]]["stage"] = stage
        return True

    def sla_due(self, now: datetime, limit: int = 500) -> list[tuple[str, str]]:
        return [k for k, due in self.sla.items() if due is not None and due <= now]

    def next_ticket(self, team: str) -> int:
        self.tickets[team] = self.tickets.get(team, 0) + 1
        return self.tickets[team]

    def reserve_owner(self, owner_id: str, capacity: int) -> bool:
        if self.load.get(owner_id, 0) >= capacity:
            return False
        self.load[owner_id] = self.load.get(owner_id, 0) + 1
        return True

    def release_owner(self, owner_id: str) -> None:
        self.load[owner_id] = max(self.load.get(owner_id, 0) - 1, 0)

    def disabled_destinations(self) -> dict[str, dict[str, Any]]:
        return dict(self.disabled)

    def disable_destination(self, name: str, at: datetime, reason: str) -> None:
        self.disabled[name] = {"at": at.isoformat(), "reason": reason}

    def put_crm_ref(self, provider: str, external_id: str, lead_id: str, handoff_id: str) -> None:
        self.refs.append((provider, external_id, lead_id, handoff_id))

    def recent_activities(self, lead_id: str, limit: int) -> list[dict[str, Any]]:
        return [{"type": "page_viewed", "at": NOW.isoformat(), "url": "/pricing"}][:limit]


class Explainer:
    def explain_lead(self, lead_id: str, top: int = 5) -> dict[str, Any]:
        return {"stage": "mql", "mql_model": "smb", "models": {"smb": {"score": 50.0, "reasons": []}}, "grade": {}}


class Queue:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        self.messages += messages


class Sender:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.sent: list[Delivery] = []

    def send(self, delivery: Delivery, now: datetime) -> Outcome:
        self.sent.append(delivery)
        return self.outcomes.pop(0) if self.outcomes else Outcome("delivered", 200)


class Notifier:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, str]] = []

    def notify(self, notice: Any, message_id: str) -> None:
        self.sent.append((notice, message_id))


class Workspace:
    def __init__(self, config: HandoffConfig) -> None:
        self.handoff = config
        self.root = Path()


CONFIG = HandoffConfig(
    destinations=(Destination(name="hook", type="webhook", url="https://crm.example.com/h"),),
    assignment=Assignment(
        owners=(
            Owner("ana", "Ana", "ana@example.com", capacity=1),
            Owner("ben", "Ben", "ben@example.com", capacity=1),
            Owner("kai", "Kai", "kai@example.com", working_hours=WorkingHours("Asia/Tokyo")),
        ),
        teams=(Team("inbound", ("ana", "ben")), Team("apac", ("kai",))),
        default_team="inbound",
    ),
)


NOTIFIER = Notifier()


def service(config: HandoffConfig = CONFIG) -> tuple[HandoffService, Store, Queue, Sender, Clock]:
    store, queue, sender, clock = Store(), Queue(), Sender(), Clock()
    NOTIFIER.sent.clear()
    for i in range(6):
        store.profiles[f"L{i}"] = {"lead_id": f"L{i}", "email": f"l{i}@example.com", "stage": "mql"}
    built = HandoffService(
        Workspace(config),  # type: ignore[arg-type]
        store,
        Explainer(),
        queue,
        sender,
        clock,
        jitter=lambda: 1.0,
        notifier=NOTIFIER,
    )
    return built, store, queue, sender, clock


def test_capacity_fills_the_team_then_the_fallback_queue_takes_the_rest() -> None:
    svc, store, _, _, _ = service()
    owners = [svc.start(f"L{i}", "manual", "", "api:t")[0].get("owner", {}).get("id") for i in range(3)]
    assert owners == ["ana", "ben", None]
    assert store.records[("L2", store.profiles["L2"]["handoff_id"])]["queue"] == "unassigned"


class FailingExplainer:
    """The scores' read failing as ``error`` (a table down, or no scoring.yaml) while set."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def explain_lead(self, lead_id: str, top: int = 5) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return Explainer().explain_lead(lead_id, top)


def test_a_handoff_whose_scores_cannot_be_read_is_not_made_without_them() -> None:
    # GIVEN the table failing when the hand-off reads the lead's scores
    svc, store, queue, _, _ = service()
    explainer = FailingExplainer(StorageUnavailable("ProvisionedThroughputExceededException"))
    svc.explainer = explainer
    # WHEN the stage change arrives: the failure goes up (its event is delivered again), no
    # hand-off is made without the reasons, and no owner's capacity is taken
    event = {"detail-type": "lead.stage_changed", "detail": {"lead_id": "L0", "to": "mql", "event_id": "E1"}}
    with pytest.raises(StorageUnavailable):
        svc.on_event(event)
    assert store.records == {} and queue.messages == [] and not any(store.load.values())
    # AND the redelivery, the table back, hands the lead to the first owner with its scores
    explainer.error = None
    record = svc.on_event(event)
    assert record is not None and record["owner"]["id"] == "ana"
    assert record["payload"]["scores"]["smb"]["score"] == 50.0


def test_a_workspace_without_scoring_hands_off_without_scores() -> None:
    svc, _, _, _, _ = service()
    svc.explainer = FailingExplainer(InvalidWorkspace("scoring.yaml: no such file"))
    record, created = svc.start("L0", "manual", "", "api:t")
    assert created and record["owner"]["id"] == "ana"
    assert record["payload"]["scores"] == {}


def test_an_owner_out_of_working_hours_is_skipped() -> None:
    config = replace(CONFIG, assignment=replace(CONFIG.assignment, default_team="apac"))
    svc, _, _, _, clock = service(config)
    assert "owner" not in svc.start("L0", "manual", "", "api:t")[0]  # 21:00 in Tokyo: the queue
    clock.at = NOW.replace(hour=1)  # 10:00 in Tokyo
    assert svc.start("L1", "manual", "", "api:t")[0]["owner"]["id"] == "kai"


def test_one_open_handoff_per_lead_and_a_redelivered_event_requeues_only() -> None:
    svc, store, queue, _, _ = service()
    event = {"detail-type": "lead.stage_changed", "detail": {"lead_id": "L0", "to": "mql", "event_id": "E1"}}
    first = svc.on_event(event)
    again = svc.on_event(event)
    assert first is not None
    assert again is not None
    assert again["handoff_id"] == first["handoff_id"]
    assert len(store.records) == 1
    assert len(queue.messages) == 2  # re-queued for the redelivery; the lease makes the second a no-op
    assert svc.on_event({"detail-type": "lead.stage_changed", "detail": {"lead_id": "L1", "to": "sql"}}) is None


def test_unknown_lead_and_disabled_config_are_refused() -> None:
    svc, *_ = service()
    with pytest.raises(LeadNotFound):
        svc.start("nobody", "manual", "", "api:t")
    svc, *_ = service(replace(CONFIG, enabled=False))
    with pytest.raises(HandoffDisabled):
        svc.start("L0", "manual", "", "api:t")


def test_delivery_retries_on_the_schedule_honours_retry_after_then_delivers_once() -> None:
    svc, store, queue, sender, clock = service()
    record, _ = svc.start("L0", "manual", "", "api:t")
    message = queue.messages[0]
    sender.outcomes = [Outcome("retry", 500, "500"), Outcome("retry", 429, "429", retry_after_seconds=600)]
    first = svc.deliver(message)
    assert (first.action, first.delay_seconds) == ("retry", 10)
    assert svc.deliver(message).action == "retry"  # not due yet: no attempt
    assert len(sender.sent) == 1
    clock.at += timedelta(seconds=11)
    second = svc.deliver(message)
    assert (second.action, second.delay_seconds) == ("retry", 600)
    clock.at += timedelta(seconds=601)
    assert svc.deliver(message).action == "done"
    assert svc.deliver(message).action == "done"  # a duplicate message sends nothing
    assert len(sender.sent) == 3
    stored = store.records[("L0", record["handoff_id"])]
    assert stored["status"] == "delivered"
    assert stored["destinations"]["hook"]["attempts"] == 3


def test_410_disables_and_dead_letters_and_later_handoffs_are_not_sent() -> None:
    svc, store, queue, sender, _ = service()
    svc.start("L0", "manual", "", "api:t")
    sender.outcomes = [Outcome("disable", 410, "gone")]
    assert svc.deliver(queue.messages[0]).action == "dead_letter"
    assert "hook" in store.disabled
    svc.start("L1", "manual", "", "api:t")
    assert svc.deliver(queue.messages[1]).action == "dead_letter"
    assert len(sender.sent) == 1


def test_retries_give_up_after_the_window_and_a_crm_id_is_kept() -> None:
    svc, store, queue, sender, clock = service()
    svc.start("L0", "manual", "", "api:t")
    svc.start("L1", "manual", "", "api:t")
    sender.outcomes = [Outcome("retry", 503, "503")]
    svc.deliver(queue.messages[0])
    clock.at += timedelta(hours=27)
    sender.outcomes = [Outcome("retry", 503, "503"), Outcome("delivered", 201, external_id="00Q1")]
    assert svc.deliver(queue.messages[0]).action == "dead_letter"
    assert svc.deliver(queue.messages[1]).action == "done"
    assert store.refs == []  # a webhook is no CRM: no reference
    crm = replace(
        CONFIG, destinations=(Destination(name="hook", type="salesforce", url="https://x.my.salesforce.com"),)
    )
    svc, store, queue, sender, _ = service(crm)
    record, _ = svc.start("L0", "manual", "", "api:t")
    sender.outcomes = [Outcome("delivered", 201, external_id="00Q1")]
    svc.deliver(queue.messages[0])
    assert store.refs == [("salesforce", "00Q1", "L0", record["handoff_id"])]


def test_sla_sweep_reminds_escalates_recycles_and_frees_the_owner() -> None:
    svc, store, _, _, clock = service()
    record, _ = svc.start("L0", "manual", "", "api:t")
    assert store.load["ana"] == 1
    clock.at += timedelta(hours=4)
    assert svc.sweep().reminded == 1
    clock.at += timedelta(hours=4)
    assert svc.sweep().escalated == 1
    clock.at += timedelta(days=14)
    assert svc.sweep().recycled == 1
    stored = store.records[("L0", record["handoff_id"])]
    assert stored["status"] == "recycled"
    assert store.profiles["L0"]["stage"] == "recycled"
    assert store.load["ana"] == 0
    assert {e.detail_type for e in store.events} >= {"handoff.reminder", "handoff.escalated", "lead.stage_changed"}
    assert svc.sweep().checked == 0  # closed: no longer watched
    # AND the owner got the reminder by email; the team has no escalation owner, so nobody else
    [(notice, message_id)] = NOTIFIER.sent
    assert notice.to == "ana@example.com"
    assert notice.subject.startswith("Reminder: please accept the hand-off")
    assert message_id == f"sla-{record['handoff_id']}-remind"


def test_a_lead_recycled_by_decay_closes_its_open_handoff_and_is_never_escalated() -> None:
    # GIVEN an open hand-off whose lead's score then decayed: scoring recycled the lead (issue 13, defect 12)
    svc, store, _, _, clock = service()
    record, _ = svc.start("L0", "manual", "", "api:t")
    NOTIFIER.sent.clear()
    store.profiles["L0"]["stage"] = "recycled"
    # WHEN the SLA sweep comes, past the escalation time
    clock.at += timedelta(hours=9)
    result = svc.sweep()
    # THEN the hand-off is recycled, its owner freed, nobody reminded or escalated to, and it is no longer watched
    assert (result.reminded, result.escalated, result.recycled) == (0, 0, 1)
    stored = store.records[("L0", record["handoff_id"])]
    assert stored["status"] == "recycled"
    assert stored["history"][-1]["by"] == "scoring"
    assert store.load["ana"] == 0
    assert NOTIFIER.sent == []
    assert "handoff.escalated" not in {e.detail_type for e in store.events}
    clock.at += timedelta(days=20)
    assert svc.sweep().checked == 0
