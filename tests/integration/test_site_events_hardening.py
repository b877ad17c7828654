"""``POST /t/e`` against other sites' pages (issue 13, defect 12): ``site_origins`` is enforced.

A beacon (``text/plain``) is sent whatever CORS answers, so a page of any site could post
events for any visitor id; only the workspace's ``site_origins`` (and the API's own pages) may.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import StackClient

pytestmark = pytest.mark.integration


def page_view(client: StackClient, visitor: str, origin: str | None) -> int:
    headers = {"Content-Type": "text/plain", **({"Origin": origin} if origin else {})}
    body = {"visitor_id": visitor, "type": "page_view", "url": "https://www.example.com/pricing"}
    return client.http.post(client.url + "/t/e", data=json.dumps(body), headers=headers, timeout=10).status_code


def test_site_events_only_from_the_workspaces_site_origins(client: StackClient, local_stack):
    # GIVEN a visitor id, and pages of an allowed site, of another site, of the API itself
    visitor = "v-" + uuid.uuid4().hex[:12]
    # WHEN each sends a page view
    answers = {
        "allowed": page_view(client, visitor, "https://www.example.com"),
        "wildcard": page_view(client, visitor, "https://blog.example.com"),
        "other site": page_view(client, visitor, "https://evil.example.net"),
        "null": page_view(client, visitor, "null"),
        "same origin": page_view(client, visitor, client.url),
        "no origin (a server)": page_view(client, visitor, None),
    }
    # THEN another site's page is refused and records nothing
    assert answers == {
        "allowed": 204,
        "wildcard": 204,
        "other site": 403,
        "null": 403,
        "same origin": 204,
        "no origin (a server)": 204,
    }
    from leadflow.adapters.dynamo import DynamoLeadStore

    store = DynamoLeadStore(local_stack.outputs["LeadsTableName"], local_stack.client("dynamodb"))
    assert len(store.visitor_activities(visitor)) == 4
