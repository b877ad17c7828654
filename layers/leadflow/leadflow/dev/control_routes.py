"""The gateway's ``/_dev/`` JSON control routes: what tests, scripts and the console's buttons drive.

- the stack: ``/_dev/stack`` (outputs, AWS endpoint, admin token, dev secrets), ``/_dev/outbox``,
  ``/_dev/events`` (the bus tap), ``/_dev/queues``;
- time and faults: ``/_dev/clock``, ``/_dev/tick``, ``/_dev/faults``;
- signed links: ``/_dev/tokens`` (issued by the TrackFunction's own service);
- the sales side: the fake CRM (``/_dev/crm/...``, see ``leadflow.dev.fake_crm``), the console's
  hand-off button (``/_dev/handoffs/<lead_id>``) and the CRM's feedback (``/_dev/crm/feedback``).

The URL map, the API routes and the pages are in ``leadflow.dev.gateway``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from leadflow.dev.faults import Fault

if TYPE_CHECKING:
    from leadflow.dev.stack import LocalStack


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, default=str), status, content_type="application/json")


class ControlRoutes:
    """The ``on_<endpoint>`` handlers of the JSON routes; ``dispatch`` sends a request through the
    gateway (the hand-off and feedback buttons go through the API's own routes)."""

    def __init__(self, stack: LocalStack, dispatch: Callable[[Request], Response]) -> None:
        self.stack = stack
        self.dispatch = dispatch

    def on_stack(self, request: Request) -> Response:
        return json_response(self.stack.stack_info())

    def on_outbox(self, request: Request) -> Response:
        return json_response(self.stack.sent_emails())

    def on_events(self, request: Request) -> Response:
        return json_response(self.stack.read_bus_events())

    def on_queues(self, request: Request) -> Response:
        return json_response(self.stack.queue_depths())

    def on_clock(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                seconds = float((request.get_json(force=True, silent=True) or {}).get("advance_seconds", "x"))
            except (TypeError, ValueError):
                return json_response({"message": 'send {"advance_seconds": N} with N >= 0'}, 400)
            if not seconds >= 0:
                return json_response({"message": "advance_seconds must be >= 0"}, 400)
            self.stack.clock.advance(seconds)
        return json_response({"now": self.stack.clock.now().isoformat()})

    def on_tick(self, request: Request) -> Response:
        started = time.perf_counter()
        result = self.stack.tick(frequent=True)
        result["seconds"] = round(time.perf_counter() - started, 3)
        if request.form.get("return_to") == "/_dev/":  # the console's button
            return Response("", 303, headers={"Location": "/_dev/"})
        return json_response(result)

    def tracking_service(self) -> Any:
        """The TrackFunction's own service (its keys, its workspace), to issue signed links locally."""
        function = self.stack.runner.functions.get("TrackFunction")
        if function is None:
            raise NotFound("this template has no TrackFunction")
        return self.stack.runner.load(function).tracking_service()

    def on_tokens(self, request: Request) -> Response:
        """``POST /_dev/tokens {"kind": "o"|"c"|"u", "lead_id", "message_id", "url"?, "link_id"?}``."""
        from leadflow.domain.tokens import TokenKind

        body = request.get_json(force=True, silent=True) or {}
        try:
            kind = TokenKind(str(body.get("kind")))
            token = self.tracking_service().issue(
                kind,
                str(body["lead_id"]),
                str(body.get("message_id", "dev")),
                url=body.get("url"),
                link_id=body.get("link_id"),
                campaign=body.get("campaign"),
            )
        except (ValueError, KeyError):
            usage = "send kind (o, c or u), lead_id and optionally message_id, url, link_id"
            return json_response({"message": usage}, 400)
        path = {TokenKind.OPEN: "/t/o/", TokenKind.CLICK: "/t/c/", TokenKind.UNSUBSCRIBE: "/u/"}[kind]
        return json_response({"token": token, "url": self.stack.url + path + token})

    def on_faults(self, request: Request) -> Response:
        """``GET``: the faults armed (``?fired=1``: how many times each was applied, cleared ones too);
        ``POST``: arm one (``dev.faults.Fault``); ``DELETE``: clear them (``?service=dynamodb``: that
        service's only)."""
        if request.method == "GET" and request.args.get("fired"):
            return json_response(dict(self.stack.faults.fired))
        if request.method == "DELETE":
            self.stack.faults.clear(request.args.get("service") or None)
        elif request.method == "POST":
            body = request.get_json(force=True, silent=True) or {}
            try:
                self.stack.faults.add(Fault(**body))
            except TypeError:
                fields = "service, operation, error and optionally count, status, after, skip"
                return json_response({"message": f"send {fields}"}, 400)
        return json_response(self.stack.faults.listing())

    # ------------------------------------------------------------------ fake CRM (hand-off destination)
    def on_crm_requests(self, request: Request) -> Response:
        """``GET``: what the fake CRM received, oldest first; ``DELETE``: forget it."""
        if request.method == "DELETE":
            self.stack.fake_crm.clear()
            return json_response({"cleared": True})
        return json_response(self.stack.fake_crm.requests())

    def on_crm_mode(self, request: Request) -> Response:
        """``POST {"status": 200|410|429|500, "delay_seconds": N}`` (JSON, or the console's form)."""
        from leadflow.dev.fake_crm import ModeError

        if request.method == "GET":
            return json_response(self.stack.fake_crm.mode)
        if request.form:
            data: Any = {
                k: float(v) if k == "delay_seconds" else int(v) for k, v in request.form.items() if k != "return_to"
            }
        else:
            data = request.get_json(silent=True)
        try:
            mode = self.stack.fake_crm.set_mode(data)
        except (ModeError, ValueError) as error:
            return json_response({"message": str(error)}, 400)
        if request.form.get("return_to") == "/_dev/":
            return Response("", 303, headers={"Location": "/_dev/"})
        return json_response(mode)

    def on_crm_receive(self, request: Request, subpath: str) -> Response:
        return self.stack.fake_crm.handle(request, subpath)

    def on_crm_provider(self, request: Request, provider: str, rest: str) -> Response:
        return self.stack.fake_crm.handle(request, f"{provider}/{rest}")

    def on_handoff_start(self, request: Request, lead_id: str) -> Response:
        """The console's "Hand off to sales" button: the admin API's route, with the dev token."""
        from werkzeug.test import EnvironBuilder

        builder = EnvironBuilder(
            path=f"/api/v1/leads/{lead_id}/handoff",
            method="POST",
            json={"reason": "handed off from the dev console"},
            headers=[("Authorization", f"Bearer {self.stack.admin_token}")],
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        response = self.dispatch(Request(builder.get_environ()))
        if request.form.get("return_to"):
            return Response("", 303, headers={"Location": f"/_dev/leads/{lead_id}"})
        return response

    def on_crm_feedback(self, request: Request) -> Response:
        """``POST {"lead_id", "outcome", "reason"?, "provider"?}`` (JSON, or the console's form): the
        fake CRM reports what sales did, signed as that CRM signs, to ``POST /crm/{provider}/webhook``.

        Answers ``{"provider", "status", "response"}`` (the webhook's own answer), or ``400``.
        """
        from werkzeug.test import EnvironBuilder

        from leadflow.adapters.handoff import DynamoHandoffStore
        from leadflow.config.workspace import Workspace
        from leadflow.dev.crm_feedback_sender import FeedbackRequestError, build_feedback_request, hubspot_contact_id

        data: dict[str, Any] = dict(request.form) if request.form else (request.get_json(silent=True) or {})
        if not isinstance(data, dict) or not data.get("lead_id") or not data.get("outcome"):
            return json_response({"message": "send lead_id and outcome (and optionally reason, provider)"}, 400)
        lead_id, provider = str(data["lead_id"]), str(data.get("provider") or "generic")
        workspace = Workspace(self.stack.workspace)
        contact = None
        if provider == "hubspot":
            store = DynamoHandoffStore(self.stack.outputs["LeadsTableName"], self.stack.client("dynamodb"))
            hubspot = {d.name for d in workspace.handoff.destinations if d.type == "hubspot"}
            contact = str(data.get("external_id") or "") or hubspot_contact_id(store.lead_handoffs(lead_id), hubspot)
        try:
            crm = build_feedback_request(
                provider,
                lead_id,
                str(data["outcome"]),
                str(data.get("reason") or "") or None,
                self.stack.clock.now(),
                workspace.crm_feedback,
                self.stack.dev_secrets,
                contact,
                host=self._own_host(),
            )
        except FeedbackRequestError as error:
            return json_response({"message": str(error)}, 400)
        builder = EnvironBuilder(
            path=crm.path,
            base_url=self.stack.url,  # the host the request was signed for
            method="POST",
            data=crm.body.encode(),
            headers=list(crm.headers.items()),
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        answer = self.dispatch(Request(builder.get_environ()))
        if data.get("return_to"):
            return Response("", 303, headers={"Location": f"/_dev/leads/{lead_id}"})
        text = answer.get_data(as_text=True)
        return json_response({"provider": provider, "status": answer.status_code, "response": text})

    def _own_host(self) -> str:
        """The host name API Gateway would report for this stack (``requestContext.domainName``)."""
        return self.stack.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
