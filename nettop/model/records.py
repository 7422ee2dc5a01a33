"""Flat dataclasses to and from recording dicts, field by field.

For rows whose record is exactly their fields (connections, flows, events): the field list
is written once, in the dataclass, and the record follows it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


_COERCE = {"int": int, "str": str, "float": float, "bool": bool, "int | None": _optional_int}


def flat_record(row: Any) -> dict[str, Any]:
    """Every field by name; floats (times) rounded to microseconds."""
    record = {}
    for field in dataclasses.fields(row):
        value = getattr(row, field.name)
        record[field.name] = round(value, 6) if isinstance(value, float) else value
    return record


def from_flat_record(cls: type[T], data: Mapping[str, Any]) -> T:
    """Each field coerced to its declared type; a missing field takes its default, or raises KeyError."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in data:
            values[field.name] = _COERCE[field.type](data[field.name])
        elif field.default is dataclasses.MISSING:
            raise KeyError(field.name)
    return cls(**values)
