"""The raw message ``adapters.ses.mime`` builds, against the email package's own (what it replaced).

``mime`` writes the message directly instead of through ``EmailMessage`` (which took ~2 ms of
CPU per email). Whatever the subject, names, addresses and bodies, a mail reader must see the
same message: every header decodes to the same value, both parts decode to the same text, and
the message is 7-bit ASCII with lines of at most 998 characters. The one intended difference:
``List-Unsubscribe`` stays the angle-bracketed URL (the email package RFC 2047-encoded a long one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.adapters.ses import mime
from leadflow.domain.rendering import RenderedEmail, one_line, unsubscribe_headers

pytestmark = pytest.mark.unit

DATE = "Tue, 24 Nov 2026 10:00:00 +0000"
UNSUBSCRIBE = (
    "https://t.example.com/u/eyJ0IjoidSIsImwiOiIwMUJFTkNIMDAwMDAwMDAwMDAwMDAwMDAwMCIsIm0iOiJtXzIwYmUyNzUy"
    "NjE3MGRkZThmYTk5MmI2ZCIsIngiOjE3OTgxMDY0MDAsImMiOiJwdXNoLWRpc2NvdW50In0.NaaymcJPbrIn_8gRCQ4DfA"
)


def reference_mime(email: RenderedEmail, to: str, message_id: str) -> bytes:
    """The message as the email package built it before (adapters/ses.py up to 6c25ec4)."""
    message = EmailMessage()
    message["From"] = email.from_header
    message["To"] = to
    message["Subject"] = email.subject
    message["Date"] = email.headers.get("Date") or formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=message_id.replace("_", "-"), domain="leadflow.local")
    message["X-Leadflow-Message"] = message_id
    for name, value in email.headers.items():
        if name != "Date":
            message[name] = value
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message.as_bytes()


def rendered(**changes: Any) -> RenderedEmail:
    values: dict[str, Any] = {
        "subject": "This week only: 20% off Example",
        "html": '<p>Hi Ada,</p>\n<p><a href="https://t.example.com/t/c/x">Claim</a></p>\n',
        "text": "Hi Ada,\n\nClaim: https://t.example.com/t/c/x\n",
        "from_header": formataddr(("Example Team", "news@example.com")),
        "headers": unsubscribe_headers(UNSUBSCRIBE) | {"Reply-To": "hello@example.com", "Date": DATE},
        "links": ("discount",),
    }
    values.update(changes)
    return RenderedEmail(**values)


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def assert_same_message(email: RenderedEmail, to: str, message_id: str = "m_20be27526170dde8fa992b6d") -> bytes:
    raw = mime(email, to, message_id)
    ours, theirs = parsed(raw), parsed(reference_mime(email, to, message_id))
    assert list(ours.keys()) == list(theirs.keys())
    for name in theirs:
        if name in ("Message-ID", "Content-Type", "From"):
            continue
        assert str(ours[name]) == str(theirs[name]), name
    # From: what formataddr wrote, read back, or else what the email package made of it. (It
    # re-folds a display name it must encode and, with specials such as ':' in it, mangles it;
    # the direct writer keeps a short one as formataddr wrote it and folds a long one as it did.)
    (sender,) = ours["From"].addresses
    name, address = parseaddr(email.from_header)
    intended = (str(make_header(decode_header(name))) if "=?" in name else name, address)
    assert intended == (sender.display_name, sender.addr_spec) or str(ours["From"]) == str(theirs["From"])
    assert ours.get_content_type() == theirs.get_content_type() == "multipart/alternative"
    assert ours["Message-ID"].startswith("<") and ours["Message-ID"].endswith(
        f".{message_id.replace('_', '-')}@leadflow.local>"
    )
    for kind in ("plain", "html"):
        mine, reference = ours.get_body(preferencelist=(kind,)), theirs.get_body(preferencelist=(kind,))
        assert mine is not None and reference is not None
        assert mine.get_content_type() == f"text/{kind}"
        assert mine.get_content_charset() == "utf-8"
        assert mine.get_content() == reference.get_content()
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\n"))
    assert b"\r" not in raw
    return raw


def test_the_shipped_shape_reads_the_same_and_keeps_the_unsubscribe_url_plain() -> None:
    raw = assert_same_message(rendered(), "ada@x.test")
    lines = raw.decode("ascii").split("\n")
    # RFC 2369 / 8058: the URL in angle brackets, unencoded, on one line
    assert f"List-Unsubscribe: <{UNSUBSCRIBE}>" in lines
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    assert "X-Leadflow-Message: m_20be27526170dde8fa992b6d" in lines
    assert "Date: Tue, 24 Nov 2026 10:00:00 +0000" in lines


def test_without_a_date_the_message_is_dated_now() -> None:
    headers = {k: v for k, v in rendered().headers.items() if k != "Date"}
    before = datetime.now(UTC).replace(microsecond=0)
    message = parsed(mime(rendered(headers=headers), "ada@x.test", "m_1"))
    assert before <= message["Date"].datetime.replace(tzinfo=UTC) <= datetime.now(UTC)


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Grüße aus München: 20 % Rabatt für Sie, Jürgen"},
        {"subject": "Ein sehr langer Betreff " * 8},
        {"subject": "x" * 120},
        {"subject": "日本語の件名です"},
        {"from_header": formataddr(("Équipe Exemple Société Générale", "news@example.com"))},
        {"from_header": formataddr(("A very long display name that will certainly need folding", "n@example.com"))},
        {"text": "Zeile mit Umlaut: ä\nund = Zeichen\n\n", "html": "<p>ß & ü</p>"},
        {"text": "a" * 300 + "\n" + "b " * 200, "html": "<td>" + "x" * 2000 + "</td>"},
        {"text": "trailing spaces   \nand a tab\t\nCRLF\r\nlines\rend", "html": "<p>\r\n</p>"},
        {"text": "", "html": ""},
        {"text": "--=_leadflow_looks like a boundary\n", "html": "=3D literally =\n"},
        {"headers": {"List-Unsubscribe": "<http://localhost:3000/u/abc>", "List-Unsubscribe-Post": "x", "Date": DATE}},
    ],
)
def test_edge_cases_read_the_same(changes: dict[str, Any]) -> None:
    assert_same_message(rendered(**changes), "ada.lovelace@northwind.test")


def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        mime(rendered(), "ada@x.test\r\nBcc: victim@x.test", "m_1")
    with pytest.raises(ValueError, match="CR or LF"):
        mime(rendered(headers={"Reply-To": "a@b.test\nBcc: c@d.test"}), "ada@x.test", "m_1")


text_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(text_chars, min_size=1, max_size=150).map(one_line).filter(bool),
    name=st.text(text_chars, max_size=60).map(one_line),
    text=st.text(text_chars, max_size=400),
    html=st.text(text_chars, max_size=400),
)
def test_any_subject_name_and_bodies_read_the_same(subject: str, name: str, text: str, html: str) -> None:
    email = rendered(subject=subject, from_header=formataddr((name, "news@example.com")), text=text, html=html)
    assert_same_message(email, "lead@example.com")
