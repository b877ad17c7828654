"""Web addresses read the way a browser reads them (the WHATWG URL Standard, via ada-url).

A check on a URL is only as good as the parser behind it: Python's ``urllib.parse`` follows
RFC 3986, browsers follow WHATWG, and the two disagree on exactly the inputs an attacker
crafts (``https://evil.com\\.example.com/`` is host ``evil.com`` to a browser and host
``evil.com\\.example.com`` to ``urlsplit``). So the host we check is the host the WHATWG
parser finds, and an address that the two readings do not agree on, or that a browser would
quietly repair, is refused rather than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ada_url import URL, HostType, idna_to_ascii

WEB_SCHEMES = frozenset({"http:", "https:"})
MAX_URL = 2000


@dataclass(frozen=True, slots=True)
class WebUrl:
    """An http(s) address as a browser will request it."""

    href: str
    """The WHATWG serialization (ASCII: punycode host, percent-encoded path): the ``Location`` to send."""
    scheme: str
    """``http`` or ``https``."""
    host: str
    """The lower-case ASCII host name (an IPv4 address, or an IPv6 one in brackets), without port."""


def _refused_character(text: str) -> bool:
    # Browsers strip leading/trailing C0 controls and spaces and remove tabs and newlines
    # anywhere; they read a backslash as a slash in http(s) URLs. Any of these means the
    # browser would request something other than what the text says.
    return any(c <= " " or c in "\x7f\\" for c in text)


def web_url(text: str | None, max_length: int = MAX_URL) -> WebUrl | None:
    """``text`` as the http(s) address a browser would visit, or None when it is not one or is ambiguous.

    Refused: anything longer than ``max_length``; control characters, spaces, tabs, newlines
    and backslashes anywhere; schemes other than http and https; credentials (``user@``);
    IPv4 and IPv6 literals (including the forms a browser reads as IPv4, like ``0x7f.1``);
    and any address whose host an RFC 3986 reader (after IDNA mapping) would find different
    from the browser's (percent-encoded hosts, ``@`` and ``#`` tricks). A host with a trailing
    dot is kept as the browser has it (``example.com.``), so it matches no allow-list entry.

    Returns:
        The browser's reading, or None.
    """
    if not text or len(text) > max_length or _refused_character(text):
        return None
    try:
        parsed = URL(text)
    except ValueError:
        return None
    if parsed.protocol not in WEB_SCHEMES or parsed.username or parsed.password:
        return None
    if not parsed.hostname:
        return None
    try:
        naive = urlsplit(text)
        naive_host = naive.hostname or ""
        naive_port = naive.port
    except ValueError:
        return None
    if naive.scheme.lower() + ":" != parsed.protocol or naive.username is not None:
        return None
    # The RFC 3986 host, mapped as IDNA maps it (unicode dots and full-width letters fold);
    # an IP address must already be written as the browser writes it (not 0x7f.1 or 2130706433).
    if parsed.host_type == HostType.DEFAULT:
        naive_host = idna_to_ascii(naive_host).decode("ascii", errors="replace")
    elif parsed.host_type == HostType.IPV6:
        naive_host = f"[{naive_host}]"
    if naive_host != parsed.hostname:
        return None
    if naive_port is not None and str(naive_port) != (parsed.port or _default_port(parsed.protocol)):
        return None
    return WebUrl(href=parsed.href, scheme=parsed.protocol[:-1], host=parsed.hostname)


def _default_port(protocol: str) -> str:
    return "443" if protocol == "https:" else "80"
