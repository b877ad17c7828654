"""Click redirects read URLs as a browser does: the known allow-list bypasses are refused (issue 13, defect 9).

The corpus gathers the classic tricks against host allow-lists (backslash, ``@`` and userinfo,
tabs and newlines, unicode dots and full-width letters, percent-encoded hosts, IPv4 and IPv6
spellings, trailing dots, scheme confusion). Each case says which host a browser visits; the
check must refuse every case whose browser host is not on the allow-list.
"""

from __future__ import annotations

import pytest

from leadflow.domain.definitions.tracking import TrackingConfig
from leadflow.domain.tracking import safe_redirect
from leadflow.domain.urls import web_url

pytestmark = pytest.mark.unit

CONFIG = TrackingConfig(link_hosts=("www.example.com", "*.example.com", "127.0.0.1"))

# (url, where a browser goes, or None when it is no http(s) address)
BYPASSES = [
    ("https://evil.com\\.example.com/", "evil.com"),  # the review's finding
    ("https://evil.com\\@www.example.com/", "evil.com"),
    ("https://www.example.com\\@evil.com/", "www.example.com"),
    ("https://www.example.com@evil.com/", "evil.com"),
    ("https://www.example.com:443@evil.com/", "evil.com"),
    ("https://user:pass@www.example.com/", "www.example.com"),
    ("https://evil.com#@www.example.com/", "evil.com"),
    ("https://evil.com?@www.example.com/", "evil.com"),
    ("https://evil.com/\\www.example.com/", "evil.com"),
    ("https://ev\til.com/.example.com", "evil.com"),
    ("https://www.example.com\t.evil.com/", "www.example.com.evil.com"),
    ("https://www.example.com\n.evil.com/", "www.example.com.evil.com"),
    ("\thttps://www.example.com/", "www.example.com"),
    (" https://www.example.com/", "www.example.com"),
    ("https://www.example.com/\r\n", "www.example.com"),
    ("https://www.example.com\x00.evil.com/", None),
    ("https://www.example.com。evil.com/", "www.example.com.evil.com"),
    ("https://www.example.com．evil.com/", "www.example.com.evil.com"),
    ("https://www.example.com｡evil.com/", "www.example.com.evil.com"),
    ("https://ｗｗｗ.example.com.evil.com/", "www.example.com.evil.com"),
    ("https://evil%2ecom/", "evil.com"),
    ("https://evil.com%2f.example.com/", None),
    ("https://evil.com%5c.example.com/", None),
    ("https://www.%65xample.com/", "www.example.com"),
    ("https://www.example.com%2eevil.com/", "www.example.com.evil.com"),
    ("https://0x7f.1/", "127.0.0.1"),
    ("https://2130706433/", "127.0.0.1"),
    ("https://127.1/", "127.0.0.1"),
    ("https://0177.0.0.1/", "127.0.0.1"),
    ("https://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"),
    ("https://[::1]/", "[::1]"),
    ("https://www.example.com./", "www.example.com."),
    ("https://www.example.com../", None),
    ("https:evil.com/", "evil.com"),
    ("https:/evil.com/", "evil.com"),
    ("https:\\\\evil.com/", "evil.com"),
    ("//evil.com/", None),
    ("javascript://www.example.com/%0aalert(1)", None),
    ("data:text/html,<script>alert(1)</script>", None),
    ("ftp://www.example.com/", None),
    ("https://xn--www.example.com-/", None),
]


@pytest.mark.parametrize(("url", "browser_host"), BYPASSES)
def test_a_known_bypass_never_redirects_outside_the_allow_list(url: str, browser_host: str | None) -> None:
    # GIVEN a signed click URL crafted to fool an allow-list
    # WHEN the click is checked
    target = safe_redirect(url, CONFIG)
    # THEN it is refused, unless the browser's host really is allowed and every reader agrees on it
    if target is not None:
        assert browser_host is not None
        assert CONFIG.host_allowed(browser_host)
        assert web_url(target) is not None
        assert web_url(target).host == browser_host  # type: ignore[union-attr]


def test_the_reviews_bypass_is_refused() -> None:
    assert safe_redirect("https://evil.com\\.example.com/", CONFIG) is None


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("https://www.example.com/pricing?utm_source=email", "https://www.example.com/pricing?utm_source=email"),
        ("https://docs.example.com", "https://docs.example.com/"),
        ("HTTPS://Docs.Example.COM:443/a/../b", "https://docs.example.com/b"),
        ("https://www.example.com/caf\u00e9?q=\u00e9#\u00e9", "https://www.example.com/caf%C3%A9?q=%C3%A9#%C3%A9"),
        ("https://b\u00fccher.example.com/", "https://xn--bcher-kva.example.com/"),
        ("http://127.0.0.1:8000/?utm_source=email", "http://127.0.0.1:8000/?utm_source=email"),
        ("https://www.example.com/%0d%0aSet-Cookie:x", "https://www.example.com/%0d%0aSet-Cookie:x"),
    ],
)
def test_an_allowed_click_redirects_to_what_the_browser_would_request(url: str, location: str) -> None:
    # GIVEN an unambiguous URL on an allowed host
    # WHEN it is checked
    # THEN the redirect is its WHATWG serialization (ASCII, punycode host): what the browser requests anyway
    assert safe_redirect(url, CONFIG) == location


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",  # *.example.com is for subdomains only
        "https://www.example.com.evil.net/",
        "https://wwwexample.com/",
        "https://evil-example.com/",
        "https://127.0.0.2/",
        "",
        None,
        "https://www.example.com/" + "x" * 2000,
    ],
)
def test_other_hosts_and_oversized_urls_are_refused(url: str | None) -> None:
    assert safe_redirect(url, CONFIG) is None
