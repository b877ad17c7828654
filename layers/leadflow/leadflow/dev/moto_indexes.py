"""Sorted indexes kept beside moto's DynamoDB tables, so that reads stop growing with the table.

moto keeps a table as ``{hash key: {range key: item}}`` and, for every ``Scan`` page and every
``Query`` on a global secondary index, sorts *every item of the table* with Python-level
comparisons of its ``DynamoType`` keys, then walks from the first item to the page's
``ExclusiveStartKey``. A 100,000-lead table holds ~400,000 items; each page costs seconds, a
segmented scan of the table is quadratic, and a nurture tick's due queries (16 shards, a
page of 200 each) read the whole table every time.

Here each table gets, lazily on its first read, the keys of its items in sorted order
(blocked sorted lists of plain Python values: ``str`` for S, ``Decimal`` for N, the
``cast_value`` moto compares; tables and indexes with binary keys are left to moto) and, for
every global secondary index with one hash and one range attribute, its partitions sorted by
(index range key, table hash key, table range key), moto's own order. Every write path
ends in ``Table.put_item``, ``Table.delete_item`` or ``DynamoDBBackend.update_item`` (which
changes an item in place); after each, the written key is reconciled with what the table now
holds, so an index never trusts what a write *meant* to do, only what it did (a failed
condition, a rollback, a partial update). A table whose ``items`` dict is replaced (a
restore) is re-indexed on its next read.

The reads keep moto's results exactly (items, order, ``LastEvaluatedKey``, ``Limit``, the
1 MB page, ``ScannedCount``, filters, projections; see
``tests/integration/test_moto_patches_scale.py``, which compares them with unpatched moto on
random tables): ``Scan`` hands moto's own loop only the items after the start key; a GSI
``Query`` runs moto's loop over the partition's window of the key condition. Anything else
(index scans, multi-attribute keys, legacy ``QueryFilter``, keys of an unexpected type) goes
to moto unchanged.
"""

from __future__ import annotations

import copy
import threading
import weakref
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator
from typing import Any

LOAD = 512
"""Entries per block of a sorted list (split at twice this): inserts move at most ~1,000 refs."""

MAX_ITEM_BYTES = 410_000
"""moto refuses items over 405,000 bytes (``LimitedSizeDict``); with a margin."""

_RANGE_OPERATORS = {"EQ", "=", "LE", "<=", "LT", "<", "GE", ">=", "GT", ">", "BETWEEN", "BEGINS_WITH"}


class _Top:
    """Greater than every key value: ``(v, TOP)`` sorts after every entry whose first value is ``v``."""

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __le__(self, other: object) -> bool:
        return other is self

    def __ge__(self, other: object) -> bool:
        return True


TOP = _Top()


class SortedKeys:
    """A sorted list of distinct tuples in blocks (inserts and deletes cost O(sqrt n), not O(n))."""

    def __init__(self, keys: list[tuple[Any, ...]] | None = None) -> None:
        ordered = sorted(keys or [])
        self.blocks: list[list[tuple[Any, ...]]] = [ordered[i : i + LOAD] for i in range(0, len(ordered), LOAD)]
        self.maxes: list[tuple[Any, ...]] = [block[-1] for block in self.blocks]
        self.size = len(ordered)

    def __len__(self) -> int:
        return self.size

    def add(self, key: tuple[Any, ...]) -> None:
        if not self.blocks:
            self.blocks.append([key])
            self.maxes.append(key)
        else:
            i = bisect_left(self.maxes, key)
            if i == len(self.maxes):
                i -= 1
                self.blocks[i].append(key)
                self.maxes[i] = key
            else:
                insort(self.blocks[i], key)
            block = self.blocks[i]
            if len(block) > 2 * LOAD:
                self.blocks[i : i + 1] = [block[:LOAD], block[LOAD:]]
                self.maxes[i : i + 1] = [block[LOAD - 1], block[-1]]
        self.size += 1

    def remove(self, key: tuple[Any, ...]) -> None:
        i = bisect_left(self.maxes, key)
        block = self.blocks[i]
        j = bisect_left(block, key)
        if block[j] != key:
            raise KeyError(key)
        del block[j]
        if block:
            self.maxes[i] = block[-1]
        else:
            del self.blocks[i], self.maxes[i]
        self.size -= 1

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for block in self.blocks:
            yield from block

    def ascending(self, start: tuple[Any, ...] | None, *, inclusive: bool) -> Iterator[tuple[Any, ...]]:
        """Entries from ``start`` up (all when None)."""
        if start is None:
            i = j = 0
        elif inclusive:
            i = bisect_left(self.maxes, start)
            j = bisect_left(self.blocks[i], start) if i < len(self.blocks) else 0
        else:
            i = bisect_right(self.maxes, start)
            j = bisect_right(self.blocks[i], start) if i < len(self.blocks) else 0
        for n in range(i, len(self.blocks)):
            block = self.blocks[n]
            yield from (block[j:] if j else block)
            j = 0

    def descending(self, below: tuple[Any, ...] | None) -> Iterator[tuple[Any, ...]]:
        """Entries strictly below ``below``, down (all when None)."""
        if not self.blocks:
            return
        if below is None:
            i, j = len(self.blocks) - 1, len(self.blocks[-1])
        else:
            i = bisect_left(self.maxes, below)
            if i == len(self.blocks):
                i, j = i - 1, len(self.blocks[-1])
            else:
                j = bisect_left(self.blocks[i], below)
        for n in range(i, -1, -1):
            block = self.blocks[n]
            end = j if n == i else len(block)
            for k in range(end - 1, -1, -1):
                yield block[k]


