"""Email address validation and normalization (syntax only: no DNS at capture)."""

from __future__ import annotations

from dataclasses import dataclass

# Imported when this module is: with Lambda SnapStart the patterns email-validator compiles at
# import (about 20 ms, four with the U+0080-U+10FFFF range) are in the snapshot, paid once per
# published version; a lazy import would move them into the first request after every restore.
# docs/benchmarks.md, row 2 and the SnapStart section, has the figures.
from email_validator import EmailNotValidError, validate_email

# Domains of free mail providers: a lead at one of them has no company domain to roll up to.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "gmx.de",
        "gmx.net",
        "gmx.com",
        "web.de",
        "mail.com",
        "proton.me",
        "protonmail.com",
        "yandex.ru",
        "yandex.com",
        "mail.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "zoho.com",
        "fastmail.com",
        "tutanota.com",
        "orange.fr",
        "free.fr",
        "libero.it",
        "t-online.de",
        "naver.com",
    }
)


@dataclass(frozen=True)
class NormalizedEmail:
    """An address as leadflow stores it.

    ``address`` keeps the normalized form for sending; ``key`` is the de-duplication key
    (case-folded: every mainstream provider treats local parts case-insensitively).
    """

    address: str
    key: str
    domain: str

    @property
    def is_free_mail(self) -> bool:
        return self.domain in FREE_MAIL_DOMAINS

    @property
    def company_domain(self) -> str | None:
        """The domain to roll the lead up to an account by, or None for free mail."""
        return None if self.is_free_mail else self.domain


class InvalidEmail(ValueError):
    """The address is not a deliverable-looking email address."""


def normalize_email(raw: str) -> NormalizedEmail:
    """Validate an address's syntax and return its normalized form.

    Args:
        raw: the address as typed (surrounding white space is ignored).

    Returns:
        The normalized address, its de-duplication key and its ASCII domain.

    Raises:
        InvalidEmail: with email-validator's explanation.
    """
    try:
        # strict: local parts over 64 characters (RFC 5321) are refused, as mail servers refuse them
        valid = validate_email(raw.strip(), check_deliverability=False, strict=True)
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from None
    domain = valid.ascii_domain.lower()
    return NormalizedEmail(address=valid.normalized, key=valid.normalized.casefold(), domain=domain)
