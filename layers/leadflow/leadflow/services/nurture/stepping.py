"""Stepping leads: a batch of due enrollments advanced by the pure engine, its emails rendered,
claimed and sent within the account's send rate, the steps' actions applied.

The leads of a batch are worked on by a few threads at once, so SES and DynamoDB round trips
overlap. One lead's failure (a broken template, a rejected address) is recorded on its enrollment
and never stops the batch."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache
from time import monotonic
from typing import Any

from leadflow.domain.consent import NO_CONSENT, may_track
from leadflow.domain.definitions.sequences import Sequence
from leadflow.domain.nurture import EmailToSend, Enrollment, LeadView, Outcome, advance, holdable, skipped
from leadflow.domain.nurture.mail_log import UNCERTAIN_MARK_WITHIN, MailLog
from leadflow.domain.rendering import LinkSigner, RenderedEmail, TemplateProblem, sender_of
from leadflow.ports.messaging import SendRejected, SendThrottled, SendUncertain
from leadflow.services.nurture.actions import Actions
from leadflow.services.nurture.base import (
    SLOT_BLOCK,
    SLOT_WAITS,
    BatchResult,
    _Job,
    _personal,
    broadcast_parts,
)
from leadflow.services.nurture.counts import DEFERRALS_REPORTED, SKIPS
from leadflow.services.nurture.links import UntrackedLinks
from leadflow.services.nurture.progress import Progress

MAX_ADVANCES_PER_ENROLLMENT = 4
THROTTLE_RETRY = timedelta(minutes=1)
ERROR_RETRY = timedelta(minutes=10)
SUPPRESSION_LAG = timedelta(minutes=2)
"""How far back each batch looks again for newly listed suppressions: more than the index's lag
behind a write (well under a second) and any skew between the writers' clocks."""
SUPPRESSION_LIST_MOST = 200_000
"""More suppressions than this are not kept in memory: addresses are then read one by one."""


