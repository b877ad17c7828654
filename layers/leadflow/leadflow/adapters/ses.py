"""Sending email with SESv2 ``SendEmail`` (raw MIME, so every header we set is kept).

The delivery policy (README, "Email delivery"; docs/reliability.md) decides every retry of
``SendEmail``, so the SDK makes none of its own (``SES_CLIENT_CONFIG``): an SDK retry after SES
took the message but answered 5xx sends it twice. What a failure means:

- throttled (``TooManyRequests``...), or no connection made: SES did not take it. Retried here
  with backoff, then ``SendThrottled`` (the caller releases its claim and tries later).
- refused (4xx: ``MessageRejected``, unverified sender, paused account...): ``SendRejected``,
  never retried.
- a 5xx, a lost connection or a read timeout: SES may or may not have taken it:
  ``SendUncertain``. The caller keeps its claim and waits for SES's own answer, the ``Send``
  event the configuration set publishes for every message it takes (``confirm_send``); without
  one within ``CONFIRM_WINDOW`` the message was not taken and is sent again.
"""

from __future__ import annotations

import binascii
import random
import re
import time
from collections.abc import Callable
from email import policy as email_policy
from email.utils import formatdate, make_msgid
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from leadflow.adapters.aws import CLIENT_CONFIG, LEAN_CONFIG, LazyClient
from leadflow.domain.rendering import RenderedEmail
from leadflow.ports.messaging import SendRejected, SendThrottled, SendUncertain

THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "Throttling", "ThrottlingException", "LimitExceededException"}
)
# 5xx codes SES answers (a ClientError whose status is lost counts by its code).
SERVER_ERROR_CODES = frozenset(
    {"InternalFailure", "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException"}
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


# One attempt per call: the retries are the delivery policy's (below and in the nurture service).
SES_CLIENT_CONFIG = CLIENT_CONFIG.merge(LEAN_CONFIG).merge(
    Config(retries={"mode": "standard", "total_max_attempts": 1})
)
# Failures that prove the request never reached SES (nothing can have been sent).
NOT_SENT_ERRORS = (EndpointConnectionError, ConnectTimeoutError)


RAW_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post"})
"""Headers written as they are, never folded or RFC 2047-encoded: an https URL in angle brackets
(RFC 2369, RFC 8058) is no text an encoded word may stand for. The email package folds a long
``List-Unsubscribe`` into ``=?utf-8?q?...?=`` words, which mail clients do not read as a URL."""
MAX_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be no longer than 78 characters
MAX_HEADER_LINE = 998  # ... and MUST be no longer than 998
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII but ':' (RFC 5322 2.2)
_PRINTABLE = re.compile(r"^[ -~]*$")


def mime(email: RenderedEmail, to: str, message_id: str) -> bytes:
    """The raw message SES sends: headers, then a ``multipart/alternative`` of the text and HTML parts.

    Built directly (the email package's header registry, folding and content manager took ~2 ms of
    CPU per email, most of a broadcast's own work); the email package still folds and RFC
    2047-encodes any header that is not short printable ASCII (a subject with umlauts, a long
    display name), so such headers come out as it would write them. Parts are 7bit when ASCII with
    short lines, quoted-printable UTF-8 otherwise; line ends are LF, as the email package's
    default policy writes them.

    Raises:
        ValueError: a header value holds a CR or LF (or another control character).
    """
    headers: list[tuple[str, str]] = [
        ("From", email.from_header),
        ("To", to),
        ("Subject", email.subject),
        ("Date", email.headers.get("Date") or formatdate(localtime=False)),
        ("Message-ID", make_msgid(idstring=message_id.replace("_", "-"), domain="leadflow.local")),
        ("X-Leadflow-Message", message_id),
    ]
    headers += [(name, value) for name, value in email.headers.items() if name != "Date"]
    out = [_header(name, value) for name, value in headers]
    text, text_cte = _body(email.text)
    html, html_cte = _body(email.html)
    boundary = _boundary(text, html)
    out.append(f'MIME-Version: 1.0\nContent-Type: multipart/alternative;\n boundary="{boundary}"\n\n')
    for subtype, body, cte in (("plain", text, text_cte), ("html", html, html_cte)):
        out.append(f'--{boundary}\nContent-Type: text/{subtype}; charset="utf-8"\nContent-Transfer-Encoding: {cte}\n\n')
        out.append(body)
        out.append("\n")
    out.append(f"--{boundary}--\n")
    return "".join(out).encode("ascii")


def _header(name: str, value: str) -> str:
    """One header line, ending in LF: as it is when it is printable ASCII and short enough (or
    cannot be folded: no space to fold at, or a URL header), else folded and RFC 2047-encoded as
    the email package writes it."""
    if not _HEADER_NAME.match(name):
        raise ValueError(f"invalid header name {name!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} must not contain CR or LF")
    line = f"{name}: {value}"
    foldable = " " in value and name not in RAW_HEADERS
    if _PRINTABLE.match(value) and (len(line) <= MAX_LINE or (not foldable and len(line) <= MAX_HEADER_LINE)):
        return line + "\n"
    return email_policy.default.header_factory(name, value).fold(policy=email_policy.default)


def _body(content: str) -> tuple[str, str]:
    """A text part's body (LF line ends, a final newline) and its Content-Transfer-Encoding."""
    data = content.encode("utf-8")
    lines = data.splitlines()
    body = b"\n".join(lines) + b"\n"
    if body.isascii() and all(len(line) <= MAX_LINE for line in lines):
        return body.decode("ascii"), "7bit"
    return binascii.b2a_qp(body, istext=True).decode("ascii"), "quoted-printable"


def _boundary(*bodies: str) -> str:
    """A multipart boundary that no body line starts with (``=_`` never starts quoted-printable text)."""
    while True:
        boundary = f"=_leadflow_{random.getrandbits(96):024x}"  # nosec B311 # unique, not secret
        if not any(f"--{boundary}" in body for body in bodies):
            return boundary


class SesEmailSender(LazyClient):
    """``EmailSender`` on SESv2, with the configuration set that routes SES events back to leadflow."""

    SERVICE = "sesv2"
    CONFIG = SES_CLIENT_CONFIG

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
            SendThrottled: not taken: still throttled after exponential backoff with jitter, or SES
                could not be reached.
            SendRejected: refused for good (a 4xx).
            SendUncertain: a 5xx or a lost answer: SES may have taken it.
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
                status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                if code in THROTTLING_CODES:
                    if attempt == self.retries:
                        raise SendThrottled(code) from error
                    self._sleep(random.uniform(0, 0.1 * 2**attempt))  # nosec B311 # jitter, not secrecy
                    continue
                if status >= 500 or code in SERVER_ERROR_CODES:
                    raise SendUncertain(code or str(status)) from error
                raise SendRejected(code or "ClientError") from error
            except NOT_SENT_ERRORS as error:
                raise SendThrottled(type(error).__name__) from error
            except BotoCoreError as error:
                raise SendUncertain(type(error).__name__) from error
        raise SendThrottled("retries exhausted")


class SesAccountRate(LazyClient):
    """The account's SES maximum send rate (SESv2 ``GetAccount``: ``SendQuota.MaxSendRate``, emails
    a second), read to size a broadcast's parts."""

    SERVICE = "sesv2"

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def __call__(self) -> float | None:
        """The rate, or None when SES does not answer it (no permission, an outage, or the local
        stack, whose moto does not implement ``GetAccount``): the configured rate is used then."""
        try:
            quota = self.client.get_account().get("SendQuota") or {}
        except (ClientError, BotoCoreError, NotImplementedError):
            return None
        rate = quota.get("MaxSendRate")
        return float(rate) if rate else None
