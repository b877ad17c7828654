"""The console at ``/console/``: leadflow for the people who use it, in AWS and on the local stack.

Server-rendered pages (they show everything with JavaScript off), behind a Cognito sign-in: the
user pool's hosted sign-in (``transport.console_sign_in``: authorization code grant with PKCE, the
code exchanged server-side) leaves the ID token in an ``HttpOnly``, ``SameSite=Strict`` cookie
scoped to ``/console``. Every request checks that token as API Gateway's JWT authorizer would
(signature against the pool's keys, issuer, audience, expiry): a browser sends cookies, and no API
Gateway authorizer reads a cookie. The person's groups decide what they may see and do
(``leadflow.domain.roles``). Viewing never changes anything; a change is a button that first asks
for a confirmation, is refused unless it comes from this site (``Origin``), and is recorded in the
audit log.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from leadflow.domain.emails import InvalidEmail
from leadflow.domain.errors import LeadNotFound
from leadflow.domain.reporting import DIMENSIONS, VIEWS
from leadflow.domain.roles import Action, Person, person_from_claims
from leadflow.transport.console_actions import (
    CHANGES,
    EDITABLE,
    LeadChange,
    Refused,
    checked_params,
    done_message,
    export_download,
    lead_url,
    make_change,
)
from leadflow.transport.console_leads import forms_page, handoffs_page, leads_page, sequences_page
from leadflow.transport.console_lists import (
    change_suppression,
    confirm_suppression,
    import_page,
    imports_page,
    rejected_csv,
    start_import,
    suppression_page,
)
from leadflow.transport.console_sign_in import finish_sign_in, sign_out, signed_out, start_sign_in

log = logging.getLogger("leadflow.console")
COOKIE = "lf_console"
PAGES = Path(__file__).parent / "console_pages"
STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified")
_LEAD_ID = r"(?P<lead_id>[0-9A-Za-z_-]{1,64})"
_IMPORT_ID = r"(?P<import_id>[A-Za-z0-9_-]{1,64})"
_CHANGE = "(?P<change>" + "|".join(CHANGES) + ")"


@dataclass
class ConsoleParts:
    """What the console reads and changes, built by the composition root (each on first use)."""

    hosted: Callable[[], Any]  # HostedSignIn: the user pool's hosted UI and the code exchange
    verify: Callable[[str], dict[str, Any]]  # ID token -> claims; raises on any other token
    leads: Callable[[], Any]  # LeadQueries
    scoring: Callable[[], Any]  # ScoringService
    nurture: Callable[[], Any]  # NurtureService (reads)
    handoffs: Callable[[], Any]  # HandoffService (its store reads the lead's hand-offs)
    audit: Callable[[], Any]  # AuditTrail
    reports: Callable[[], Any]  # ReportingService
    now: Callable[[], datetime]  # the reports' default period, overdue hand-offs
    audience: Callable[[], Any]  # AudienceService (tags, fields)
    enrollments: Callable[[], Any]  # NurtureService that enrolls and takes out (sends nothing itself)
    publish_counts: Callable[[Any], Any]  # the nurture counts a change made, onto the bus (the reports)
    suppression: Callable[[], Any]  # SuppressionService
    gdpr: Callable[[], Any]  # GdprService
    imports: Callable[[], Any]  # ImportService
    secure_cookie: bool = True  # False only on the local stack's plain http
    local: bool = False  # the local stack: simulated opens and clicks are offered (through /_dev/)


class Page(Exception):
    """An answer decided deep in a request (a redirect, a refusal, a download)."""

    def __init__(
        self,
        status: int,
        html: str = "",
        location: str | None = None,
        cookie: str | list[str] | None = None,
        download: tuple[str, dict[str, str]] | None = None,
    ) -> None:
        super().__init__(status)
        self.status, self.html, self.location, self.cookie = status, html, location, cookie
        self.download = download  # (content type, headers): the body is a file, not a page


class Console:
    def __init__(self, parts: ConsoleParts) -> None:
        self.parts = parts
        self.templates = Environment(
            loader=FileSystemLoader(PAGES), autoescape=select_autoescape(["html", "j2"]), trim_blocks=True
        )
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., str]]] = [
            ("GET", re.compile(r"/console/?"), self.home),
            ("GET", re.compile(r"/console/sign-in"), partial(start_sign_in, self)),
            ("GET", re.compile(r"/console/oauth2/callback"), partial(finish_sign_in, self)),
            ("POST", re.compile(r"/console/sign-out"), partial(sign_out, self)),
            ("GET", re.compile(r"/console/signed-out"), partial(signed_out, self)),
            ("GET", re.compile(r"/console/leads"), partial(leads_page, self, stages=STAGES)),
            ("GET", re.compile(rf"/console/leads/{_LEAD_ID}"), self.lead),
            ("GET", re.compile(rf"/console/leads/{_LEAD_ID}/{_CHANGE}"), self.confirm_change),
            ("POST", re.compile(rf"/console/leads/{_LEAD_ID}/{_CHANGE}"), self.change),
            ("GET", re.compile(r"/console/suppression"), partial(suppression_page, self)),
            ("GET", re.compile(r"/console/suppression/(?P<step>add|lift)"), partial(confirm_suppression, self)),
            ("POST", re.compile(r"/console/suppression/(?P<step>add|lift)"), partial(change_suppression, self)),
            ("GET", re.compile(r"/console/imports"), partial(imports_page, self)),
            ("POST", re.compile(r"/console/imports"), partial(start_import, self)),
            ("GET", re.compile(rf"/console/imports/{_IMPORT_ID}"), partial(import_page, self)),
            ("GET", re.compile(rf"/console/imports/{_IMPORT_ID}/rejected\.csv"), partial(rejected_csv, self)),
            ("GET", re.compile(r"/console/sequences"), partial(sequences_page, self)),
            ("GET", re.compile(r"/console/handoffs"), partial(handoffs_page, self)),
            ("GET", re.compile(r"/console/forms"), partial(forms_page, self)),
            ("GET", re.compile(r"/console/audit"), self.audit),
            ("GET", re.compile(r"/console/reports"), self.reports),
        ]

    # ------------------------------------------------------------------ the request
    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        request = Request(event)
        try:
            for method, pattern, view in self.routes:
                match = pattern.fullmatch(request.path)
                if match and method == request.method:
                    return _html(200, view(request, **match.groupdict()))
            if any(p.fullmatch(request.path) for _, p, _ in self.routes):
                return _html(405, self.render("message.html.j2", request, title="Not here", text="Not this way."))
            return _html(404, self.render("message.html.j2", request, title="Nothing here", text=request.path))
        except Page as page:
            if page.download is not None:
                return _file(page.status, page.html, *page.download)
            return _html(page.status, page.html, page.location, page.cookie)

    def render(self, template: str, request: Request, **context: Any) -> str:
        return self.templates.get_template(template).render(person=request.person, stages=STAGES, **context)

    def person(self, request: Request) -> Person:
        """The signed-in person, or the sign-in page instead of this one."""
        token = request.cookies.get(COOKIE)
        if token:
            try:
                request.person = person_from_claims(self.parts.verify(token))
            except Exception as error:  # noqa: BLE001 - any token that does not verify means: sign in again
                log.info("console token refused: %s", type(error).__name__)
                request.person = None
        if request.person is None:
            page = self.render("sign_in.html.j2", request, error=None, expired=bool(token))
            raise Page(401, page, cookie=self.session_cookie("", 0) if token else None)
        if request.person.role is None:
            raise Page(403, self.render("message.html.j2", request, title="No access", text=NO_GROUP))
        return request.person

    def require(self, request: Request, action: Action) -> Person:
        person = self.person(request)
        if not person.may(action):
            text = f"Your role ({person.role}) may not do this. An admin can change your group."
            raise Page(403, self.render("message.html.j2", request, title="Not allowed", text=text))
        return person

    def changing(self, request: Request, action: Action) -> Person:
        """A change: from this site's own pages only, by someone allowed."""
        origin = request.headers.get("origin")
        if origin is not None and origin != request.origin:
            raise Page(403, self.render("message.html.j2", request, title="Refused", text=CROSS_SITE))
        return self.require(request, action)

    def session_cookie(self, token: str, max_age: int) -> str:
        secure = "; Secure" if self.parts.secure_cookie else ""
        return f"{COOKIE}={token}; Max-Age={max_age}; Path=/console; HttpOnly; SameSite=Strict{secure}"

    # ------------------------------------------------------------------ signing in and out
    def home(self, request: Request) -> str:
        self.person(request)
        raise Page(303, location="/console/leads")

    # ------------------------------------------------------------------ reading
    def message(self, request: Request, status: int, title: str, text: str) -> Page:
        """A page that says why (raise it)."""
        return Page(status, self.render("message.html.j2", request, title=title, text=text))

    def _lead(self, request: Request, lead_id: str) -> dict[str, Any]:
        try:
            return dict(self.parts.leads().get(lead_id))
        except LeadNotFound:
            raise self.message(request, 404, "No such lead", lead_id) from None

    def lead(
        self, request: Request, lead_id: str, confirm: LeadChange | None = None, params: dict[str, str] | None = None
    ) -> str:
        person = self.require(request, Action.READ)
        lead = self._lead(request, lead_id)
        enrollments = [e for e, _ in self.parts.nurture().lead_enrollments(lead_id)]
        sequences = self.parts.enrollments().workspace.sequences
        suppression = self.parts.suppression()
        try:
            suppressed = suppression.entry(suppression.key_of(str(lead["profile"].get("email", ""))))
        except InvalidEmail:
            suppressed = None
        who = lead["profile"].get("first_name") or lead["profile"].get("email") or lead_id
        return self.render(
            "lead.html.j2",
            request,
            lead=lead,
            score=self.parts.scoring().explain_lead(lead_id),
            enrollments=enrollments,
            handoffs=self.parts.handoffs().store.lead_handoffs(lead_id),
            suppressed=suppressed,
            enrollable=sorted(k for k, s in sequences.items() if any(t.api or t.broadcast for t in s.triggers)),
            active=sorted(e.sequence_id for e in enrollments if e.status == "active"),
            editable=EDITABLE,
            may=person.may,
            confirm=confirm,
            question=confirm.question.format(who=who, **(params or {})) if confirm else "",
            params=params or {},
            done=done_message(request.query.get("done", "")),
            local=self.parts.local,
        )

    def reports(self, request: Request) -> str:
        """The funnel by a dimension and each sequence's figures (steps, A/B tests) over a period:
        the admin API's report routes, drawn as tables and small SVG charts."""
        from leadflow.domain.report_views import BadPeriod
        from leadflow.transport.report_charts import (
            STYLE,
            TABLE_SECTIONS,
            funnel_section,
            sequence_section,
            table_section,
        )
        from leadflow.transport.report_models import FunnelReport, SequenceReport
        from leadflow.transport.report_routes import default_period

        self.require(request, Action.READ)
        by = request.query.get("by", "source")
        by = by if by in DIMENSIONS else "source"
        view = request.query.get("view", "events")
        view = view if view in VIEWS else "events"
        start, end = default_period(request.query.get("from"), request.query.get("to"), self.parts.now().date())
        service = self.parts.reports()
        try:
            funnel = FunnelReport.model_validate(service.funnel(start, end, by, view)).model_dump(by_alias=True)
            sections = [funnel_section(funnel)]
            for sequence_id in sorted(service.workspace.sequences):
                report = SequenceReport.model_validate(service.sequence(sequence_id, start, end))
                sections.append(sequence_section(report.model_dump(by_alias=True)))
            sections += [table_section(service, kind, start, end) for kind in TABLE_SECTIONS]
        except BadPeriod as error:
            page = self.render("message.html.j2", request, title="Not a period", text=str(error))
            raise Page(400, page) from None
        charts = Markup("".join(sections))  # noqa: S704 - built by report_charts, every value escaped there  # nosec B704
        return self.render(
            "reports.html.j2",
            request,
            charts=charts,
            style=Markup(STYLE),  # noqa: S704 - report_charts' own constant stylesheet  # nosec B704
            start=start,
            end=end,
            by=by,
            dimensions=DIMENSIONS,
            view=view,
            views=VIEWS,
        )

    def audit(self, request: Request) -> str:
        self.require(request, Action.READ_AUDIT)
        gdpr = self.parts.gdpr().recent_audit(100)
        return self.render("audit.html.j2", request, entries=self.parts.audit().recent(200), gdpr=gdpr)

    # ------------------------------------------------------------------ changing
    def confirm_change(self, request: Request, lead_id: str, change: str) -> str:
        """The question a change asks first (a GET: it changes nothing)."""
        kind = CHANGES[change]
        self.require(request, kind.action)
        try:
            params = checked_params(self, kind, request.query)
        except Refused as refused:
            raise self.message(request, refused.status, "Not possible", refused.message) from None
        return self.lead(request, lead_id, confirm=kind, params=params)

    def change(self, request: Request, lead_id: str, change: str) -> str:
        """The change itself (the question's form posts it), recorded in the audit log."""
        kind = CHANGES[change]
        person = self.changing(request, kind.action)
        lead = self._lead(request, lead_id)
        try:
            params = checked_params(self, kind, request.form())
            if kind.name == "export":
                document = self.parts.gdpr().export(lead_id, f"console:{person.email}", "console")
                body, headers = export_download(document, lead_id)
                raise Page(200, body, download=("application/json; charset=utf-8", headers))
            if kind.name == "erase":
                self.parts.gdpr().erase(lead_id, f"console:{person.email}", "console")
                raise Page(303, location="/console/leads?done=erased")
            what = make_change(self, person, kind, lead, params)
        except Refused as refused:
            raise self.message(request, refused.status, "Not changed", refused.message) from None
        self.parts.audit().record(person.email, str(person.role), "console", what, lead_id, status=200)
        raise Page(303, location=lead_url(lead_id, kind.name))


