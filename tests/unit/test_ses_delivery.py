"""The email delivery policy at the SES adapter: which SendEmail failures mean what, and who retries.

README "Email delivery": throttled or unreachable -> not sent (retried); 4xx -> refused (never
retried); 5xx or a lost answer -> uncertain (SES's Send event decides). The SDK itself never
retries SendEmail: its retry after SES took a message but answered 5xx would send it twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from leadflow.adapters.ses import SES_CLIENT_CONFIG, SesEmailSender
from leadflow.domain.rendering import RenderedEmail
from leadflow.domain.ses_parsing import parse_message
from leadflow.ports.messaging import SendRejected, SendThrottled, SendUncertain
from leadflow.services.feedback import FeedbackService
from tests.conftest import EXTERNAL, load_json

pytestmark = pytest.mark.unit

EMAIL = RenderedEmail("Hi", "<p>Hi</p>", "Hi", "Example <news@example.com>", {}, ())


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail")


class FakeSesClient:
    """sesv2's ``send_email``: raises the given failures in turn, then answers with a message id."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    def send_email(self, **request: Any) -> dict[str, str]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"MessageId": f"ses-{self.calls}"}


def sender(client: FakeSesClient) -> SesEmailSender:
    return SesEmailSender("leadflow", client=client, retries=4, sleep=lambda _: None)


@pytest.mark.parametrize(
    "failure",
    [
        client_error("InternalFailure", 500),
        client_error("ServiceUnavailable", 503),
        client_error("SomethingNew", 502),
        ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://email.us-east-1.amazonaws.com"),
    ],
    ids=["500", "503", "unknown-5xx", "read-timeout", "connection-closed"],
)
def test_a_5xx_or_a_lost_answer_is_uncertain_and_never_retried_here(failure: Exception) -> None:
    # GIVEN SES failing after the request may have reached it
    client = FakeSesClient(failure)
    # WHEN one email is sent THEN the caller learns it may have gone out, after exactly one call
    with pytest.raises(SendUncertain):
        sender(client).send(EMAIL, "ada@example.com", "m-1", {"lead": "L"})
    assert client.calls == 1


@pytest.mark.parametrize(
    "failure",
    [
        EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"),
    ],
    ids=["no-endpoint", "connect-timeout"],
)
def test_no_connection_means_not_sent(failure: Exception) -> None:
    with pytest.raises(SendThrottled):
        sender(FakeSesClient(failure)).send(EMAIL, "ada@example.com", "m-1", {})


def test_throttling_is_retried_with_backoff_then_reported_not_sent() -> None:
    # GIVEN SES throttling twice THEN the third try sends it
    client = FakeSesClient(client_error("TooManyRequestsException", 429), client_error("Throttling", 400))
    assert sender(client).send(EMAIL, "ada@example.com", "m-1", {}) == "ses-3"
    # AND throttling beyond the retries is "not sent" (the caller releases its claim)
    always = FakeSesClient(*[client_error("TooManyRequestsException", 429)] * 5)
    with pytest.raises(SendThrottled):
        sender(always).send(EMAIL, "ada@example.com", "m-2", {})
    assert always.calls == 5


@pytest.mark.parametrize("code", ["MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException"])
def test_a_4xx_is_a_refusal_never_retried(code: str) -> None:
    client = FakeSesClient(client_error(code, 400))
    with pytest.raises(SendRejected):
        sender(client).send(EMAIL, "ada@example.com", "m-1", {})
    assert client.calls == 1


