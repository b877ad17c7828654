"""moto's DynamoDB mended for the local stack: thread safety, transactions as DynamoDB runs them,
and reads that stop growing with the table. ``leadflow.dev.moto_patches.apply()`` applies them.

- Concurrent DynamoDB requests iterate and mutate the same dicts; one lock
  (``DYNAMODB_LOCK``) serializes them (DynamoDB's own per-item atomicity, as a local stack
  needs it).
- ``TransactWriteItems`` deep-copies every table it touches, once per item, to roll back
  on failure: O(table size) per transaction, and not thread-safe (a rollback can put back
  a stale copy over another request's writes). DynamoDB evaluates every condition against
  the state before the transaction and then applies all writes atomically; we do the same
  under one lock, snapshotting only the items the transaction touches.
- ``TransactWriteItems`` ignores ``ClientRequestToken``: botocore retries a timed-out
  transaction with the same token, and DynamoDB applies it once; moto applied it again.
- DynamoDB ``Query`` on the table (not an index) sorts every item of the table to find one
  partition: quadratic as the table grows. The partition's own items are used instead.
- DynamoDB ``Scan`` pages and ``Query`` on a global secondary index sort every item of the
  table too, and a page walks from the first item to its start key: a segmented scan is
  quadratic, every due query of a nurture tick reads the whole table. Sorted indexes kept in
  step with every write answer them instead, with moto's results (``moto_indexes``).
- moto checks an item's size again for every attribute it stores (quadratic in attributes):
  the size is checked once, with the same limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

DYNAMODB_LOCK = threading.RLock()


def dynamodb_serialized() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with DYNAMODB_LOCK:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def dynamodb_partition_query() -> None:
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())

        def partition_items() -> list[Any]:
            return sorted(partition, key=lambda item: item.range_key)

        with DYNAMODB_LOCK:
            self.all_items = partition_items  # only this query, under the lock
            try:
                return original(self, hash_key, *args, **kwargs)
            finally:
                del self.all_items

    Table.query = query  # type: ignore[method-assign]


def dynamodb_transaction_tokens() -> None:
    """A token seen in the last ten minutes answers success again without writing."""
    import time

    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.transact_write_items
    # In the order seen: expiring is a pop from the front, not a walk over every token.
    seen: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        now = time.monotonic()
        with DYNAMODB_LOCK:
            while seen and now - next(iter(seen.values()))[0] > 600:
                seen.popitem(last=False)
            if token and token in seen:
                return seen[token][1]
            response = original(self)
            if token:
                seen[token] = (now, response)
            return response

    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]


def dynamodb_transactions() -> None:  # noqa: C901 - mirrors moto's transact_write_items to patch it (dev tool)
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
        with DYNAMODB_LOCK:
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


def dynamodb_sorted_indexes() -> None:  # noqa: C901 - mirrors moto's index scan to patch it (dev tool)
    """Writes keep each table's sorted keys in step; ``Scan``, GSI ``Query`` and ``all_items`` read them."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

    from leadflow.dev import moto_indexes

    lock = DYNAMODB_LOCK
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


def dynamodb_item_size_checked_once() -> None:
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
