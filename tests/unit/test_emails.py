"""normalize_email: the address leadflow stores, its de-duplication key and its company domain."""

from __future__ import annotations

import unicodedata

import pytest

from leadflow.domain.emails import FREE_MAIL_DOMAINS, InvalidEmail, NormalizedEmail, normalize_email

pytestmark = pytest.mark.unit


def test_surrounding_white_space_is_ignored_and_the_domain_lowercased():
    # GIVEN an address typed with stray spaces and a shouting domain
    raw = "  Jane.Doe@Example.COM \t"

    # WHEN it is normalized
    email = normalize_email(raw)

    # THEN the local part keeps its case for sending, the domain is lowercase
    assert email == NormalizedEmail(address="Jane.Doe@example.com", key="jane.doe@example.com", domain="example.com")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Jane.Doe@example.com", "jane.doe@EXAMPLE.com"),
        ("ÉLODIE@example.com", "élodie@example.com"),
        ("Straße@example.com", "STRASSE@example.com"),
    ],
    ids=["ascii", "accented", "sharp-s"],
)
def test_addresses_differing_only_in_case_share_one_key(first: str, second: str):
    # GIVEN two spellings of one mailbox that differ only in case (full case folding)
    # WHEN both are normalized
    keys = {normalize_email(first).key, normalize_email(second).key}

    # THEN they de-duplicate to one lead
    assert len(keys) == 1


def test_the_key_is_the_casefolded_normalized_address():
    # GIVEN an address whose case folding is not plain lowercasing
    # WHEN it is normalized
    email = normalize_email("Straße@Example.com")

    # THEN the address keeps the ß and the key folds it
    assert email.address == "Straße@example.com"
    assert email.key == "strasse@example.com"


def test_decomposed_unicode_is_stored_composed():
    # GIVEN an address typed with a combining accent (e + U+0301)
    raw = "e\u0301lodie@example.com"

    # WHEN it is normalized
    email = normalize_email(raw)

    # THEN the stored address and key are in NFC, so both spellings are one lead
    assert email.address == unicodedata.normalize("NFC", raw)
    assert email.key == normalize_email("\u00e9lodie@example.com").key


def test_an_internationalized_domain_keeps_its_unicode_form_and_reports_its_ascii_domain():
    # GIVEN an address at an internationalized domain name
    # WHEN it is normalized
    email = normalize_email("jeff@臺網中心.tw")

    # THEN the address is as typed and the domain is the IDNA (A-label) form
    assert email.address == "jeff@臺網中心.tw"
    assert email.domain == "xn--fiqq24b10vi0d.tw"


def test_the_a_label_and_u_label_spellings_of_a_domain_are_one_lead():
    # GIVEN one mailbox written with the Unicode and with the Punycode domain
    # WHEN both are normalized
    unicode_form = normalize_email("jeff@臺網中心.tw")
    ascii_form = normalize_email("jeff@xn--fiqq24b10vi0d.tw")

    # THEN they share the key and the domain
    assert unicode_form.key == ascii_form.key
    assert unicode_form.domain == ascii_form.domain


@pytest.mark.parametrize("domain", ["gmail.com", "GMAIL.com", "outlook.com", "web.de", "proton.me", "yahoo.co.uk"])
def test_free_mail_has_no_company_domain(domain: str):
    # GIVEN an address at a free mail provider (in any case)
    # WHEN it is normalized
    email = normalize_email(f"someone@{domain}")

    # THEN it is free mail and rolls up to no account
    assert email.is_free_mail
    assert email.company_domain is None


@pytest.mark.parametrize(
    ("raw", "company_domain"),
    [
        ("ana@acme.io", "acme.io"),
        ("ana@ACME.io", "acme.io"),
        ("ana@eu.acme.co.uk", "eu.acme.co.uk"),
        ("ana@gmail.com.acme.io", "gmail.com.acme.io"),
    ],
)
def test_a_company_address_rolls_up_to_its_domain(raw: str, company_domain: str):
    # GIVEN an address at a company domain (a sub-domain stays as given)
    # WHEN it is normalized
    email = normalize_email(raw)

    # THEN its company domain is the lowercase domain
    assert not email.is_free_mail
    assert email.company_domain == company_domain


def test_free_mail_domains_are_lowercase_ascii():
    # GIVEN the list of free mail domains
    # WHEN it is compared with normalized domains (always lowercase ASCII)
    # THEN every entry can match one
    assert all(d == d.lower() and d.isascii() for d in FREE_MAIL_DOMAINS)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "jane.example.com",
        "jane@",
        "@example.com",
        "jane@localhost",
        "jane@example",
        "jane@example..com",
        "jane doe@example.com",
        ".jane@example.com",
        "jane.@example.com",
        "jane@-example.com",
        "jane@example.com\x00",
        "jane\n@example.com",
        "jane@@example.com",
        "Jane <jane@example.com>",
        '"jane doe"@example.com',
        "jane@[127.0.0.1]",
        "jane@host.invalid",
        "jane@example.local",
        "\ud800@example.com",
        "jane@exam\ud800ple.com",
    ],
    ids=repr,
)
def test_not_an_address_is_refused_with_an_explanation(raw: str):
    # GIVEN something that is not a plain deliverable-looking address
    # WHEN it is normalized
    with pytest.raises(InvalidEmail) as refused:
        normalize_email(raw)

    # THEN the refusal says why (email-validator's message), as a ValueError
    assert str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_a_local_part_of_64_characters_is_accepted():
    # GIVEN a local part at the RFC 5321 limit
    raw = "a" * 64 + "@example.com"

    # WHEN it is normalized
    email = normalize_email(raw)

    # THEN it is kept whole
    assert email.address == raw
