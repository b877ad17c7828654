"""The local HTTP gateway: the template's HttpApi routes as API Gateway v2 events, plus /_dev/.

Requests to a template route become real payload-2.0 events (``leadflow.dev.api_gateway_events``);
routes with an IAM authorizer take the dev admin token as a bearer token instead of a
SigV4 signature. Here are the ``/_dev/`` URL map and its pages (landing page, console, lead page,
outbox, reports); the JSON control routes (clock, tick, faults, fake CRM...) are
``leadflow.dev.control_routes``.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from leadflow.config.workspace import Workspace
from leadflow.dev.api_gateway_events import api_gateway_event, lambda_response
from leadflow.dev.control_routes import ControlRoutes, json_response
from leadflow.dev.request_guard import host_allowed, refusal
from leadflow.dev.runner import HandlerError
from leadflow.domain.definitions.forms import ATTRIBUTION_FIELDS, NONCE_FIELD, TIMESTAMP_FIELD

if TYPE_CHECKING:
    from leadflow.dev.stack import LocalStack

log = logging.getLogger("leadflow.dev")
STATIC = Path(__file__).parent / "static"
# The fake CRM's APIs, called server to server by hand-off delivery in the CRM's own formats.
THIRD_PARTY_ENDPOINTS = frozenset({"crm_receive", "crm_provider", "cognito_token"})
SIMULATED = {"open": "an open of a campaign email"}  # the lead page's note after a button


class DevGateway:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.templates = Environment(
            loader=FileSystemLoader(STATIC), autoescape=select_autoescape(["html", "html.j2"]), trim_blocks=True
        )
        self.dev_routes = Map(
            [
                Rule("/", endpoint="landing"),
                Rule("/f/<form_id>", endpoint="landing"),
                Rule("/thank-you", endpoint="thank_you"),
                Rule("/docs", endpoint="docs"),
                Rule("/_dev/", endpoint="console"),
                Rule("/_dev/leads/<lead_id>", endpoint="console_lead"),
                Rule("/_dev/leads/<lead_id>/simulate", endpoint="simulate", methods=["POST"]),
                Rule("/_dev/reports", endpoint="reports"),
                Rule("/_dev/stack", endpoint="stack"),
                Rule("/_dev/outbox", endpoint="outbox"),
                Rule("/_dev/mail", endpoint="mail"),
                Rule("/_dev/mail/<int:index>", endpoint="mail_message"),
                Rule("/_dev/mail/<int:index>/<any(open, click):action>", endpoint="mail_act", methods=["POST"]),
                Rule("/_dev/events", endpoint="events"),
                Rule("/_dev/clock", endpoint="clock", methods=["GET", "POST"]),
                Rule("/_dev/tick", endpoint="tick", methods=["POST"]),
                Rule("/_dev/faults", endpoint="faults", methods=["GET", "POST", "DELETE"]),
                Rule("/_dev/queues", endpoint="queues"),
                Rule("/_dev/tokens", endpoint="tokens", methods=["POST"]),
                # the fake CRM (hand-off destination): see leadflow.dev.fake_crm
                Rule("/_dev/crm/requests", endpoint="crm_requests", methods=["GET", "DELETE"]),
                Rule("/_dev/crm/mode", endpoint="crm_mode", methods=["GET", "POST"]),
                Rule("/_dev/crm/hook", endpoint="crm_receive", methods=["POST"], defaults={"subpath": "hook"}),
                Rule(
                    "/_dev/crm/<any(hubspot, salesforce):provider>/<path:rest>",
                    endpoint="crm_provider",
                    methods=["POST", "PATCH", "GET"],
                ),
                Rule("/_dev/handoffs/<lead_id>", endpoint="handoff_start", methods=["POST"]),
                # the stand-in for Cognito's hosted sign-in: see leadflow.dev.hosted_ui
                Rule("/_dev/cognito/oauth2/authorize", endpoint="cognito_authorize", methods=["GET", "POST"]),
                Rule("/_dev/cognito/oauth2/token", endpoint="cognito_token", methods=["POST"]),
                Rule("/_dev/cognito/logout", endpoint="cognito_logout", methods=["GET"]),
                # the fake CRM talking back (sales feedback): see leadflow.dev.crm_feedback_sender
                Rule("/_dev/crm/feedback", endpoint="crm_feedback", methods=["POST"]),
            ],
            strict_slashes=False,
        )
        self.api_routes = [(route, route.pattern()) for route in stack.routes if route.path != "$default"]
        # the template's $default route (unknown URLs), served where API Gateway would: after every other
        self.default_route = next((route for route in stack.routes if route.path == "$default"), None)
        self._verifiers: dict[str, Any] = {}  # each JWT authorizer's token checker, made on first use
        from leadflow.dev.hosted_ui import LocalHostedUi

        self.hosted_ui = LocalHostedUi(stack, self._html)
        self.control = ControlRoutes(stack, self.dispatch)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except NotFound:
            response = self.not_found(request)
        except HTTPException as error:
            response = error.get_response()
        except Exception:
            log.exception("gateway")
            response = Response('{"message":"Internal Server Error"}', 500, content_type="application/json")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        # API Gateway routes /a/b/ as /a/b (one trailing slash ignored)
        paths = (
            (request.path, request.path[:-1])
            if len(request.path) > 1 and request.path.endswith("/")
            else (request.path,)
        )
        for path in paths:
            for route, pattern in self.api_routes:
                match = pattern.match(path)
                if match and route.method in (request.method, "ANY"):
                    return self.call_route(request, route, match.groupdict())
        if not host_allowed(request.host, self.stack.host):
            return json_response({"message": "this host name is not the local stack's (DNS rebinding?)"}, 403)
        adapter = self.dev_routes.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except NotFound:
            if any(p.match(request.path) for _, p in self.api_routes):
                return Response('{"message":"Not Found"}', 404, content_type="application/json")
            raise
        refused = refusal(
            request.method,
            {name.lower(): value for name, value in request.headers.items()},
            f"http://{request.host}",
            has_body=bool(request.content_length) or bool(request.headers.get("Transfer-Encoding")),
            takes_any_body=endpoint in THIRD_PARTY_ENDPOINTS,
        )
        if refused:
            return json_response({"message": refused[1]}, refused[0])
        handler = getattr(self, f"on_{endpoint}", None) or getattr(self.control, f"on_{endpoint}")
        return handler(request, **values)

    def call_route(self, request: Request, route: Any, params: dict[str, str]) -> Response:
        body = request.get_data(cache=False)
        event = api_gateway_event(request, route.route_key, params, body)
        if route.authorizer == "AWS_IAM":
            supplied = request.headers.get("Authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {self.stack.admin_token}".encode()):
                return Response(
                    '{"message":"Unauthorized"}',
                    401,
                    content_type="application/json",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            event["requestContext"]["authorizer"] = {
                "iam": {
                    "accessKey": "LEADFLOWDEV",
                    "accountId": "123456789012",
                    "callerId": "leadflow-dev",
                    "userArn": "arn:aws:iam::123456789012:user/leadflow-dev",
                    "userId": "leadflow-dev",
                }
            }
        elif route.authorizer:  # a JWT authorizer: the console's Cognito ID tokens
            claims = self._jwt_claims(request.headers.get("Authorization", ""), route.authorizer)
            if claims is None:
                return Response('{"message":"Unauthorized"}', 401, content_type="application/json")
            # API Gateway hands the claims on as strings (a list as "[a b]")
            flat = {k: f"[{' '.join(v)}]" if isinstance(v, list) else str(v) for k, v in claims.items()}
            event["requestContext"]["authorizer"] = {"jwt": {"claims": flat, "scopes": None}}
        try:
            result = self.stack.runner.invoke(route.function, event)
        except HandlerError as error:
            log.error("%s\n%s", error, "".join(error.payload["stackTrace"]))
            return Response('{"message":"Internal Server Error"}', 500, content_type="application/json")
        return lambda_response(result)

    def _jwt_claims(self, authorization: str, authorizer: str) -> dict[str, Any] | None:
        """The claims of a valid console ID token (``Bearer <token>`` or the token alone), checked
        as the template's JWT ``authorizer`` checks it in API Gateway: signature against moto's JWKS,
        issuer, audience (one of the app clients it lists), expiry."""
        from leadflow.adapters.cognito import InvalidToken, JwksTokenVerifier
        from leadflow.dev.console_users import console_auth

        token = authorization.removeprefix("Bearer ").strip()
        if authorizer not in self._verifiers:
            auth = console_auth(self.stack, authorizer)
            if auth is None:
                return None
            self._verifiers[authorizer] = JwksTokenVerifier(*auth)
        if not token:
            return None
        try:
            return self._verifiers[authorizer].claims(token)
        except InvalidToken:
            return None

    # ------------------------------------------------------------------ pages
    def _html(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self.templates.get_template(template).render(stack=self.stack, **context)
        return Response(html, status, content_type="text/html; charset=utf-8")

    def not_found(self, request: Request) -> Response:
        """The template's ``$default`` route (as in AWS); without one, a page a person can read (with
        where to go) for a browser, JSON for anything else."""
        if self.default_route is not None:
            return self.call_route(request, self.default_route, {})
        if request.accept_mimetypes.accept_html:
            return self._html("not_found.html.j2", 404, path=request.path)
        return json_response({"message": "Not Found"}, 404)

    def on_cognito_authorize(self, request: Request) -> Response:
        return self.hosted_ui.authorize(request)

    def on_cognito_token(self, request: Request) -> Response:
        return self.hosted_ui.token(request)

    def on_cognito_logout(self, request: Request) -> Response:
        return self.hosted_ui.logout(request)

    def on_docs(self, request: Request) -> Response:
        return Response("", 308, headers={"Location": "/api/v1/docs"})

    def on_landing(self, request: Request, form_id: str | None = None) -> Response:
        workspace = Workspace(self.stack.workspace)
        forms = workspace.forms()
        if not forms:
            raise NotFound("the workspace has no forms")
        form = next((f for f in forms if f.id == (form_id or "demo-signup")), None)
        if form is None:
            if form_id:
                raise NotFound()
            form = forms[0]
        return self._html(
            "landing.html.j2",
            form=form,
            forms=forms,
            attribution_fields=ATTRIBUTION_FIELDS,
            rendered_at=self._render_time(),
            nonce=uuid.uuid4().hex,
            timestamp_field=TIMESTAMP_FIELD,
            nonce_field=NONCE_FIELD,
        )

    def _render_time(self) -> str:
        """The form's ``_lf_ts``: signed by the TrackFunction as lf.js would fetch it (``GET /t/ts``),
        or plain epoch ms on a template without one."""
        try:
            return str(self.control.tracking_service().render_time())
        except NotFound:
            return str(int(self.stack.clock.now().timestamp() * 1000))

    def on_thank_you(self, request: Request) -> Response:
        return self._html("thank_you.html.j2")

    def on_console(self, request: Request) -> Response:
        from leadflow.adapters.dynamo import DynamoLeadStore
        from leadflow.services.leads import LeadQueries

        store = DynamoLeadStore(self.stack.outputs["LeadsTableName"], self.stack.client("dynamodb"))
        leads = LeadQueries(store, Workspace(self.stack.workspace)).recent(50)
        today = self.stack.clock.now().date().isoformat()
        return self._html(
            "console.html.j2",
            leads=leads,
            queues=self.stack.queue_depths(),
            stats=store.form_stats(today),
            today=today,
            events=list(reversed(self.stack.read_bus_events()[-30:])),
            now=self.stack.clock.now(),
            invocations=dict(self.stack.runner.invocations),
            faults=self.stack.faults.listing(),
            crm_mode=self.stack.fake_crm.mode,
            crm_requests=list(reversed(self.stack.fake_crm.requests()[-20:])),
        )

    def on_console_lead(self, request: Request, lead_id: str) -> Response:
        from leadflow.adapters.dynamo import DynamoLeadStore
        from leadflow.domain.errors import LeadNotFound
        from leadflow.services.leads import LeadQueries

        store = DynamoLeadStore(self.stack.outputs["LeadsTableName"], self.stack.client("dynamodb"))
        workspace = Workspace(self.stack.workspace)
        try:
            lead = LeadQueries(store, workspace).get(lead_id)
        except LeadNotFound:
            raise NotFound() from None
        score = None
        if (self.stack.workspace / "scoring.yaml").is_file():
            from leadflow.services.scoring import ScoringService

            score = ScoringService(workspace, store, self.stack.clock).explain_lead(lead_id)
        from leadflow.adapters.nurture import DynamoNurtureStore
        from leadflow.bootstrap.nurture import NoQueue, NoSender, NoSuppressionKey
        from leadflow.services.nurture import NurtureService, TokenIssuer

        nurture = NurtureService(
            workspace=workspace,
            store=DynamoNurtureStore(self.stack.outputs["LeadsTableName"], self.stack.client("dynamodb")),
            sender=NoSender(),
            tokens=TokenIssuer(list, "", 1),
            due_now=NoQueue(),
            clock=self.stack.clock,
            address_key=NoSuppressionKey(),
        )
        # Stored and held enrollments alike (a broadcast's leads are held by their mail logs).
        enrollments = [e for e, _ in nurture.lead_enrollments(lead_id)]
        from leadflow.adapters.handoff import DynamoHandoffStore

        handoff_store = DynamoHandoffStore(self.stack.outputs["LeadsTableName"], self.stack.client("dynamodb"))
        return self._html(
            "lead.html.j2",
            lead=lead,
            enrollments=enrollments,
            handoffs=handoff_store.lead_handoffs(lead_id),
            score=score,
            tracking="TrackFunction" in self.stack.runner.functions,
            simulated=SIMULATED.get(request.args.get("simulated", ""), ""),
            lead_json=json.dumps(lead, indent=2, default=str),
        )

    def on_simulate(self, request: Request, lead_id: str) -> Response:
        """The lead page's buttons: what the lead would do with a campaign email, through the real
        signed pixel (``kind=open``) or tracked link (``kind=click``, ``link=pricing|case-study``).

        An open is recorded here and the page shown again (the dev lead page, or the /console/ one
        with ``return_to``); a click goes where the email's link
        would, ``/t/c/<token>``, which records it and redirects to the landing page. Viewing the
        lead page itself records nothing."""
        from leadflow.domain.tokens import TokenKind

        asked: dict[str, Any] = dict(request.form) if request.form else (request.get_json(silent=True) or {})
        kind, link = str(asked.get("kind", "")), str(asked.get("link", ""))
        if kind not in ("open", "click") or (kind == "click" and link not in ("pricing", "case-study")):
            return json_response({"message": "send kind=open, or kind=click with link=pricing or case-study"}, 400)
        service = self.control.tracking_service()
        message = f"dev-{uuid.uuid4().hex[:8]}"
        if kind == "click":
            landing = f"{self.stack.url}/?utm_source=email&utm_medium=email&utm_campaign=dev-test&utm_content={link}"
            token = service.issue(TokenKind.CLICK, lead_id, message, url=landing, link_id=link)
            return Response("", 303, headers={"Location": f"/t/c/{token}"})
        from werkzeug.test import EnvironBuilder

        pixel = f"/t/o/{service.issue(TokenKind.OPEN, lead_id, message)}"
        builder = EnvironBuilder(path=pixel, method="GET", environ_base={"REMOTE_ADDR": "127.0.0.1"})
        self.dispatch(Request(builder.get_environ()))
        back = str(asked.get("return_to", ""))  # the /console/ lead page's button comes back there
        if back != f"/console/leads/{lead_id}":
            back = f"/_dev/leads/{lead_id}"
        return Response("", 303, headers={"Location": f"{back}?simulated=open"})

    def on_mail(self, request: Request) -> Response:
        """The outbox as a page: every email sent, newest first, each opened as its recipient would."""
        sent = self.stack.sent_emails()
        if request.args.get("format") == "text":  # for a terminal: one email a line
            from leadflow.dev.mail_actions import text_listing

            listing = text_listing(sent, request.args.get("to", ""))
            return Response(listing, 200, content_type="text/plain; charset=utf-8")
        return self._html("mail.html.j2", emails=list(reversed(list(enumerate(sent)))))

    def on_mail_act(self, request: Request, index: int, action: str) -> Response:
        """``POST /_dev/mail/<n>/open`` or ``/click`` (``{"link": i}``): what the recipient would do,
        through the email's own pixel or tracked link (the outbox page's buttons, or curl)."""
        from leadflow.dev.mail_actions import act

        asked: dict[str, Any] = dict(request.form) if request.form else (request.get_json(silent=True) or {})
        try:
            link = int(asked.get("link", 0))
        except (TypeError, ValueError):
            return json_response({"message": "link is the tracked link's number in the email: 0, 1, ..."}, 400)
        result, status = act(self.stack.sent_emails(), index, action, link, self.dispatch)
        if asked.get("return_to") == "/_dev/mail" and status == 200:
            return Response("", 303, headers={"Location": "/_dev/mail"})
        return json_response(result, status)

    def on_mail_message(self, request: Request, index: int) -> Response:
        """One sent email's HTML as the lead sees it: its pixel and tracked links are live locally."""
        sent = self.stack.sent_emails()
        if not 0 <= index < len(sent):
            raise NotFound()
        html = sent[index]["html"] or "<pre>(no HTML part)</pre>"
        return Response(html, 200, content_type="text/html; charset=utf-8")

    def on_reports(self, request: Request) -> Response:
        """The report charts (``?from&to&by&view&sequence``): the funnel, conversion by a dimension,
        and each sequence's step flow and A/B tests, drawn from the same JSON the API answers."""
        from leadflow.dev.report_page import reports_page

        html = reports_page(self.stack, dict(request.args))
        return Response(
            html, 200 if not html.startswith("<!--400-->") else 400, content_type="text/html; charset=utf-8"
        )
