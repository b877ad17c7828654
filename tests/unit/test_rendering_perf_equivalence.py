"""The renderer's shortcuts render exactly what Jinja's own sandbox renders.

``EmailRenderer`` runs Jinja's ``ImmutableSandboxedEnvironment``, rendering through
``Template.render``, with one change for speed through the sandbox's documented hook: its
attribute decisions (``is_safe_attribute``) are kept per (type, name). A subject with no
Jinja syntax skips Jinja; the text part's footer check skips collapsing white space when the
footer is there as it is; ``Sender`` works out its derived forms once. Each of these must give
what the plain path gives (output, error type and message), and the sandbox must refuse what it
refused.
"""

from __future__ import annotations

import re
from email.utils import formataddr
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Template, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from leadflow.config.templates import load_template_sources
from leadflow.domain.plain_text import tidy_text
from leadflow.domain.rendering import (
    _CONTROLS,
    ENVIRONMENT_OPTIONS,
    LOOPBACK_HOSTS,
    EmailRenderer,
    Sender,
    TemplateProblem,
    _check_unsubscribe_url,
    _origin,
    _SourcesLoader,
    one_line,
    sender_of,
)
from tests.conftest import FIXTURES, WORKSPACE, load_json

pytestmark = pytest.mark.unit

SOURCES = load_template_sources(WORKSPACE / "templates")
SSTI = load_json(FIXTURES / "ssti_jinja2_payloads.json")  # a copy of ../shared/external/suites's
SENDER = Sender("news@example.com", "Example", "hello@example.com", "Example Inc.\n100 Market Street\nSF, CA 94105")
LEAD: dict[str, Any] = {"email": "ada@northwind.test", "first_name": "Ada", "company": "Northwind <Traders> & Co"}
CONTEXT: dict[str, Any] = {"sequence": "s", "step": 1, "confirm_url": "https://www.example.com/confirm?t=1&l=2"}
EMAILS = sorted(
    name.removeprefix("emails/").removesuffix(".html.j2")
    for name in SOURCES
    if name.startswith("emails/") and name.endswith(".html.j2")
)


class Links:
    def click_url(self, url: str, tag: str) -> str:
        return f"https://t.example.net/c/{tag}?u={len(url)}&s=1"

    def open_pixel_url(self) -> str:
        return "https://t.example.net/o/x.gif"

    def unsubscribe_url(self) -> str:
        return "https://t.example.net/u/tok?a=1&b=2"

    def preferences_url(self) -> str:
        return "https://t.example.net/p/tok"


def template_variables(subject: str) -> dict[str, Any]:
    """What ``EmailRenderer.render`` gives a template, with ``Links``."""
    links = Links()
    return {
        **CONTEXT,
        "lead": dict(LEAD),
        "sender": SENDER,
        "link": links.click_url,
        "unsubscribe_url": links.unsubscribe_url(),
        "preferences_url": links.preferences_url(),
        "open_pixel_url": links.open_pixel_url(),
        "subject": subject,
    }


def plain_environment() -> ImmutableSandboxedEnvironment:
    """Jinja's sandbox as shipped, with the renderer's options."""
    return ImmutableSandboxedEnvironment(loader=_SourcesLoader(SOURCES), **ENVIRONMENT_OPTIONS)


@pytest.mark.parametrize("email", EMAILS)
def test_every_shipped_email_renders_as_jinjas_own_sandbox_renders_it(email: str) -> None:
    renderer = EmailRenderer(SOURCES)
    rendered = renderer.render(email, "Hi {{ lead.first_name }}", LEAD, CONTEXT, SENDER, Links())
    again = renderer.render(email, "Hi {{ lead.first_name }}", LEAD, CONTEXT, SENDER, Links())  # memo warm
    assert again == rendered
    plain = plain_environment()
    variables = template_variables("Hi Ada")
    assert rendered.html == plain.get_template(f"emails/{email}.html.j2").render(variables)
    assert rendered.subject == "Hi Ada"


@pytest.mark.parametrize(
    "source",
    [
        "{{ range(3) | list }} {{ dict(a=1) }} {% set ns = namespace(n=2) %}{{ ns.n }} {{ cycler('a','b').next() }}",
        "{% for x in lead | dictsort %}{{ x[0] }}{% endfor %} {{ lead.get('first_name') }} {{ lead.items() | list }}",
        "{{ sender.name }} {{ sender.postal_lines | join('/') }} {{ sender.address }}",
    ],
)
def test_globals_filters_and_attributes_work_as_in_jinjas_sandbox(source: str) -> None:
    variables = {"lead": dict(LEAD), "sender": SENDER}
    ours = EmailRenderer({**SOURCES, "x.txt.j2": source})._env.get_template("x.txt.j2")
    for _ in range(2):  # the second render reads the memo
        assert ours.render(variables) == plain_environment().from_string(source).render(variables)


