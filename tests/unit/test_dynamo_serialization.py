"""``adapters.dynamo_json.serialize`` / ``deserialize`` against boto3's TypeSerializer / TypeDeserializer.

The adapter writes out the common types by hand (boto3's were a large part of a broadcast's
CPU); for every value, the result must be exactly what boto3's gave (with the adapter's float
-> Decimal on the way in and Decimal -> int/float, set -> list on the way out), and what boto3
refuses must still be refused.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.adapters.dynamo_json import _from_dynamo, _to_dynamo, deserialize, serialize

pytestmark = pytest.mark.unit

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()


def boto_serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: SERIALIZER.serialize(_to_dynamo(v)) for k, v in item.items()}


def boto_deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(DESERIALIZER.deserialize(v)) for k, v in item.items()}


def outcome(function: Any, item: dict[str, Any]) -> Any:
    try:
        return function(item)
    except Exception as error:  # noqa: BLE001 - the exception type is the outcome compared
        return type(error)


class Colour(StrEnum):
    RED = "red"


class Size(IntEnum):
    SMALL = 1


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.text(max_size=20),
    st.binary(max_size=10),
    st.sampled_from([Colour.RED, Size.SMALL, Binary(b"\x00\x01"), bytearray(b"ab")]),
)
sets = st.one_of(
    st.frozensets(st.text(max_size=5), min_size=1, max_size=4).map(set),
    st.frozensets(st.integers(min_value=-(10**6), max_value=10**6), min_size=1, max_size=4).map(set),
    st.frozensets(st.binary(min_size=1, max_size=4), min_size=1, max_size=3).map(set),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=20,
)
items = st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=6)


@settings(max_examples=250, deadline=None)
@given(items)
def test_serialize_gives_what_boto3_gave(item: dict[str, Any]) -> None:
    assert outcome(serialize, item) == outcome(boto_serialize, item)


def normalized(value: Any) -> Any:
    """Lists from sets come in set order, which may differ between two set() calls: compare as sorted."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((normalized(v) for v in value), key=repr)
    return value


@settings(max_examples=250, deadline=None)
@given(items)
def test_deserialize_gives_what_boto3_gave(item: dict[str, Any]) -> None:
    try:
        stored = boto_serialize(item)
    except (TypeError, ArithmeticError):
        return  # not storable at all
    assert normalized(deserialize(stored)) == normalized(boto_deserialize(stored))


@pytest.mark.parametrize(
    "number",
    [
        "0",
        "-0",
        "7",
        "-12",
        "20.0",
        "1E+2",
        "1e-7",
        "0.5",
        "-3.25",
        "12345678901234567890123456789012345678",
        "99999999999999999999999999999999999999",
        "1.0000000000000000000000000000000000001",
    ],
)
def test_numbers_read_as_boto3_read_them(number: str) -> None:
    item = {"n": {"N": number}, "l": {"L": [{"N": number}]}, "m": {"M": {"x": {"N": number}}}}
    ours, theirs = outcome(deserialize, item), outcome(boto_deserialize, item)
    assert ours == theirs
    if isinstance(ours, dict):
        assert type(ours["n"]) is type(theirs["n"])


def test_a_real_profile_round_trips() -> None:
    profile = {
        "PK": "LEAD#01ABC",
        "SK": "PROFILE",
        "email": "ada@example.com",
        "submissions": 3,
        "scores": {"smb": 20.5, "key_account": 20, "customer": 10.0},
        "consent": {"marketing": True, "at": "2026-11-24T10:00:00+00:00", "topics": ["news", "product"]},
        "tags": {"vip", "beta"},
        "avatar": b"\x89PNG",
        "unset": None,
    }
    stored = serialize(profile)
    assert stored == boto_serialize(profile)
    assert stored["scores"] == {"M": {"smb": {"N": "20.5"}, "key_account": {"N": "20"}, "customer": {"N": "10.0"}}}
    back = deserialize(stored)
    assert normalized(back) == normalized(boto_deserialize(stored))
    assert back["scores"] == {"smb": 20.5, "key_account": 20, "customer": 10}
    assert type(back["scores"]["customer"]) is int  # as boto3 + _from_dynamo always did: 10.0 reads back as 10
    assert sorted(back["tags"]) == ["beta", "vip"]
    assert back["avatar"] == Binary(b"\x89PNG")


def test_what_boto3_refuses_is_refused() -> None:
    for bad in ({"x": object()}, {"x": Decimal("NaN")}, {"x": float("inf")}, {"x": 10**50}):
        assert outcome(serialize, bad) == outcome(boto_serialize, bad)
        assert isinstance(outcome(serialize, bad), type)
