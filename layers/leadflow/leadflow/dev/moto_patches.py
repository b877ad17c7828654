"""Where moto falls short of AWS in ways the local stack would feel, and how we mend it.

``apply()`` applies every mend, once per process. moto's DynamoDB (locking, transactions and
their tokens, partition and index reads, item sizes) is mended in ``leadflow.dev.moto_dynamodb``;
here, the rest:

- ``!Ref`` of an ``AWS::Events::EventBus`` resolves to moto's Python object instead of
  the bus name.
- moto's server lists its package folder to find the backend of every request: listed once.
- moto serializes every response through the service model, member by member with name
  aliases: for DynamoDB most of a request's time under the lock is spent turning the items'
  attribute values into JSON. Attribute values are written directly, as that code would.
- moto lists a handler's methods on every request: listed once per class.
- SQS ``ReceiveMessage`` checks each message's retention through ``get_queue_attributes``,
  which counts every message of the queue: receiving from a queue with a backlog was
  quadratic. The retention period is read directly instead.
- SQS reads the clock once per message to tell which are visible or delayed (moto's
  ``Message.visible`` / ``delayed``; the local clock takes a lock), and ``SendMessage`` builds
  the queue's attributes, whose three message counts each walk every message: a send to a queue
  with a backlog (SES events arriving faster than their function drains them) grew with it. The
  clock is read once per walk instead, and a send does not count at all: it reads one attribute
  (``ContentBasedDeduplication``) of the ones it builds, never the counts, so they are not walked
  while it runs (half of a 100,000-lead soak's broadcast went to those walks: its SES events' queue
  grows by one message an email). ``bench/local_moto.py`` times a send with and without;
  docs/benchmarks.md row 18. The walks, and every count a caller reads, are moto's.
- SQS finds the message a receipt handle names (``DeleteMessage``, ``ChangeMessageVisibility``)
  by asking every message of the queue whether it ever had the handle, building a list of each
  one's handles to ask it; ``DeleteMessage`` asks every message twice and copies the queue
  without the one deleted. Draining a backlog was quadratic in it: 65% of a 50,000-lead soak's
  drain of its SES events (1,510 s). The question is asked without building a list, and a delete
  stops at the message (handles are unique: at most one message had it) and takes it out of the
  queue in place, under the queue's own lock. A receive listed every visible message of the queue
  to take its ten: it walks only until it has them. ``bench/local_moto.py --operation drain``;
  docs/benchmarks.md row 18.
- EventBridge builds every event it delivers to a target through moto's input template, the
  default one when the target has none: eight JSONPath expressions (``$.detail`` ...), each parsed
  anew by jsonpath-ng's PLY parser on every delivery (a parsed expression is only read by
  ``find``). The parser is wrapped in a cache; every path still goes through it.
  ``bench/local_moto.py --operation deliver``: 1.70 ms an event put and delivered, 7.77 ms
  without the mends; docs/benchmarks.md row 18.
- CloudFormation parses every template body with PyYAML's pure-Python loader, JSON ones too
  (JSON is YAML): 1.9 s of each local start for our ~220 transformed resources, against 6 ms
  for ``json.loads``. A body that is JSON is read as JSON; any other goes to moto's parser.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Any

from leadflow.dev import moto_dynamodb

_applied = False


def apply() -> None:
    global _applied  # noqa: PLW0603 - patches apply once per process
    if _applied:
        return
    _applied = True
    _event_bus_ref()
    moto_dynamodb.dynamodb_serialized()
    moto_dynamodb.dynamodb_transactions()
    moto_dynamodb.dynamodb_transaction_tokens()
    _sqs_retention_check()
    _sqs_clock_read_once_per_walk()
    _sqs_receipt_handle_found_once()
    moto_dynamodb.dynamodb_partition_query()
    moto_dynamodb.dynamodb_sorted_indexes()
    _dynamodb_attribute_values_serialized()
    moto_dynamodb.dynamodb_item_size_checked_once()
    _handler_methods_cached()
    _backend_listing_cached()
    _eventbridge_input_paths_parsed_once()
    _cloudformation_json_read_as_json()


def _event_bus_ref() -> None:
    import moto.events.models as events_models

    events_models.EventBus.physical_resource_id = property(lambda bus: bus.name)  # type: ignore[attr-defined]


def _sqs_retention_check() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]


def _sqs_clock_read_once_per_walk() -> None:
    from moto.sqs import models as sqs_models

    sending: contextvars.ContextVar[bool] = contextvars.ContextVar("leadflow_sqs_sending", default=False)

    def now() -> float:
        return float(getattr(sqs_models, "unix_time_millis")())  # noqa: B009 - per call: the local clock replaces it

    def messages(queue: Any) -> _VisibleMessages:
        return _VisibleMessages(queue, now())

    def visible(queue: Any) -> int:
        return 0 if sending.get() else len(messages(queue))

    def delayed(queue: Any) -> int:
        if sending.get():  # a send builds the attributes but reads none of the counts
            return 0
        at = now()
        return sum(1 for m in queue._messages if at < m.delayed_until)

    def not_visible(queue: Any) -> int:
        if sending.get():
            return 0
        at = now()
        return sum(1 for m in queue._messages if not at > m.visible_at)

    original_send = sqs_models.SQSBackend.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:  # SendMessageBatch sends each through it
        token = sending.set(True)
        try:
            return original_send(self, *args, **kwargs)
        finally:
            sending.reset(token)

    sqs_models.SQSBackend.send_message = send_message  # type: ignore[method-assign]
    sqs_models.Queue.approximate_number_of_messages = property(visible)  # type: ignore[method-assign,assignment]

    sqs_models.Queue.messages = property(messages)  # type: ignore[method-assign,assignment]
    sqs_models.Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[method-assign,assignment]
    sqs_models.Queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[method-assign,assignment]


def _sqs_receipt_handle_found_once() -> None:
    from moto.sqs import models as sqs_models
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    def had_receipt_handle(message: Any, receipt_handle: str) -> bool:
        return bool(receipt_handle == message.receipt_handle or receipt_handle in message._old_receipt_handles)

    def delete_message(queue: Any, receipt_handle: str) -> None:
        if receipt_handle in queue.deleted_messages:
            return  # already deleted: as moto, a second delete is quietly accepted
        with queue._messages_lock:  # a send appends under it; the walk and the removal must see one queue
            message = next((m for m in queue._messages if had_receipt_handle(m, receipt_handle)), None)
            if message is None:
                raise ReceiptHandleIsInvalid()
            queue._messages.remove(message)  # by identity (a message has no __eq__), from the front
        queue.pending_messages.discard(message)
        queue.deleted_messages.update(message.all_receipt_handles)

    sqs_models.Message.had_receipt_handle = had_receipt_handle  # type: ignore[method-assign,assignment]
    sqs_models.Queue.delete_message = delete_message  # type: ignore[method-assign,assignment]


class _VisibleMessages:
    """moto's ``Queue.messages``, the queue's visible messages, walked only as far as the reader
    goes: a receive stops at its tenth, where moto listed every visible message of the queue
    first. The clock is read once, when the view is made (moto makes one per walk)."""

    def __init__(self, queue: Any, at: float) -> None:
        self._queue = queue
        self._at = at

    def __iter__(self) -> Iterator[Any]:
        at = self._at
        return (m for m in self._queue._messages if at > m.visible_at and not at < m.delayed_until)

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _backend_listing_cached() -> None:
    """moto's server finds the backend of every request by listing its package folder (~200
    ``isdir`` calls a request); the folder does not change while the stack runs."""
    import moto.backends

    modules = list(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: iter(modules)  # type: ignore[assignment]


def _eventbridge_input_paths_parsed_once() -> None:
    """moto's ``EventTemplateParser.parse`` imports ``jsonpath_ng.ext.parse`` on each call, so the
    cached parser is the one it finds."""
    import functools

    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]


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