@pytest.mark.parametrize(
    "attempt",
    [
        "{{ lead.__class__ }}",
        "{{ sender.__init__ }}",
        "{{ lead.update({'x': 1}) }}",
        "{{ lead.pop('email') }}",
        "{{ sender.postal_lines.__class__ }}",
        "{{ link.__globals__ }}",
        "{{ range.__self__ }}",
    ],
)
def test_the_sandbox_refuses_the_same_after_its_answers_are_remembered(attempt: str) -> None:
    renderer = EmailRenderer(SOURCES)
    env = renderer._env
    variables = {"lead": dict(LEAD), "sender": SENDER, "link": Links().click_url}
    for _ in range(3):
        ours: Any
        theirs: Any
        try:
            ours = env.from_string(attempt).render(variables)
        except Exception as error:  # noqa: BLE001 - the outcome compared is the exception's type
            ours = type(error)
        try:
            theirs = plain_environment().from_string(attempt).render(variables)
        except Exception as error:  # noqa: BLE001
            theirs = type(error)
        assert ours == theirs
    assert variables["lead"] == LEAD


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80).filter(lambda s: "{" not in s))
def test_a_subject_without_jinja_syntax_is_what_jinja_would_make_of_it(subject: str) -> None:
    renderer = EmailRenderer(SOURCES)
    expected = one_line(plain_environment().from_string(subject).render())
    if not expected:
        with pytest.raises(TemplateProblem, match="renders empty"):
            renderer._render_subject("t", subject, {})
    else:
        assert renderer._render_subject("t", subject, {}) == expected


def reference_tidy(text: str) -> str:
    """``plain_text.tidy_text`` before its fast path."""
    lines = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", lines).strip("\n") + "\n"


