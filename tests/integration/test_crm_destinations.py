"""The destination adapters against a local fake server that checks the real request formats
(HubSpot CRM v3 batch upsert, Salesforce OAuth2 + Lead upsert by external id), and the SSRF
rules on the local stack: a refused destination is never connected to."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from leadflow.adapters.crm_delivery import HubSpotSender, SafeHttp, SalesforceSender, Senders
from leadflow.dev.fake_crm import FakeCrm
from leadflow.domain.definitions.handoff import Destination
from leadflow.ports.handoff import Delivery
from tests.conftest import WORKSPACE, StackClient, unique_email

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
LEAD_ID = "01JDQ0Z8W6S9X2V3T4R5P6N7M8"
PAYLOAD: dict[str, Any] = {
    "handoff_id": "01JDQ0Z8W6S9X2V3T4R5P6N7HH",
    "lead": {"id": LEAD_ID, "email": "ada@example.com", "first_name": "Ada", "company": "Analytical"},
    "attribution": {"first_touch": {"utm_source": "google"}, "last_touch": None, "referred_by": None},
    "stage": "mql",
    "grade": {"letter": "A", "points": 40},
    "scores": {"smb": {"score": 61.5, "reasons": [{"rule_id": "pricing_page", "description": "Viewed pricing"}]}},
    "mql_model": "smb",
    "owner": {"id": "ana", "name": "Ana", "email": "ana@example.com", "team": "inbound"},
    "reason": "demo",
}
SECRETS = {
    "hubspot_private_app_token": "pat-na1-test",
    "salesforce_client_id": "3MVG9-test",
    "salesforce_client_secret": "s3cret",
    "handoff_webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


class _Secrets:
    def get(self, key: str) -> str:
        return SECRETS[key]


@pytest.fixture
def fake() -> Iterator[tuple[FakeCrm, str]]:
    """The dev stack's fake CRM on its own port (as /_dev/crm/... on the gateway)."""
    crm = FakeCrm(secret=lambda: SECRETS["handoff_webhook_secret"])

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        return crm.handle(request, request.path.removeprefix("/_dev/crm/"))(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield crm, f"http://127.0.0.1:{server.server_port}/_dev/crm"
    finally:
        server.shutdown()


def _delivery(kind: str, base: str, **options: Any) -> Delivery:
    destination = Destination(name=kind, type=kind, url=f"{base}/{kind}", **options)  # type: ignore[arg-type]
    return Delivery(destination, f"{base}/{kind}", True, PAYLOAD, PAYLOAD["handoff_id"], LEAD_ID)


def test_hubspot_upserts_the_contact_by_email_with_the_property_mapping(fake: tuple[FakeCrm, str]) -> None:
    crm, base = fake
    sender = HubSpotSender(SafeHttp(local_mode=True), _Secrets())
    mapping = {"email": "email", "firstname": "first_name", "leadflow_score": "score", "hubspot_owner_id": "owner_id"}
    first = sender.send(_delivery("hubspot", base, property_mapping=mapping), NOW)
    again = sender.send(_delivery("hubspot", base, property_mapping=mapping), NOW)
    assert first.kind == "delivered"
    assert first.external_id is not None
    assert again.external_id == first.external_id  # an upsert: the same contact
    [request, _] = crm.requests()
    assert request["path"] == "/_dev/crm/hubspot/crm/v3/objects/contacts/batch/upsert"
    assert request["headers"]["authorization"] == "Bearer pat-na1-test"
    body = json.loads(request["body"])
    assert body == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "ada@example.com",
                "properties": {"firstname": "Ada", "leadflow_score": 61.5, "hubspot_owner_id": "ana"},
            }
        ]
    }
    assert "problem" not in request


def test_hubspot_rate_limit_is_retried_after_the_servers_delay(fake: tuple[FakeCrm, str]) -> None:
    crm, base = fake
    crm.set_mode({"status": 429, "retry_after": 10})
    outcome = HubSpotSender(SafeHttp(local_mode=True), _Secrets()).send(_delivery("hubspot", base), NOW)
    assert (outcome.kind, outcome.retry_after_seconds) == ("retry", 10.0)


def test_salesforce_client_credentials_then_lead_upsert_on_the_external_id(fake: tuple[FakeCrm, str]) -> None:
    crm, base = fake
    sender = SalesforceSender(SafeHttp(local_mode=True), _Secrets())
    first = sender.send(_delivery("salesforce", base), NOW)
    retry = sender.send(_delivery("salesforce", base), NOW)
    # THEN one token, one Lead created (201), and the retry updated the same Lead (200): no duplicate
    assert first.kind == retry.kind == "delivered"
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.external_id == retry.external_id
    assert first.external_id is not None
    assert first.external_id.startswith("00Q")
    token, upsert, _ = crm.requests()
    assert token["path"] == "/_dev/crm/salesforce/services/oauth2/token"
    assert "grant_type=client_credentials" in token["body"]
    assert "client_id=3MVG9-test" in token["body"]
    assert upsert["method"] == "PATCH"
    assert upsert["path"] == f"/_dev/crm/salesforce/services/data/v60.0/sobjects/Lead/Leadflow_Id__c/{LEAD_ID}"
    fields = json.loads(upsert["body"])
    assert fields["Email"] == "ada@example.com"
    assert fields["LastName"] == "[not provided]"  # a required Lead field the lead did not give
    assert "Leadflow_Id__c" not in fields  # the key is in the URL, never in the body
    assert all("problem" not in r for r in crm.requests())


