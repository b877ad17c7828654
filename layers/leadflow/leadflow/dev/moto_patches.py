"""Where moto falls short of AWS in ways the local stack would feel, and how we mend it.

- ``!Ref`` of an ``AWS::Events::EventBus`` resolves to moto's Python object instead of
  the bus name.
- ``TransactWriteItems`` deep-copies every table it touches, once per item, to roll back
  on failure: O(table size) per transaction, and not thread-safe (a rollback can put back
  a stale copy over another request's writes). DynamoDB evaluates every condition against
  the state before the transaction and then applies all writes atomically; we do the same
  under one lock, snapshotting only the items the transaction touches.
- Concurrent DynamoDB requests iterate and mutate the same dicts; one lock serializes
  them (DynamoDB's own per-item atomicity, as a local stack needs it).
- ``TransactWriteItems`` ignores ``ClientRequestToken``: botocore retries a timed-out
  transaction with the same token, and DynamoDB applies it once; moto applied it again.
- DynamoDB ``Query`` on the table (not an index) sorts every item of the table to find one
  partition: quadratic as the table grows. The partition's own items are used instead.
- DynamoDB ``Scan`` pages and ``Query`` on a global secondary index sort every item of the
  table too, and a page walks from the first item to its start key: a segmented scan is
  quadratic, every due query of a nurture tick reads the whole table. Sorted indexes kept in
  step with every write answer them instead, with moto's results (``moto_indexes``).
- moto's server lists its package folder to find the backend of every request: listed once.
- moto serializes every response through the service model, member by member with name
  aliases: for DynamoDB most of a request's time under the lock is spent turning the items'
  attribute values into JSON. Attribute values are written directly, as that code would.
- moto checks an item's size again for every attribute it stores (quadratic in attributes):
  the size is checked once, with the same limit. It also lists a handler's methods on every
  request: listed once per class.
- SQS ``ReceiveMessage`` checks each message's retention through ``get_queue_attributes``,
  which counts every message of the queue: receiving from a queue with a backlog was
  quadratic. The retention period is read directly instead.
- CloudFormation parses every template body with PyYAML's pure-Python loader, JSON ones too
  (JSON is YAML): 1.9 s of each local start for our ~220 transformed resources, against 6 ms
  for ``json.loads``. A body that is JSON is read as JSON; any other goes to moto's parser.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

_DYNAMODB_LOCK = threading.RLock()
_applied = False


def apply() -> None:
    global _applied  # noqa: PLW0603 - patches apply once per process
    if _applied:
        return
    _applied = True
    _event_bus_ref()
    _dynamodb_serialized()
    _dynamodb_transactions()
    _dynamodb_transaction_tokens()
    _sqs_retention_check()
    _dynamodb_partition_query()
    _dynamodb_sorted_indexes()
    _dynamodb_attribute_values_serialized()
    _dynamodb_item_size_checked_once()
    _handler_methods_cached()
    _backend_listing_cached()
    _cloudformation_json_read_as_json()


def _event_bus_ref() -> None:
    import moto.events.models as events_models

    events_models.EventBus.physical_resource_id = property(lambda bus: bus.name)  # type: ignore[attr-defined]


def _dynamodb_serialized() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def _dynamodb_partition_query() -> None:
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())

        def partition_items() -> list[Any]:
            return sorted(partition, key=lambda item: item.range_key)

        with _DYNAMODB_LOCK:
            self.all_items = partition_items  # only this query, under the lock
            try:
                return original(self, hash_key, *args, **kwargs)
            finally:
                del self.all_items

    Table.query = query  # type: ignore[method-assign]


def _sqs_retention_check() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


def _backend_listing_cached() -> None:
    """moto's server finds the backend of every request by listing its package folder (~200
    ``isdir`` calls a request); the folder does not change while the stack runs."""
    import moto.backends

    modules = list(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: iter(modules)  # type: ignore[assignment]


def _cloudformation_json_read_as_json() -> None:
    import json

    from moto.cloudformation.models import Stack

    original = Stack.parse_template

    def parse_template(template: str) -> dict[str, Any]:
        try:
            parsed = json.loads(template)
        except ValueError:
            return original(template)
        return parsed if isinstance(parsed, dict) else original(template)

    Stack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign]


def _dynamodb_transaction_tokens() -> None:
    """A token seen in the last ten minutes answers success again without writing."""
    import time

    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.transact_write_items
    # In the order seen: expiring is a pop from the front, not a walk over every token.
    seen: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        now = time.monotonic()
        with _DYNAMODB_LOCK:
            while seen and now - next(iter(seen.values()))[0] > 600:
                seen.popitem(last=False)
            if token and token in seen:
                return seen[token][1]
            response = original(self)
            if token:
                seen[token] = (now, response)
            return response

    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _dynamodb_transactions() -> None:  # noqa: C901 - mirrors moto's transact_write_items to patch it (dev tool)
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:  # noqa: C901 - moto's own transaction checks, in its order (dev tool)
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        with _DYNAMODB_LOCK:
            plan: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
            errors: list[tuple[Any, Any, Any]] = []
            touched: set[tuple[str, str]] = set()
            for entry in transact_items:
                if len(entry) > 1:
                    raise TransactWriteSingleOpException
                op_type, op = next(iter(entry.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                if op_type == "Put":
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = op["Item"][table.range_key_attr]
                else:
                    key = op["Key"]
                marker = (str(table_name), str(dict(sorted(key.items()))))
                if marker in touched:
                    raise MultipleTransactionsException()
                touched.add(marker)
                current = self.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    check = get_filter_expression(
                        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    )
                    if not check.expr(current):
                        old = None
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            old = current.to_json()["Attributes"]
                        errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
                        continue
                errors.append((None, None, None))
                plan.append((op_type, op, table_name, key, current.to_json()["Attributes"] if current else None))
            if any(code is not None for code, _, _ in errors):
                raise TransactionCanceledException(errors)
            applied: list[tuple[str, dict[str, Any], Any]] = []
            try:
                for op_type, op, table_name, key, before in plan:
                    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                    condition = op.get("ConditionExpression")
                    if op_type == "Put":
                        self.put_item(
                            table_name,
                            op["Item"],
                            condition_expression=condition,
                            expression_attribute_names=names,
                            expression_attribute_values=values,
                        )
                    elif op_type == "Delete":
                        self.delete_item(
                            table_name,
                            key,
                            condition_expression=condition,
                            expression_attribute_names=names,
                            expression_attribute_values=values,
                        )
                    elif op_type == "Update":
                        self.update_item(
                            table_name,
                            key,
                            update_expression=op["UpdateExpression"],
                            condition_expression=condition,
                            expression_attribute_names=names,
                            expression_attribute_values=values,
                        )
                    if op_type != "ConditionCheck":
                        applied.append((table_name, key, before))
            except Exception as error:
                for table_name, key, before in reversed(applied):
                    if before is None:
                        self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, before)
                if isinstance(error, MockValidationException):
                    raise
                raise TransactionCanceledException(
                    [(type(error).__name__, str(error), None)] + [(None, None, None)] * (len(transact_items) - 1)
                ) from error

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _dynamodb_sorted_indexes() -> None:  # noqa: C901 - mirrors moto's index scan to patch it (dev tool)
    """Writes keep each table's sorted keys in step; ``Scan``, GSI ``Query`` and ``all_items`` read them."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

    from leadflow.dev import moto_indexes

    lock = _DYNAMODB_LOCK
    original_put, original_delete = Table.put_item, Table.delete_item
    original_update = DynamoDBBackend.update_item
    original_all_items, original_scan, previous_query = Table.all_items, Table.scan, Table.query

    def reconcile(table: Any, attrs: Any) -> None:
        """After a write of the item with these key attributes (a key moto refused wrote nothing)."""
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        if not isinstance(attrs, dict) or any(not isinstance(attrs.get(n), dict) for n in names):
            return
        keys = [DynamoType(attrs[n]) for n in names]
        moto_indexes.reconcile(table, keys[0], keys[1] if len(keys) > 1 else None, lock)

    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        with lock:
            try:
                return original_put(self, item_attrs, *args, **kwargs)
            finally:
                reconcile(self, item_attrs)

    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        with lock:
            try:
                return original_delete(self, hash_key, range_key)
            finally:
                moto_indexes.reconcile(self, hash_key, range_key, lock)

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Updates change the stored item in place (its index keys too): reconciled after, even on error."""
        with lock:
            try:
                return original_update(self, table_name, key, *args, **kwargs)
            finally:
                if table_name in self.tables:
                    reconcile(self.tables[table_name], key)

    def all_items(self: Any) -> list[Any]:
        with lock:
            index = moto_indexes.index_of(self, lock)
            if index is None:
                return original_all_items(self)
            return [index.item(pk) for pk in index.keys]

    def scan(  # noqa: PLR0917 - moto's signature
        self: Any,
        filters: dict[str, Any],
        limit: int,
        exclusive_start_key: dict[str, Any],
        filter_expression: Any = None,
        index_name: str | None = None,
        consistent_read: bool = False,
        projection_expression: Any = None,
        segments: Any = (None, None),
    ) -> Any:
        def moto() -> Any:
            return original_scan(
                self,
                filters,
                limit,
                exclusive_start_key,
                filter_expression,
                index_name,
                consistent_read,
                projection_expression,
                segments,
            )

        if index_name:
            return moto()
        with lock:
            index = moto_indexes.index_of(self, lock)
            if index is None:
                return moto()
            try:
                items = moto_indexes.scan_items(index, exclusive_start_key, DynamoType)
            except moto_indexes.Unindexable:
                return moto()
            self.all_items = lambda: items  # only this scan, under the lock
            try:
                return moto()
            finally:
                del self.all_items

    def query(  # noqa: PLR0917 - moto's signature
        self: Any,
        hash_key: Any,
        range_comparison: str | None,
        range_objs: list[Any],
        limit: int,
        exclusive_start_key: dict[str, Any],
        scan_index_forward: bool,
        projection_expressions: Any,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        hash_key_conditions: list[tuple[str, Any]] | None = None,
        range_key_conditions: list[tuple[str, str, list[Any]]] | None = None,
        **filter_kwargs: Any,
    ) -> Any:
        def moto() -> Any:
            return previous_query(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name,
                consistent_read,
                filter_expression,
                hash_key_conditions=hash_key_conditions,
                range_key_conditions=range_key_conditions,
                **filter_kwargs,
            )

        if not index_name or consistent_read or filter_kwargs or len(hash_key_conditions or []) != 1:
            return moto()
        with lock:
            index = moto_indexes.index_of(self, lock)
            gsi = index.gsis.get(index_name) if index is not None else None
            if index is None or gsi is None or gsi.broken:
                return moto()
            hash_attr, hash_value = (hash_key_conditions or [])[0]
            ranges = range_key_conditions or []
            if hash_attr != gsi.hash_attr or len(ranges) > 1 or (ranges and ranges[0][0] != gsi.range_attr):
                return moto()
            try:
                return moto_indexes.gsi_query(
                    self,
                    index,
                    gsi,
                    hash_value,
                    range_comparison,
                    range_objs,
                    limit,
                    exclusive_start_key,
                    scan_index_forward is not False,
                    projection_expressions,
                    filter_expression,
                    DynamoType,
                    RESULT_SIZE_LIMIT,
                )
            except moto_indexes.Unindexable:
                return moto()

    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.scan = scan  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


def _dynamodb_attribute_values_serialized() -> None:  # noqa: C901 - one branch per attribute type, as moto has them (dev tool)
    """DynamoDB ``AttributeValue`` structures (and maps of them) written as moto's JSON serializer writes them.

    Only plain dicts of known tags take the short way (what ``dynamo_to_dict`` hands the
    serializer); anything else goes the long way. Each tag is converted as the model says:
    strings and numbers ``str()``, binaries base64 (the serializer's own ``_base64``), sets
    element by element, ``M`` and ``L`` recursively, ``NULL`` and ``BOOL`` as they are; a
    tag whose value is None is left out, in the model's member order."""
    from moto.core.serialize import BaseJSONSerializer

    original_structure = BaseJSONSerializer._serialize_type_structure
    original_map = BaseJSONSerializer._serialize_type_map
    tags = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")
    known = frozenset(tags)

    def text(value: Any) -> Any:
        return str(value) if value not in [None, {}, []] else value

    def plain(value: Any) -> bool:
        return type(value) is dict and known.issuperset(value)

    def nested(serializer: Any, value: Any) -> dict[str, Any]:
        if not plain(value):
            raise _NotPlain
        return attribute_value(serializer, value)

    def attribute_value(serializer: Any, value: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for tag in tags:
            member = value.get(tag)
            if member is None:
                continue
            if tag in {"S", "N"}:
                out[tag] = text(member)
            elif tag == "B":
                out[tag] = serializer._base64(member)
            elif tag in {"NULL", "BOOL"}:
                out[tag] = member
            elif tag == "M":
                if type(member) is not dict:
                    raise _NotPlain
                out[tag] = {k: nested(serializer, v) for k, v in member.items() if v is not None}
            elif type(member) is not list:
                raise _NotPlain
            elif tag == "L":
                out[tag] = [nested(serializer, v) if v is not None else None for v in member]
            elif tag == "BS":
                out[tag] = [serializer._base64(v) for v in member]
            else:  # SS, NS
                out[tag] = [text(v) for v in member]
        return out

    def dynamodb(serializer: Any) -> bool:
        return bool(serializer.service_model.service_name == "dynamodb")

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and plain(value) and dynamodb(self):
            try:
                serialized[self.get_serialized_name(shape, key)] = attribute_value(self, value)
            except _NotPlain:
                pass
            else:
                return
        original_structure(self, serialized, value, shape, key)

    def serialize_map(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        """An item (attribute name -> value): each plain value written directly, the rest as moto does."""
        if getattr(shape.value, "name", None) != "AttributeValue" or not dynamodb(self):
            original_map(self, serialized, value, shape, key)
            return
        map_obj: dict[str, Any] = {}
        self._default_serialize(serialized, map_obj, shape, key)
        for sub_key, sub_value in value.items():
            if sub_key and plain(sub_value):
                try:
                    map_obj[self.get_serialized_name(shape.value, sub_key)] = attribute_value(self, sub_value)
                    continue
                except _NotPlain:
                    pass
            self._serialize(map_obj, sub_value, shape.value, sub_key)

    serialize_structure.__wrapped__ = original_structure  # type: ignore[attr-defined]
    serialize_map.__wrapped__ = original_map  # type: ignore[attr-defined]
    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]
    BaseJSONSerializer._serialize_type_map = serialize_map  # type: ignore[method-assign]


class _NotPlain(Exception):
    """A nested attribute value that is not a plain dict: the serializer's own way."""


def _dynamodb_item_size_checked_once() -> None:
    """An item's attributes stored at once, its size checked once against moto's limit.

    moto's ``LimitedSizeDict`` sums the whole item again for every attribute set; sizes only
    add up, so the item is over the limit at the end exactly when it was at some attribute."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    original_init = Item.__init__

    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        if type(attrs) is not dict:
            original_init(self, hash_key, range_key, attrs)
            return
        self.hash_key = hash_key
        self.range_key = range_key
        values: dict[str, Any] = {}
        size = 0
        for key, value in attrs.items():  # in moto's order: the same error first
            values[key] = converted = DynamoType(value)
            size += bytesize(key) + converted.size()
            if size > 405000:  # moto's limit (LimitedSizeDict)
                raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)

    Item.__init__ = init  # type: ignore[method-assign]


def _handler_methods_cached() -> None:
    """moto lists a response class's methods (``inspect.getmembers``) on every request; classes do not change."""
    import moto.core.responses
    import moto.core.utils

    original = moto.core.utils.method_names_from_class
    cache: dict[Any, list[str]] = {}

    def method_names_from_class(clazz: object) -> list[str]:
        names = cache.get(clazz)
        if names is None:
            names = cache[clazz] = original(clazz)
        return list(names)

    moto.core.responses.method_names_from_class = method_names_from_class  # type: ignore[attr-defined]
