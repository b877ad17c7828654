"""The plain-text part of an email: a rendered text template tidied, or the text read out of its HTML.

``html_to_text`` gives the visible text of an HTML email block by block, hidden parts dropped and
each link followed by its URL; ``tidy_text`` trims a text part's lines and blank runs. Pure.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLANK_LINES = re.compile(r"\n{3,}")
_WHITE_SPACE = re.compile(r"\s+")


def tidy_text(text: str) -> str:
    """Trailing spaces off every line, at most one blank line in a row, one final newline.

    A rendered text part is usually tidy already but for its last newline: ASCII text with no
    line that ends in white space, no two blank lines in a row, no other white space than
    spaces, tabs and LF and no leading newline only needs that newline (the same result; tested)."""
    if (
        text.isascii()
        and not text.startswith("\n")
        and not text.endswith((" ", "\t"))
        and "\n\n\n" not in text
        and " \n" not in text
        and ("\t" not in text or "\t\n" not in text)  # one character is found faster than two
        and not _has_rare_ascii_white_space(text)
    ):
        return text.rstrip("\n") + "\n"
    lines = "\n".join([line.rstrip() for line in text.splitlines()])
    return _BLANK_LINES.sub("\n\n", lines).strip("\n") + "\n"


def _has_rare_ascii_white_space(text: str) -> bool:
    """Whether ``text`` holds ASCII white space other than space, tab and LF (what ``str.splitlines``
    and ``str.rstrip`` also treat as white space: CR, VT, FF, FS, GS, RS, US)."""
    return (
        "\r" in text
        or "\x0b" in text
        or "\x0c" in text
        or "\x1c" in text
        or "\x1d" in text
        or "\x1e" in text
        or "\x1f" in text
    )


_BLOCK_TAGS = frozenset(
    {"p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "hr", "center"}
)
_SKIPPED_TAGS = frozenset({"head", "style", "script", "title"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class _TextExtractor(HTMLParser):
    """The readable text of an HTML email: hidden parts dropped, each link followed by its URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.anchors: list[tuple[str | None, int]] = []  # open <a>: its href, where its text starts
        self.skipping = 0  # depth inside <head>, <style> or a display:none element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            if tag == "br" and not self.skipping:
                self.parts.append("\n")
            return
        style = (dict(attrs).get("style") or "").replace(" ", "").lower()
        if self.skipping or tag in _SKIPPED_TAGS or "display:none" in style:
            self.skipping += 1
        elif tag == "a":
            self.anchors.append((dict(attrs).get("href"), len(self.parts)))
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag == "td":
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS:
            return
        if self.skipping:
            self.skipping -= 1
        elif tag == "a" and self.anchors:
            href, start = self.anchors.pop()
            label = " ".join("".join(self.parts[start:]).split())
            if href and href.startswith(("http://", "https://", "mailto:")) and href not in label:
                self.parts.append(f" ({href})" if label else href)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(_WHITE_SPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """A plain-text part for an HTML email: its visible text, block by block, links as 'label (URL)'."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    return tidy_text("\n".join(lines))
