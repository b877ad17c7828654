"""Sending email with SESv2 ``SendEmail`` (raw MIME, so every header we set is kept)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from leadflow.adapters.aws import LazyClient
from leadflow.domain.rendering import RenderedEmail

THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}
)
REJECTED_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "BadRequestException",
        "NotFoundException",
    }
)


class SendThrottled(Exception):
    """SES kept refusing for the send rate after backing off: try again later."""


class SendRejected(Exception):
    """SES refused this message for good (or the account cannot send): do not retry it as is."""


class SendUncertain(Exception):
    """No answer from SES (timeout, connection lost): it may have sent. Never retried."""


def mime(email: RenderedEmail, to: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = email.from_header
    message["To"] = to
    message["Subject"] = email.subject
    message["Date"] = email.headers.get("Date") or formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=message_id.replace("_", "-"), domain="leadflow.local")
    message["X-Leadflow-Message"] = message_id
    for name, value in email.headers.items():
        if name != "Date":
            message[name] = value
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message.as_bytes()


class SesEmailSender(LazyClient):
    """``EmailSender`` on SESv2, with the configuration set that routes SES events back to leadflow."""

    SERVICE = "sesv2"

    def __init__(
        self,
        configuration_set: str,
        client: Any = None,
        retries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.configuration_set = configuration_set
        self._client = client
        self.retries = retries
        self._sleep = sleep

    def send(self, email: RenderedEmail, to: str, message_id: str, tags: dict[str, str]) -> str:
        """Send one email; returns SES's message id.

        Raises:
            SendThrottled: still throttled after exponential backoff with jitter.
            SendRejected: refused for good.
        """
        raw = mime(email, to, message_id)
        request: dict[str, Any] = {
            "Destination": {"ToAddresses": [to]},
            "Content": {"Raw": {"Data": raw}},
            "EmailTags": [{"Name": k, "Value": v} for k, v in tags.items()],
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        for attempt in range(self.retries + 1):
            try:
                answer = self.client.send_email(**request)
                return str(answer.get("MessageId", ""))
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code in THROTTLING_CODES:
                    if attempt == self.retries:
                        raise SendThrottled(code) from error
                    self._sleep(random.uniform(0, 0.1 * 2**attempt))  # full jitter
                    continue
                raise SendRejected(code or "ClientError") from error
            except BotoCoreError as error:
                # Not knowing whether SES took it, the ledger keeps the claim: never sent twice.
                raise SendUncertain(type(error).__name__) from error
        raise SendThrottled("retries exhausted")