def test_the_sdk_makes_one_attempt_per_send_email(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the client the adapter builds (no request is made)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    built = SesEmailSender("leadflow").client
    # THEN botocore will not repeat a SendEmail on its own (a repeat after SES took it is a duplicate)
    assert SES_CLIENT_CONFIG.retries == {"mode": "standard", "total_max_attempts": 1}
    assert built.meta.config.retries["total_max_attempts"] == 1
    # AND the timeouts stay leadflow's
    assert (built.meta.config.connect_timeout, built.meta.config.read_timeout) == (2, 5)


# ---------------------------------------------------------------------------- SES's answer


class FakeFeedbackStore:
    def __init__(self) -> None:
        self.writes: list[Any] = []

    def lead_id_for_email(self, email_key: str) -> str | None:
        return None

    def record_feedback(self, write: Any) -> bool:
        self.writes.append(write)
        return True


class FakeConfirmations:
    def __init__(self) -> None:
        self.confirmed: list[tuple[str, str, datetime, datetime]] = []

    def confirm_send(self, lead_id: str, message_id: str, accepted_at: datetime, now: datetime) -> bool:
        self.confirmed.append((lead_id, message_id, accepted_at, now))
        return True


def test_a_send_event_confirms_the_send_leadflow_made_and_a_delivery_changes_nothing() -> None:
    # GIVEN SES's Send event (the documented sample) of an email leadflow sent: its tags and header
    event = load_json(EXTERNAL / "ses" / "awsdocs_eventpublishing_Send.json")
    event["mail"]["tags"]["lead"] = ["01KLEAD"]
    event["mail"]["headers"].append({"name": "X-Leadflow-Message", "value": "01KLEAD-welcome-1"})
    other = load_json(EXTERNAL / "ses" / "awsdocs_eventpublishing_Delivery.json")
    other["mail"]["tags"]["lead"] = ["01KLEAD"]
    other["mail"]["headers"].append({"name": "X-Leadflow-Message", "value": "01KLEAD-welcome-1"})
    confirmations = FakeConfirmations()
    now = datetime(2026, 12, 1, tzinfo=UTC)

    class Clock:
        def now(self) -> datetime:
            return now

    store = FakeFeedbackStore()
    service = FeedbackService(store, Clock(), str.casefold, confirmations)
    # WHEN it and a Delivery (not published by the template; an operator may add it) are applied
    applied = [service.handle(feedback) for message in (event, other) for feedback in parse_message(message)]
    # THEN the Send event, and only it, goes to the mail log, with when SES took the email and now
    # (MailLog.confirmation_needed decides from those whether to write)
    accepted = datetime.fromisoformat(event["mail"]["timestamp"].replace("Z", "+00:00"))
    assert confirmations.confirmed == [("01KLEAD", "01KLEAD-welcome-1", accepted, now)]
    assert applied == [True, False]
    # AND neither records an activity, an event or anything else (one of each per email: issue 17)
    assert store.writes == []


def test_send_and_delivery_events_of_an_email_leadflow_did_not_log_change_nothing() -> None:
    # GIVEN SES's Send and Delivery samples as they are: no lead tag, no leadflow message header
    confirmations = FakeConfirmations()
    store = FakeFeedbackStore()

    class Clock:
        def now(self) -> datetime:
            return datetime(2026, 12, 1, tzinfo=UTC)

    service = FeedbackService(store, Clock(), str.casefold, confirmations)
    # WHEN they are applied
    applied = [
        service.handle(feedback)
        for name in ("awsdocs_eventpublishing_Send.json", "awsdocs_eventpublishing_Delivery.json")
        for feedback in parse_message(load_json(EXTERNAL / "ses" / name))
    ]
    # THEN nothing is confirmed and nothing written
    assert applied == [False, False]
    assert (confirmations.confirmed, store.writes) == ([], [])


# ---------------------------------------------------------------------------- the mail log's rules


def test_an_ambiguous_send_waits_for_its_confirmation_then_is_sent_again_or_never() -> None:
    from datetime import timedelta

    from leadflow.domain.nurture.mail_log import CONFIRM_WINDOW, MailLog

    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    # GIVEN a claimed send, never claimed before
    log = MailLog()
    assert log.claim_state("m-1", now) == "new"
    claimed = log.claimed("m-1", {"s": "welcome"}, now)
    assert claimed.claim_state("m-1", now) == "taken"  # sent: never again
    # WHEN its SendEmail failed ambiguously
    uncertain = claimed.marked("m-1", {"u": now.isoformat()})
    # THEN it waits for SES's Send event, and is claimed again only after the window without one
    assert uncertain.claim_state("m-1", now + CONFIRM_WINDOW - timedelta(seconds=1)) == "unconfirmed"
    assert uncertain.claim_state("m-1", now + CONFIRM_WINDOW) == "resend"
    again = uncertain.claimed("m-1", {"s": "welcome"}, now + CONFIRM_WINDOW)
    assert [s["m"] for s in again.sends] == ["m-1"] and "u" not in again.sends[0]  # one claim, fresh
    # AND once confirmed it is never sent again, however late: the first claim after the
    # confirmation counts it as sent (it marks the send counted), every later one finds it taken
    confirmed = uncertain.marked("m-1", {"c": True})
    assert confirmed.claim_state("m-1", now + timedelta(days=1)) == "confirmed"
    state, counted = confirmed.claim("m-1", {"s": "welcome"}, now + timedelta(days=1))
    assert state == "confirmed" and counted is not None and counted.sends[0]["k"] is True
    assert counted.claim("m-1", {"s": "welcome"}, now + timedelta(days=2)) == ("taken", None)
    # AND a Send event applied before the send was marked uncertain (the answer lost, the event
    # quicker) is counted the same way
    early = claimed.marked("m-1", {"c": True}).marked("m-1", {"u": now.isoformat()})
    assert early.claim_state("m-1", now) == "confirmed"
    # AND a send that never was uncertain is counted when it was sent, never by its confirmation
    assert claimed.marked("m-1", {"c": True}).claim("m-1", {"s": "welcome"}, now) == ("taken", None)