def test_salesforce_duplicates_detected_is_final_and_5xx_retries(fake: tuple[FakeCrm, str]) -> None:
    crm, base = fake
    sender = SalesforceSender(SafeHttp(local_mode=True), _Secrets())
    crm.set_mode({"status": 400, "error_code": "DUPLICATES_DETECTED"})
    duplicate = sender.send(_delivery("salesforce", base), NOW)
    assert duplicate.kind == "final"
    assert "DUPLICATES_DETECTED" in duplicate.error
    crm.set_mode({"status": 503})
    assert sender.send(_delivery("salesforce", base), NOW).kind == "retry"


def test_webhook_is_signed_and_a_redirect_is_not_followed(fake: tuple[FakeCrm, str]) -> None:
    crm, base = fake
    senders = Senders(SafeHttp(local_mode=True), _Secrets())
    delivery = Delivery(
        Destination(name="hook", type="webhook", url=f"{base}/hook"), f"{base}/hook", True, PAYLOAD, "H", LEAD_ID
    )
    # signed now: the receiver checks the timestamp against its clock (NOW is when the module was imported)
    assert senders.send(delivery, datetime.now(UTC)).kind == "delivered"
    assert crm.requests()[0]["signature_valid"] is True


# ---------------------------------------------------------------------------- SSRF on the local stack


class _Listener:
    """A TCP port that counts connections: a refused destination must never reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


class _ListQueue:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def enqueue(self, messages: list[dict[str, Any]]) -> None:
        self.messages.extend(messages)


@pytest.mark.parametrize("local_mode", [False, True])
def test_ssrf_destinations_are_refused_and_never_contacted(
    local_mode: bool, client: StackClient, local_stack: Any, tmp_path: Path
) -> None:
    from leadflow.adapters.clock import SystemClock
    from leadflow.adapters.handoff import DynamoHandoffStore
    from leadflow.config.workspace import Workspace
    from leadflow.services.handoff import HandoffService
    from leadflow.services.scoring import ScoringService

    listener = _Listener()
    try:
        # GIVEN a workspace whose destinations point at metadata, private and loopback addresses
        workspace_dir = tmp_path / "workspace"
        shutil.copytree(WORKSPACE, workspace_dir)
        destinations = [
            {"name": "metadata", "type": "webhook", "url": "https://169.254.169.254/latest/meta-data/"},
            {"name": "private", "type": "webhook", "url": "https://10.0.0.7/hook"},
            {"name": "loopback-name", "type": "webhook", "url": f"https://localhost:{listener.port}/hook"},
            {"name": "loopback-http", "type": "webhook", "url": f"http://127.0.0.1:{listener.port}/hook"},
            {"name": "mapped", "type": "hubspot", "url": f"https://[::ffff:127.0.0.1]:{listener.port}"},
            {"name": "salesforce", "type": "salesforce", "url": f"http://127.0.0.1:{listener.port}"},
        ]
        config = (workspace_dir / "handoff.yaml").read_text().split("destinations:")[0]
        (workspace_dir / "handoff.yaml").write_text(config + "destinations: " + json.dumps(destinations) + "\n")
        workspace = Workspace(workspace_dir)
        store = DynamoHandoffStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
        queue = _ListQueue()
        service = HandoffService(
            workspace, store, ScoringService(workspace, store, SystemClock()), queue,
            Senders(SafeHttp(local_mode=local_mode), _Secrets()), SystemClock(), local_mode=local_mode,
        )  # fmt: skip
        lead_id = client.capture("demo-signup", {"email": unique_email("ssrf"), "country": "US"})
        # WHEN it is handed off and every delivery is attempted
        record, _ = service.start(lead_id, "manual", "ssrf test", "api:test")
        decisions = {m["destination"]: service.deliver(m) for m in queue.messages}
        # THEN each is a final failure naming the refusal, and nothing was ever connected to
        assert {d.action for d in decisions.values()} == {"dead_letter"}
        stored = store.get_handoff(lead_id, record["handoff_id"])
        assert stored is not None
        for name, state in stored["destinations"].items():
            assert state["status"] == "failed", name
            assert state["last_error"].startswith("refused"), (name, state["last_error"])
        assert stored["status"] == "failed"
        assert listener.connections == 0
    finally:
        listener.close()


def test_salesforce_jwt_bearer_signs_an_assertion_the_public_key_verifies(fake: tuple[FakeCrm, str]) -> None:
    import base64
    from urllib.parse import parse_qs

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    crm, base = fake
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    secrets = {**SECRETS, "salesforce_username": "integration@example.com", "salesforce_private_key": pem}

    class JwtSecrets:
        def get(self, name: str) -> str:
            return secrets[name]

    # WHEN a Salesforce destination with auth jwt_bearer delivers
    sender = SalesforceSender(SafeHttp(local_mode=True), JwtSecrets())
    outcome = sender.send(_delivery("salesforce", base, auth="jwt_bearer", audience="https://test.salesforce.com"), NOW)
    # THEN the token request carries a JWT signed with the key, for the user and the sandbox audience
    assert outcome.kind == "delivered"
    token = crm.requests()[0]
    form = parse_qs(token["body"])
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header, claims, signature = form["assertion"][0].split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    key.public_key().verify(decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert json.loads(decode(header)) == {"alg": "RS256", "typ": "JWT"}
    payload = json.loads(decode(claims))
    assert (payload["iss"], payload["sub"], payload["aud"]) == (
        "3MVG9-test",
        "integration@example.com",
        "https://test.salesforce.com",
    )
    assert 0 < payload["exp"] - NOW.timestamp() <= 180
    assert "client_secret" not in form
