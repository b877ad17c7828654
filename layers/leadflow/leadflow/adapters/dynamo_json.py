"""DynamoDB JSON: items to and from the wire format (``serialize``, ``deserialize``), written out
for the types items are made of because boto3's own (de)serializers cost more CPU than the logic."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """An item (or a key, or expression values) in DynamoDB JSON; floats become Decimals first.

    The same output as boto3's ``TypeSerializer`` over ``_to_dynamo`` (tested for equivalence),
    written out for the types items are made of (str, int, bool, None, dict, list, tuple): boto3's
    serializer cost a broadcast more CPU than the step's own logic. Anything else (floats,
    Decimals, sets, bytes, subclasses) goes through boto3's."""
    return {k: _dump(v) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """An item from DynamoDB JSON, numbers as int (integral) or float: boto3's ``TypeDeserializer``
    then ``_from_dynamo``, written out for S, N, M, L, BOOL and NULL (B and the sets go through boto3's)."""
    return {k: _load(v) for k, v in item.items()}


def _dump(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is dict:
        return {"M": {k: _dump(v) for k, v in value.items()}}
    if kind is int and -_MAX_PLAIN_INT < value < _MAX_PLAIN_INT:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is list or kind is tuple:
        return {"L": [_dump(v) for v in value]}
    return _serializer.serialize(_to_dynamo(value))  # type: ignore[no-any-return]


def _load(value: dict[str, Any]) -> Any:
    if "S" in value:
        return value["S"]
    if "N" in value:
        number = value["N"]
        digits = number[1:] if number[:1] == "-" else number
        if 0 < len(digits) <= _PLAIN_DIGITS and digits.isascii() and digits.isdigit():
            return int(number)
        return _from_dynamo(_deserializer.deserialize(value))
    if "M" in value:
        return {k: _load(v) for k, v in value["M"].items()}
    if "L" in value:
        return [_load(v) for v in value["L"]]
    if "BOOL" in value:
        return value["BOOL"]
    if "NULL" in value:
        return None
    return _from_dynamo(_deserializer.deserialize(value))


_PLAIN_DIGITS = 38  # DynamoDB numbers have up to 38 digits of precision (boto3's decimal context)
_MAX_PLAIN_INT = 10**_PLAIN_DIGITS
