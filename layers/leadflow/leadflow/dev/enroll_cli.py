"""``leadflow enroll EMAIL|LEAD_ID SEQUENCE (--dev URL | --api URL)``: enroll one lead by hand.

It goes through the admin API's ``POST /api/v1/sequences/{id}/enrollments``, exactly as the
console or an integration would: the sequence must have an ``api`` (or broadcast) trigger, its
re-entry policy decides, and a first email that is due now goes out at once. ``--dev`` talks to
a running ``leadflow dev`` with its admin token; ``--api`` to a deployed stack's API URL, signed
with SigV4 from the usual AWS credentials (the admin routes use the IAM authorizer).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiClient:
    """The admin API over HTTP: a dev bearer token, or SigV4 for a deployed stack."""

    def __init__(self, base_url: str, token: str | None = None, region: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.region = region

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        url = self.base + path
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"} if data is not None else {}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        else:
            headers = self._signed(method, url, data, headers)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the operator's own URL  # nosec B310
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, {"message": text}

    def _signed(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = boto3.Session(region_name=self.region)
        credentials = session.get_credentials()
        if credentials is None:
            raise SystemExit("leadflow enroll: no AWS credentials to sign the admin API request with")
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials, "execute-api", session.region_name or "us-east-1").add_auth(request)
        return dict(request.headers.items())


def find_lead_id(api: ApiClient, who: str) -> str:
    """``who`` as a lead id: an address is looked up (``GET /api/v1/leads?email=``)."""
    if "@" not in who:
        return who
    status, found = api.call("GET", "/api/v1/leads?" + urllib.parse.urlencode({"email": who}))
    leads = found.get("leads", []) if status == 200 and isinstance(found, dict) else []
    if not leads:
        raise SystemExit(f"leadflow enroll: no lead with the address {who}")
    return str(leads[0]["lead_id"])


def client_for(args: argparse.Namespace) -> ApiClient:
    """The admin API of ``--dev URL`` (its admin token) or ``--api URL`` (SigV4)."""
    if args.dev:
        with urllib.request.urlopen(args.dev.rstrip("/") + "/_dev/stack", timeout=10) as response:  # noqa: S310 - the local stack's URL given with --dev  # nosec B310
            return ApiClient(args.dev, token=json.load(response)["admin_token"])
    if args.api:
        return ApiClient(args.api, region=getattr(args, "region", None))
    raise SystemExit("leadflow: give --dev URL (a running leadflow dev) or --api URL (the stack's ApiUrl)")


def cmd_enroll(args: argparse.Namespace) -> int:
    api = client_for(args)
    lead_id = find_lead_id(api, args.who)
    path = f"/api/v1/sequences/{urllib.parse.quote(args.sequence, safe='')}/enrollments"
    status, answer = api.call("POST", path, {"lead_id": lead_id})
    if status == 201:
        print(
            f"{lead_id}: enrolled in {answer['sequence_id']} (version {answer['version']}), "
            f"step {answer['step_id']}, {answer['status']}"
        )
        return 0
    message = answer.get("message", answer) if isinstance(answer, dict) else answer
    print(f"leadflow enroll: {status}: {message}", file=sys.stderr)
    return 1


def add_enroll_command(commands: Any) -> None:
    """``leadflow enroll`` on the CLI's sub-command parser."""
    enroll = commands.add_parser("enroll", help="enroll one lead in a sequence (the admin API's enrollment)")
    enroll.add_argument("who", help="the lead's email address or lead id")
    enroll.add_argument("sequence", help="the sequence id (it needs an api or broadcast trigger)")
    enroll.add_argument("--dev", metavar="URL", help="a running `leadflow dev`, e.g. http://127.0.0.1:8000")
    enroll.add_argument("--api", metavar="URL", help="a deployed stack's ApiUrl (requests signed with SigV4)")
    enroll.add_argument("--region", help="the stack's region (default: your AWS configuration's)")
    enroll.set_defaults(run=cmd_enroll)