NO_GROUP = "You are signed in, but in none of the console's groups (admin, marketer, sales-viewer): ask an admin."
CROSS_SITE = "Changes are made from the console's own pages only."


class Request:
    """The parts of a payload-2.0 event the console reads."""

    def __init__(self, event: dict[str, Any]) -> None:
        http = event.get("requestContext", {}).get("http", {})
        self.method = str(http.get("method", "GET")).upper()
        self.path = str(event.get("rawPath") or http.get("path") or "/")
        self.headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        self.query = {k: str(v) for k, v in (event.get("queryStringParameters") or {}).items()}
        jar: SimpleCookie = SimpleCookie()
        for cookie in event.get("cookies") or []:
            try:
                jar.load(cookie)
            except Exception:  # noqa: BLE001, S112 - a malformed cookie of another site is not ours  # nosec B112
                continue
        self.cookies = {name: morsel.value for name, morsel in jar.items()}
        body = event.get("body") or ""
        try:
            self._raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8", "replace")
        except ValueError:
            self._raw = b""
        self._body = self._raw.decode("utf-8", "replace")
        scheme = self.headers.get("x-forwarded-proto", "https")
        self.origin = f"{scheme}://{self.headers.get('host', event.get('requestContext', {}).get('domainName', ''))}"
        self.person: Person | None = None

    def form(self, limit: int = 20_000) -> dict[str, str]:
        """An urlencoded form's fields (the first value of each), from at most ``limit`` characters."""
        return {k: v[0] for k, v in parse_qs(self._body[:limit], keep_blank_values=True).items()}

    def body_bytes(self) -> bytes:
        return self._raw


def _file(status: int, body: str, content_type: str, headers: dict[str, str]) -> dict[str, Any]:
    """A download (a GDPR export, rejected rows): never cached, never sniffed."""
    answer = {"Content-Type": content_type, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    return {"statusCode": status, "headers": {**answer, **headers}, "body": body}


def _html(status: int, html: str, location: str | None = None, cookie: str | list[str] | None = None) -> dict[str, Any]:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }
    if location:
        headers["Location"] = location
    answer: dict[str, Any] = {"statusCode": status, "headers": headers, "body": html}
    if cookie:
        answer["cookies"] = [cookie] if isinstance(cookie, str) else cookie
    return answer
