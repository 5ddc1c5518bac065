"""The data-model rules the host holds every emitted object to, checked where an object
is built so a mistake is an error at its call site."""

from __future__ import annotations

import math
import re

from corral_sdk.classes import CLASSES
from corral_sdk.errors import DataModelError

MIN_KEY_CHARS = 10
MAX_KEY_BYTES = 4096
MAX_STRING_CHARS = 4096
_TYPE = re.compile(r"[a-z0-9][a-z0-9_]{0,127}")


def key_problem(key) -> str | None:
    if not isinstance(key, str):
        return "_key must be a string"
    if len(key) < MIN_KEY_CHARS:
        return f"_key {key!r} is shorter than {MIN_KEY_CHARS} characters"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"_key is longer than {MAX_KEY_BYTES} bytes"
    return None


def check_entity_header(key, type_name, classes: list) -> None:
    """Key, `_type` and known classes; raises `DataModelError` naming the entity."""
    problem = key_problem(key)
    if problem is None and not (isinstance(type_name, str) and _TYPE.fullmatch(type_name)):
        problem = f"_type {type_name!r} must be 1-128 of a-z, 0-9, '_', starting with a letter or digit"
    if problem is None and not 1 <= len(classes) <= 8:
        problem = "_class must name 1-8 classes"
    if problem is None:
        unknown = [c for c in classes if c not in CLASSES]
        if unknown:
            problem = f"_class {unknown[0]!r} is not a known data-model class"
    if problem:
        where = f" (entity {key!r})" if isinstance(key, str) else ""
        raise DataModelError(problem + where)


def missing_required(obj: dict, cls: str) -> list[str]:
    """The properties `cls` requires that `obj` lacks."""
    return [p for p in CLASSES.get(cls, ()) if p not in obj]


def _kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "str"
    if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v)):
        return "number"
    return None


def _array_problem(items: list) -> str | None:
    first = None
    for item in items:
        k = _kind(item)
        if k is None:
            return "an array holding null or a nested value"
        first = first or k
        if first != k:
            return "an array mixing types"
    if any(isinstance(i, str) and len(i) > MAX_STRING_CHARS for i in items):
        return "an array holding a string longer than 4096 characters"
    return None


def value_problem(value) -> str | None:
    """Why the host would refuse `value` as any property's value, or `None`."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return "a string longer than 4096 characters" if len(value) > MAX_STRING_CHARS else None
    if isinstance(value, (int, float)):
        return None if _kind(value) else "a number JSON cannot hold"
    if isinstance(value, (list, tuple)):
        return _array_problem(list(value))
    return "a nested object"


def property_problem(name: str, value) -> str | None:
    """The value rules, and a `...On` property is a time in epoch milliseconds."""
    problem = value_problem(value)
    if problem:
        return problem
    epoch_ms = isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**64
    if name.endswith("On") and not (value is None or epoch_ms):
        return "a time property (`...On`) that is not epoch milliseconds"
    return None
