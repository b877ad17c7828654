"""Email rendering for nurture sequences: Jinja templates in a sandbox, with a footer that cannot go missing.

A workspace's templates are a mapping of path -> Jinja source (``emails/welcome.html.j2``,
``layouts/base.html.j2``, ``partials/footer.html.j2``...). ``EmailRenderer`` compiles each
once and renders an email for one lead:

- templates run in Jinja's immutable sandbox with ``StrictUndefined``: a typo in a variable
  name fails loudly instead of sending "Hi ,";
- HTML templates (``*.html.j2``) are autoescaped, text templates and the subject are not;
- lead fields are data: a field holding ``{{ 7*7 }}`` renders as those characters, never
  as 49 (values are never compiled as templates);
- every email must carry the sender's postal address and the unsubscribe link in both
  parts (CAN-SPAM), and gets the RFC 8058 one-click unsubscribe headers. An email that
  lacks them is refused, not sent.

Pure: no boto3, no environment, no clock, no files (``config.templates`` reads them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formataddr
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    meta,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from leadflow.domain.errors import LeadflowError
from leadflow.domain.plain_text import html_to_text, tidy_text

EMAILS_FOLDER = "emails"
HTML_SUFFIX = ".html.j2"
TEXT_SUFFIX = ".txt.j2"
LINK_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SUBJECT_CACHE_SIZE = 256
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# C0/C1 controls and the Unicode line separators: none may reach a header.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class TemplateProblem(LeadflowError):
    """A template is missing, has a syntax error, uses an undefined variable or breaks the sandbox,
    or the email it renders lacks the unsubscribe link or the postal address.

    ``template`` names the template file at fault (``emails/welcome.html.j2``,
    ``partials/footer.txt.j2``, or ``subject of welcome``); ``reason`` says what is wrong, with
    the line when known (``line 3: 'leed' is undefined (rendering emails/welcome.html.j2)``).
    """

    def __init__(self, template: str, reason: str) -> None:
        super().__init__(f"{template}: {reason}")
        self.template = template
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Sender:
    """Who an email is from, and the postal address its footer must show.

    Its derived forms (the postal lines, escaped for HTML, the From header) are worked out once,
    when it is made: a sender is made once per sequence step and used for every email of a wave.

    Raises:
        ValueError: a header field holds a control character (CR/LF would inject headers).
    """

    address: str  # "news@example.com"
    name: str = ""  # display name
    reply_to: str | None = None
    postal_address: str = ""  # CAN-SPAM footer line(s)
    postal_lines: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The postal address's non-blank lines, each with its white space collapsed."""
    escaped_postal_lines: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """``postal_lines`` as they appear in an autoescaped HTML part."""
    from_header: str = field(init=False, repr=False, compare=False)
    """'Name <addr>', RFC 5322 (a non-ASCII name RFC 2047-encoded)."""

    def __post_init__(self) -> None:
        for name, value in (("address", self.address), ("name", self.name), ("reply_to", self.reply_to or "")):
            if _CONTROLS.search(value):
                raise ValueError(f"sender {name} must not contain control characters")
        if "@" not in self.address or any(c.isspace() for c in self.address):
            raise ValueError(f"sender address {self.address!r} is not an email address")
        lines = tuple(line for line in (" ".join(raw.split()) for raw in self.postal_address.splitlines()) if line)
        object.__setattr__(self, "postal_lines", lines)
        object.__setattr__(self, "escaped_postal_lines", tuple(str(escape(line)) for line in lines))
        object.__setattr__(self, "from_header", formataddr((" ".join(self.name.split()), self.address)))


@lru_cache(maxsize=256)
def sender_of(address: str, name: str = "", reply_to: str | None = None, postal_address: str = "") -> Sender:
    """The (immutable) ``Sender`` for these fields, made once: the nurture step asks for one per email.

    Raises:
        ValueError: as ``Sender``.
    """
    return Sender(address, name, reply_to, postal_address)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """An email ready for the sender adapter."""

    subject: str
    html: str
    text: str
    from_header: str  # 'Name <addr>', RFC 5322 (non-ASCII names RFC 2047-encoded)
    headers: dict[str, str]  # List-Unsubscribe, List-Unsubscribe-Post, and Reply-To when the sender has one
    links: tuple[str, ...]  # the link tags used, in order of first use (each once)


