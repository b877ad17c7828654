"""The push example with its leads imported, as a marketer brings the database they already have:
the funnel shows exactly the leads the import created and the stages the campaign moved them to,
and the sequence report exactly the campaign's counts (issue 15: "the funnel and the sequence report
show exactly the counts the simulation produced").

``test_push_campaign.py`` runs the campaign on 1,000 leads written straight into the table (fast,
but without the events of their capture, so the funnel never counts them). Here ``leadflow import``
brings 100 contacts in from a Mailchimp members export (its real header:
``tests/fixtures/imports/mailchimp_members.csv``, opt-in times recorded, imported with
``--consent-basis consent``), in countries where it is daytime, and the same campaign runs on them
with every step checked (``run_campaign``); sales accepts the leads handed to it (the CRM's feedback
makes them SQL). Then the funnel, in both views, is compared with the leads' profiles: 100 created,
and the redeemers SQL (and so MQL too).
"""

from __future__ import annotations

import csv
import random
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadflow.domain.reporting import FUNNEL_STAGES
from tests.conftest import ROOT
from tests.e2e.test_push_campaign import (
    LEADFLOW,
    CampaignStack,
    campaign_stack,
    daytime_countries,
    dev_now,
    run_campaign,
    stored,
)
from tests.integration.test_crm_feedback import post_generic

pytestmark = pytest.mark.e2e

LEADS = 100
SEND_RATE = 1000
FIXTURE = ROOT / "tests" / "fixtures" / "imports" / "mailchimp_members.csv"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[CampaignStack]:
    yield from campaign_stack(tmp_path_factory.mktemp("push-funnel"), SEND_RATE)


def mailchimp_export(path: Path, count: int, countries: list[str], rng: random.Random) -> list[str]:
    """``count`` subscribed members in a Mailchimp export's columns (the fixture's header); their addresses."""
    with FIXTURE.open(encoding="utf-8-sig", newline="") as fixture:
        header = next(csv.reader(fixture))
    addresses = [f"push-funnel-{n:04d}-{rng.randrange(10**6):06d}@example.com" for n in range(count)]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=header)
        writer.writeheader()
        for n, address in enumerate(addresses):
            writer.writerow(
                {
                    "Email Address": address,
                    "First Name": f"Member{n}",
                    "Last Name": "Imported",
                    "MEMBER_RATING": str(rng.randint(1, 5)),
                    "OPTIN_TIME": "2025-03-01 09:00:00",
                    "CONFIRM_TIME": "2025-03-01 09:05:00",
                    "CC": countries[n % len(countries)],
                    "LAST_CHANGED": "2025-03-01 09:05:00",
                }
            )
    return addresses


def imported(stack: CampaignStack, count: int, rng: random.Random) -> dict[str, str]:
    """``count`` contacts brought in by ``leadflow import`` (the README's command); lead id -> address."""
    export = stack.workspace.parent / "mailchimp-members.csv"
    addresses = mailchimp_export(export, count, daytime_countries(dev_now(stack.client)), rng)
    command = [str(LEADFLOW), "import", str(export), "--consent-basis", "consent", "--dev", stack.client.url]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    stack.client.tick()  # the capture events reach the reports and the segments
    found = {address: stack.client.lead_by_email(address) for address in addresses}
    assert all(found.values()), [a for a, lead in found.items() if not lead]
    return {str(lead["lead_id"]): address for address, lead in found.items() if lead}


def funnel(stack: CampaignStack, start: str, end: str, view: str) -> dict[str, Any]:
    answer = stack.client.api("/reports/funnel", by="channel", view=view, **{"from": start, "to": end})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def reached(stages: Counter[str]) -> dict[str, int]:
    """How many leads reached each funnel stage, from where they are now (a later stage passed the
    earlier ones: the funnel counts a lead handed straight to SQL as MQL too)."""
    return {
        stage: sum(n for at, n in stages.items() if at in FUNNEL_STAGES[i:]) for i, stage in enumerate(FUNNEL_STAGES)
    }


def test_the_funnel_and_the_sequence_report_count_the_imported_push_campaign_exactly(stack):
    import_day = dev_now(stack.client).date().isoformat()
    # GIVEN 100 contacts imported from Mailchimp, WHEN the push campaign runs on them (every step checked)
    reacted = run_campaign(stack, LEADS, imported)
    # AND sales accepts the leads handed to it (the CRM's feedback: the push example's last step)
    for lead_id in reacted.redeemers:
        (handoff,) = stack.client.api(f"/leads/{lead_id}/handoffs").json()["handoffs"]
        feedback = {"lead_id": lead_id, "handoff_id": handoff["handoff_id"], "outcome": "accepted", "owner": "ana"}
        assert post_generic(stack.client, feedback).status_code == 200
    stack.client.tick()
    profiles = stored(stack, reacted.ids, "PROFILE")
    stages = Counter(str(p.get("stage")) for p in profiles.values())
    assert stages == Counter({"lead": LEADS - len(reacted.redeemers), "sql": len(reacted.redeemers)}) and stages["sql"]
    expected = reached(stages)
    # THEN the funnel of the import's day, followed forward (cohort), shows every lead created once
    # and exactly the stages they reached
    cohort = funnel(stack, import_day, import_day, "cohort")
    assert cohort["totals"]["created"] == LEADS
    assert {s: cohort["totals"]["reached"][s] for s in FUNNEL_STAGES} == expected
    # AND the events of the whole campaign count the same: created on the import's day, stages as they happened
    events = funnel(stack, import_day, reacted.last_day, "events")
    assert events["totals"]["created"] == LEADS
    assert {s: events["totals"]["reached"][s] for s in FUNNEL_STAGES} == expected
    (row,) = [r for r in events["rows"] if r["created"]]
    assert row["created"] == LEADS  # one channel: the import
    # AND `leadflow report verify` recomputes the funnel from the leads and their markers with no drift
    done = subprocess.run(
        [str(LEADFLOW), "report", "verify", "--dev", stack.client.url, "--workspace", str(stack.workspace)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
