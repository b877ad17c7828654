"""normalize_email against two public corpora of email address syntax, one test per case.

Corpora (third-party, see /work/shared/external/suites/README.md):
- /work/shared/external/suites/email-validator-2.4.0_syntax_cases.json: the parametrize tables of
  tests/test_syntax.py in the PyPI email-validator 2.4.0 sdist (the library normalize_email uses).
- /work/shared/external/suites/isemail_tests.json: dominicsayers/isemail test/tests.xml @cfeefc3f.

normalize_email calls email-validator with its default options (only check_deliverability=False)
after stripping surrounding white space (documented: "surrounding white space is ignored").
So each case is one of:
- ACCEPT / REFUSE: the corpus's verdict holds at the default options; asserted.
- AS_STRIPPED: the input has surrounding white space (mostly CR/LF folding cases); the product
  judges the stripped input, by contract. Asserted: same outcome as the stripped input.
- NEEDS_OPTION: the corpus's verdict needs an option normalize_email does not set
  (allow_quoted_local, allow_display_name, strict, allow_smtputf8=False); the outcome is
  recorded (junit property "observed"), only "accepted or InvalidEmail" is asserted.
- DEVIATION: the product knowingly differs from the corpus; the product's behaviour is asserted
  and the reason given.
- OBSERVED: the isemail categories that are neither valid nor errors (RFC5321, RFC5322,
  DEPREC, CFWS, DNSWARN); recorded without a verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

import pytest

from leadflow.domain.emails import InvalidEmail, NormalizedEmail, normalize_email
from tests.conftest import EXTERNAL, load_json

pytestmark = pytest.mark.unit

EMAIL_VALIDATOR_CORPUS = EXTERNAL / "suites" / "email-validator-2.4.0_syntax_cases.json"
ISEMAIL_CORPUS = EXTERNAL / "suites" / "isemail_tests.json"
if not (EMAIL_VALIDATOR_CORPUS.is_file() and ISEMAIL_CORPUS.is_file()):
    pytest.skip(f"third-party corpora not found in {EXTERNAL / 'suites'}", allow_module_level=True)


class Expect(StrEnum):
    ACCEPT = "accept"
    REFUSE = "refuse"
    AS_STRIPPED = "as-stripped"
    NEEDS_OPTION = "needs-option"
    DEVIATION = "deviation"
    OBSERVED = "observed"


Outcome: TypeAlias = NormalizedEmail | InvalidEmail


def judge(raw: str) -> Outcome:
    """What normalize_email makes of ``raw``: the address, or the refusal (anything else propagates)."""
    try:
        return normalize_email(raw)
    except InvalidEmail as refused:
        return refused


def describe(outcome: Outcome) -> str:
    if isinstance(outcome, InvalidEmail):
        return f"refused: {outcome}"
    return f"accepted: {outcome.address}"


def same(first: Outcome, second: Outcome) -> bool:
    if isinstance(first, InvalidEmail) and isinstance(second, InvalidEmail):
        return str(first) == str(second)
    return first == second


# ---------------------------------------------------------------------------- email-validator 2.4.0


@dataclass(frozen=True)
class SyntaxCase:
    """One input of one email-validator case, with what is expected of normalize_email."""

    group: str
    case: dict[str, Any]
    raw: str
    expect: Expect
    option: str | None


def _option_needed(group: str, case: dict[str, Any]) -> str | None:
    """The non-default email-validator option this case's verdict depends on, if any.

    Verified against email-validator 2.4.0: test_email_valid* outputs are reproduced with
    allow_quoted_local=True, allow_display_name=True; the strict cases with strict=True.
    """
    if group == "test_email_valid_only_if_quoted_local_part":
        return "allow_quoted_local=True"
    if group == "test_email_invalid_syntax_strict":
        return "strict=True"
    if group == "test_email_invalid_character_smtputf8_off":
        return "allow_smtputf8=False"
    if group.startswith("test_email_valid"):
        output = case["output"]
        options = []
        if "display_name" in output:
            options.append("allow_display_name=True")
        if output.get("original", case["email_input"]).startswith('"'):
            options.append("allow_quoted_local=True")
        return ", ".join(options) or None
    if group == "test_pyisemail_tests" and case["status"] == "ISEMAIL_RFC5322_LOCAL_TOOLONG":
        # email-validator 2.4.0 enforces the 64-character local part only with strict=True
        # (see test_email_invalid_syntax_strict in the same corpus).
        return "strict=True"
    return None


def _email_validator_cases() -> list[Any]:
    corpus = load_json(EMAIL_VALIDATOR_CORPUS)
    params = []
    for group, cases in corpus["cases"].items():
        for index, case in enumerate(cases):
            inputs = (
                [case["s"] + "@test", "test@" + case["s"], case["s"] + "@example.com"]
                if group == "test_email_unsafe_character"
                else [case["email_input"]]
            )
            option = _option_needed(group, case)
            for variant, raw in enumerate(inputs):
                if option:
                    expect = Expect.NEEDS_OPTION
                elif raw != raw.strip():
                    expect = Expect.AS_STRIPPED
                elif group.startswith("test_email_valid"):
                    expect = Expect.ACCEPT
                elif group == "test_pyisemail_tests":
                    # email-validator's harness: ISEMAIL_VALID passes; every other diagnosis in
                    # its table is refused at the default options.
                    expect = Expect.ACCEPT if case["status"] == "ISEMAIL_VALID" else Expect.REFUSE
                else:
                    expect = Expect.REFUSE
                suffix = f"-{variant}" if len(inputs) > 1 else ""
                test_id = f"{group}[{index}{suffix}]-{expect.value}"
                params.append(pytest.param(SyntaxCase(group, case, raw, expect, option), id=test_id))
    return params


@pytest.mark.parametrize("syntax_case", _email_validator_cases())
def test_email_validator_syntax_case(syntax_case: SyntaxCase, record_property: Callable[[str, object], None]):
    # GIVEN one case of email-validator's own syntax tests
    case, raw, expect = syntax_case.case, syntax_case.raw, syntax_case.expect

    # WHEN normalize_email judges its input
    outcome = judge(raw)
    record_property("observed", describe(outcome))

    # THEN the verdict is the corpus's wherever it holds at the default options
    if expect is Expect.ACCEPT:
        assert isinstance(outcome, NormalizedEmail), describe(outcome)
        if "output" in case:
            assert outcome.address == case["output"]["normalized"]
            assert outcome.domain == case["output"]["ascii_domain"].lower()
    elif expect is Expect.REFUSE:
        assert isinstance(outcome, InvalidEmail), describe(outcome)
        if "error_msg" in case:
            assert str(outcome) == case["error_msg"]
    elif expect is Expect.AS_STRIPPED:
        assert same(outcome, judge(raw.strip())), describe(outcome)
    else:
        # The corpus's verdict needs an option normalize_email does not set: recorded only.
        assert syntax_case.option
        assert isinstance(outcome, NormalizedEmail | InvalidEmail)


# ---------------------------------------------------------------------------- isemail


# Where leadflow knowingly disagrees with isemail, by test id: the reason, and what it does instead.
ISEMAIL_DEVIATIONS: dict[str, tuple[str, bool]] = {
    # email-validator refuses a domain without a dot ("not deliverable"); its own port of this
    # suite comments the case out for that reason. The isemail comment itself says it depends on DNS.
    "5": ("dotless domain 'io' is refused by email-validator by design", False),
}


def _isemail_cases() -> list[Any]:
    corpus = load_json(ISEMAIL_CORPUS)
    params = []
    for case in corpus["tests"]:
        raw = case["address"] or ""  # tests.xml's empty <address/> is the empty string
        if case["id"] in ISEMAIL_DEVIATIONS:
            expect = Expect.DEVIATION
        elif raw != raw.strip() and case["category"] in ("ISEMAIL_ERR", "ISEMAIL_VALID_CATEGORY"):
            expect = Expect.AS_STRIPPED
        elif case["category"] == "ISEMAIL_ERR":
            expect = Expect.REFUSE
        elif case["category"] == "ISEMAIL_VALID_CATEGORY":
            expect = Expect.ACCEPT
        else:
            expect = Expect.OBSERVED
        params.append(pytest.param(case, raw, expect, id=f"isemail-{case['id']}-{case['diagnosis']}-{expect.value}"))
    return params


@pytest.mark.parametrize(("case", "raw", "expect"), _isemail_cases())
def test_isemail_case(case: dict[str, Any], raw: str, expect: Expect, record_property: Callable[[str, object], None]):
    # GIVEN one case of the isemail test suite
    # WHEN normalize_email judges its address
    outcome = judge(raw)
    record_property("observed", describe(outcome))

    # THEN errors are refused and valid addresses accepted; the rest is only recorded
    if expect is Expect.REFUSE:
        assert isinstance(outcome, InvalidEmail), describe(outcome)
    elif expect is Expect.ACCEPT:
        assert isinstance(outcome, NormalizedEmail), describe(outcome)
    elif expect is Expect.AS_STRIPPED:
        assert same(outcome, judge(raw.strip())), describe(outcome)
    elif expect is Expect.DEVIATION:
        _reason, accepted = ISEMAIL_DEVIATIONS[case["id"]]
        assert isinstance(outcome, NormalizedEmail) is accepted, describe(outcome)
    else:
        assert isinstance(outcome, NormalizedEmail | InvalidEmail)


def test_the_corpora_are_complete():
    # GIVEN the two corpora
    email_validator = load_json(EMAIL_VALIDATOR_CORPUS)
    isemail = load_json(ISEMAIL_CORPUS)

    # WHEN their cases are counted
    counted = {group: len(cases) for group, cases in email_validator["cases"].items()}

    # THEN every case is here (each parametrized above), as the files announce
    assert counted == email_validator["counts"]
    assert len(isemail["tests"]) == 164