class LinkSigner(Protocol):
    """The tracked URLs of one message to one lead."""

    def click_url(self, url: str, tag: str) -> str:
        """The tracked https URL that records a click on ``tag`` and redirects to ``url``."""
        ...

    def open_pixel_url(self) -> str: ...

    def unsubscribe_url(self) -> str: ...

    def preferences_url(self) -> str: ...


class _SourcesLoader(BaseLoader):
    """Templates from the sources mapping, like jinja's DictLoader, but naming each template's "file"
    after its path (DictLoader names none), so a runtime error can say which template it happened in."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        try:
            return self.sources[template], template, lambda: True
        except KeyError:
            raise TemplateNotFound(template) from None

    def list_templates(self) -> list[str]:
        return sorted(self.sources)


MEMO_SIZE = 4096


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, its decisions unchanged; what only depends on a type is worked out once.

    Whether an attribute may be read (``is_safe_attribute``, the hook Jinja documents for
    sandbox policies) depends only on the object's type and the attribute's name: no ``_``
    names, none of Jinja's internal attributes of functions, frames and generators, no method
    that modifies a known mutable type. The stock sandbox works that out with a dozen
    ``isinstance`` checks on every attribute read of every render; here the stock answer is
    kept per (type, name). Measured in docs/benchmarks.md (row 7).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._safe: dict[tuple[type, str], bool] = {}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        key = (type(obj), attr)
        safe = self._safe.get(key)
        if safe is None:
            if len(self._safe) >= MEMO_SIZE:  # types and names come from the templates: a bound all the same
                self._safe.clear()
            safe = self._safe[key] = super().is_safe_attribute(obj, attr, value)
        return safe


@lru_cache(maxsize=1024)
def _autoescape(name: str | None) -> bool:
    """Whether a template autoescapes (its name ends in .html.j2 or .html): asked by every context
    Jinja makes, four per email; answered once per name."""
    return name is not None and name.endswith((".html.j2", ".html"))


ENVIRONMENT_OPTIONS: dict[str, Any] = {
    "autoescape": _autoescape,
    "undefined": StrictUndefined,
    "auto_reload": False,
    "cache_size": -1,
    "trim_blocks": True,
    "lstrip_blocks": True,
}
"""The Jinja options of the renderer's sandbox (beside its loader)."""


