"""The cost meter's index write units (bench/metering.py ``gsi_units``): what a profile's write
costs in an ALL, an INCLUDE and a KEYS_ONLY index, as DynamoDB bills them."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def meter() -> ModuleType:
    """bench/metering.py as the scripts import it (``bench/`` first on the path, beside its neighbours)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT / "bench"))
        return importlib.import_module("metering")


def profile(**changes: Any) -> dict[str, Any]:
    """A lead profile of a company in DynamoDB JSON, its account keys in GSI5, a summary of ~1.5 KB."""
    item = {
        "PK": {"S": "LEAD#01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
        "SK": {"S": "PROFILE"},
        "lead_id": {"S": "01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
        "title": {"S": "CFO"},
        "notes": {"S": "x" * 1500},
        "scores": {"M": {"smb": {"N": "20"}}},
        "GSI5PK": {"S": "ACCOUNT#acme.example"},
        "GSI5SK": {"S": "LEAD#01JD3Z8Q4W6Y9V2N5K7M0P1R3S"},
    }
    item.update(changes)
    return item


def indexes(meter: ModuleType, projection: str) -> list[Any]:
    nka = ("lead_id", "title") if projection == "INCLUDE" else ()
    return [meter.Index("GSI5", "GSI5PK", "GSI5SK", projection, nka)]


def test_a_summary_change_costs_no_unit_in_an_include_index_and_a_title_change_one(meter: ModuleType):
    # GIVEN a profile keyed in GSI5, projecting lead_id and title
    before = profile()
    rescored = profile(scores={"M": {"smb": {"N": "35"}}})
    retitled = profile(title={"S": "Chief Financial Officer"})
    # THEN a new score summary writes no index entry; a new title rewrites the small entry once
    assert meter.gsi_units(indexes(meter, "INCLUDE"), before, rescored) == 0
    assert meter.gsi_units(indexes(meter, "INCLUDE"), before, retitled) == 1
    # AND in an ALL index the same summary change rewrites the whole entry (~1.7 KB: 2 units)
    assert meter.gsi_units(indexes(meter, "ALL"), before, rescored) == 2
    # AND a keys-only index is written only when its keys change
    assert meter.gsi_units(indexes(meter, "KEYS_ONLY"), before, retitled) == 0


def test_a_new_include_entry_costs_its_keys_and_projected_attributes(meter: ModuleType):
    # GIVEN a profile without account keys, then given them (or losing them)
    unkeyed = {k: v for k, v in profile().items() if not k.startswith("GSI5")}
    keyed = profile()
    include = indexes(meter, "INCLUDE")
    # THEN the new entry is its keys, lead_id and title (under 1 KB: 1 unit, however large the
    # profile), a removed entry 1, a moved one (new keys) both
    assert include[0].entry(keyed) == {k: v for k, v in keyed.items() if k not in ("notes", "scores")}
    assert meter.gsi_units(include, unkeyed, keyed) == 1
    assert meter.gsi_units(include, None, keyed) == 1
    assert meter.gsi_units(include, keyed, unkeyed) == 1
    assert meter.gsi_units(include, keyed, profile(GSI5PK={"S": "ACCOUNT#other.example"})) == 2
    assert meter.gsi_units(indexes(meter, "ALL"), unkeyed, keyed) == 2
