"""The dev stack's fake CRM: the demo workspace's hand-off destination.

It receives hand-offs (``/_dev/crm/hook``: Standard Webhooks, signature checked and noted;
``/_dev/crm/hubspot/...``: the CRM v3 contact batch upsert; ``/_dev/crm/salesforce/...``: the
OAuth2 token endpoint and the Lead upsert by external id), checks that each request has the
shape the real service expects, records it for ``GET /_dev/crm/requests`` and answers the way
``POST /_dev/crm/mode`` says: 200, or 410 / 429 (with ``Retry-After``) / 500, after
``delay_seconds``. Usable on its own as a WSGI app (tests point CRM adapters at it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

MODE_STATUSES = (200, 400, 410, 429, 500, 503)
MAX_DELAY_SECONDS = 60
MAX_KEPT = 5000


class ModeError(ValueError):
    """A mode the fake CRM cannot take (400)."""


class FakeCrm:
    def __init__(
        self,
        secret: Callable[[], str] = lambda: "",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.secret = secret
        self.now = now
        self.mode: dict[str, Any] = {"status": 200, "delay_seconds": 0, "retry_after": 60, "error_code": None}
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._leads: dict[str, str] = {}

    # ------------------------------------------------------------------ control
    def set_mode(self, data: Any) -> dict[str, Any]:
        """``{"status": 200|400|410|429|500|503, "delay_seconds": N, "retry_after": N, "error_code": str}``.

        Raises:
            ModeError: naming the bad field.
        """
        if not isinstance(data, dict):
            raise ModeError("the mode is a JSON object")
        unknown = set(data) - set(self.mode)
        if unknown:
            raise ModeError(f"unknown field(s): {', '.join(sorted(unknown))}")
        status = data.get("status", self.mode["status"])
        if status not in MODE_STATUSES:
            raise ModeError(f"status must be one of {', '.join(map(str, MODE_STATUSES))}")
        for name, top in (("delay_seconds", MAX_DELAY_SECONDS), ("retry_after", 86_400)):
            value = data.get(name, self.mode[name])
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= top:
                raise ModeError(f"{name} must be a number from 0 to {top}")
        error_code = data.get("error_code", self.mode["error_code"])
        if error_code is not None and not isinstance(error_code, str):
            raise ModeError("error_code must be a string")
        with self._lock:
            self.mode = {**self.mode, **data}
            return dict(self.mode)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ receiving
    def handle(self, request: Request, subpath: str) -> Response:
        """Record a request to ``/_dev/crm/<subpath>`` and answer it per the mode."""
        body = request.get_data(cache=True).decode("utf-8", "replace")
        with self._lock:
            mode = dict(self.mode)
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": body,
            "received_at": self.now().isoformat(),
        }
        if mode["delay_seconds"]:
            time.sleep(float(mode["delay_seconds"]))
        if subpath == "hook":
            entry["signature_valid"] = self._signature_valid(entry["headers"], body)
        problem = self._check_shape(subpath, request, body)
        status, payload, headers = self._answer(subpath, request, body, mode, problem)
        entry["answered"] = status
        if problem:
            entry["problem"] = problem
        with self._lock:
            self._requests.append(entry)
            del self._requests[:-MAX_KEPT]
        return Response(json.dumps(payload), status, headers=headers, content_type="application/json")

    def _signature_valid(self, headers: dict[str, str], body: str) -> bool:
        from leadflow.domain.webhook_signing import WebhookSecretError, WebhookSignatureError, verify

        try:
            verify(self.secret(), headers, body, self.now().timestamp())
        except (WebhookSignatureError, WebhookSecretError):
            return False
        return True

    def _check_shape(self, subpath: str, request: Request, body: str) -> str | None:  # noqa: C901 - one check per field of the three CRMs' payloads (dev tool)
        """What a real CRM would refuse about the request's form (None: well-formed)."""
        if subpath == "hook":
            return None if _json(body) is not None else "body is not JSON"
        if subpath.startswith("hubspot/"):
            data = _json(body)
            inputs = data.get("inputs") if isinstance(data, dict) else None
            if subpath != "hubspot/crm/v3/objects/contacts/batch/upsert" or request.method != "POST":
                return "not the contact batch upsert endpoint"
            if not request.headers.get("Authorization", "").startswith("Bearer "):
                return "no private-app token"
            if not isinstance(inputs, list) or not inputs:
                return "inputs missing"
            if any(i.get("idProperty") != "email" or not i.get("id") for i in inputs if isinstance(i, dict)):
                return "each input needs idProperty email and an id"
            return None
        if subpath == "salesforce/services/oauth2/token":
            form = request.form
            if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                return None if form.get("assertion", "").count(".") == 2 else "assertion is not a compact JWT"
            if form.get("grant_type") != "client_credentials" or not form.get("client_id"):
                return "grant_type client_credentials (client_id, client_secret) or jwt-bearer (assertion) expected"
            return None
        if subpath.startswith("salesforce/services/data/"):
            if request.method != "PATCH" or "/sobjects/Lead/" not in subpath:
                return "Lead upsert is PATCH /sobjects/Lead/<external id field>/<value>"
            if not request.headers.get("Authorization", "").startswith("Bearer "):
                return "no access token"
            data = _json(body)
            if not isinstance(data, dict) or not data.get("LastName") or not data.get("Company"):
                return "LastName and Company are required Lead fields"
            return None
        return "unknown fake CRM path"

    def _answer(
        self, subpath: str, request: Request, body: str, mode: dict[str, Any], problem: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        status = int(mode["status"])
        if problem:
            return 400, {"message": problem}, {}
        if subpath.startswith("salesforce/") and status == 400:
            code = mode.get("error_code") or "DUPLICATES_DETECTED"
            return 400, [{"message": "Use one of these records?", "errorCode": code, "fields": []}], {}
        if status == 429:
            return 429, {"message": "rate limited"}, {"Retry-After": str(int(mode["retry_after"]))}
        if status != 200:
            return status, {"message": f"fake CRM mode {status}"}, {}
        if subpath.startswith("hubspot/"):
            email = json.loads(body)["inputs"][0]["id"]
            contact_id, new = self._remember(f"hubspot:{email.lower()}", digits=True)
            at = self.now().isoformat()
            result = {"id": contact_id, "new": new, "properties": {}, "createdAt": at, "updatedAt": at}
            return 200, {"status": "COMPLETE", "results": [result], "startedAt": at, "completedAt": at}, {}
        if subpath == "salesforce/services/oauth2/token":
            base = request.host_url.rstrip("/") + "/_dev/crm/salesforce"
            issued = str(int(self.now().timestamp() * 1000))
            token = {"access_token": "00Dfake!" + issued, "instance_url": base, "token_type": "Bearer"}  # nosec B105 # OAuth's token type, not a secret
            return 200, {**token, "issued_at": issued, "id": base + "/id/00Dfake/005fake", "signature": "fake"}, {}
        if subpath.startswith("salesforce/"):
            record_id, new = self._remember(f"salesforce:{subpath.rsplit('/', 1)[-1]}", digits=False)
            return (201 if new else 200), {"id": record_id, "success": True, "errors": [], "created": new}, {}
        return 200, {"received": True}, {}

    def _remember(self, key: str, digits: bool) -> tuple[str, bool]:
        """A stable id per record key, and whether this request created it (an upsert never duplicates)."""
        with self._lock:
            new = key not in self._leads
            if new:
                digest = hashlib.sha256(key.encode()).hexdigest()
                self._leads[key] = str(int(digest[:12], 16)) if digits else "00Q" + digest[:15].upper()
            return self._leads[key], new


def _json(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