class EmailRenderer:
    """Renders a workspace's email templates; build one per set of sources and reuse it."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        """sources: template path -> Jinja source, e.g. 'emails/welcome.html.j2', 'emails/welcome.txt.j2',
        'layouts/base.html.j2', 'layouts/base.txt.j2', 'partials/footer.html.j2'.

        Templates compile on first use and stay compiled for the renderer's life.
        """
        self._sources = dict(sources)
        self._env = _Sandbox(loader=_SourcesLoader(self._sources), **ENVIRONMENT_OPTIONS)
        self._subjects: dict[str, Template] = {}
        self._templates: dict[str, Template] = {}  # the emails' own templates, compiled

    def render(  # noqa: PLR0917 - the signature the nurture service calls positionally
        self,
        template: str,
        subject: str,
        lead: Mapping[str, Any],
        context: Mapping[str, Any],
        sender: Sender,
        links: LinkSigner,
    ) -> RenderedEmail:
        """Render one email for one lead.

        Args:
            template: the email's name: 'welcome' renders emails/welcome.html.j2 (required) and
                emails/welcome.txt.j2 (when missing, the text part is derived from the HTML).
            subject: a Jinja template string (no autoescape, same sandbox); rendered on one line.
            lead: the lead's profile fields, as ``lead`` (``lead.first_name``...). An absent field is
                undefined: fine under ``default(...)``, an error anywhere else.
            context: the sequence's variables (``sequence``, ``step``, ``coupon_code``...), top-level
                names; they cannot replace the renderer's own (lead, sender, link, subject,
                unsubscribe_url, preferences_url, open_pixel_url): a sequence must never swap the
                unsubscribe link for another one.
            sender: the From identity and the footer's postal address.
            links: the message's tracked URLs; ``link(url, tag)`` in a template calls ``click_url``.

        Returns:
            The subject, both parts, the From header, the unsubscribe headers and the link tags used.

        Raises:
            TemplateProblem: a template is missing or broken, a variable is undefined, the sandbox
                refused an operation, a link is not an absolute http(s) URL, the subject is empty, or
                a part lacks the unsubscribe URL or the postal address.
        """
        html_name = f"{EMAILS_FOLDER}/{template}{HTML_SUFFIX}"
        text_name = f"{EMAILS_FOLDER}/{template}{TEXT_SUFFIX}"
        if html_name not in self._sources:
            raise TemplateProblem(html_name, "no such template")
        unsubscribe_url = links.unsubscribe_url()
        _check_unsubscribe_url(html_name, unsubscribe_url)
        if not sender.postal_lines:
            raise TemplateProblem(html_name, "the sender has no postal address; every marketing email must show one")

        tags: list[str] = []

        def link(url: str, tag: str) -> str:
            _check_link(url, tag)
            if tag not in tags:
                tags.append(tag)
            return links.click_url(url, tag)

        variables: dict[str, Any] = {
            **context,
            "lead": dict(lead),
            "sender": sender,
            "link": link,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": links.preferences_url(),
            "open_pixel_url": links.open_pixel_url(),
        }
        variables["subject"] = self._render_subject(template, subject, variables)
        html = self._render_file(html_name, variables)
        has_text = text_name in self._sources
        text = tidy_text(self._render_file(text_name, variables)) if has_text else html_to_text(html)

        _check_footer(html_name, html, str(escape(unsubscribe_url)), sender.escaped_postal_lines)
        # The text part is checked with its white space collapsed (a postal line may wrap); a line
        # found in the text as it is is found in it collapsed too, so that is only done when needed.
        if not _has_footer(text, unsubscribe_url, sender.postal_lines):
            _check_footer(
                text_name if has_text else f"text part derived from {html_name}",
                " ".join(text.split()),
                unsubscribe_url,
                sender.postal_lines,
            )
        return RenderedEmail(
            subject=variables["subject"],
            html=html,
            text=text,
            from_header=sender.from_header,
            headers=unsubscribe_headers(unsubscribe_url) | ({"Reply-To": sender.reply_to} if sender.reply_to else {}),
            links=tuple(tags),
        )

    def check(self) -> list[str]:
        """Problems of every template, for `leadflow validate`: one line each, naming the file.

        Reports syntax errors (including unknown filters and tests), ``extends``/``include``/``import``
        of a template that does not exist, and a text part without its HTML part. Undefined variables
        only show when an email renders (they depend on the lead and the sequence's context).
        """
        problems: list[str] = []
        for name in sorted(self._sources):
            try:
                self._env.get_template(name)
                parsed = self._env.parse(self._sources[name], name=name)
            except TemplateSyntaxError as error:
                problems.append(f"{error.name or name}: line {error.lineno}: {error.message}")
                continue
            for referenced in meta.find_referenced_templates(parsed):
                # None: a name computed at render time, which only rendering can check
                if referenced is not None and referenced not in self._sources:
                    problems.append(f"{name}: refers to {referenced!r}, which does not exist")
            if name.startswith(f"{EMAILS_FOLDER}/") and name.endswith(TEXT_SUFFIX):
                html_name = name.removesuffix(TEXT_SUFFIX) + HTML_SUFFIX
                if html_name not in self._sources:
                    problems.append(f"{name}: has no HTML part {html_name!r}")
        return problems

    def _render_subject(self, template: str, subject: str, variables: dict[str, Any]) -> str:
        where = f"subject of {template}"
        if "{" not in subject:
            # No Jinja syntax: Jinja would give the text back (newlines normalized, one trailing
            # newline dropped: white space, which one_line collapses anyway).
            line = _plain_subject(subject)
            if not line:
                raise TemplateProblem(where, "the subject renders empty")
            return line
        compiled = self._subjects.get(subject)
        if compiled is None:
            try:
                compiled = self._env.from_string(subject)
            except TemplateSyntaxError as error:
                raise TemplateProblem(where, f"line {error.lineno}: {error.message}") from None
            if len(self._subjects) >= SUBJECT_CACHE_SIZE:
                self._subjects.clear()
            self._subjects[subject] = compiled
        line = one_line(self._run(compiled, variables, where))
        if not line:
            raise TemplateProblem(where, "the subject renders empty")
        return line

    def _render_file(self, name: str, variables: dict[str, Any]) -> str:
        compiled = self._templates.get(name)
        if compiled is None:
            try:
                compiled = self._templates[name] = self._env.get_template(name)
            except TemplateSyntaxError as error:
                raise TemplateProblem(error.name or name, f"line {error.lineno}: {error.message}") from None
        return self._run(compiled, variables, name)

    def _run(self, compiled: Template, variables: dict[str, Any], name: str) -> str:
        try:
            return compiled.render(variables)
        except TemplateSyntaxError as error:  # an included or extended template that does not compile
            raise TemplateProblem(error.name or name, f"line {error.lineno}: {error.message}") from None
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as error:
            # TemplateError covers TemplateNotFound, UndefinedError and the sandbox's SecurityError
            raise self._located(error, name) from error

    def _located(self, error: BaseException, rendering: str) -> TemplateProblem:
        """A problem at the innermost template line of ``error``'s traceback (Jinja rewrites tracebacks
        to point at template lines), or at ``rendering`` when no template line is in it."""
        where, line = rendering, None
        traceback = error.__traceback__
        while traceback is not None:
            filename = traceback.tb_frame.f_code.co_filename
            if filename in self._sources:
                where, line = filename, traceback.tb_lineno
            traceback = traceback.tb_next
        message = str(error) if isinstance(error, TemplateError) else f"{type(error).__name__}: {error}"
        if isinstance(error, TemplateNotFound):
            message = f"{error.name!r} not found"
        reason = message if line is None else f"line {line}: {message}"
        if where != rendering:
            reason += f" (rendering {rendering})"
        return TemplateProblem(where, reason)


def unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    """The RFC 8058 one-click unsubscribe headers for an https unsubscribe URL."""
    return {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def one_line(text: str) -> str:
    """``text`` safe for a header: control characters (CR, LF...) become spaces, white space collapses."""
    return " ".join(_CONTROLS.sub(" ", text).split())


@lru_cache(maxsize=SUBJECT_CACHE_SIZE)
def _plain_subject(subject: str) -> str:
    """``one_line`` of a subject without Jinja syntax (a sequence's few subjects, once each)."""
    return one_line(subject)


def _check_link(url: str, tag: str) -> None:
    if not isinstance(url, str) or not isinstance(tag, str):
        raise TypeError("link(url, tag) takes two strings")
    _check_link_strings(str(url), str(tag))


@lru_cache(maxsize=1024)
def _check_link_strings(url: str, tag: str) -> None:
    """The checks of ``_check_link`` (a template's links are the same for every lead: checked once each;
    a failing pair raises every time, exceptions are not cached)."""
    if not LINK_TAG.match(tag):
        raise ValueError(f"link tag {tag!r} must be 1-64 letters, digits, '-', '_' or '.'")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or _CONTROLS.search(url) or " " in url:
        raise ValueError(f"link({url!r}, {tag!r}): an email link must be an absolute http(s) URL")


def _check_unsubscribe_url(template: str, url: str) -> None:
    """RFC 8058 wants an https URI; plain http is let through for a loopback host only (the local stack).

    Every email's URL is different (its token), but its scheme and host are the issuer's: they are
    read from the URL cut after its host (``urlsplit`` finds the same scheme and netloc there) and
    the answer is kept per such origin. A URL of printable ASCII has no control character: the
    regular expression only looks at others."""
    if (
        (not (url.isascii() and url.isprintable()) and _CONTROLS.search(url))
        or " " in url
        or "<" in url
        or ">" in url
        or not _secure_origin(_origin(url))
    ):
        raise TemplateProblem(template, f"the unsubscribe URL {url!r} is not a plain https URL (RFC 8058)")


def _origin(url: str) -> str:
    """``url`` up to the end of its netloc (where ``urlsplit`` ends it: the first '/', '?' or '#' after '://')."""
    start = url.find("://")
    if start < 0:
        return url
    end = len(url)
    for mark in "/?#":
        found = url.find(mark, start + 3, end)  # only before the end found so far
        if found >= 0:
            end = found
    return url[:end]


@lru_cache(maxsize=64)
def _secure_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
    return secure and bool(parts.netloc)


def _found(text: str, part: str) -> bool:
    """``part in text``, searched from the end: a footer is found after reading a few hundred
    characters, not the whole email (the same answer)."""
    return text.rfind(part) >= 0


def _has_footer(text: str, unsubscribe_url: str, postal_lines: tuple[str, ...]) -> bool:
    """Whether ``text`` holds the unsubscribe URL and every postal line as they are."""
    return _found(text, unsubscribe_url) and all(_found(text, line) for line in postal_lines)


def _check_footer(template: str, rendered: str, unsubscribe_url: str, postal_lines: tuple[str, ...]) -> None:
    if not _found(rendered, unsubscribe_url):
        raise TemplateProblem(template, "the rendered email has no unsubscribe link; it must never be sent")
    missing = [line for line in postal_lines if not _found(rendered, line)]
    if missing:
        raise TemplateProblem(template, f"the rendered email lacks the sender's postal address ({missing[0]!r})")