class Unindexable(Exception):
    """A value the index cannot order the way moto does: the read goes to moto unchanged."""


def _cast(value: Any, expected: str | None) -> Any:
    """The plain value moto compares (``DynamoType.cast_value``) of a key of the expected type
    (S or N: binary keys are left to moto)."""
    if expected is None or value.type != expected or expected not in ("S", "N"):
        raise Unindexable(value)
    return value.cast_value


class GsiIndex:
    """One global secondary index: partition (hash type, value) -> sorted (range, table keys)."""

    def __init__(self, name: str, hash_attr: str, range_attr: str, types: dict[str, str]) -> None:
        self.name = name
        self.hash_attr = hash_attr
        self.range_attr = range_attr
        self.hash_type = types.get(hash_attr)
        self.range_type = types.get(range_attr)
        self.partitions: dict[tuple[str, Any], SortedKeys] = {}
        self.entries: dict[tuple[Any, ...], tuple[tuple[str, Any], tuple[Any, ...]]] = {}
        self.broken = False
        """An item held a key of another type than declared: moto answers every query of this index."""

    def entry_of(self, pk: tuple[Any, ...], attrs: dict[str, Any]) -> tuple[tuple[str, Any], tuple[Any, ...]] | None:
        hash_value, range_value = attrs.get(self.hash_attr), attrs.get(self.range_attr)
        if hash_value is None or range_value is None:
            return None
        try:
            return (hash_value.type, _cast(hash_value, self.hash_type)), (_cast(range_value, self.range_type), *pk)
        except Unindexable:
            self.broken = True
            return None

    def set(self, pk: tuple[Any, ...], attrs: dict[str, Any] | None) -> None:
        new = self.entry_of(pk, attrs) if attrs is not None else None
        old = self.entries.get(pk)
        if old == new:
            return
        if old is not None:
            partition = self.partitions[old[0]]
            partition.remove(old[1])
            if not partition:
                del self.partitions[old[0]]
            del self.entries[pk]
        if new is not None:
            self.partitions.setdefault(new[0], SortedKeys()).add(new[1])
            self.entries[pk] = new


