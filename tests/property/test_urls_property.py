"""Properties of the browser-faithful URL check behind click redirects (issue 13, defect 9).

Whatever the text, a click either goes nowhere or goes to an allowed host, and the address it
goes to reads the same to a browser (WHATWG, ada-url) and to an RFC 3986 parser (urllib).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from ada_url import URL
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.domain.definitions.tracking import TrackingConfig
from leadflow.domain.tracking import safe_redirect
from leadflow.domain.urls import web_url

pytestmark = pytest.mark.unit

CONFIG = TrackingConfig(link_hosts=("www.example.com", "*.example.com"))

# Pieces that make parsers disagree: separators, userinfo, whitespace, unicode dots and
# full-width letters, percent-encodings, IP spellings, ports, trailing dots.
TRICKS = [
    "\\",
    "/",
    "@",
    ":",
    "#",
    "?",
    "\t",
    "\n",
    "\r",
    " ",
    "\x00",
    "\x7f",
    ".",
    "..",
    "\u3002",
    "\uff0e",
    "\uff61",
    "\uff57",
    "%2e",
    "%2f",
    "%5c",
    "%40",
    "%00",
    "%",
    "[",
    "]",
    "::1",
    "0x7f",
    "127.0.0.1",
    "2130706433",
    ":443",
    ":0",
    ":99999",
    "xn--",
    "-",
    "_",
]
HOSTS = ["www.example.com", "a.example.com", "example.com", "evil.com", "evil.example.net", "127.0.0.1", ""]
SCHEMES = ["https://", "http://", "HTTPS://", "https:", "https:/", "https:\\\\", "//", "javascript:", "ftp://", ""]

pieces = st.one_of(st.sampled_from(TRICKS), st.sampled_from(HOSTS), st.text(max_size=4))
crafted = st.builds(
    lambda scheme, parts: scheme + "".join(parts), st.sampled_from(SCHEMES), st.lists(pieces, max_size=8)
)


def _agrees(location: str) -> None:
    browser = URL(location)
    plain = urlsplit(location)
    assert browser.protocol in ("http:", "https:")
    assert plain.scheme + ":" == browser.protocol
    assert (plain.hostname or "") == browser.hostname
    assert not browser.username and not browser.password
    assert CONFIG.host_allowed(browser.hostname)
    assert location.isascii() and not any(c <= " " or c == "\x7f" for c in location)


@settings(max_examples=600, deadline=None)
@given(url=crafted)
def test_a_crafted_click_goes_nowhere_or_to_an_allowed_host_every_reader_agrees_on(url: str) -> None:
    # GIVEN any URL assembled from the pieces allow-list bypasses are made of
    # WHEN a tracked click is checked
    location = safe_redirect(url, CONFIG)
    # THEN it is refused, or its Location is an allowed host that a browser and urllib read alike
    if location is not None:
        _agrees(location)


@settings(max_examples=300, deadline=None)
@given(url=st.text(max_size=200))
def test_any_text_is_refused_or_a_redirect_to_an_allowed_host(url: str) -> None:
    location = safe_redirect(url, CONFIG)
    if location is not None:
        _agrees(location)


@settings(max_examples=300, deadline=None)
@given(url=st.one_of(crafted, st.text(max_size=100)))
def test_the_browser_reading_is_stable(url: str) -> None:
    # GIVEN any text the check accepts
    first = web_url(url)
    # THEN its serialization is accepted again unchanged (what we send is what we checked)
    if first is not None:
        again = web_url(first.href)
        assert again == first


@settings(max_examples=300, deadline=None)
@given(
    sub=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True),
    path=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=40),
)
def test_a_plain_link_on_an_allowed_host_always_redirects(sub: str, path: str) -> None:
    # GIVEN an ordinary link on an allowed subdomain (any printable path, no backslash)
    url = f"https://{sub}.example.com/{path.replace(chr(92), '')}"
    # THEN it redirects, to the same host
    location = safe_redirect(url, CONFIG)
    assert location is not None
    assert URL(location).hostname == f"{sub}.example.com"
