"""The one table from domain errors to HTTP answers (``transport/errors.py``)."""

from __future__ import annotations

import importlib

import pytest

from leadflow.domain.errors import IdempotencyConflict, IntakeUnavailable, LeadNotFound, RateLimited, StorageUnavailable
from leadflow.domain.handoff import HandoffDisabled
from leadflow.domain.report_views import BadPeriod
from leadflow.transport.errors import ANSWERS, answer_for, message_of, retry_after

pytestmark = pytest.mark.unit


def test_every_row_names_an_error_class_and_says_something():
    # GIVEN the table (keyed by dotted names: form capture loads none of the other routes' modules)
    for name, answer in ANSWERS.items():
        module, _, qualname = name.rpartition(".")
        kind = getattr(importlib.import_module(module), qualname)
        # THEN each name is an exception class, its row a 4xx or 503 that says something
        assert isinstance(kind, type) and issubclass(kind, Exception), name
        assert f"{kind.__module__}.{kind.__qualname__}" == name, name
        assert 400 <= answer.status < 500 or answer.status == 503, name
        assert answer.message or answer.code or answer.page[0] or kind is BadPeriod, name


def test_an_error_is_answered_by_its_own_row_or_its_nearest_base():
    # GIVEN a subclass of a row's error, and an error with no row
    class Gone(LeadNotFound):
        pass

    # THEN the subclass gets its base's answer; an unknown error is a bug, not a silent 500
    assert answer_for(Gone("x")) is ANSWERS["leadflow.domain.errors.LeadNotFound"]
    assert answer_for(HandoffDisabled("off")).status == 409
    with pytest.raises(KeyError):
        answer_for(RuntimeError("no row"))


def test_messages_and_retry_after():
    # GIVEN errors with a fixed sentence, their own text, and a wait
    assert message_of(LeadNotFound("lead-1")) == "There is no such lead."
    assert message_of(BadPeriod("from is after to")) == "from is after to"
    # AND the admin API words an idempotency conflict for its header, a form for its nonce
    assert message_of(IdempotencyConflict(), api=True) == "This Idempotency-Key was used for another request."
    assert "form nonce" in message_of(IdempotencyConflict())
    assert message_of(LeadNotFound("x"), api=True) == "There is no such lead."
    # THEN Retry-After comes from the error when it carries one, else from the table
    assert retry_after(RateLimited(0)) == "1"
    assert retry_after(RateLimited(42)) == "42"
    assert retry_after(IntakeUnavailable()) == "30"
    assert retry_after(StorageUnavailable()) == "5"
    assert retry_after(LeadNotFound("x")) is None


def test_form_capture_loads_no_other_routes_error_modules():
    # GIVEN a fresh interpreter
    import subprocess
    import sys

    code = "import sys, leadflow.transport.forms; print(sorted(m for m in sys.modules if m.startswith('leadflow')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # WHEN form capture's transport is imported
    # THEN the errors of the CRM, hand-off and report routes are not loaded with it
    for module in ("crm_feedback", "handoff", "report_views", "webhook_signing"):
        assert f"leadflow.domain.{module}'" not in loaded, module