@settings(max_examples=400, deadline=None)
@given(
    st.text(st.sampled_from(["a", "b", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\xa0", "\u2028", "é"]))
    | st.text(max_size=60)
)
def test_tidying_text_gives_what_it_gave(text: str) -> None:
    assert tidy_text(text) == reference_tidy(text)


@pytest.mark.parametrize("email", [e for e in EMAILS if f"emails/{e}.txt.j2" in SOURCES])
def test_tidying_the_shipped_text_parts_gives_what_it_gave(email: str) -> None:
    variables = template_variables("s")
    raw = plain_environment().get_template(f"emails/{email}.txt.j2").render(variables)
    assert tidy_text(raw) == reference_tidy(raw)


def test_a_text_footer_wrapped_over_lines_is_still_found_and_a_missing_one_refused() -> None:
    wrapped = {
        "emails/w.html.j2": '{% extends "layouts/base.html.j2" %}{% block content %}x{% endblock %}',
        "emails/w.txt.j2": "{{ sender.postal_lines | join('\n   ') }}\nExample\n  Inc.\n{{ unsubscribe_url }}\n",
        "emails/m.html.j2": '{% extends "layouts/base.html.j2" %}{% block content %}x{% endblock %}',
        "emails/m.txt.j2": "{{ unsubscribe_url }}\n",
    }
    sender = Sender("n@example.com", "E", None, "Example   Inc.\n100 Market Street")
    renderer = EmailRenderer({**SOURCES, **wrapped})
    assert "Example\n  Inc." in renderer.render("w", "s", LEAD, CONTEXT, sender, Links()).text
    with pytest.raises(TemplateProblem, match="postal address"):
        renderer.render("m", "s", LEAD, CONTEXT, sender, Links())


@pytest.mark.parametrize(
    "fields",
    [
        ("news@example.com", "Example", None, "A & B <Ltd>\n\n  1  Main   St \n"),
        ("news@example.com", "Zoë Société", "r@example.com", "X"),
        ("news@example.com", '"Quoted" Name, Inc.', None, "X"),
        ("news@example.com", "", None, ""),
    ],
)
def test_the_senders_derived_forms_are_what_they_were_computed_as(fields: tuple[Any, ...]) -> None:
    sender = sender_of(*fields)
    assert sender is sender_of(*fields)  # made once
    lines = tuple(line for line in (" ".join(raw.split()) for raw in sender.postal_address.splitlines()) if line)
    assert sender.postal_lines == lines
    assert sender.escaped_postal_lines == tuple(str(escape(line)) for line in lines)
    assert sender.from_header == formataddr((" ".join(sender.name.split()), sender.address))
    assert sender == Sender(*fields)


def reference_unsubscribe_check(url: str) -> bool:
    """``rendering._check_unsubscribe_url`` before its per-origin cache: True when the URL passes."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
    return bool(secure and parts.netloc and not _CONTROLS.search(url) and not any(c in url for c in " <>"))


def passes(url: str) -> bool:
    try:
        _check_unsubscribe_url("t", url)
    except (TemplateProblem, ValueError):
        return False
    return True


URL_PARTS = st.sampled_from(
    [
        "https",
        "http",
        "HTTPS",
        "ftp",
        ":",
        "://",
        "//",
        "/",
        "?",
        "#",
        "@",
        ".",
        "[",
        "]",
        "::1",
        "localhost",
        "127.0.0.1",
        "t.example.com",
        "u",
        "x=1",
        " ",
        "<",
        "\t",
        "\n",
        "é",
        "1",
        ":443",
        "user:pw@",
        "\x7f",
        "\x85",
        "\u2028",
        ">",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(URL_PARTS, max_size=10).map("".join) | st.text(max_size=40))
def test_the_unsubscribe_url_check_decides_as_before(url: str) -> None:
    assert passes(url) == reference_unsubscribe_check(url)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://t.example.com/u/abc.def", True),
        ("https://t.example.com?u=abc", True),
        ("https://t.example.com#abc", True),
        ("http://localhost:3000/u/abc", True),
        ("http://127.0.0.1/u/abc", True),
        ("http://[::1]:8080/u/abc", True),
        ("http://t.example.com/u/abc", False),
        ("https:///u/abc", False),
        ("https://t.example.com/u/a b", False),
        ("javascript://t.example.com/%0a", False),
        ("https://[::1/u/x", False),
    ],
)
def test_unsubscribe_urls_known_good_and_bad(url: str, ok: bool) -> None:
    assert passes(url) is ok
    assert reference_unsubscribe_check(url) is ok


# ---------------------------------------------------------------------------- the sandbox's shortcuts


class PlainRenderer(EmailRenderer):
    """``EmailRenderer`` on Jinja's own sandbox, rendering through ``Template.render`` (the code before
    the shortcuts): the reference the fast renderer must match, output and errors alike."""

    def __init__(self, sources: dict[str, str]) -> None:
        super().__init__(sources)
        # The stock sandbox on purpose (the renderer types its own subclass).
        self._env = ImmutableSandboxedEnvironment(  # type: ignore[assignment]
            loader=_SourcesLoader(self._sources), **ENVIRONMENT_OPTIONS
        )

    def _run(self, compiled: Template, variables: dict[str, Any], name: str) -> str:
        from jinja2 import TemplateError, TemplateSyntaxError

        try:
            return compiled.render(variables)
        except TemplateSyntaxError as error:
            raise TemplateProblem(error.name or name, f"line {error.lineno}: {error.message}") from None
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as error:
            raise self._located(error, name) from error


def rendered_or_problem(renderer: EmailRenderer, email: str, subject: str, lead: dict[str, Any]) -> Any:
    try:
        done = renderer.render(email, subject, lead, CONTEXT, SENDER, Links())
    except TemplateProblem as problem:
        return ("problem", problem.template, problem.reason)
    return (done.subject, done.html, done.text, done.from_header, done.headers, done.links)


CALLS = {
    "partials/m.html.j2": (
        '{% macro a(x, y="<d>") %}[{{ x }}/{{ y }}]{% endmacro %}'
        "{% macro b() %}{{ varargs }}{{ kwargs }}{% endmacro %}"
        "{% macro c() %}<{{ caller() }}>{% endmacro %}"
        "{% macro d(x) %}{{ x }}{% endmacro %}"
    ),
    "emails/calls.html.j2": (
        '{% extends "layouts/base.html.j2" %}{% from "partials/m.html.j2" import a, b, c, d %}'
        '{% block content %}{{ a(lead.first_name) }}|{{ a("<i>", y="<b>") }}|{{ b(1, 2, k=4) }}|'
        "{% call c() %}in {{ lead.email }}{% endcall %}|{{ d(lead.company) }}|"
        '{% for i in [1, 2] %}{{ a(i) }}{{ link("https://www.example.com/" ~ i, "t" ~ i) }}{% endfor %}'
        '{% set kept %}{{ d("&") }}{% endset %}{{ kept }}|{% autoescape false %}{{ d(lead.company) }}'
        "{% endautoescape %}|{{ lead.items() | list | length }} {{ lead.get('email') }} {{ lead.keys is defined }}"
        ' {{ lead["first_name"] }} {{ sender.name }} {{ "{0}".format(lead.company) }} {{ lead.company.upper() }}'
        "{% endblock %}"
    ),
    "emails/calls.txt.j2": (
        '{% from "partials/m.html.j2" import a, d %}{{ a(lead.company) }} {{ a("<") | e }}'
        ' {{ d("<") | e }} {{ d("<") ~ "<" }}'
        ' {{ link("https://www.example.com/?a=1&b=2", "t") }}\n{% include "partials/footer.txt.j2" %}'
    ),
    "emails/missing_argument.html.j2": '{% from "partials/m.html.j2" import a %}{{ a() }}',
    "emails/format_escape.html.j2": '{{ "{0.__class__}".format(lead) }}',
    "emails/too_many.html.j2": '{% from "partials/m.html.j2" import a %}{{ a(1, 2, 3) }}',
    "emails/unknown_keyword.html.j2": '{% from "partials/m.html.j2" import a %}{{ a(1, z=3) }}',
    "emails/undefined_in_macro.html.j2": (
        '{% extends "layouts/base.html.j2" %}{% from "partials/m.html.j2" import d %}'
        '{% block content %}\n\n{{ d(lead.missing) ~ "" }}{% endblock %}'
    ),
    "emails/undefined_field.html.j2": (
        '{% extends "layouts/base.html.j2" %}{% block content %}{{ lead.missing }}{% endblock %}'
    ),
    "emails/undefined_attribute.html.j2": "{{ sender.missing }}",
    "emails/unsafe.html.j2": "{{ lead.__class__ }}{{ lead.update({'a': 1}) }}",
    "emails/bad_link.html.j2": '{{ link("javascript:alert(1)", "x") }}',
}


@pytest.mark.parametrize("email", sorted(n[7:-8] for n in CALLS if n.startswith("emails/")) + EMAILS)
def test_the_shortcuts_render_and_fail_as_jinjas_own_sandbox(email: str) -> None:
    ours, plain = EmailRenderer({**SOURCES, **CALLS}), PlainRenderer({**SOURCES, **CALLS})
    for text in ["Ada", "Zoë <b>&amp;", *SSTI["payloads"][:20]]:
        lead = {**LEAD, "first_name": text, "company": f"{text} & <Co>"}
        for subject in ("Hi {{ lead.first_name }}", "{{ lead.nope }}", "Plain subject"):
            expected = rendered_or_problem(plain, email, subject, lead)
            if email == "calls" and subject != "{{ lead.nope }}":
                assert expected[0] != "problem", expected  # the calls template renders: every call is compared
            assert rendered_or_problem(ours, email, subject, lead) == expected
            assert rendered_or_problem(ours, email, subject, lead) == expected  # memos warm


def test_callables_keep_the_sandboxs_decisions() -> None:
    """Functions marked unsafe stay refused, functions that take the context still get it, and a
    StopIteration still makes an undefined value."""

    def unsafe() -> str:
        return "ran"

    unsafe.unsafe_callable = True  # type: ignore[attr-defined]

    @pass_context
    def name_of(context: Context) -> str:
        return str(context.name)

    def stops() -> str:
        raise StopIteration

    source = "{{ name_of() }} {{ (stops() is undefined) }} {{ plain(1, k=2) }}"
    variables = {"name_of": name_of, "stops": stops, "plain": lambda a, k: a + k, "unsafe": unsafe}
    ours = EmailRenderer({"x.txt.j2": source, "u.txt.j2": "{{ unsafe() }}"})._env
    assert ours.get_template("x.txt.j2").render(variables) == "x.txt.j2 True 3"
    for env in (ours, plain_environment()):
        with pytest.raises(Exception) as refused:
            env.from_string("{{ unsafe() }}").render(variables)
        assert type(refused.value).__name__ == "SecurityError"


def reference_origin(url: str) -> str:
    """``rendering._origin`` before it bounded its searches."""
    start = url.find("://")
    if start < 0:
        return url
    ends = [i for i in (url.find(c, start + 3) for c in "/?#") if i >= 0]
    return url[: min(ends)] if ends else url


@settings(max_examples=400, deadline=None)
@given(st.lists(URL_PARTS, max_size=10).map("".join) | st.text(max_size=40))
def test_the_origin_of_a_url_is_what_it_was(url: str) -> None:
    assert _origin(url) == reference_origin(url)
