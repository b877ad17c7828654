"""Domain outcomes that are not successes: one exception class per outcome.

Transports map each class to a response once (see ``leadflow.transport.http``); nothing
matches on message text.
"""

from __future__ import annotations

from dataclasses import dataclass


class LeadflowError(Exception):
    """Base of every outcome leadflow reports to a caller."""


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


class FormNotFound(LeadflowError):
    """No form with that id in the workspace (404)."""


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


class InvalidWorkspace(LeadflowError):
    """A workspace file breaks its schema; the message names the file and the field."""
