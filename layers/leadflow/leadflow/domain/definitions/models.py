"""Validation of workspace files, kept off the Lambda hot path.

The config classes are stdlib dataclasses, cheap to import; pydantic validates untrusted
data into them (with every error named) and exports their JSON Schemas. pydantic is only
imported when this is used: by the CLI, the local stack, and a workspace that was not
compiled (`leadflow compile`). A compiled workspace is read without it.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

# What every config dataclass tells pydantic: unknown keys are errors, attribute docstrings
# become descriptions in the JSON Schema.
STRICT = {"extra": "forbid", "use_attribute_docstrings": True}


_ADAPTERS: dict[Any, Any] = {}


def _adapter(kind: Any) -> Any:
    """One pydantic TypeAdapter per config class, built on first use.

    Config modules name their constraints (``Ge``, ``MinLen``...) in string annotations
    and import annotated_types only for type checkers, to keep it off the cold-start path.
    ``TypeAdapter`` resolves the names a module does not hold in the namespace of the frame
    that builds it (its documented ``_parent_depth``): this function's, where they are imported.
    """
    if kind not in _ADAPTERS:
        from annotated_types import Ge, Gt, Le, Len, Lt, MaxLen, MinLen  # noqa: F401 - read by TypeAdapter
        from pydantic import TypeAdapter

        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


class ConfigProblem(ValueError):
    """A rule a config dataclass checks itself (``__post_init__``), about one of its fields."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


def validate(kind: type[T], data: Any) -> T:
    """``data`` (e.g. parsed YAML) as a ``kind`` instance.

    Raises:
        pydantic.ValidationError: naming each bad field (a ``ConfigProblem`` raised by a
            dataclass's own checks is located at its field, not at the dataclass).
    """
    from pydantic import ValidationError

    try:
        result: T = _adapter(kind).validate_python(data)
    except ValidationError as error:
        details: list[Any] = []
        for item in error.errors():
            problem = (item.get("ctx") or {}).get("error")
            field = problem.field if isinstance(problem, ConfigProblem) else None
            loc = (*item["loc"], field) if field else item["loc"]
            detail = {"type": item["type"], "loc": loc, "input": item["input"]}
            if item.get("ctx"):
                detail["ctx"] = item["ctx"]
            details.append(detail)
        raise ValidationError.from_exception_data(error.title, details) from None
    return result


def dump(kind: type[T], value: T) -> Any:
    """``value`` as JSON-compatible data that ``validate`` and ``from_trusted`` read back."""
    return _adapter(kind).dump_python(value, mode="json")


def json_schema(kind: type) -> dict[str, Any]:
    schema: dict[str, Any] = _adapter(kind).json_schema()
    return schema