class TableIndex:
    """The sorted keys of one table and of its global secondary indexes."""

    def __init__(self, table: Any) -> None:
        self.items_ref = table.items
        self.hash_attr: str = table.hash_key_attr
        self.range_attr: str | None = table.range_key_attr
        types = {a["AttributeName"]: a["AttributeType"] for a in (table.attr or [])}
        self.hash_type, self.range_type = types.get(self.hash_attr), types.get(self.range_attr or "")
        self.refs: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self.gsis: dict[str, GsiIndex] = {}
        for index in table.global_indexes or []:
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
            if len(hashes) == 1 and len(ranges) == 1:
                self.gsis[index.name] = GsiIndex(index.name, hashes[0], ranges[0], types)
        keys = []
        for item in self._walk(table):
            pk = self.pk_of(item.hash_key, item.range_key)
            self.refs[pk] = (item.hash_key, item.range_key)
            keys.append(pk)
            for gsi in self.gsis.values():
                gsi.set(pk, item.attrs)
        self.keys = SortedKeys(keys)

    def _walk(self, table: Any) -> Iterator[Any]:
        for value in table.items.values():
            if self.range_attr:
                yield from value.values()
            else:
                yield value

    def pk_of(self, hash_key: Any, range_key: Any) -> tuple[Any, ...]:
        if self.range_attr is None:
            return (_cast(hash_key, self.hash_type),)
        return (_cast(hash_key, self.hash_type), _cast(range_key, self.range_type))

    def item(self, pk: tuple[Any, ...]) -> Any:
        hash_key, range_key = self.refs[pk]
        return self.items_ref[hash_key][range_key] if self.range_attr else self.items_ref[hash_key]

    def reconcile(self, hash_key: Any, range_key: Any) -> None:
        """Make the indexes say what the table now holds under this key."""
        pk = self.pk_of(hash_key, range_key)
        partition = self.items_ref.get(hash_key)
        current = (partition.get(range_key) if partition is not None else None) if self.range_attr else partition
        known = pk in self.refs
        if current is not None and not known:
            self.keys.add(pk)
            self.refs[pk] = (current.hash_key, current.range_key)
        elif current is None and known:
            self.keys.remove(pk)
            del self.refs[pk]
        for gsi in self.gsis.values():
            gsi.set(pk, current.attrs if current is not None else None)


_INDEXES: weakref.WeakKeyDictionary[Any, TableIndex] = weakref.WeakKeyDictionary()
_UNINDEXABLE: weakref.WeakSet[Any] = weakref.WeakSet()


def index_of(table: Any, lock: threading.RLock) -> TableIndex | None:
    """The table's index, built on first use (None for a table whose keys moto orders otherwise)."""
    with lock:
        index = _INDEXES.get(table)
        if index is not None and index.items_ref is table.items:
            return index
        if table in _UNINDEXABLE:
            return None
        try:
            index = TableIndex(table)
        except Unindexable:
            _UNINDEXABLE.add(table)
            return None
        _INDEXES[table] = index
        return index


def reconcile(table: Any, hash_key: Any, range_key: Any, lock: threading.RLock) -> None:
    """After a write under this key: bring an existing index in step (nothing to do if none yet)."""
    with lock:
        index = _INDEXES.get(table)
        if index is None or index.items_ref is not table.items:
            return
        try:
            index.reconcile(hash_key, range_key)
        except (Unindexable, KeyError, IndexError):
            del _INDEXES[table]  # rebuilt from the table on the next read


# ---------------------------------------------------------------------------- reads


def _esk_pk(index: TableIndex, esk: dict[str, Any], dynamo_type: Callable[[Any], Any]) -> tuple[Any, ...]:
    if index.hash_attr not in esk or (index.range_attr and index.range_attr not in esk):
        raise Unindexable(esk)
    hash_key = dynamo_type(esk[index.hash_attr])
    range_key = dynamo_type(esk[index.range_attr]) if index.range_attr else None
    return index.pk_of(hash_key, range_key)


def scan_items(index: TableIndex, esk: dict[str, Any] | None, dynamo_type: Callable[[Any], Any]) -> Iterator[Any]:
    """The table's items in moto's order, after ``esk`` (moto's loop skips up to it item by item).

    The start key is read here, before the first item is asked for (``Unindexable`` now, not
    halfway through moto's loop)."""
    start = _esk_pk(index, esk, dynamo_type) if esk is not None else None
    return (index.item(pk) for pk in index.keys.ascending(start, inclusive=False))


def _window(op: str | None, values: list[Any]) -> tuple[Any, Any, Callable[[Any], bool]]:
    """(lowest first value, highest first value or None, past(first value)): every entry the key
    condition can match lies within; ``past`` says an entry (in the query's direction) and all
    after it are outside. Bounds are conservative: moto's own comparison still decides."""
    if op is None:
        return None, None, lambda _v: False
    if op in ("EQ", "="):
        return values[0], values[0], lambda _v: False
    if op in ("LE", "<=", "LT", "<"):
        return None, values[0], lambda _v: False
    if op in ("GE", ">=", "GT", ">"):
        return values[0], None, lambda _v: False
    if op == "BETWEEN":
        return values[0], values[1], lambda _v: False
    prefix = values[0]  # BEGINS_WITH on strings: a contiguous run from the prefix on
    return prefix, None, lambda v: not v.startswith(prefix)


