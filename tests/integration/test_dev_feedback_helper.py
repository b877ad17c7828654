"""The dev console's fake CRM talking back as HubSpot (issue 13, defect 12): it used to sign the
request for ``127.0.0.1`` and send it to ``localhost``, so HubSpot feedback never verified."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import StackClient
from tests.integration.test_crm_feedback import item, lead, new_lead, seed_crm_ref, seed_handoff

pytestmark = pytest.mark.integration


def test_the_dev_helpers_hubspot_feedback_verifies_and_applies(client: StackClient, local_stack: Any) -> None:
    # GIVEN a lead handed off to HubSpot
    lead_id = new_lead(client)
    handoff_id = seed_handoff(local_stack, lead_id)
    contact = str(uuid.uuid4().int % 10**9)
    seed_crm_ref(local_stack, "hubspot", contact, lead_id, handoff_id)

    # WHEN the dev console's fake CRM reports, as HubSpot, that sales accepted it
    answer = client.http.post(
        f"{client.url}/_dev/crm/feedback",
        json={"lead_id": lead_id, "outcome": "accepted", "provider": "hubspot", "external_id": contact},
        timeout=30,
    )

    # THEN the real webhook verified the signature and applied it
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == 200, answer.json()
    assert lead(client, lead_id)["stage"] == "sql"
    record = item(local_stack, f"LEAD#{lead_id}", f"HANDOFF#{handoff_id}")
    assert record is not None and record["history"][-1]["by"] == "crm:hubspot"
