"""The minimum fill time on any site and idempotency keys tied to their payload (issue 13, defect 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow.domain.definitions.forms import FormDefinition
from leadflow.domain.submissions import SpamReason, payload_digest, spam_verdict
from leadflow.domain.tokens import InvalidToken, sign_render_time, verify_render_time

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
KEY = b"k" * 32
FORM = FormDefinition.model_validate(
    {"id": "f", "name": "F", "thank_you_url": "/t", "min_fill_seconds": 3, "fields": [{"name": "email"}]}
)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def verdict(ts: str | None) -> tuple[SpamReason | None, list[str]]:
    flags: list[str] = []
    fields = {"email": ["a@example.com"], **({"_lf_ts": [ts]} if ts is not None else {})}
    return spam_verdict(FORM, fields, NOW, [KEY], flags), flags


def test_a_signed_render_time_round_trips():
    assert verify_render_time(sign_render_time(1_700_000_000_123, KEY), [b"old" * 11, KEY]) == 1_700_000_000_123


@pytest.mark.parametrize(
    "text", ["", "123", "123.", ".abc", "12a.abc", "1700000000123.AAAAAAAAAAAAAAAAAAAAAA", "１２.abc", "1.é"]
)
def test_a_forged_render_time_is_refused(text: str):
    with pytest.raises(InvalidToken):
        verify_render_time(text, [KEY])


def test_a_signed_time_too_recent_is_spam_and_an_old_enough_one_is_not():
    assert verdict(sign_render_time(ms(NOW - timedelta(seconds=1)), KEY)) == (SpamReason.TOO_FAST, [])
    assert verdict(sign_render_time(ms(NOW - timedelta(seconds=10)), KEY)) == (None, [])


def test_rewriting_the_signed_time_does_not_bypass_the_check():
    # GIVEN a bot that moves the signed time back by an hour, keeping the signature
    genuine = sign_render_time(ms(NOW - timedelta(seconds=1)), KEY)
    forged = f"{ms(NOW - timedelta(hours=1))}.{genuine.split('.')[1]}"
    # THEN it is not judged a human, and the forgery is flagged (counted by the caller)
    assert verdict(forged) == (None, ["forged_render_time"])


@pytest.mark.parametrize(
    ("ts", "flag"),
    [
        (None, "missing_render_time"),
        ("", "missing_render_time"),
        ("soon", "forged_render_time"),
        ("nan", "forged_render_time"),
        (str(ms(NOW + timedelta(hours=1))), "forged_render_time"),
    ],
)
def test_a_missing_or_forged_time_is_flagged_never_silently_passed(ts: str | None, flag: str):
    assert verdict(ts) == (None, [flag])


def test_a_plain_time_from_another_tool_is_judged_and_flagged_unsigned():
    assert verdict(str(ms(NOW - timedelta(seconds=1)))) == (SpamReason.TOO_FAST, ["unsigned_render_time"])
    assert verdict(str(ms(NOW - timedelta(seconds=30)))) == (None, ["unsigned_render_time"])


def test_the_payload_digest_covers_every_field_and_value():
    base = {"email": ["a@example.com"], "first_name": ["Ada"], "_lf_nonce": ["n1"]}
    assert payload_digest(base) == payload_digest(dict(reversed(base.items())))
    assert payload_digest(base) != payload_digest({**base, "email": ["b@example.com"]})
    assert payload_digest(base) != payload_digest({**base, "company": [""]})
    assert payload_digest({"a": ["b", "c"]}) != payload_digest({"a": ["bc"]})
