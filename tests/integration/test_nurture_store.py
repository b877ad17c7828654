"""The nurture step and broadcast against DynamoDB (the local stack's moto), their faults forced.

What the issue asks of sending and enrolling, checked where it can break: an unsubscribe that
lands between the batch read and the send claim, a batch that dies after SES accepted its
sends, two broadcasts of one sequence at once, a broadcast split over many invocations, and
two ticks working one shard. Each test gets its own table, created with the stack table's own
keys and indexes (so a broadcast here never enrolls the other tests' leads), and drives
``NurtureService`` with the demo workspace, a fixed clock and a recording sender.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadflow.adapters.dynamo_json import serialize
from leadflow.adapters.memory import FakeBroadcastRunner, FakeClock, InMemoryDueNowQueue
from leadflow.adapters.nurture import DynamoNurtureStore, shard_of
from leadflow.config.workspace import Workspace
from leadflow.domain.gdpr import AddressHasher
from leadflow.domain.rendering import RenderedEmail
from leadflow.ports.nurture import ProfileChange
from leadflow.services.nurture import NurtureService, StepFailed, TokenIssuer
from leadflow.services.nurture.publishing import publish_counts
from tests.conftest import WORKSPACE, copy_of_leads_table

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, daytime in GB (no quiet hours)
SEQUENCE = "push-discount"
_tables = itertools.count()


@dataclass
class RecordingSender:
    sent: list[tuple[str, str]] = field(default_factory=list)
    before_send: Any = None

    def send(self, email: RenderedEmail, to: str, message_id: str, tags: dict[str, str]) -> str:
        if self.before_send is not None:
            self.before_send(tags["lead"])
        self.sent.append((to, message_id))
        return f"ses-{len(self.sent)}"


@dataclass
class Nurture:
    service: NurtureService
    store: DynamoNurtureStore
    sender: RecordingSender
    clock: FakeClock

    def add_leads(self, count: int) -> list[str]:
        leads = [f"01LEAD{next(_tables):06d}{i:06d}" for i in range(count)]
        for lead in leads:
            self.store.client.put_item(
                TableName=self.store.table,
                Item=serialize(
                    {
                        "PK": f"LEAD#{lead}",
                        "SK": "PROFILE",
                        "lead_id": lead,
                        "email": f"{lead.lower()}@example.com",
                        "first_name": "Ada",
                        "country": "GB",
                        "stage": "lead",
                        "consent_marketing_email": {"granted": True},
                    }
                ),
            )
        return leads

    def enroll_all(self, leads: list[str]) -> None:
        for lead in leads:
            assert self.service.enroll_lead(lead, SEQUENCE, push=False) is not None

    def status(self, lead: str) -> tuple[str, str, str | None]:
        found = self.service.enrollment(lead, SEQUENCE)
        assert found is not None
        enrollment = found[0]
        return enrollment.status, enrollment.step_id, enrollment.exit_reason


@pytest.fixture
def nurture(local_stack) -> Iterator[Nurture]:
    name = f"nurture-store-test-{next(_tables)}"
    dynamodb = copy_of_leads_table(local_stack, name)
    store = DynamoNurtureStore(name, dynamodb)
    clock = FakeClock(NOW)
    wall = [1_000_000.0]
    sender = RecordingSender()
    service = NurtureService(
        workspace=Workspace(WORKSPACE),
        store=store,
        sender=sender,
        tokens=TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30),
        due_now=InMemoryDueNowQueue(),
        clock=clock,
        address_key=AddressHasher(lambda: b"test-suppression-key"),
        # The send rate's seconds pass when a worker waits for the next one (no real sleeping).
        wall=lambda: wall[0],
        sleep=lambda seconds: wall.__setitem__(0, wall[0] + seconds),
    )
    try:
        yield Nurture(service, store, sender, clock)
    finally:
        dynamodb.delete_table(TableName=name)


def pairs(leads: list[str]) -> list[tuple[str, str]]:
    return [(lead, SEQUENCE) for lead in leads]


# ---------------------------------------------------------------------------- sending


def test_a_wave_sends_each_lead_one_email_with_one_claim_and_one_enrollment_write(nurture):
    # GIVEN 30 leads enrolled in the push campaign
    leads = nurture.add_leads(30)
    nurture.enroll_all(leads)
    # WHEN the batch is processed, and processed again (a retried page)
    first = nurture.service.process(pairs(leads))
    again = nurture.service.process(pairs(leads))
    # THEN each lead got the discount email once and waits for the open; the retry found nothing due
    assert first.sent == 30 and first.outcomes["waiting"] == 30
    assert again.sent == 0 and again.outcomes["not_due"] == 30
    assert sorted(m for _, m in nurture.sender.sent) == sorted({m for _, m in nurture.sender.sent})
    assert {nurture.status(lead) for lead in leads} == {("active", "wait-discount", None)}
    # AND each lead's mail log holds the send (the frequency caps read it)
    log = nurture.store.mail_log(leads[0])
    assert log.version == 1 and [s["s"] for s in log.sends] == [SEQUENCE]


def test_an_unsubscribe_landing_after_the_batch_read_stops_the_send(nurture):
    # GIVEN three leads due for the discount email, the second of whom unsubscribes (one click)
    # after the batch was read and before its email is claimed (here: while the first is sent)
    leads = nurture.add_leads(3)
    nurture.enroll_all(leads)
    nurture.service.workers = 1  # in order: the unsubscribe lands between the read and the claim
    unsubscribed = []

    def unsubscribe_second(lead_id: str) -> None:
        if lead_id == leads[0] and not unsubscribed:
            unsubscribed.append(nurture.service.unsubscribe(leads[1], None, "one-click"))

    nurture.sender.before_send = unsubscribe_second
    # WHEN the batch is processed
    result = nurture.service.process(pairs(leads))
    # THEN the unsubscribed lead got nothing; the others got their email
    sent_to = [to for to, _ in nurture.sender.sent]
    assert leads[1].lower() + "@example.com" not in sent_to
    assert len(sent_to) == 2 and result.sent == 2
    # AND its enrollment left the sequence (the unsubscribe exited it; the step did not overwrite that)
    assert nurture.status(leads[1]) == ("exited", "discount", "unsubscribed")
    assert unsubscribed[0]["exited"] == 1


def recording_suppression_reads(nurture: Nurture) -> tuple[list[str | None], list[set[str]]]:
    """The ``since`` of every suppression-list query, and every one-by-one read of addresses."""
    queries: list[str | None] = []
    point_reads: list[set[str]] = []
    listed, suppressed = nurture.store.suppressions_listed, nurture.store.suppressed

    def list_since(since: str | None, most: int) -> list[str] | None:
        queries.append(since)
        return listed(since, most)

    def read(keys: Any) -> set[str]:
        point_reads.append(set(keys))
        return suppressed(keys)

    nurture.store.suppressions_listed = list_since  # type: ignore[method-assign]
    nurture.store.suppressed = read  # type: ignore[method-assign]
    return queries, point_reads


def test_the_suppression_list_is_read_once_then_only_what_was_listed_since(nurture):
    # GIVEN six leads, one of whose addresses bounced before
    from leadflow.services.nurture import SUPPRESSION_LAG

    leads = nurture.add_leads(6)
    address = {lead: f"{lead.lower()}@example.com" for lead in leads}
    nurture.store.suppress(nurture.service.address_key(address[leads[0]]), "bounced", NOW.isoformat())
    queries, point_reads = recording_suppression_reads(nurture)
    # WHEN a batch of three is processed, another address complains five minutes later, and the
    # next three are processed
    nurture.enroll_all(leads[:3])
    first = nurture.service.process(pairs(leads[:3]))
    nurture.clock.current = NOW + timedelta(minutes=5)
    nurture.store.suppress(
        nurture.service.address_key(address[leads[3]]), "complained", nurture.clock.current.isoformat()
    )
    nurture.enroll_all(leads[3:])
    second = nurture.service.process(pairs(leads[3:]))
    # THEN neither suppressed address got an email; the four others did
    sent_to = {to for to, _ in nurture.sender.sent}
    assert sent_to == {address[lead] for lead in (leads[1], leads[2], leads[4], leads[5])}
    assert (first.sent, second.sent) == (2, 2)
    # AND the list was read whole once, then only from the last read on (with the lag's margin);
    # no address was read one by one
    assert queries == [None, (NOW - SUPPRESSION_LAG).isoformat()]
    assert point_reads == []


def test_a_suppression_list_too_long_to_keep_is_read_address_by_address(nurture, monkeypatch):
    # GIVEN more suppressions than a service keeps in memory
    import leadflow.services.nurture.stepping as nurture_module

    monkeypatch.setattr(nurture_module, "SUPPRESSION_LIST_MOST", 1)
    leads = nurture.add_leads(4)
    for lead in leads[:2]:
        nurture.store.suppress(nurture.service.address_key(f"{lead.lower()}@example.com"), "bounced", NOW.isoformat())
    queries, point_reads = recording_suppression_reads(nurture)
    # WHEN a batch of three is processed, then a batch of the fourth
    nurture.enroll_all(leads[:3])
    nurture.service.process(pairs(leads[:3]))
    nurture.enroll_all(leads[3:])
    nurture.service.process(pairs(leads[3:]))
    # THEN only the third and fourth leads got their email; each batch's addresses were read one by
    # one, and the list was not asked for again
    assert [to for to, _ in nurture.sender.sent] == [f"{lead.lower()}@example.com" for lead in leads[2:]]
    assert queries == [None] and [len(read) for read in point_reads] == [3, 1]


def test_an_unsubscribe_between_read_and_claim_fails_the_claim(nurture):
    # GIVEN a lead's mail log as a batch read it, then an unsubscribe
    leads = nurture.add_leads(1)
    read = nurture.store.mail_log(leads[0])
    nurture.store.touch_mail(leads[0])
    # WHEN a send is claimed on the old read
    claim, _ = nurture.store.claim_send(leads[0], "m_1", {"s": SEQUENCE}, NOW, read)
    # THEN it fails as changed (decided again with fresh data), and a claim on a fresh read succeeds
    assert claim == "changed"
    assert nurture.store.claim_send(leads[0], "m_1", {"s": SEQUENCE}, NOW, nurture.store.mail_log(leads[0]))[0] == (
        "claimed"
    )
    assert nurture.store.claim_send(leads[0], "m_1", {"s": SEQUENCE}, NOW, nurture.store.mail_log(leads[0]))[0] == (
        "taken"
    )


def test_a_batch_that_dies_after_ses_accepted_its_sends_never_sends_twice(nurture):
    # GIVEN 10 leads due, and a step that dies (a Lambda timeout) after SES accepted each email,
    # before any enrollment is stored
    leads = nurture.add_leads(10)
    nurture.enroll_all(leads)
    store_enrollment = nurture.store.put_enrollment

    def timed_out(*args: Any, **kwargs: Any) -> bool:
        raise TimeoutError("the invocation timed out")

    nurture.store.put_enrollment = timed_out  # type: ignore[method-assign]
    crashed = nurture.service.process(pairs(leads))
    assert len(nurture.sender.sent) == 10 and crashed.outcomes["error"] == 10
    # WHEN the page is processed again (the next tick)
    nurture.store.put_enrollment = store_enrollment  # type: ignore[method-assign]
    retried = nurture.service.process(pairs(leads))
    # THEN no lead got a second email, and every enrollment moved on to its wait
    assert len(nurture.sender.sent) == 10
    assert retried.outcomes["already_sent"] == 10 and retried.sent == 0
    assert {nurture.status(lead) for lead in leads} == {("active", "wait-discount", None)}


def test_a_used_up_send_rate_leaves_the_rest_of_the_batch_due_without_writing_to_it(nurture):
    # GIVEN 6 enrolled leads, due, and an account whose send rate is used up by other workers
    leads = nurture.add_leads(6)
    nurture.enroll_all(leads)
    before = {lead: nurture.service.enrollment(lead, SEQUENCE) for lead in leads}
    nurture.store.take_send_slots = lambda wanted, rate, now: 0  # type: ignore[method-assign]
    # WHEN the batch is processed
    result = nurture.service.process(pairs(leads))
    # THEN nothing is sent, and no enrollment was written (each stays due, as stored)
    assert result.sent == 0 and nurture.sender.sent == []
    assert result.outcomes["rate_limited"] >= 1
    assert result.outcomes["rate_limited"] + result.outcomes["left_due"] == 6
    assert {lead: nurture.service.enrollment(lead, SEQUENCE) for lead in leads} == before
    # AND a broadcast part in that state stores its new enrollments due now, for the ticks
    more = nurture.add_leads(3)
    counts, _ = nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    assert counts.get("sent", 0) == 0
    assert {nurture.status(lead) for lead in more} == {("active", "discount", None)}


def test_frequency_caps_hold_across_sequences_through_the_mail_log(nurture):
    # GIVEN a lead who got two marketing emails in the last hours (the demo cap is 2 a day)
    leads = nurture.add_leads(1)
    log = nurture.store.mail_log(leads[0])
    for index in range(2):
        _, log = nurture.store.claim_send(
            leads[0], f"m_other{index}", {"s": "welcome"}, NOW - timedelta(hours=3 - index), log
        )
    nurture.enroll_all(leads)
    # WHEN the discount email comes due
    result = nurture.service.process(pairs(leads))
    # THEN it is held by the cap, nothing sent
    assert result.sent == 0 and result.outcomes["frequency_cap"] == 1
    assert nurture.sender.sent == []


# ---------------------------------------------------------------------------- broadcasts


def test_a_broadcast_split_over_many_hops_enrolls_every_lead_once(nurture):
    # GIVEN 45 leads and a broadcast started as 3 parts
    leads = nurture.add_leads(45)
    runner = FakeBroadcastRunner()
    assert nurture.service.start_broadcast(SEQUENCE, "run-1", runner, segments=3)["parts"] == 3
    # AND the start delivered twice (asynchronous invokes may be): nothing is started again
    assert nurture.service.start_broadcast(SEQUENCE, "run-1", runner, segments=3)["parts"] == 0
    # WHEN each hop runs one page only (its time is up after every page) and returns its cursor
    nurture.store.scan_page_limit = 5
    rounds = runner.run(f"{SEQUENCE}-run-1", lambda part: nurture.service.broadcast_hop(part, lambda: True))
    # THEN every lead is enrolled once, over more rounds than one, its first email sent at
    # once (one enrollment write, after the step), and the run counts them
    assert rounds > 1
    assert {nurture.status(lead) for lead in leads} == {("active", "wait-discount", None)}
    assert len(nurture.sender.sent) == 45 and len({m for _, m in nurture.sender.sent}) == 45
    run = nurture.store.broadcast_run(SEQUENCE, "run-1")
    assert run is not None and (run["parts_done"], run["enrolled"], run["sent"]) == (3, 45, 45)
    # AND nothing is left due for the ticks until the wait runs out
    assert not nurture.store.shards_with_due(NOW + timedelta(days=6))


def part(run: str, cursor: dict[str, Any] | None = None, segment: int = 0, segments: int = 1) -> dict[str, Any]:
    """A broadcast part as the state machine hands it to a hop."""
    return {
        "broadcast": SEQUENCE,
        "run": run,
        "segment": segment,
        "segments": segments,
        "seconds": 120,
        "cursor": cursor,
        "more": True,
        "failures": 0,
    }


def test_a_hop_run_again_sends_nothing_twice(nurture):
    # GIVEN a part's first hop, run once, returning where its scan stopped
    nurture.add_leads(12)
    nurture.store.scan_page_limit = 4
    first = nurture.service.broadcast_hop(part("run-2"), lambda: True)
    assert first["more"] and first["cursor"] and first["sent"] == len(nurture.sender.sent) > 0
    # WHEN the same hop runs again (the state machine retried it after a crash or a timeout)
    again = nurture.service.broadcast_hop(part("run-2"), lambda: True)
    # THEN it enrolls nobody twice and sends nothing twice
    assert again["sent"] == 0 and again["more"]
    assert len(nurture.sender.sent) == first["sent"]
    # AND the part goes on from where it stopped to the end
    rest = nurture.service.broadcast_hop(part("run-2", again["cursor"]), lambda: False)
    assert not rest["more"] and len(nurture.sender.sent) == 12


def test_a_hop_that_dies_mid_page_is_redone_each_email_once_and_counted_once(nurture):
    from collections import Counter

    from leadflow.dev.faults import LambdaCrash

    # GIVEN a part's hop that dies in the middle of its page, just after its 5th email went out
    nurture.add_leads(12)

    def crash_after_five(lead: str) -> None:
        if len(nurture.sender.sent) == 5:
            nurture.sender.before_send = None
            nurture.sender.sent.append(("sent before the crash", lead))
            raise LambdaCrash("the execution environment died")

    nurture.sender.before_send = crash_after_five
    with pytest.raises(LambdaCrash):
        nurture.service.broadcast_hop(part("run-crash"), lambda: False)
    counted = Counter({tuple(c[2:5]): c[5] for c in nurture.service.counts.take()})  # published as it ended
    # WHEN the state machine runs the hop again from the same cursor
    again = nurture.service.broadcast_hop(part("run-crash"), lambda: False)
    for c in nurture.service.counts.take():
        counted[tuple(c[2:5])] += c[5]
    # THEN every lead got its email once, and the report's counts add up to every lead once
    assert not again["more"] and len(nurture.sender.sent) == 12
    assert len({message for _, message in nurture.sender.sent}) == 12
    assert counted[("discount", "-", "sent")] == 12, counted
    assert counted[("discount", "-", "enrolled")] == 12, counted


def test_every_skip_an_unsubscribe_and_its_exit_reach_the_sequence_report(nurture):
    from leadflow.domain.reporting import merge_increments
    from leadflow.domain.sequence_reports import nurture_counted, sequence_report

    # GIVEN seven leads in the push sequence's segment: three as they are, one without consent, one
    # whose address bounced before, one where it is night (quiet hours), one who will unsubscribe
    leads = nurture.add_leads(7)
    plain, no_consent, suppressed, at_night, leaving = leads[:3], leads[3], leads[4], leads[5], leads[6]
    table, client = nurture.store.table, nurture.store.client
    for lead, name, value in (
        (no_consent, "consent_marketing_email", {"M": {"granted": {"BOOL": False}}}),
        (at_night, "country", {"S": "NZ"}),
    ):
        client.update_item(
            TableName=table,
            Key={"PK": {"S": f"LEAD#{lead}"}, "SK": {"S": "PROFILE"}},
            UpdateExpression="SET #f = :v",
            ExpressionAttributeNames={"#f": name},
            ExpressionAttributeValues={":v": value},
        )
    nurture.store.suppress(nurture.service.address_key(f"{suppressed.lower()}@example.com"), "bounced", NOW.isoformat())
    # WHEN the push is broadcast (a part's hop, as the state machine runs it), and one lead then
    # unsubscribes with one click
    assert not nurture.service.broadcast_hop(part("run-figures"), lambda: False)["more"]
    assert nurture.service.unsubscribe(leaving, None, "one-click")["exited"] == 1
    # THEN what the nurture functions publish, counted by the reports, gives the discount step exactly
    # its figures: five enrolled (the two skipped at the gate are not), four sent, one of each skip,
    # and the unsubscribe (on the step of the last email); the exit is on the step it left from
    fact = nurture_counted("counted-once", NOW, nurture.service.counts.take())
    items = [{"PK": pk, "SK": sk, **fields} for (pk, sk), fields in merge_increments([fact]).items()]
    day = NOW.date().isoformat()
    steps = ["discount", "wait-discount"]
    report = sequence_report(items, sequence_id=SEQUENCE, start=day, end=day, step_order=steps)
    flow = {row["step"]: {k: v for k, v in row["counts"].items() if v} for row in report["flow"]}
    assert flow["discount"] == {
        "enrolled": 5,
        "sent": 4,
        "delivered": 4,  # sent less bounces: none bounced
        "skipped_no_consent": 1,
        "skipped_suppressed": 1,
        "skipped_quiet_hours": 1,
        "unsubscribes": 1,
    }, flow
    assert flow["wait-discount"] == {"exits": 1}, flow
    assert len(nurture.sender.sent) == len(plain) + 1


def test_a_broadcast_lead_in_quiet_hours_is_left_due_for_the_ticks(nurture):
    # GIVEN a lead whose local time is night (quiet hours 21:00-08:00) when its part runs
    nurture.clock.current = NOW.replace(hour=23)
    leads = nurture.add_leads(1)
    # WHEN its part enrolls it
    counts, _ = nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    # THEN nothing is sent; the enrollment is stored at its first step, due at the end of the night
    assert counts["enrolled"] == 1 and counts.get("sent", 0) == 0 and counts["quiet_hours"] == 1
    assert nurture.status(leads[0]) == ("active", "discount", None)
    assert nurture.store.shards_with_due(NOW.replace(hour=8) + timedelta(days=1))


def test_a_broadcasts_progress_adds_up_its_parts_and_never_goes_back(nurture):
    # GIVEN leads spread over four parallel scan segments (parts)
    nurture.add_leads(12)
    seen: list[tuple[int, int]] = []
    # WHEN the broadcast runs part after part, reporting as it goes (the CLI's progress line)
    counts = nurture.service.broadcast(
        SEQUENCE, progress=lambda scanned, enrolled: seen.append((scanned, enrolled)), scan_segments=4
    )
    # THEN each report is the whole broadcast so far: never lower than the one before, ending at the totals
    assert seen == sorted(seen) and len(seen) >= 2
    assert seen[-1] == (counts["scanned"], counts["enrolled"]) and counts["enrolled"] == 12


def test_two_broadcasts_never_overwrite_an_enrollment_the_other_wrote_or_a_tick_moved(nurture):
    # GIVEN leads enrolled by one broadcast, whose discount email a tick has already sent
    leads = nurture.add_leads(5)
    assert nurture.service.broadcast(SEQUENCE)["enrolled"] == 5
    nurture.service.process(pairs(leads))
    assert {nurture.status(lead) for lead in leads} == {("active", "wait-discount", None)}
    # WHEN a second broadcast, which read no enrollment for them (it read before the first wrote),
    # writes its enrollments
    from leadflow.domain.nurture import enroll

    sequence, version = nurture.service.current(SEQUENCE) or (None, 0)
    assert sequence is not None
    stale = [(enroll(sequence, version, lead, NOW, None), None) for lead in leads]
    written = nurture.store.put_enrollments([(e, rev) for e, rev in stale if e is not None])
    # THEN nothing is written, and the leads stay where the tick moved them (no second discount)
    assert written == 0
    assert {nurture.status(lead) for lead in leads} == {("active", "wait-discount", None)}
    assert nurture.service.broadcast(SEQUENCE)["already_enrolled"] == 5


# ---------------------------------------------------------------------------- ticks


def test_overlapping_ticks_never_work_one_shard_at_once(nurture):
    # GIVEN a shard leased by a running tick
    store = nurture.store
    assert store.lease_shard(3, "tick-a", NOW, timedelta(seconds=330))
    # THEN a second tick is refused while the lease runs; the holder renews it
    assert not store.lease_shard(3, "tick-b", NOW + timedelta(seconds=60), timedelta(seconds=330))
    assert store.lease_shard(3, "tick-a", NOW + timedelta(seconds=120), timedelta(seconds=330))
    # AND once released (or run out, when the holder died) the next tick takes it
    store.release_shard(3, "tick-a")
    assert store.lease_shard(3, "tick-b", NOW + timedelta(seconds=130), timedelta(seconds=330))
    assert store.lease_shard(3, "tick-c", NOW + timedelta(seconds=500), timedelta(seconds=330))


def test_the_due_index_lists_what_a_wave_left_due(nurture):
    # GIVEN enrolled leads, due now, on their shards
    leads = nurture.add_leads(6)
    nurture.enroll_all(leads)
    due = {pair for shard in range(nurture.store.shards) for pair in nurture.store.due(shard, NOW, 100)}
    assert due == set(pairs(leads))
    # WHEN their emails are sent
    nurture.service.process(pairs(leads))
    # THEN nothing is due until the wait runs out
    assert not nurture.store.shards_with_due(NOW + timedelta(days=1))
    later = NOW + timedelta(days=7, minutes=1)
    assert {shard_of(lead, nurture.store.shards) for lead in leads} == set(nurture.store.shards_with_due(later))


# ---------------------------------------------------------------------------- held enrollments


def stored_items(nurture: Nurture, leads: list[str]) -> int:
    """Enrollment items written for these leads (held enrollments have none)."""
    return sum(len(nurture.store.lead_enrollments(lead)) for lead in leads)


def opened(nurture: Nurture, lead: str, step: str = "discount", clicked: str | None = None) -> dict[str, Any]:
    """The activity event of the lead opening (or clicking in) its email of ``step``."""
    message = next(m for m in nurture.store.mail_log(lead).sends if m["p"] == step)["m"]
    detail = {"lead_id": lead, "campaign": SEQUENCE, "message_id": message, "type": "email_opened"}
    if clicked is not None:
        detail.update(type="email_clicked", link_tag=clicked)
    return nurture.service.handle_event("activity.recorded", detail)


def test_a_broadcast_holds_its_leads_in_their_mail_logs_and_they_complete_without_a_write(nurture):
    # GIVEN 20 leads and the push campaign's broadcast, which takes each through its first email
    leads = nurture.add_leads(20)
    counts, _ = nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    # THEN every lead got the discount email and waits for the open, held by its mail log: the claim
    # of the email was the only write (no enrollment item, nothing in the due index)
    assert counts["sent"] == 20 and counts["held"] == 20
    assert stored_items(nurture, leads) == 0
    assert {nurture.status(lead) for lead in leads} == {("active", "wait-discount", None)}
    assert not nurture.store.shards_with_due(NOW + timedelta(days=30))
    waiting = nurture.service.enrollment(leads[0], SEQUENCE)
    assert waiting is not None and waiting[0].due_at == NOW + timedelta(days=7)
    assert [e.step_id for e in waiting[0].emails] == ["discount"]
    assert waiting[0].emails[0].message_id == nurture.store.mail_log(leads[0]).sends[0]["m"]
    # WHEN the week passes with no reaction
    nurture.clock.current = NOW + timedelta(days=7, seconds=1)
    # THEN each enrollment reads as completed at the end of its wait, still with nothing written
    ended = nurture.service.enrollment(leads[0], SEQUENCE)
    assert ended is not None and ended[0].status == "completed" and ended[0].ended_at == NOW + timedelta(days=7)
    assert {nurture.status(lead) for lead in leads} == {("completed", "end", "completed")}
    assert stored_items(nurture, leads) == 0
    # AND the lead's enrollments (API, console) list it
    listed = nurture.service.lead_enrollments(leads[0])
    assert [(e.sequence_id, e.status) for e, _ in listed] == [(SEQUENCE, "completed")]


def test_a_woken_lead_whose_next_email_fails_is_not_counted_enrolled_again(nurture):
    from collections import Counter

    # GIVEN a broadcast's held lead (counted enrolled once, as its enrollment was written)
    (lead,) = nurture.add_leads(1)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    enrolled = Counter({tuple(c[2:5]): c[5] for c in nurture.service.counts.take()})
    assert enrolled[("discount", "-", "enrolled")] == 1
    # WHEN it opens the discount email, and the product email it wakes fails unexpectedly
    nurture.clock.current = NOW + timedelta(hours=2)

    def fails(_: str) -> None:
        raise RuntimeError("SES client broken")

    nurture.sender.before_send = fails
    with pytest.raises(StepFailed):
        opened(nurture, lead)
    # THEN its enrollment is stored to be tried again, and nobody is counted enrolled a second time
    assert nurture.status(lead) == ("active", "wait-discount", None)
    # (its product email, claimed when the sender failed, stands as sent in the mail log, and is counted so)
    counted = {tuple(c[2:5]): c[5] for c in nurture.service.counts.take()}
    assert counted == {("product", "-", "sent"): 1}, counted


def test_an_open_moves_a_held_lead_on_at_once_and_the_product_email_holds_it_again(nurture):
    # GIVEN a broadcast's held leads
    leads = nurture.add_leads(3)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    nurture.clock.current = NOW + timedelta(hours=2)
    log_before = nurture.store.mail_log(leads[0])
    # WHEN one opens the discount email
    woken = opened(nurture, leads[0])
    # THEN its wait ends and its next step is taken then and there (no hop through the due-now
    # queue): the product email is sent, and the one write of its claim records the open and holds
    # the lead at the next wait (still no enrollment item)
    assert woken["woken"] == 1
    assert nurture.service.due_now.pushed == []  # type: ignore[attr-defined]
    assert len(nurture.sender.sent) == 4
    assert nurture.status(leads[0]) == ("active", "wait-product", None)
    assert nurture.store.mail_log(leads[0]).version == log_before.version + 1
    assert stored_items(nurture, leads) == 0
    # AND an open seen twice, or the step processed again, sends nothing more
    assert opened(nurture, leads[0])["woken"] == 0
    assert nurture.service.process([(leads[0], SEQUENCE)]).sent == 0
    assert len(nurture.sender.sent) == 4
    # AND when the product email's week passes unclicked, it reads completed, the others too
    nurture.clock.current = NOW + timedelta(days=8)
    assert {nurture.status(lead) for lead in leads} == {("completed", "end", "completed")}
    emails = nurture.service.enrollment(leads[0], SEQUENCE)[0].emails  # type: ignore[index]
    assert [(e.step_id, e.opened) for e in emails] == [("discount", True), ("product", False)]


def test_an_open_whose_step_cannot_send_now_is_stored_with_the_open_for_the_ticks(nurture):
    # GIVEN a held lead, and the account's send rate used up when it opens
    leads = nurture.add_leads(1)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    nurture.clock.current = NOW + timedelta(hours=2)
    nurture.service._take_slot = lambda: False  # type: ignore[method-assign]
    # WHEN it opens the discount email
    assert opened(nurture, leads[0])["woken"] == 1
    # THEN nothing is sent now; the enrollment is stored due now with the open on it, for a tick
    assert len(nurture.sender.sent) == 1
    stored = nurture.store.enrollment(leads[0], SEQUENCE)
    assert stored is not None and stored[0].emails[0].opened and stored[0].due_at == nurture.clock.current
    assert nurture.store.shards_with_due(nurture.clock.current)
    # AND the tick sends the product email once the rate allows
    del nurture.service._take_slot
    assert nurture.service.process([(leads[0], SEQUENCE)]).sent == 1
    assert nurture.status(leads[0])[:2] == ("active", "wait-product")


def test_an_open_whose_step_fails_is_stored_for_the_ticks_and_the_event_delivered_again(nurture):
    # GIVEN a held lead whose product step fails unexpectedly (the store errs on the claim)
    from leadflow.services.nurture import ERROR_RETRY, StepFailed

    leads = nurture.add_leads(1)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    nurture.clock.current = NOW + timedelta(hours=2)
    claim = nurture.store.claim_send

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("InternalServerError")

    nurture.store.claim_send = failing  # type: ignore[method-assign]
    # WHEN the open is handled
    with pytest.raises(StepFailed):
        opened(nurture, leads[0])
    # THEN the event fails (SQS delivers it again), nothing is sent, and the enrollment is stored
    # with the open on it, due when the failed step is retried
    nurture.store.claim_send = claim  # type: ignore[method-assign]
    assert len(nurture.sender.sent) == 1
    stored = nurture.store.enrollment(leads[0], SEQUENCE)
    assert stored is not None and stored[0].emails[0].opened
    assert stored[0].due_at == nurture.clock.current + ERROR_RETRY
    # AND the redelivered event changes nothing; the tick then sends the product email once
    assert opened(nurture, leads[0])["woken"] == 0
    nurture.clock.current += ERROR_RETRY
    assert nurture.service.process([(leads[0], SEQUENCE)]).sent == 1
    assert len(nurture.sender.sent) == 2 and nurture.status(leads[0])[:2] == ("active", "wait-product")


def test_a_click_on_the_coupon_ends_a_held_lead_with_its_hand_off_stored(nurture):
    # GIVEN a held lead that opened the discount and clicked in the product email
    leads = nurture.add_leads(1)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    nurture.clock.current = NOW + timedelta(hours=1)
    opened(nurture, leads[0])
    nurture.clock.current = NOW + timedelta(days=1, hours=2)  # past the daily cap of two emails
    opened(nurture, leads[0], "product", clicked="product-page")
    assert len(nurture.sender.sent) == 3
    assert nurture.status(leads[0]) == ("active", "wait-coupon", None)
    # WHEN it clicks the coupon's redeem link
    opened(nurture, leads[0], "coupon", clicked="redeem")
    # THEN it is tagged, handed off, and its completed enrollment is stored with the three emails
    assert nurture.status(leads[0]) == ("completed", "end", "completed")
    assert stored_items(nurture, leads) == 1
    profile = nurture.store.get_lead(leads[0])
    assert profile is not None and "push-responder" in profile["tags"] and profile.get("handoff_requested_at")
    stored = nurture.store.enrollment(leads[0], SEQUENCE)
    assert stored is not None and [e.step_id for e in stored[0].emails] == ["discount", "product", "coupon"]


def test_an_unsubscribe_and_a_goal_end_held_enrollments_at_once(nurture):
    # GIVEN two held leads
    leads = nurture.add_leads(2)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    nurture.clock.current = NOW + timedelta(hours=1)
    # WHEN one unsubscribes and the other reaches the campaign's goal (sales accepted it: SQL)
    assert nurture.service.unsubscribe(leads[0], None, "one-click")["exited"] == 1
    nurture.store.update_profile(leads[1], ProfileChange(assign={"stage": "sql"}))
    nurture.service.handle_event("lead.stage_changed", {"lead_id": leads[1], "to": "sql"})
    # THEN both enrollments ended then (stored, since that is an outcome to keep)
    assert nurture.status(leads[0]) == ("exited", "wait-discount", "unsubscribed")
    assert nurture.status(leads[1]) == ("converted", "wait-discount", "goal")
    # AND an open arriving later moves neither on
    assert opened(nurture, leads[0])["woken"] == 0 and opened(nurture, leads[1])["woken"] == 0
    assert len(nurture.sender.sent) == 2


def test_a_second_broadcast_finds_held_leads_enrolled(nurture):
    # GIVEN a broadcast's held leads
    leads = nurture.add_leads(4)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    # WHEN the sequence is broadcast again during the wait, and again after it (within the 90-day
    # cool-down of its re-entry policy), and again after the cool-down
    during, _ = nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    nurture.clock.current = NOW + timedelta(days=30)
    after, _ = nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    nurture.clock.current = NOW + timedelta(days=100)
    later, _ = nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    # THEN nobody is enrolled twice at once or within the cool-down; after it, each lead re-enters
    # (entry 2, a new discount email, held again)
    assert during["already_enrolled"] == 4 and during.get("sent", 0) == 0
    assert after["refused"] == 4 and after.get("sent", 0) == 0
    assert later["sent"] == 4 and later["held"] == 4
    again = nurture.service.enrollment(leads[0], SEQUENCE)
    assert again is not None and (again[0].entry, again[0].status) == (2, "active")
    assert len({m for _, m in nurture.sender.sent}) == 8


def test_the_broadcast_scan_brings_each_lead_s_enrollment_and_mail_log_across_page_boundaries(nurture):
    # GIVEN leads a first broadcast holds, and one with a stored enrollment (exited), so each lead's
    # partition has its mail log and some an enrollment item before the profile
    leads = nurture.add_leads(6)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    assert nurture.service.exit(leads[2], SEQUENCE, "test")
    logs = {lead: nurture.store.mail_log(lead) for lead in leads}
    # WHEN the table is scanned one item per page (every lead's items split over pages)
    nurture.store.scan_page_limit = 1
    pages = list(nurture.store.scan_leads(SEQUENCE, 0, 1))
    # THEN every profile comes once, with the mail log and enrollment its partition holds
    assert len(pages) > len(leads)
    profiles = [p["lead_id"] for page in pages for p in page.profiles]
    assert sorted(profiles) == sorted(leads)
    found = {lead: log for page in pages for lead, log in page.logs.items()}
    assert {lead: (log.version, log.held.keys()) for lead, log in found.items()} == {
        lead: (log.version, log.held.keys()) for lead, log in logs.items()
    }
    stored = {key: value for page in pages for key, value in page.enrollments.items()}
    assert list(stored) == [(leads[2], SEQUENCE)] and stored[(leads[2], SEQUENCE)][0].status == "exited"
    assert not any(page.partial for page in pages)
    # AND a scan resumed from a key inside a lead's items marks that lead partial (its earlier items
    # are behind the key), and no other
    inside = next(page.after for page in pages if page.after and not page.profiles)
    resumed = list(nurture.store.scan_leads(SEQUENCE, 0, 1, inside))
    partial = {lead for page in resumed for lead in page.partial}
    assert partial == {str(inside["PK"]["S"]).removeprefix("LEAD#")}


def test_a_second_broadcast_handing_on_after_every_page_finds_every_lead_enrolled(nurture):
    # GIVEN held leads, one of them exited meanwhile (its enrollment stored)
    leads = nurture.add_leads(7)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    assert nurture.service.exit(leads[0], SEQUENCE, "test")
    sent = len(nurture.sender.sent)
    # WHEN the sequence is broadcast again, two items a page, the invocation handing on after every
    # page (so many leads' items straddle an invocation's start key)
    nurture.store.scan_page_limit = 2
    totals: dict[str, int] = {}
    partial_reads: list[list[tuple[str, str]]] = []
    read = nurture.store.enrollments_of

    def enrollments_of(pairs: list[tuple[str, str]], mail: bool = False) -> Any:
        partial_reads.append(pairs)
        return read(pairs, mail)

    nurture.store.enrollments_of = enrollments_of  # type: ignore[method-assign]
    runner = FakeBroadcastRunner()
    nurture.service.start_broadcast(SEQUENCE, "again", runner, segments=1)
    runner.run(f"{SEQUENCE}-again", lambda hop: nurture.service.broadcast_hop(hop, lambda: True))
    run = nurture.store.broadcast_run(SEQUENCE, "again") or {}
    for key in ("already_enrolled", "refused", "enrolled", "sent"):
        totals[key] = int(run.get(key, 0))
    # THEN the held leads are found enrolled, the exited one is refused by the re-entry cool-down,
    # and nobody gets a second email
    assert totals == {"already_enrolled": 6, "refused": 1, "enrolled": 0, "sent": 0}
    assert len(nurture.sender.sent) == sent
    # AND only the leads an invocation began inside were read apart, one at a time
    assert partial_reads and all(len(pairs) == 1 for pairs in partial_reads)


def test_a_lead_the_first_step_defers_is_stored_not_held(nurture):
    # GIVEN a lead whose first email waits for the end of its quiet hours, and one sent at once
    nurture.clock.current = NOW.replace(hour=23)
    night = nurture.add_leads(1)
    counts, _ = nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    # THEN the deferred one is an enrollment item in the due index, as before
    assert counts.get("held", 0) == 0 and stored_items(nurture, night) == 1


def workspace_with(tmp_path: Path, sequence_file: str, text: str) -> Path:
    """A copy of the demo workspace with one more sequence file."""
    workspace = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, workspace)
    (workspace / "sequences" / sequence_file).write_text(text)
    return workspace


def service_on(nurture: Nurture, workspace: Path) -> NurtureService:
    """A second service over the same table, store, sender and clock, with another workspace."""
    return NurtureService(
        workspace=Workspace(workspace),
        store=nurture.store,
        sender=nurture.sender,
        tokens=TokenIssuer(lambda: [b"k" * 32], "https://t.example.com", 30),
        due_now=InMemoryDueNowQueue(),
        clock=nurture.clock,
        address_key=AddressHasher(lambda: b"test-suppression-key"),
    )


def test_events_no_sequence_acts_on_cost_no_read(nurture, tmp_path):
    # GIVEN the demo workspace: its goals read the stage, no trigger or wait reads scores or tags
    service = nurture.service
    # THEN score and tag events, and activities other than opens and clicks, are ignored unread
    assert not service.listens("lead.scored", {}) and not service.listens("lead.tagged", {})
    assert not service.listens("activity.recorded", {"type": "page_viewed"})
    assert service.handle_event("lead.scored", {"lead_id": "01NOSUCHLEAD"}) == {"ignored": True}
    # AND the events it acts on are not
    assert service.listens("lead.stage_changed", {}) and service.listens("lead.captured", {})
    assert service.listens("activity.recorded", {"type": "email_opened"})
    assert service.listens("lead.consent_confirmed", {})
    # WHEN a sequence waits for a score and another is triggered by a tag
    workspace = workspace_with(
        tmp_path,
        "hot.yaml",
        "id: hot\nname: Hot\ntriggers: [{tag_added: vip}]\npurpose: marketing_email\nsteps:\n"
        "  - {id: hello, type: email, template: push_discount, subject: Hi}\n"
        "  - {id: w, type: wait, days: 3, until_event: {score: {gte: 50}}}\n",
    )
    other = service_on(nurture, workspace)
    # THEN score and tag events matter there
    assert other.listens("lead.scored", {}) and other.listens("lead.tagged", {})
    assert not other.listens("activity.recorded", {"type": "page_viewed"})


@pytest.mark.parametrize("migrated", [False, True])
def test_a_held_enrollment_keeps_its_wait_when_the_sequence_is_edited(nurture, tmp_path, migrated):
    # GIVEN a broadcast's held leads on version 1 of the push campaign
    leads = nurture.add_leads(2)
    nurture.service.broadcast_part(SEQUENCE, 0, 1, first_step=True)
    # WHEN the sequence is edited (a new version), with or without a migration of version 1's leads
    workspace = tmp_path / "workspace"
    shutil.copytree(WORKSPACE, workspace)
    path = workspace / "sequences" / f"{SEQUENCE}.yaml"
    text = path.read_text().replace("This week only: 20% off Example", "This week only: 25% off Example")
    path.write_text(text + ("migrations: [{from_version: 1}]\n" if migrated else ""))
    edited = service_on(nurture, workspace)
    assert edited.current(SEQUENCE)[1] == 2  # type: ignore[index]
    # THEN the leads still wait where they were until their wait ends, then complete
    nurture.clock.current = NOW + timedelta(days=3)
    waiting = edited.enrollment(leads[0], SEQUENCE)
    assert waiting is not None and (waiting[0].status, waiting[0].step_id) == ("active", "wait-discount")
    assert waiting[0].due_at == NOW + timedelta(days=7)
    nurture.clock.current = NOW + timedelta(days=8)
    assert {edited.enrollment(lead, SEQUENCE)[0].status for lead in leads} == {"completed"}  # type: ignore[index]


def test_a_step_s_profile_actions_are_one_update_with_their_events(nurture, tmp_path):
    # GIVEN a sequence whose action step tags, sets a field, hands off, then untags the same tag
    workspace = workspace_with(
        tmp_path,
        "acts.yaml",
        "id: acts\nname: Acts\nsteps:\n"
        "  - id: mark\n    type: action\n    actions:\n"
        "      - {tag: vip}\n      - {set_field: {name: track, value: a}}\n"
        "      - {handoff: Asked for a demo}\n      - {untag: vip}\n",
    )
    service = service_on(nurture, workspace)
    leads = nurture.add_leads(1)
    assert service.enroll_lead(leads[0], "acts", push=False) is not None
    transactions: list[list[dict[str, Any]]] = []
    updates: list[dict[str, Any]] = []
    client = nurture.store.client
    transact, update = client.transact_write_items, client.update_item

    def recording_transact(**kwargs: Any) -> Any:
        transactions.append(kwargs["TransactItems"])
        return transact(**kwargs)

    def recording_update(**kwargs: Any) -> Any:
        updates.append(kwargs)
        return update(**kwargs)

    client.transact_write_items, client.update_item = recording_transact, recording_update
    try:
        # WHEN its step runs
        service.process([(leads[0], "acts")])
    finally:
        client.transact_write_items, client.update_item = transact, update
    # THEN the tag, the field and the hand-off are one profile update in one transaction with their
    # two events; the untag of the same attribute is a second, plain update (it announces nothing)
    profile_writes = [t for t in transactions if any("Update" in i for i in t)]
    assert len(profile_writes) == 1
    assert [next(iter(i)) for i in profile_writes[0]] == ["Update", "Put", "Put"]
    assert len(updates) == 1 and updates[0]["UpdateExpression"].startswith("DELETE")
    profile = nurture.store.get_lead(leads[0])
    assert profile is not None and profile["cf_track"] == "a" and profile.get("handoff_requested_at")
    assert "vip" not in (profile.get("tags") or set())


# ---------------------------------------------------------------------------- counts for the reports


class RefusingBus:
    def publish(self, events: list[Any]) -> list[str]:
        return [e.event_id for e in events]


def test_counts_the_bus_refuses_are_written_to_the_outbox_the_stream_relays(nurture):
    # GIVEN three leads sent the discount email, counted in the function's memory
    leads = nurture.add_leads(3)
    nurture.enroll_all(leads)
    nurture.service.process(pairs(leads))
    assert len(nurture.sender.sent) == 3
    # WHEN the bus refuses the invocation's nurture.counted event
    assert publish_counts(nurture.service, RefusingBus()) > 0
    # THEN it is an outbox item (SK "EVENT": the relay's stream filter takes it) holding the counts
    items = nurture.store.client.scan(
        TableName=nurture.store.table,
        FilterExpression="begins_with(PK, :p)",
        ExpressionAttributeValues={":p": {"S": "OUTBOX#"}},
    )["Items"]
    (item,) = items
    assert item["SK"] == {"S": "EVENT"} and item["detail_type"] == {"S": "nurture.counted"}
    detail = json.loads(item["detail"]["S"])
    assert item["PK"]["S"] == f"OUTBOX#{detail['event_id']}"
    assert [row for row in detail["counts"] if row[4] == "sent"] == [[SEQUENCE, 1, "discount", "-", "sent", 3]]
    assert nurture.service.counts.take() == []
