"""``NurtureService`` on the in-memory nurture store (``leadflow.adapters.memory``): the use cases
without AWS. Stepping a batch, triggers and engagement, actions, broadcasts, unsubscribe and
double opt-in, each checked by what the store holds and what was sent afterwards.

The same store rules are checked against DynamoDB in tests/integration/test_nurture_store.py;
here the service's own decisions are, fast and with the demo workspace."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadflow.adapters.memory import (
    FakeBroadcastRunner,
    FakeClock,
    FakeEmailSender,
    InMemoryDueNowQueue,
    InMemoryNurtureStore,
)
from leadflow.config.workspace import Workspace
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.gdpr import AddressHasher
from leadflow.domain.nurture import Enrollment
from leadflow.domain.nurture.mail_log import SEND_SETTLED, UNCERTAIN_MARK_WITHIN, MailLog
from leadflow.ports.messaging import SendRejected, SendThrottled, SendUncertain
from leadflow.services.nurture import NurtureService, TokenIssuer, broadcast_parts, slot_block
from tests.conftest import WORKSPACE

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, daytime in GB (no quiet hours)
HASH = AddressHasher(lambda: b"unit-suppression-key")  # the suppression list holds keyed hashes only
PUSH = "push-discount"
WELCOME = "welcome"
_workspace: list[Workspace] = []


def workspace() -> Workspace:
    """The demo workspace, loaded once for the module (its compiled templates are reused)."""
    if not _workspace:
        _workspace.append(Workspace(WORKSPACE))
    return _workspace[0]


def profile(lead_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "email": f"{lead_id.lower()}@example.com",
        "first_name": "Ada",
        "country": "GB",
        "stage": "lead",
        "consent_marketing_email": {"granted": True},
        **fields,
    }


@dataclass
class Nurture:
    service: NurtureService
    store: InMemoryNurtureStore
    sender: FakeEmailSender
    queue: InMemoryDueNowQueue
    clock: FakeClock

    def enrollment(self, lead_id: str, sequence_id: str = PUSH) -> Enrollment:
        found = self.service.enrollment(lead_id, sequence_id)
        assert found is not None
        return found[0]

    def step(self, *leads: str, sequence_id: str = PUSH) -> dict[str, int]:
        return dict(self.service.process([(lead, sequence_id) for lead in leads]).outcomes)


@pytest.fixture
def nurture() -> Nurture:
    return nurture_on(InMemoryNurtureStore([profile("L1"), profile("L2"), profile("L3")]))


def nurture_on(store: InMemoryNurtureStore) -> Nurture:
    clock = FakeClock(NOW)
    sender = FakeEmailSender()
    queue = InMemoryDueNowQueue()
    wall = [1_000_000.0]
    service = NurtureService(
        workspace=workspace(),
        store=store,
        sender=sender,
        tokens=TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30),
        due_now=queue,
        clock=clock,
        address_key=HASH,
        # The send rate's seconds pass when a worker waits for the next one (no real sleeping).
        wall=lambda: wall[0],
        sleep=lambda seconds: wall.__setitem__(0, wall[0] + seconds),
    )
    return Nurture(service, store, sender, queue, clock)


# ---------------------------------------------------------------------------- stepping a lead


def test_a_due_enrollment_sends_its_email_once_and_waits(nurture: Nurture) -> None:
    # GIVEN a lead enrolled in the push campaign (due now)
    assert nurture.service.enroll_lead("L1", PUSH) is not None
    assert nurture.queue.pushed == [("L1", PUSH)]
    # WHEN its step runs, twice (a redelivered batch)
    first = nurture.step("L1")
    second = nurture.step("L1")
    # THEN one email went out, claimed in the lead's mail log, and the enrollment waits for an open
    assert [(to, tags["step"]) for to, _, tags, _ in nurture.sender.sent] == [("l1@example.com", "discount")]
    assert first == {"waiting": 1} and second == {"not_due": 1}
    log = nurture.store.mail_log("L1")
    assert log.version == 1 and [s["p"] for s in log.sends] == ["discount"]
    enrollment = nurture.enrollment("L1")
    assert (enrollment.step_id, enrollment.due_at) == ("wait-discount", NOW + timedelta(days=7))
    # AND the email carries its unsubscribe headers
    email = nurture.sender.sent[0][3]
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_suppressed_address_gets_nothing_and_leaves_the_sequence(nurture: Nurture) -> None:
    # GIVEN a bounced address and an enrolled lead with it
    nurture.store.suppress(HASH("l2@example.com"), "bounced", NOW.isoformat())
    nurture.service.enroll_lead("L2", PUSH)
    # WHEN its step runs
    outcomes = nurture.step("L2")
    # THEN nothing is sent and the enrollment exits as suppressed
    assert nurture.sender.sent == [] and outcomes == {"exited": 1}
    assert nurture.enrollment("L2").exit_reason == "suppressed"


@pytest.mark.parametrize(
    ("reason", "consent_at", "mailed"),
    [
        ("erased", (NOW - timedelta(days=1)).isoformat(), True),  # consented again after the erasure
        ("erased", (NOW - timedelta(days=9)).isoformat(), False),  # the consent is older than the erasure
        ("bounced", (NOW - timedelta(days=1)).isoformat(), False),  # a bounce stays, consent or not
    ],
)
def test_an_erased_address_is_mailed_again_only_after_new_consent(
    nurture: Nurture, reason: str, consent_at: str, mailed: bool
) -> None:
    # GIVEN an address listed (erased or bounced) two days ago, and a lead of it with a marketing
    # consent given on a form (only a form's consent lifts an erasure's listing: not the API's, not an import's)
    nurture.store.suppress(HASH("l3@example.com"), reason, (NOW - timedelta(days=2)).isoformat())
    consent = {"granted": True, "at": consent_at, "form_id": "demo-signup"}
    nurture.store.profiles["L3"]["consent_marketing_email"] = consent
    nurture.service.enroll_lead("L3", PUSH)
    # WHEN its step runs
    nurture.step("L3")
    # THEN only a consent given after an erasure lifts the listing
    assert bool(nurture.sender.sent) is mailed
    assert (nurture.store.suppressed({HASH("l3@example.com")}) == set()) is mailed


def test_a_used_up_send_rate_leaves_the_rest_of_the_batch_due(nurture: Nurture) -> None:
    # GIVEN the account's send rate (14 a second) used up in every second to come
    for lead in ("L1", "L2"):
        nurture.service.enroll_lead(lead, PUSH)
    for second in range(1_000_000, 1_000_020):
        nurture.store.sent_slots[second] = 14
    # WHEN the batch runs
    outcomes = nurture.step("L1", "L2")
    # THEN nothing is sent, nothing is written, and both stay due for a later tick
    assert nurture.sender.sent == [] and outcomes == {"rate_limited": 1, "left_due": 1}
    assert all(nurture.enrollment(lead).step_id == "discount" for lead in ("L1", "L2"))


def test_a_throttled_send_gives_its_claim_back_and_is_tried_again_soon(nurture: Nurture) -> None:
    # GIVEN SES refusing for the send rate
    nurture.service.enroll_lead("L1", PUSH)
    nurture.sender.fail_with = SendThrottled("slow down")
    # WHEN the step runs, then again a minute later with SES answering
    assert nurture.step("L1") == {"throttled": 1}
    assert nurture.store.mail_log("L1").sends == ()
    nurture.sender.fail_with = None
    nurture.clock.current = NOW + timedelta(minutes=1)
    # THEN the second try sends it
    assert nurture.step("L1") == {"waiting": 1} and len(nurture.sender.sent) == 1


@pytest.mark.parametrize("event_first", [False, True], ids=["marked-then-confirmed", "confirmed-then-marked"])
def test_an_uncertain_send_that_ses_confirms_is_counted_as_sent_once(nurture: Nurture, event_first: bool) -> None:
    # GIVEN a send whose SendEmail failed ambiguously (SES took it: its answer was lost)
    nurture.service.enroll_lead("L1", PUSH)
    nurture.service.counts.take()
    nurture.sender.fail_with = SendUncertain("read timeout")
    if event_first:
        # (SES's Send event applied before the failed call marked the send uncertain)
        real_mark = nurture.store.mark_uncertain

        def confirmed_first(lead_id: str, message_id: str, now: datetime, until: float) -> bool:
            # a Send event seconds old finds the send unmarked: it confirms it, to be safe
            assert nurture.store.confirm_send(lead_id, message_id, now, now + timedelta(seconds=5))
            return real_mark(lead_id, message_id, now, until)

        nurture.store.mark_uncertain = confirmed_first  # type: ignore[method-assign]
    assert nurture.step("L1") == {"uncertain": 1}
    assert not any(row[4] == "sent" for row in nurture.service.counts.take())
    (send,) = nurture.store.mail_log("L1").sends
    # WHEN SES's Send event confirms it, and the step comes round again (twice: a redelivery)
    if not event_first:  # applied when the SES events queue lets it go, 75 s after SES took it
        assert nurture.store.confirm_send("L1", send["m"], NOW, NOW + timedelta(seconds=75))
    nurture.sender.fail_with = None
    nurture.clock.current = NOW + timedelta(minutes=10)
    nurture.step("L1")
    nurture.step("L1")
    # THEN it is never sent again, the enrollment moved on, and its report counts it sent once
    assert nurture.sender.sent == []
    assert nurture.enrollment("L1").step_id == "wait-discount"
    sent = [row for row in nurture.service.counts.take() if row[4] == "sent"]
    assert sent == [[PUSH, sent[0][1], "discount", "-", "sent", 1]]


def test_a_send_event_writes_only_for_an_uncertain_send_once_it_is_settled(nurture: Nurture) -> None:
    # GIVEN two emails sent: one plainly, one whose SendEmail failed ambiguously
    for lead in ("L1", "L2"):
        nurture.service.enroll_lead(lead, PUSH)
    assert nurture.step("L1") == {"waiting": 1}
    nurture.sender.fail_with = SendUncertain("read timeout")
    assert nurture.step("L2") == {"uncertain": 1}
    (plain,), (uncertain,) = nurture.store.mail_log("L1").sends, nurture.store.mail_log("L2").sends
    version = nurture.store.mail_log("L1").version
    # WHEN their Send events are applied after the SES events queue's delay (75 s)
    later = NOW + timedelta(seconds=75)
    # THEN the plain send's is only read (no write: the log keeps its version), the uncertain one confirmed
    assert not nurture.store.confirm_send("L1", plain["m"], NOW, later)
    assert nurture.store.mail_log("L1").version == version and "c" not in nurture.store.mail_log("L1").sends[0]
    assert nurture.store.confirm_send("L2", uncertain["m"], NOW, later)
    assert nurture.store.mail_log("L2").sends[0]["c"] is True
    # AND a redelivered event writes nothing more; an email the log does not know writes nothing
    assert not nurture.store.confirm_send("L2", uncertain["m"], NOW, later)
    assert not nurture.store.confirm_send("L1", "not-logged", NOW, NOW)
    # AND an event younger than SEND_SETTLED confirms an unmarked send too (it may yet be marked)
    assert nurture.store.confirm_send("L1", plain["m"], NOW, NOW + SEND_SETTLED - timedelta(seconds=1))


def test_an_ambiguous_send_marked_too_late_stands_as_sent_and_is_never_repeated(
    nurture: Nurture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a SendEmail that failed ambiguously after UNCERTAIN_MARK_WITHIN had passed since it began
    nurture.service.enroll_lead("L1", PUSH)
    nurture.sender.fail_with = SendUncertain("read timeout")
    real_mark = nurture.store.mark_uncertain

    def too_late(lead_id: str, message_id: str, now: datetime, until: float) -> bool:
        return real_mark(lead_id, message_id, now, until - UNCERTAIN_MARK_WITHIN - 1)

    monkeypatch.setattr(nurture.store, "mark_uncertain", too_late)
    # WHEN the step runs, and again after the confirmation window with SES answering
    assert nurture.step("L1") == {"uncertain_unmarked": 1}
    (send,) = nurture.store.mail_log("L1").sends
    assert "u" not in send  # a Send event applied now would rightly leave it as it is
    nurture.sender.fail_with = None
    nurture.clock.current = NOW + timedelta(minutes=20)
    nurture.step("L1")
    # THEN the email is never sent again (at most once) and the enrollment moved on
    assert nurture.sender.sent == []
    assert nurture.enrollment("L1").step_id == "wait-discount"


def test_a_rejected_address_is_never_tried_again(nurture: Nurture) -> None:
    nurture.service.enroll_lead("L1", PUSH)
    nurture.sender.fail_with = SendRejected("MessageRejected")
    result = nurture.service.process([("L1", PUSH)])
    assert result.outcomes["rejected"] == 1 and result.failures[0]["error"].startswith("rejected")
    # the claim stands: the email counts as sent for this step, the enrollment moved on
    assert nurture.enrollment("L1").step_id == "wait-discount"
    assert [s["p"] for s in nurture.store.mail_log("L1").sends] == ["discount"]


# ---------------------------------------------------------------------------- triggers and engagement


def test_a_form_capture_enrolls_by_trigger_and_an_open_ends_the_wait(nurture: Nurture) -> None:
    # GIVEN a sign-up on the demo form
    done = nurture.service.handle_event("lead.captured", {"lead_id": "L1", "form_id": "demo-signup"})
    assert done["enrolled"] == [WELCOME]
    nurture.step("L1", sequence_id=WELCOME)
    _, message_id, _, _ = nurture.sender.sent[0]
    # WHEN the welcome email is opened
    opened = {"lead_id": "L1", "type": "email_opened", "campaign": WELCOME, "message_id": message_id}
    done = nurture.service.handle_event("activity.recorded", opened)
    # THEN the wait for the open ends now: the enrollment is due and pushed to the due-now queue
    assert done["woken"] == 1
    enrollment = nurture.enrollment("L1", WELCOME)
    assert enrollment.due_at == NOW and enrollment.emails[0].opened
    assert nurture.queue.pushed[-1] == ("L1", WELCOME)
    # AND the same open again changes nothing
    assert nurture.service.handle_event("activity.recorded", opened)["woken"] == 0


def test_an_event_of_another_form_enrolls_nothing(nurture: Nurture) -> None:
    done = nurture.service.handle_event("lead.captured", {"lead_id": "L1", "form_id": "webinar-registration"})
    assert done["enrolled"] == [] and nurture.service.enrollment("L1", WELCOME) is None


def test_a_goal_reached_while_waiting_converts_the_enrollment(nurture: Nurture) -> None:
    # GIVEN a lead waiting after the discount email
    nurture.service.enroll_lead("L1", PUSH)
    nurture.step("L1")
    # WHEN sales accepts it (stage sql)
    nurture.store.profiles["L1"]["stage"] = "sql"
    nurture.service.handle_event("lead.stage_changed", {"lead_id": "L1", "to": "sql"})
    # THEN it leaves the campaign as converted
    enrollment = nurture.enrollment("L1")
    assert (enrollment.status, enrollment.exit_reason) == ("converted", "goal")


def test_the_last_step_tags_and_hands_off_in_one_profile_write(nurture: Nurture) -> None:
    # GIVEN a lead at the campaign's action step
    created = nurture.service.enroll_lead("L1", PUSH)
    assert created is not None
    nurture.store.enrollments[("L1", PUSH)] = (
        Enrollment("L1", PUSH, created.version, 1, "to-sales", "active", NOW, NOW, NOW),
        1,
    )
    # WHEN it runs
    assert nurture.step("L1") == {"completed": 1}
    # THEN the profile has the tag and the hand-off time, and both events were stored with them
    stored = nurture.store.profiles["L1"]
    assert stored["tags"] == {"push-responder"} and stored["handoff_requested_at"] == NOW.isoformat()
    assert [e.detail_type for e in nurture.store.events] == ["lead.tagged", "lead.handoff_requested"]


# ---------------------------------------------------------------------------- broadcasts


def test_a_broadcast_part_sends_the_first_email_and_the_mail_log_holds_the_wait(nurture: Nurture) -> None:
    # WHEN the push campaign's broadcast runs over the three leads, first step included
    counts, cursor = nurture.service.broadcast_part(PUSH, 0, 1, first_step=True)
    # THEN each got the discount email, and no enrollment item was written: the mail logs hold them
    assert cursor is None and counts["enrolled"] == 3 and counts["sent"] == 3 and counts["held"] == 3
    assert nurture.store.enrollments == {}
    assert all(nurture.store.mail_log(lead).holds(PUSH, 1, "wait-discount") for lead in ("L1", "L2", "L3"))
    # AND a second run finds them enrolled and sends nothing more
    again, _ = nurture.service.broadcast_part(PUSH, 0, 1, first_step=True)
    assert again["already_enrolled"] == 3 and len(nurture.sender.sent) == 3
    # AND once the week is over, a held enrollment reads as completed
    nurture.clock.current = NOW + timedelta(days=7, minutes=1)
    assert nurture.enrollment("L1").status == "completed"


class FailingStore(InMemoryNurtureStore):
    """A store that goes down after ``claims_left`` email claims: every claim and enrollment read
    or write then raises ``StorageUnavailable`` (a table outage beginning mid-page)."""

    def __init__(self, profiles: list[dict[str, Any]], claims_left: int) -> None:
        super().__init__(profiles)
        self.claims_left = claims_left

    def _check(self) -> None:
        if self.claims_left <= 0:
            raise StorageUnavailable("InternalServerError")

    def claim_send(self, *args: Any, **kwargs: Any) -> tuple[str, MailLog]:
        self._check()
        self.claims_left -= 1
        return super().claim_send(*args, **kwargs)

    def enrollment(self, lead_id: str, sequence_id: str) -> tuple[Enrollment, int] | None:
        self._check()
        return super().enrollment(lead_id, sequence_id)

    def put_enrollment(self, enrollment: Enrollment, rev: int, new: bool = False) -> bool:
        self._check()
        return super().put_enrollment(enrollment, rev, new)


def test_a_broadcast_page_the_table_fails_under_is_done_again_and_no_lead_is_lost() -> None:
    # GIVEN a table that fails after the first lead's email was claimed, while its page is worked
    store = FailingStore([profile("L1"), profile("L2"), profile("L3")], claims_left=1)
    nurture = nurture_on(store)
    assert nurture.service.start_broadcast(PUSH, "run-1", FakeBroadcastRunner(), segments=1)["parts"] == 1
    part = {"broadcast": PUSH, "run": "run-1", "segment": 0, "segments": 1, "cursor": None, "failures": 0}
    # WHEN a hop works the page: the other two leads' steps fail, and so does storing their new
    # enrollments for later (nothing holds them)
    stalled = nurture.service.broadcast_hop(part, lambda: False)
    # THEN the hop does not move past the page: its part goes on from where the page began, one
    # failure counted (five in a row fail the broadcast); one email went out
    assert stalled["more"] and stalled["cursor"] is None and stalled["failures"] == 1
    assert len(nurture.sender.sent) == 1
    # AND once the table answers, the next round's hop enrolls the other two: each lead got its
    # email exactly once, and the run counts three enrolled, the part done
    store.claims_left = 100
    done = nurture.service.broadcast_hop(stalled, lambda: False)
    assert not done["more"] and done["failures"] == 0
    assert sorted(to for to, *_ in nurture.sender.sent) == ["l1@example.com", "l2@example.com", "l3@example.com"]
    assert all(store.mail_log(lead).holds(PUSH, 1, "wait-discount") for lead in ("L1", "L2", "L3"))
    run = nurture.store.broadcast_run(PUSH, "run-1")
    assert run is not None and run["enrolled"] == 3 and run["sent"] == 3 and run["parts_done"] == 1


def test_a_broadcast_starts_its_parts_once(nurture: Nurture) -> None:
    runner = FakeBroadcastRunner()
    assert nurture.service.start_broadcast(PUSH, "run-1", runner, segments=2) == {"parts": 2, "rate": 14}
    assert nurture.service.start_broadcast(PUSH, "run-1", runner, segments=2) == {"parts": 0, "rate": 14}
    assert [(p["segment"], p["segments"], p["more"]) for p in runner.started[f"{PUSH}-run-1"]] == [
        (0, 2, True),
        (1, 2, True),
    ]
    # WHEN the state machine runs each part's hop, with time to spare
    rounds = runner.run(f"{PUSH}-run-1", lambda part: nurture.service.broadcast_hop(part, lambda: False))
    # THEN one round did it: every lead got the email once and the run counts both parts done
    assert rounds == 1
    run = nurture.store.broadcast_run(PUSH, "run-1")
    assert run is not None and run["parts_done"] == 2 and run["sent"] == 3
    assert len(nurture.sender.sent) == 3


@pytest.mark.parametrize(
    ("rate", "parts"), [(1, 1), (14, 1), (20, 1), (21, 2), (100, 5), (1000, 50), (10_000, 500), (20_000, 500)]
)
def test_a_broadcast_has_one_part_per_twenty_emails_a_second(rate: int, parts: int) -> None:
    assert broadcast_parts(rate) == parts
    # AND each part takes its whole share of the rate in one block a second, never more than the rate
    assert rate <= slot_block(rate) * parts and slot_block(rate) <= rate


@pytest.mark.parametrize(
    ("rate", "items", "parts"),
    [(1000, 2_000, 1), (1000, 30_000, 10), (1000, 10**7, 50), (14, 10**7, 1), (100, None, 5)],
)
def test_a_small_table_gets_fewer_parts(rate: int, items: int | None, parts: int) -> None:
    # one part per ~1,000 leads (3,000 items) at most: a part of a small table starts for nothing
    assert broadcast_parts(rate, items) == parts


def test_a_broadcast_is_sized_from_the_lower_of_the_configured_and_the_account_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a workspace configured for 1,000 emails a second
    root = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, root)
    messaging = root / "messaging.yaml"
    messaging.write_text(
        re.sub(r"(?m)^send_rate_per_second:\s*\d+", "send_rate_per_second: 1000", messaging.read_text())
    )
    store = InMemoryNurtureStore([profile("L1")])
    monkeypatch.setattr(store, "table_items", lambda: None)  # a table whose size DynamoDB does not tell yet
    service = NurtureService(
        workspace=Workspace(root),
        store=store,
        sender=FakeEmailSender(),
        tokens=TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30),
        due_now=InMemoryDueNowQueue(),
        clock=FakeClock(NOW),
        address_key=HASH,
    )
    runner = FakeBroadcastRunner()
    # WHEN SES's GetAccount does not answer, then answers that the account may send 200 a second
    unknown = service.start_broadcast(PUSH, "a", runner, account_rate=lambda: None)
    lower = service.start_broadcast(PUSH, "b", runner, account_rate=lambda: 200.0)
    # THEN the first runs as 50 parts (the configured rate), the second as 10 (the account's)
    assert unknown == {"parts": 50, "rate": 1000} and len(runner.started[f"{PUSH}-a"]) == 50
    assert lower == {"parts": 10, "rate": 200} and len(runner.started[f"{PUSH}-b"]) == 10


def test_a_broadcast_whose_state_machine_does_not_start_can_be_started_again(nurture: Nurture) -> None:
    runner = FakeBroadcastRunner(fail_with=RuntimeError("ThrottlingException"))
    with pytest.raises(RuntimeError):
        nurture.service.start_broadcast(PUSH, "run-1", runner)
    runner.fail_with = None
    assert nurture.service.start_broadcast(PUSH, "run-1", runner)["parts"] == 1


class OvertakenStore(InMemoryNurtureStore):
    """A store where another writer's step lands between an exit's read and its write, once."""

    def __init__(self, profiles: list[dict[str, Any]]) -> None:
        super().__init__(profiles)
        self.before_next_put: list[Callable[[], object]] = []

    def put_enrollment(self, enrollment: Enrollment, rev: int, new: bool = False) -> bool:
        while self.before_next_put:
            self.before_next_put.pop()()
        return super().put_enrollment(enrollment, rev, new)


def test_an_exit_that_a_step_overtakes_reads_again_and_takes_the_lead_out() -> None:
    # GIVEN a lead just enrolled; its first step runs between the exit's read and its write (the
    # due-now queue's step right after a console enrollment)
    store = OvertakenStore([profile("L1")])
    nurture = nurture_on(store)
    nurture.service.enroll_lead("L1", PUSH)
    store.before_next_put.append(lambda: nurture.step("L1"))
    # WHEN the lead is taken out
    exited = nurture.service.exit("L1", PUSH, "removed in the console")
    # THEN it is out, after the step's email (read again, not refused as "not in it")
    assert exited and not store.before_next_put
    assert nurture.enrollment("L1").status == "exited" and len(nurture.sender.sent) == 1
    # AND an exit from an ended enrollment is refused
    assert not nurture.service.exit("L1", PUSH, "again")


# ---------------------------------------------------------------------------- preferences and double opt-in


def test_unsubscribe_exits_sequences_records_consent_and_suppresses(nurture: Nurture) -> None:
    # GIVEN a lead waiting in the push campaign
    nurture.service.enroll_lead("L1", PUSH)
    nurture.step("L1")
    # WHEN it unsubscribes from everything
    done = nurture.service.unsubscribe("L1", None, "one-click")
    # THEN it left the campaign, its consent is withdrawn and recorded, its address suppressed
    assert done == {"found": True, "exited": 1, "topics": None}
    assert nurture.enrollment("L1").exit_reason == "unsubscribed"
    stored = nurture.store.profiles["L1"]
    assert stored["unsubscribed"] is True and stored["consent_marketing_email"]["granted"] is False
    assert [(c["purpose"], c["granted"], c["source"]) for c in nurture.store.consents["L1"]] == [
        ("marketing_email", False, "one-click")
    ]
    assert nurture.store.suppressed({HASH("l1@example.com")}) == {HASH("l1@example.com")}
    assert "l1@example.com" not in nurture.store.suppressions  # never the address itself
    assert [e.detail_type for e in nurture.store.events] == ["lead.unsubscribed"]
    # AND a send claimed on a mail log read before it fails as changed
    assert nurture.store.mail_log("L1").version == 2
    # AND an unknown lead is answered as such
    assert nurture.service.unsubscribe("nobody", None, "one-click") == {"found": False}


def test_double_opt_in_sends_the_confirmation_and_confirm_records_it(nurture: Nurture) -> None:
    # GIVEN a consenting sign-up on a double opt-in form
    detail = {"lead_id": "L2", "form_id": "webinar-registration", "consent": {"granted": True}}
    nurture.service.handle_event("lead.captured", detail)
    # THEN consent is pending and the confirmation email went out (no marketing email)
    assert nurture.store.profiles["L2"]["consent_pending"] is True
    assert [tags.get("kind") for _, _, tags, _ in nurture.sender.sent] == ["double-opt-in"]
    # WHEN the link is followed
    assert nurture.service.confirm("L2") is True
    # THEN consent is confirmed, recorded, and announced
    stored = nurture.store.profiles["L2"]
    assert stored["consent_pending"] is False and stored["consent_confirmed_at"] == NOW.isoformat()
    assert nurture.store.consents["L2"][0]["step"] == "confirmed"
    assert [e.detail_type for e in nurture.store.events] == ["lead.consent_confirmed"]
    assert nurture.service.confirm("unknown") is False