def gsi_query(  # noqa: PLR0917, C901 - moto's own query arguments, in moto's order; C901: follows moto's own GSI query, branch for branch (dev tool)
    table: Any,
    index: TableIndex,
    gsi: GsiIndex,
    hash_value: Any,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int | None,
    esk: dict[str, Any] | None,
    forward: bool,
    projection_expressions: Any,
    filter_expression: Any,
    dynamo_type: Callable[[Any], Any],
    result_size_limit: int,
) -> tuple[list[Any], int, dict[str, Any] | None]:
    """moto's ``Table.query`` loop for a GSI, over the partition's entries in the key condition's window.

    Entries before the window (or up to ``esk``) cannot change the page: moto walks them with no
    result yet, so neither ``Limit`` nor the 1 MB page can end it there. Entries after the window
    match nothing, but moto ends the page (and sets ``LastEvaluatedKey``) at the first of them if the
    page is full; after one of them nothing can, unless the page is so close to 1 MB that a large
    item could overflow it, in which case they are walked as moto walks them."""
    if range_comparison is not None and range_comparison not in _RANGE_OPERATORS:
        raise Unindexable(range_comparison)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise Unindexable(limit)
    if range_comparison == "BEGINS_WITH" and gsi.range_type != "S":
        raise Unindexable(range_comparison)
    values = [_cast(v, gsi.range_type) for v in range_objs]
    partition_key = (hash_value.type, _cast(hash_value, gsi.hash_type))
    low, high, past = _window(range_comparison, values)
    esk_entry = None
    if esk is not None:
        if gsi.hash_attr not in esk or gsi.range_attr not in esk:
            raise Unindexable(esk)
        esk_hash = dynamo_type(esk[gsi.hash_attr])
        if (esk_hash.type, _cast(esk_hash, gsi.hash_type)) != partition_key:
            raise Unindexable(esk)
        esk_entry = (_cast(dynamo_type(esk[gsi.range_attr]), gsi.range_type), *_esk_pk(index, esk, dynamo_type))
    entries = gsi.partitions.get(partition_key)
    walk: Iterator[tuple[Any, ...]]
    if entries is None:
        walk = iter(())
    elif forward:
        start = (low,) if low is not None else None
        if esk_entry is not None and (start is None or esk_entry >= start):
            walk = entries.ascending(esk_entry, inclusive=False)
        else:
            walk = entries.ascending(start, inclusive=True)
    else:
        below: tuple[Any, ...] | None = (high, TOP) if high is not None else None
        if range_comparison == "BEGINS_WITH" and values[0] and ord(values[0][-1]) < 0x10FFFF:
            below = (values[0][:-1] + chr(ord(values[0][-1]) + 1),)  # every string with the prefix is below
        if esk_entry is not None and (below is None or esk_entry < below):
            below = esk_entry
        walk = entries.descending(below)
    if forward:
        marked = _mark_outside(walk, (lambda v: v > high) if high is not None else None, past)
    else:
        marked = _mark_outside(walk, (lambda v: v < low) if low is not None else None, past)

    range_attr = gsi.range_attr
    results: list[Any] = []
    result_size = 0
    scanned_count = 0
    last_evaluated_key = None
    for entry, outside in marked:
        item = index.item(entry[1:])
        size = item.size()
        if len(results) == limit or result_size + size > result_size_limit:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], gsi.name)
            break
        if outside:
            if result_size + MAX_ITEM_BYTES <= result_size_limit:
                break  # no later entry can end the page, and none is a result
            continue
        if range_comparison is None or item.attrs[range_attr].compare(range_comparison, range_objs):
            results.append(item)
            result_size += size
            scanned_count += 1

    results = copy.deepcopy(results)
    projected = table.get_index(gsi.name)
    results = [projected.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned_count, last_evaluated_key


def _mark_outside(
    walk: Iterator[tuple[Any, ...]], beyond: Callable[[Any], bool] | None, past: Callable[[Any], bool]
) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """Each entry with whether it lies outside the window (once outside, every later one is)."""
    outside = False
    for entry in walk:
        if not outside and ((beyond is not None and beyond(entry[0])) or past(entry[0])):
            outside = True
        yield entry, outside