class Stepping(Actions):
    """Advancing batches of due enrollments (the nurture step function's use case)."""

    def process(self, pairs: list[tuple[str, str]]) -> BatchResult:
        """Advance every (lead id, sequence id) enrollment of the batch that is due."""
        result = BatchResult()
        if not pairs:
            return result
        now = self.clock.now()
        enrollments, profiles, logs = self.store.load_batch(pairs)
        jobs: list[_Job] = []
        for pair in pairs:
            resolved = self._resolve(pair[0], pair[1], enrollments.get(pair), logs.get(pair[0]), now)
            profile = profiles.get(pair[0])
            if resolved is None or profile is None:
                result.outcomes["missing"] += 1
                continue
            enrollment, rev, held = resolved
            if enrollment.status != "active" or (enrollment.due_at and enrollment.due_at > now):
                result.outcomes["not_due"] += 1
                continue
            # A held enrollment (woken by an open or click) is not stored: like a broadcast's, it is
            # written only if it cannot be held again after this step.
            jobs.append(_Job(enrollment, rev, held and rev == 0, profile, fresh=held))
        result.add(self._work(jobs, logs, now))
        return result

    # Complexity C (11), kept: the batch's one place that reads the suppression list and hands the
    # leads to the worker threads (a lead's jobs in order on one thread, the send rate shared).
    def _work(self, jobs: list[_Job], logs: Mapping[str, MailLog], now: datetime) -> BatchResult:
        """Advance the jobs' enrollments, ``workers`` leads at a time; one lead's jobs run in order on
        one thread (they share its mail log). The suppression list is read once for all."""
        result = BatchResult()
        keyed = {str(j.profile["email"]).casefold(): j.profile for j in jobs if j.profile.get("email")}
        hashed = {address: self.address_key(address) for address in keyed}
        suppressed = self._suppressed(set(hashed.values()), now) if hashed else set()
        if suppressed:
            suppressed = self._lift_erased(suppressed, {hashed[a]: p for a, p in keyed.items()})
        by_lead: dict[str, list[_Job]] = {}
        for job in jobs:
            by_lead.setdefault(job.enrollment.lead_id, []).append(job)

        saturated = threading.Event()

        def lead_jobs(lead_id: str, part: BatchResult | None = None) -> BatchResult:
            """The lead's jobs, counted in ``part`` (a new one when not given)."""
            part = BatchResult() if part is None else part
            log = logs.get(lead_id) or MailLog()
            for job in by_lead[lead_id]:
                if saturated.is_set():
                    # The account's send rate is used up: the rest of the batch is left as it is
                    # (no write per lead to put it off), except new enrollments, which are stored.
                    part.outcomes["left_due"] += 1
                    if job.fresh and self.store.put_enrollment(job.enrollment, job.rev, new=job.new):
                        self._written_first(job)
                    continue
                part.processed += 1
                is_suppressed = hashed.get(str(job.profile.get("email", "")).casefold()) in suppressed
                limited = part.outcomes["rate_limited"]
                try:
                    log = self._advance_one(job, is_suppressed, log, now, part)
                    if part.outcomes["rate_limited"] > limited:
                        saturated.set()
                except Exception as error:  # one lead never stops the batch  # noqa: BLE001
                    self._failed(job, error, now, part)
            return part

        # No more threads than a second's send slots can keep busy (each waits ~40 ms per email).
        workers = min(self.workers, len(by_lead), max(1, self.messaging.send_rate_per_second // 4))
        if workers <= 1:
            for lead in by_lead:  # one after the other: counted straight into the batch's result
                lead_jobs(lead, result)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(lead_jobs, by_lead))
            for part in parts:
                result.add(part)
        return result

    def _lift_erased(self, suppressed: set[str], profiles: Mapping[str, dict[str, Any]]) -> set[str]:
        """The suppressed keys less those listed only by an erasure whose person has since given
        marketing consent again on a form (a new lead of the same address): their entry is deleted.
        Reads only the entries of suppressed leads with a granted consent (rare: a few per batch)."""
        candidates = {key for key in suppressed if key in profiles and _consent(profiles[key]).get("granted") is True}
        if not candidates:
            return suppressed
        lifted = set()
        for entry in self.store.suppression_items(candidates):
            key = str(entry["PK"]).removeprefix("SUPPRESS#")
            if _erasure_lifted(entry, profiles[key]):
                self.store.unsuppress_erased(key)
                lifted.add(key)
        if lifted:
            with self._suppression_lock:
                if self._suppression_list is not None:
                    self._suppression_list -= lifted
        return suppressed - lifted

    def _suppressed(self, addresses: set[str], now: datetime) -> set[str]:
        """Which of these address keys (keyed hashes) are suppressed (bounced, complained, unsubscribed, erased).

        The whole suppression list (GSI2) is read once per service, then before every batch only
        what was listed since the last read (one query, a lookback of ``SUPPRESSION_LAG``): a few
        read units per batch instead of half a unit per lead. A list longer than
        ``SUPPRESSION_LIST_MOST`` is not kept: the batch's addresses are read one by one."""
        with self._suppression_lock:
            if self._suppression_list is not None:
                read = self._suppression_read
                since = read - SUPPRESSION_LAG if read is not None and read <= now else None  # a clock set back: all
                listed = self.store.suppressions_listed(since.isoformat() if since else None, SUPPRESSION_LIST_MOST)
                if listed is None or len(self._suppression_list) + len(listed) > SUPPRESSION_LIST_MOST:
                    self._suppression_list = None
                else:
                    self._suppression_list.update(listed)
                    self._suppression_read = now
                    return addresses & self._suppression_list
        return self.store.suppressed(addresses)

    def _failed(self, job: _Job, error: Exception, now: datetime, part: BatchResult) -> None:
        """A job's step failed unexpectedly: counted, and its enrollment put off (``_back_off``)."""
        enrollment = job.enrollment
        part.outcomes["error"] += 1
        part.failures.append(
            {"lead_id": enrollment.lead_id, "sequence_id": enrollment.sequence_id, "error": type(error).__name__}
        )
        if not self._back_off(job, now):
            part.outcomes["unstored"] += 1

    def _back_off(self, job: _Job, now: datetime) -> bool:
        """An enrollment whose step failed unexpectedly is looked at again later, not in a tight loop
        (a new one, from a broadcast, is stored due then, so the lead is not lost).

        Returns False when the store failed too and the job was a fresh one (a broadcast's new
        enrollment, a held one woken): a broadcast's is then stored nowhere, and its caller must
        not go past it (``Broadcasts._enroll_members``). A stored or held enrollment stays as it
        was read, due, and the ticks retry it."""
        try:
            current = self.store.enrollment(job.enrollment.lead_id, job.enrollment.sequence_id)
            if job.fresh and (current is None or current[1] == job.rev):
                put_off = replace(job.enrollment, due_at=now + ERROR_RETRY)
                if self.store.put_enrollment(put_off, job.rev, new=job.new):
                    self._written_first(job)
            elif current is not None and current[0].status == "active":
                self.store.put_enrollment(replace(current[0], due_at=now + ERROR_RETRY), current[1])
        except Exception:  # noqa: BLE001 - the store itself is failing
            return not job.fresh
        return True

    # Complexity C (13), kept: the loop of one enrollment's steps in one call, each exit of the loop
    # a written state; the email's outcomes are in ``_send_step``, the writes in ``Progress``.
    def _advance_one(self, job: _Job, suppressed: bool, log: MailLog, now: datetime, result: BatchResult) -> MailLog:
        """Move one enrollment as far as it goes now; returns the lead's mail log as it now is.

        Every write of the enrollment is conditional on the ``rev`` read (a new one: on there
        being none), so whoever changed it meanwhile (an unsubscribe, another worker) wins."""
        step = Progress(self.store, job, log, now, result, self._written_first)
        found = self.definition(job.enrollment)
        if found is None:
            step.store(
                replace(job.enrollment, status="exited", exit_reason="sequence removed", due_at=None, ended_at=now)
            )
            result.outcomes["sequence_removed"] += 1
            return step.log
        sequence, enrollment = found
        lead = self._lead_view(job.profile, suppressed, self._needs_activity(sequence), log)
        segments, consent = self.workspace.segments, self.workspace.consent
        for _ in range(MAX_ADVANCES_PER_ENROLLMENT):
            outcome = advance(sequence, enrollment, lead, now, self.messaging, segments, consent)
            if self._skipped_new(outcome, enrollment, step):
                return step.log
            if outcome.email is not None and self._send_step(sequence, enrollment, outcome, lead, step):
                return step.log
            if (outcome.enrollment != enrollment or step.fresh) and not step.store(outcome.enrollment):
                result.outcomes["conflict"] += 1
                return step.log
            self._run_actions(sequence, outcome.enrollment, outcome.actions, now)
            result.outcomes[outcome.deferred or outcome.enrollment.status] += 1
            self._count_outcome(outcome, enrollment)
            enrollment = outcome.enrollment
            if (
                outcome.email is None
                or enrollment.status != "active"
                or (enrollment.due_at and enrollment.due_at > now)
            ):
                return step.log
            lead = replace(lead, recent_sends=(*lead.recent_sends, now))  # the next step's caps count it
        return step.log

    def _written_first(self, job: _Job) -> None:
        """A job's enrollment is written for the first time (stored, or held by its email's claim): a
        broadcast's new one (``enrolls``) is counted ``enrolled`` now, at its first step, so that an
        invocation dying later loses no count; others were counted where they were made."""
        if not job.enrolls:
            return
        enrollment = job.enrollment
        self.counts.add(enrollment.sequence_id, enrollment.version, enrollment.step_id, None, "enrolled")

    def _skipped_new(self, outcome: Outcome, enrollment: Enrollment, step: Progress) -> bool:
        """Count a lead without consent in the batch's result (``no_consent``, beside ``exited``); True for
        a broadcast's new enrollment an email's gate skipped (no consent, suppressed...) before anything
        was sent: it is not written at all (the next broadcast looks at the lead again), only counted
        for the step's figures."""
        after = outcome.enrollment
        if after.exit_reason == NO_CONSENT:
            step.result.outcomes[NO_CONSENT] += 1
        if not (step.fresh and not enrollment.emails and skipped(outcome)):
            return False
        self.counts.add(after.sequence_id, after.version, after.step_id, None, SKIPS[str(after.exit_reason)])
        step.result.outcomes["not_enrolled"] += 1
        return True

    def _send_step(
        self, sequence: Sequence, enrollment: Enrollment, outcome: Outcome, lead: LeadView, step: Progress
    ) -> bool:
        """Send the email the outcome asks for; True when the enrollment's turn ends here (written as
        it must be: failed, left due, put off, or held by the mail log), False when it goes on."""
        now, result = step.now, step.result
        # Not stored yet and now waiting where it lapses quietly: the claim of its email makes
        # the lead's mail log hold it (no enrollment item, no due-index entry, no write to end).
        held = outcome.enrollment if step.fresh and holdable(sequence, outcome) else None
        try:
            sent, step.log = self._send(sequence, outcome, lead, step.log, now, result, held, step)
        except TemplateProblem as problem:
            # This lead fails visibly, nothing is sent; the rest of the batch goes on.
            failed = outcome.enrollment
            reason = f"template {problem}"[:300]
            step.store(
                replace(
                    failed, status="failed", exit_reason=reason, due_at=None, ended_at=now, emails=failed.emails[:-1]
                )
            )
            result.outcomes["template_error"] += 1
            result.failures.append({"lead_id": lead.lead_id, "sequence_id": sequence.id, "error": "template"})
            return True
        if sent == "saturated":
            # No send slot: left as stored (still due, nothing written), taken up by a later
            # page or tick; a broadcast's new enrollment is stored due now.
            if step.fresh:
                step.store(enrollment)
            return True
        if sent == "retry":
            # Throttled or changed meanwhile: stays on its step, looked at again soon.
            step.store(replace(enrollment, due_at=now + THROTTLE_RETRY))
            return True
        if held is not None and step.log.holds(sequence.id, held.entry, held.step_id):
            result.outcomes["held"] += 1
            result.outcomes[outcome.deferred or held.status] += 1
            return True
        return False

    def _promoted(self, sequence: Sequence, version: int, email: EmailToSend, now: datetime) -> EmailToSend:
        """The email with its A/B test's winner once the sequence promotes it (``variants.promote_winner``)."""
        if email.variant is None or self.winners is None or sequence.variants.promote_winner is None:
            return email
        winner = self.winners.winner(sequence, version, email.step_id, now)
        if winner is None or winner == email.variant:
            return email
        step = next((s for s in sequence.email_steps() if s.id == email.step_id), None)
        chosen = next((v for v in step.variants if v.id == winner), None) if step is not None else None
        if step is None or chosen is None:
            return email
        return replace(
            email, variant=winner, template=chosen.template or step.template, subject=chosen.subject or step.subject
        )

    def _count_outcome(self, outcome: Outcome, before: Enrollment) -> None:
        """A skip at a gate (a deferral that holds the email back), or the end of the enrollment."""
        after = outcome.enrollment
        if outcome.deferred in DEFERRALS_REPORTED:  # each time the gate holds the email back
            self.counts.add(after.sequence_id, after.version, after.step_id, None, SKIPS[outcome.deferred])
        if after.status not in (before.status, "active"):
            if after.status == "converted":
                self.counts.add(after.sequence_id, after.version, after.step_id, None, "goal_reached")
            elif after.status == "exited":
                self.counts.add(after.sequence_id, after.version, after.step_id, None, "exits")
                if after.exit_reason in SKIPS:
                    self.counts.add(after.sequence_id, after.version, after.step_id, None, SKIPS[after.exit_reason])

    def _send(  # noqa: PLR0917 - one private call site
        self,
        sequence: Sequence,
        outcome: Outcome,
        lead: LeadView,
        log: MailLog,
        now: datetime,
        result: BatchResult,
        held: Enrollment | None = None,
        step: Progress | None = None,
    ) -> tuple[str, MailLog]:
        """Render, claim, send one email. Returns ("sent" | "taken" | "retry" | "saturated", the mail log)
        ("saturated": no send slot of the account's rate came free within ~2 s).

        The email is counted ``sent`` as it is claimed, and the count taken back when the send turns
        out not to have gone (throttled, refused, uncertain): the claim is what the mail log and
        ``leadflow report verify`` hold as sent, and an invocation that dies between the claim and
        the answer must not leave it uncounted. A ``held`` enrollment (``step``'s) is written by
        the claim: counted as enrolled then (``Progress.written``).

        Raises:
            TemplateProblem: the email cannot be rendered for this lead (nothing was claimed or sent).
        """
        email = self._promoted(sequence, outcome.enrollment.version, outcome.email, now)  # type: ignore[arg-type]
        lead_id = lead.lead_id
        if not self._take_slot():
            result.outcomes["rate_limited"] += 1
            return "saturated", log
        rendered = self._render(sequence, email, lead, now)
        version = outcome.enrollment.version
        record = {"s": sequence.id, "p": email.step_id, "variant": email.variant, "v": version}
        claim, log = self.store.claim_send(lead_id, email.message_id, record, now, log, held)
        if claim == "taken":
            result.outcomes["already_sent"] += 1
            return "taken", log
        if claim == "confirmed":  # an ambiguous send SES's Send event confirmed: it went out
            result.sent += 1
            self.counts.add(sequence.id, version, email.step_id, email.variant, "sent")
            return "sent", log
        if claim == "changed":
            result.outcomes["changed_meanwhile"] += 1
            return "retry", log
        if claim == "unconfirmed":  # an ambiguous send waiting for SES's Send event
            result.outcomes["awaiting_confirmation"] += 1
            return "retry", log
        if held is not None and step is not None:
            step.written()
        self.counts.add(sequence.id, version, email.step_id, email.variant, "sent")
        tags = {"lead": lead_id, "sequence": sequence.id, "step": email.step_id}
        began = monotonic()
        try:
            self.sender.send(rendered, str(lead.profile["email"]), email.message_id, tags)
        except SendThrottled:
            self._not_sent(sequence, version, email)
            self.store.release_send(lead_id, email.message_id)
            result.outcomes["throttled"] += 1
            return "retry", self.store.mail_log(lead_id)
        except SendRejected as error:
            self._not_sent(sequence, version, email)
            result.outcomes["rejected"] += 1
            result.failures.append({"lead_id": lead_id, "sequence_id": sequence.id, "error": f"rejected {error}"})
            return "taken", log  # this step's email: never retried
        except SendUncertain:
            # It may have gone out: the claim stays, and the step waits for SES's Send event
            # (sent again only if none comes within the store's CONFIRM_WINDOW; counted when it is
            # confirmed or sent again). Marked only within UNCERTAIN_MARK_WITHIN of the call's
            # start, which a Send event relies on to leave a send it finds unmarked as it is; later,
            # the claim stands as sent (and stays counted).
            if self.store.mark_uncertain(lead_id, email.message_id, now, began + UNCERTAIN_MARK_WITHIN):
                self._not_sent(sequence, version, email)
                result.outcomes["uncertain"] += 1
            else:
                result.outcomes["uncertain_unmarked"] += 1
            return "retry", self.store.mail_log(lead_id)
        result.sent += 1
        return "sent", log

    def _not_sent(self, sequence: Sequence, version: int, email: EmailToSend) -> None:
        """Take back the ``sent`` counted as the email was claimed: it did not go out (or may not have)."""
        self.counts.add(sequence.id, version, email.step_id, email.variant, "sent", -1)

    def _render(self, sequence: Sequence, email: EmailToSend, lead: LeadView, now: datetime) -> RenderedEmail:
        """The email for this lead, with its signed links and the send time as its Date.

        Raises:
            TemplateProblem: it cannot be rendered for this lead.
        """
        messaging = self.messaging
        sender = sender_of(  # made once per distinct sender, not per email
            email.sender or messaging.from_address,
            email.sender_name or messaging.from_name,
            messaging.reply_to,
            messaging.postal_address,
        )
        signed = self.tokens.links(lead.lead_id, email.message_id, sequence.id, now)
        links: LinkSigner = signed
        if email.transactional and not may_track(None, lead.profile, self.workspace.consent):
            links = UntrackedLinks(signed)
        rendered = self.renderer.render(
            email.template,
            email.subject,
            _personal(lead.profile),
            {"sequence": sequence.id, "step": email.step_id, "variant": email.variant},
            sender,
            links,
        )
        rendered.headers["Date"] = _date_header(now)  # the send time on the service's clock
        return rendered

    def _take_slot(self) -> bool:
        """One send within the account's SES rate, shared by all workers (waits up to ``SLOT_WAITS`` seconds).

        Slots are taken from the shared counter of the current second in blocks (one write per
        ``slot_block(rate)`` sends); a block's unused slots lapse with their second, so the rate is
        never exceeded, only sometimes not used in full."""
        rate = self.messaging.send_rate_per_second
        for _ in range(SLOT_WAITS):
            with self._slot_lock:
                second = int(self._wall())
                if second != self._slot_second:
                    self._slots, self._slot_second = 0, second
                if self._slots > 0:
                    self._slots -= 1
                    return True
                # Once this second's counter was found full, the other workers waiting on the lock
                # do not ask it again (each refused conditional update is a billed write: at
                # 20/s, 8 workers asking made ~0.3 counter writes per email instead of ~0.05).
                got = 0 if second == self._spent_second else self.store.take_send_slots(slot_block(rate), rate, second)
                if got:
                    self._slots = got - 1
                    return True
                self._spent_second = second
            # This second is used up: try again when the next one starts (jittered, so that
            # the workers waiting for it do not all write the counter at the same instant).
            self._sleep(1 - self._wall() % 1 + random.uniform(0, 0.1))  # noqa: S311 - jitter, not secrecy  # nosec B311
        return False


def _consent(profile: Mapping[str, Any]) -> Mapping[str, Any]:
    """The lead's marketing email consent as its profile keeps it (empty when none)."""
    consent = profile.get("consent_marketing_email")
    return consent if isinstance(consent, Mapping) else {}


def _erasure_lifted(entry: Mapping[str, Any], profile: Mapping[str, Any]) -> bool:
    """Whether a suppression entry was made only by an erasure that the person's later consent on a
    form lifts (a consent stated through the admin API or an import never lifts a suppression)."""
    consent = _consent(profile)
    consent_at = str(consent.get("at") or "")
    return entry.get("reason") == "erased" and bool(consent.get("form_id")) and consent_at > str(entry.get("at") or "~")


@lru_cache(maxsize=8)
def _date_header(now: datetime) -> str:
    """The Date header of a batch's emails (one ``now`` per batch: formatted once)."""
    return format_datetime(now)


def slot_block(rate: int) -> int:
    """Send slots one worker takes from the shared counter at a time: ``SLOT_BLOCK``, or at a high
    rate one broadcast part's share of it (``broadcast_parts``: ~``PART_RATE``), never more than the
    rate. A part then takes one block a second and uses it whole: a bigger block would lapse half
    unused while other parts wait for the next second (the rate not reached), a smaller one costs
    more counter writes."""
    return min(rate, max(SLOT_BLOCK, math.ceil(rate / broadcast_parts(rate))))
