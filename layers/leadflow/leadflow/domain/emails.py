"""Email address validation and normalization (syntax only: no DNS at capture)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# The hostname characters email-validator checks every domain with, one character at a time
# (``ATEXT_HOSTNAME_INTL``), and the same set of characters as a class that compiles in 0.1 ms
# instead of 7: everything but the ASCII characters a hostname may not hold. The two match the
# same code points, all 1,114,112 of them (tests/unit/test_emails.py checks each one).
_EQUIVALENT_PATTERNS = {
    r"[a-zA-Z0-9\-\." + "\u0080-\U0010ffff" + "]": r"[^\x00-\x2c/\x3a-\x40\x5b-\x60\x7b-\x7f]",
}


class _PatternCompiledOnFirstUse:
    """Stands in for a compiled ``re.Pattern`` and compiles it when it is first used.

    email-validator compiles its patterns when it is imported, four of them with the
    character range U+0080-U+10FFFF, for which CPython's ``re`` fills a 64K-entry map in
    Python: about 5 ms a pattern, 20 ms of the form capture handler's cold start. An ASCII
    address (nearly every address) uses one of those four; the others only serve
    internationalized or quoted local parts. Same pattern, same flags, same methods: the
    first use compiles it with ``re.compile`` and binds the compiled pattern's public
    attributes on this object, so later calls cost what the compiled pattern's cost. The
    one of the four every address needs is compiled from ``_EQUIVALENT_PATTERNS``: the same
    characters, written so that ``re`` needs no 64K-entry map (``pattern`` still reads as
    email-validator wrote it).
    """

    def __init__(self, pattern: str, flags: int) -> None:
        self._source = pattern
        self._flags = flags

    def __getattr__(self, name: str) -> Any:
        compiled = re.compile(_EQUIVALENT_PATTERNS.get(self._source, self._source), self._flags)
        for attribute in dir(compiled):
            if not attribute.startswith("_"):
                setattr(self, attribute, getattr(compiled, attribute))
        self.pattern = self._source
        return getattr(self, name)


@contextmanager
def _patterns_compiled_on_first_use(module: str) -> Iterator[None]:
    """While importing ``module``, the patterns it compiles are compiled when first used.

    Only ``re.compile`` calls made by ``module`` itself are deferred; every other call
    (other modules, other threads) compiles at once as usual.
    """
    compile_now = re.compile

    def compile_when_used(pattern: Any, flags: int = 0) -> Any:
        if isinstance(pattern, str) and sys._getframe(1).f_globals.get("__name__") == module:
            return _PatternCompiledOnFirstUse(pattern, flags)
        return compile_now(pattern, flags)

    re.compile = compile_when_used  # type: ignore[assignment]
    try:
        yield
    finally:
        re.compile = compile_now


with _patterns_compiled_on_first_use("email_validator.rfc_constants"):
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
