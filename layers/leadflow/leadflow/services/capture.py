"""Capturing a form post: validate, de-duplicate, store, or keep it for replay."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from leadflow.config.workspace import Workspace
from leadflow.domain.definitions.forms import TIMESTAMP_FIELD
from leadflow.domain.errors import StorageUnavailable
from leadflow.domain.ids import new_id
from leadflow.domain.leads import CapturePlan
from leadflow.domain.ratelimit import RateWindow, rate_window
from leadflow.domain.submissions import (
    ClientInfo,
    FormPost,
    Submission,
    payload_digest,
    spam_verdict,
    trim_raw_fields,
    validate_submission,
)
from leadflow.domain.tokens import InvalidToken, TokenKind, verify
from leadflow.ports.clock import Clock
from leadflow.ports.leads import IntakeQueue, LeadStore, SpamRecord, StoredCapture

INTAKE_MESSAGE_VERSION = 1


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    QUEUED = "queued"
    SPAM = "spam"


@dataclass(frozen=True)
class CaptureResult:
    outcome: Outcome
    lead_id: str | None = None
    submission_id: str | None = None
    replayed: bool = False


class CaptureService:
    """Takes form posts for every form of one workspace."""

    def __init__(  # noqa: PLR0917 - the service's ports and settings
        self,
        workspace: Workspace,
        store: LeadStore,
        intake: IntakeQueue,
        clock: Clock,
        rate_limit_per_minute: int,
        keys: Callable[[], list[bytes]] | None = None,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.intake = intake
        self.clock = clock
        self.rate_limit_per_minute = rate_limit_per_minute
        self._keys = keys

    def capture(self, form_id: str, post: FormPost) -> CaptureResult:
        """Capture one post of ``form_id``.

        Returns:
            CREATED or UPDATED with the lead id and the submission id; SPAM (answered like a
            success, kept only as spam); QUEUED when the store was unavailable and the post
            went to the intake queue for replay.

        Raises:
            FormNotFound, InvalidSubmission: bad input, nothing stored.
            IdempotencyConflict: the idempotency key or nonce was used for another payload.
            RateLimited: too many posts from this client this minute.
            IntakeUnavailable: neither the store nor the intake queue took the post.
        """
        form = self.workspace.form(form_id)
        now = self.clock.now()
        window = rate_window(post.client.ip, now, self.rate_limit_per_minute)
        flags: list[str] = []
        reason = spam_verdict(form, post.fields, now, self._keys_for(post), flags)
        if reason is not None:
            return self._spam(form_id, post, now, reason.value, window)
        submission = validate_submission(form, post, now)
        submission.flags.extend(flags)
        identified = self.identified_lead(post.identity_token, now)
        # Every post carries an idempotency key into its transaction (the client's, or one of
        # its own): when a write's outcome is unknown (a timeout) and the post is queued, the
        # replay then finds the write if it did land, and stores nothing twice.
        submission_id = new_id(now)
        key = submission.idempotency_key or f"post-{submission_id}"
        plan = self._plan(now, submission, key, submission_id, identified, payload_digest(post.fields))
        try:
            stored = self.store.capture(plan, window, now.date().isoformat())
        except StorageUnavailable:
            return self._enqueue(form_id, post, now, submission_id, key, identified)
        return self._result(stored)

    def replay(self, message: dict[str, Any]) -> CaptureResult:
        """Store a post that the intake queue kept, as it was when it arrived.

        Idempotent: the queued post carries a key, so replaying it twice stores it once.
        Not rate limited (it was counted when it arrived). Raises like ``capture``, and
        StorageUnavailable when the store is still down (the message is retried).
        """
        form = self.workspace.form(message["form_id"])
        received_at = datetime.fromisoformat(message["received_at"])
        post = FormPost(
            fields={k: list(v) for k, v in message["fields"].items()},
            client=ClientInfo(**message["client"]),
            idempotency_key=message["idempotency_key"],
        )
        flags: list[str] = []
        reason = spam_verdict(form, post.fields, received_at, self._keys_for(post), flags)
        if reason is not None:
            return self._spam(form.id, post, received_at, reason.value, None)
        submission = validate_submission(form, post, received_at)
        submission.flags.extend(flags)
        plan = self._plan(
            received_at,
            submission,
            message["idempotency_key"],
            message.get("submission_id", ""),
            message.get("identified_lead_id"),
            payload_digest(post.fields),
        )
        return self._result(self.store.capture(plan, None, received_at.date().isoformat()))

    def identified_lead(self, token: str | None, now: datetime) -> str | None:
        """The lead leadflow's signed visitor cookie names (set by a tracked click), or None."""
        if not token or self._keys is None:
            return None
        try:
            return verify(token, self._keys(), TokenKind.IDENTITY, now).lead_id
        except InvalidToken:
            return None

    def _keys_for(self, post: FormPost) -> list[bytes]:
        """The signing keys, fetched only for a post with a signed render time to check."""
        rendered = post.fields.get(TIMESTAMP_FIELD) or [""]
        return self._keys() if self._keys is not None and "." in rendered[0] else []

    @staticmethod
    def _result(stored: StoredCapture) -> CaptureResult:
        outcome = Outcome.CREATED if stored.created else Outcome.UPDATED
        return CaptureResult(outcome, stored.lead_id, submission_id=stored.submission_id, replayed=stored.replayed)

    def _plan(  # noqa: PLR0917 - a plan is made of these
        self, now: datetime, submission: Submission, key: str, submission_id: str, identified: str | None, digest: str
    ) -> CapturePlan:
        return CapturePlan(
            submission=submission,
            activity_id=new_id(now),
            new_lead_id=new_id(now),
            event_ids=(new_id(now), new_id(now)),
            idempotency_key=key,
            submission_id=submission_id,
            identified_lead_id=identified,
            payload_digest=digest,
        )

    def _spam(
        self, form_id: str, post: FormPost, now: datetime, reason: str, window: RateWindow | None
    ) -> CaptureResult:
        record = SpamRecord(form_id, reason, now.isoformat(), trim_raw_fields(post.fields), new_id(now))
        with contextlib.suppress(StorageUnavailable):  # spam is not worth a replay
            self.store.record_spam(record, window, now.date().isoformat())
        return CaptureResult(Outcome.SPAM, submission_id=new_id(now))

    def _enqueue(  # noqa: PLR0917 - what the queued message holds
        self, form_id: str, post: FormPost, now: datetime, submission_id: str, key: str, identified: str | None
    ) -> CaptureResult:
        self.intake.enqueue(
            {
                "kind": "form_submission",
                "version": INTAKE_MESSAGE_VERSION,
                "submission_id": submission_id,
                "form_id": form_id,
                "received_at": now.isoformat(),
                "fields": {k: list(v) for k, v in post.fields.items()},
                "client": asdict(post.client),
                "idempotency_key": key,
                "identified_lead_id": identified,
            }
        )
        return CaptureResult(Outcome.QUEUED, submission_id=submission_id)
