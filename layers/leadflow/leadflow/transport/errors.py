"""One table from domain errors to HTTP answers, used by every route.

Each row says, for one kind of error: its status, and what each kind of answer shows of it:

- ``message``: the sentence of a JSON answer (``{"message": ...}``: forms, admin API) and the
  heading of the form's HTML error page; empty means the error's own text (``BadPeriod``
  names the bad day);
- ``page``: the heading and sentence of the preference page's HTML answer;
- ``code``: the short code a machine caller gets (the CRM webhooks' ``{"error": ...}``);
- ``api``: the admin API's sentence where it differs from ``message`` (an API caller sends an
  ``Idempotency-Key`` header, a form a nonce);
- ``retry_after``: seconds for a ``Retry-After`` header, on routes a client retries by itself
  (forms, admin API); ``RateLimited`` carries its own.

A route picks the columns its answers use; no route maps an error to a status by itself.

Rows are keyed by the error class's dotted name, not the class: form capture's cold start then
loads none of the modules whose errors only other routes raise (tests/unit/test_http_errors.py
checks that every name is a class).
"""

from __future__ import annotations


class ErrorAnswer:
    """One row of the table (a plain class: this module is on form capture's cold start)."""

    __slots__ = ("api", "code", "message", "page", "retry_after", "status")

    def __init__(
        self,
        status: int,
        message: str = "",
        page: tuple[str, str] = ("", ""),
        code: str = "",
        *,
        retry_after: int | None = None,
        api: str = "",
    ) -> None:
        self.status, self.message, self.page, self.code, self.retry_after = status, message, page, code, retry_after
        self.api = api or message


NOT_CONFIGURED = ErrorAnswer(503, code="not_configured")
BAD_SIGNATURE = ErrorAnswer(401, code="invalid_signature")

ANSWERS: dict[str, ErrorAnswer] = {
    # Bodies (forms, preference page, CRM webhooks)
    "leadflow.domain.errors.MalformedBody": ErrorAnswer(
        400, "The request body could not be read.", ("Bad request", "The request could not be read.")
    ),
    "builtins.UnicodeDecodeError": ErrorAnswer(400, code="body is not UTF-8"),
    "leadflow.domain.errors.PayloadTooLarge": ErrorAnswer(
        413, "The submission is too large.", ("Too large", "The request was too large.")
    ),
    "leadflow.domain.errors.UnsupportedContentType": ErrorAnswer(
        415,
        "Send the form as urlencoded, multipart/form-data or JSON.",
        ("Unsupported", "Send a form (urlencoded or multipart)."),
        "unsupported content type",
    ),
    # Form capture
    "leadflow.domain.errors.InvalidSubmission": ErrorAnswer(422, "Some fields are not valid."),
    "leadflow.errors.FormNotFound": ErrorAnswer(404, "There is no such form."),
    "leadflow.domain.errors.IdempotencyConflict": ErrorAnswer(
        409,
        "This idempotency key or form nonce was already used for another submission.",
        api="This Idempotency-Key was used for another request.",
    ),
    "leadflow.domain.errors.AddressTaken": ErrorAnswer(409, "Another lead has that address (one lead per person)."),
    "leadflow.domain.errors.SegmentNotFound": ErrorAnswer(404, "No segment by that id in segments.yaml."),
    "leadflow.domain.errors.BadCursor": ErrorAnswer(
        400, "This cursor was not handed out for this list; start without one."
    ),
    "leadflow.domain.errors.RateLimited": ErrorAnswer(
        429, "Too many submissions from your address; try again in a minute."
    ),
    "leadflow.domain.errors.IntakeUnavailable": ErrorAnswer(
        503, "We could not take your submission right now; please try again.", retry_after=30
    ),
    # Admin API and reports
    "leadflow.domain.errors.LeadNotFound": ErrorAnswer(404, "There is no such lead."),
    "leadflow.domain.errors.StorageUnavailable": ErrorAnswer(
        503,
        "The table cannot take this now; try again (an interrupted erasure resumes).",
        code="unavailable",
        retry_after=5,
    ),
    "leadflow.domain.handoff.HandoffDisabled": ErrorAnswer(409, "Hand-offs are switched off in handoff.yaml."),
    "leadflow.domain.report_views.BadPeriod": ErrorAnswer(400),
    # Signed links and webhooks
    "leadflow.domain.tokens.InvalidToken": ErrorAnswer(
        404, page=("Link not valid", "This link is not valid or has expired. Nothing was changed.")
    ),
    "leadflow.domain.crm_feedback.InvalidSignature": BAD_SIGNATURE,
    "leadflow.domain.webhook_signing.WebhookSignatureError": BAD_SIGNATURE,
    "leadflow.domain.crm_feedback.MalformedFeedback": ErrorAnswer(400, code="malformed"),
    "leadflow.ports.secrets.MissingSecret": NOT_CONFIGURED,
    "leadflow.domain.webhook_signing.WebhookSecretError": NOT_CONFIGURED,
    "leadflow.domain.crm_feedback.WeakEndpointToken": NOT_CONFIGURED,
}


def answer_for(error: BaseException) -> ErrorAnswer:
    """The row of ``error``'s class, or of its nearest base class in the table.

    Raises:
        KeyError: the table has no row for it (a bug: the caller caught what it cannot answer).
    """
    return answer_for_class(type(error))


def answer_for_class(error_class: type[BaseException]) -> ErrorAnswer:
    """``answer_for`` of an error of this class."""
    for kind in error_class.__mro__:
        answer = ANSWERS.get(f"{kind.__module__}.{kind.__qualname__}")
        if answer is not None:
            return answer
    raise KeyError(error_class.__name__)


def message_of(error: BaseException, api: bool = False) -> str:
    """The sentence a JSON answer shows (``api``: the admin API's): the table's, or the error's own text."""
    answer = answer_for(error)
    return (answer.api if api else answer.message) or str(error)


def retry_after(error: BaseException) -> str | None:
    """The ``Retry-After`` value for ``error`` (seconds), or None."""
    seconds_of_its_own = getattr(error, "retry_after_seconds", None)  # RateLimited
    if isinstance(seconds_of_its_own, int):
        return str(max(1, seconds_of_its_own))
    seconds = answer_for(error).retry_after
    return None if seconds is None else str(seconds)
