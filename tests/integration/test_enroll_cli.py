"""``leadflow enroll EMAIL|LEAD_ID SEQUENCE`` (issue 13, defect 12: named in a docstring, missing)."""

from __future__ import annotations

import pytest

from leadflow.dev.cli import main
from tests.conftest import StackClient, unique_email

pytestmark = pytest.mark.integration


def test_enroll_by_address_then_refused_by_reentry(client: StackClient, capsys: pytest.CaptureFixture[str]):
    # GIVEN a lead
    email = unique_email("enroll")
    lead_id = client.capture("demo-signup", {"email": email, "consent": True})

    # WHEN an operator enrolls it by its address in a sequence with an API trigger, twice
    first = main(["enroll", email, "push-discount", "--dev", client.url])
    out = capsys.readouterr().out
    again = main(["enroll", lead_id, "push-discount", "--dev", client.url])

    # THEN the first enrolls it (as the admin API does), the second is refused by re-entry
    assert first == 0 and f"{lead_id}: enrolled in push-discount" in out
    assert again == 1 and "409" in capsys.readouterr().err
    enrollments = client.api(f"/leads/{lead_id}/enrollments").json()["enrollments"]
    assert "push-discount" in {e["sequence_id"] for e in enrollments}


def test_enroll_names_what_is_wrong(client: StackClient, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit, match="no lead with the address"):
        main(["enroll", unique_email("nobody"), "push-discount", "--dev", client.url])
    lead_id = client.capture("demo-signup", {"email": unique_email("enroll404")})
    assert main(["enroll", lead_id, "welcome", "--dev", client.url]) == 1  # no API trigger
    assert "404" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--dev URL"):
        main(["enroll", lead_id, "push-discount"])
