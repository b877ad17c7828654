"""Domain outcomes that are not successes: one exception class per outcome.

Transports map each class to a response once (see ``leadflow.transport.http``); nothing
matches on message text.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.errors import FormNotFound, InvalidWorkspace, LeadflowError


@dataclass(frozen=True)
class FieldError:
    """One bad field of a submission: its name and why it was refused."""

    field: str
    message: str


class InvalidSubmission(LeadflowError):
    """The submission's fields break the form's rules (422)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


class MalformedBody(LeadflowError):
    """The body cannot be decoded in its declared content type (400)."""


class UnsupportedContentType(LeadflowError):
    """The content type is not one a form accepts (415)."""


class PayloadTooLarge(LeadflowError):
    """The body is over the size limit (413)."""


class IdempotencyConflict(LeadflowError):
    """The idempotency key (or form nonce) was used for another payload (409)."""


class RateLimited(LeadflowError):
    """Too many posts from one client in the current window (429)."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("rate limited")
        self.retry_after_seconds = retry_after_seconds


class StorageUnavailable(LeadflowError):
    """The lead store could not take the write (throttled or down); the caller falls back."""


class IntakeUnavailable(LeadflowError):
    """Neither the lead store nor the intake queue took the submission (503)."""


class LeadNotFound(LeadflowError):
    """No lead with that id (404)."""


class AddressTaken(LeadflowError):
    """A lead's new address is another lead's (409): one lead per person."""


class BadCursor(LeadflowError):
    """A page cursor that this API did not hand out (400)."""


class SegmentNotFound(LeadflowError):
    """No segment by that id in segments.yaml (404)."""


__all__ = [
    "AddressTaken",
    "BadCursor",
    "FieldError",
    "FormNotFound",
    "IdempotencyConflict",
    "IntakeUnavailable",
    "InvalidSubmission",
    "InvalidWorkspace",
    "LeadNotFound",
    "LeadflowError",
    "MalformedBody",
    "PayloadTooLarge",
    "RateLimited",
    "SegmentNotFound",
    "StorageUnavailable",
    "UnsupportedContentType",
]


class SignInCodeRefused(LeadflowError):
    """The user pool's token endpoint refused a sign-in code (spent, expired, another verifier or
    callback URL), or could not be reached: the person signs in again."""
