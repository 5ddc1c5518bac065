"""Reading provider JSON into data-model properties, by the Rust SDK's rules."""

from __future__ import annotations

import math

from corral_sdk.datamodel import MAX_STRING_CHARS


def _kind(v):
    if isinstance(v, bool):
        return bool
    if isinstance(v, str):
        return str
    if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v)):
        return float
    return None


def has_property_shape(v) -> bool:
    """A primitive, `None`, or a flat list of one primitive type (no `None`s in it)."""
    if v is None or _kind(v) is not None:
        return True
    if not isinstance(v, list):
        return False
    kinds = {_kind(i) for i in v}
    return None not in kinds and len(kinds) <= 1


def allowed(v):
    """`v` if it has a property's shape, else `None` (objects, mixed or nested lists stay
    in `_rawData`)."""
    return v if has_property_shape(v) else None


def pluck(items, field: str) -> list | None:
    """`items[].field` as one flat array of its strings, numbers and booleans, in order;
    `None` when `items` is not a list or the values mix types."""
    if not isinstance(items, list):
        return None
    values = [i.get(field) for i in items if isinstance(i, dict)]
    values = [v for v in values if _kind(v) is not None]
    return values if len({_kind(v) for v in values}) <= 1 else None


def readable(v) -> str | None:
    """A string a person can read as a name: not empty, not only whitespace, at most 4096
    characters, kept as the provider wrote it."""
    if isinstance(v, str) and v.strip() and len(v) <= MAX_STRING_CHARS:
        return v
    return None


def first_readable(v, fields: list[str]) -> str | None:
    """The first `readable` value of `fields` in `v`, in order (a name fallback chain)."""
    if not isinstance(v, dict):
        return None
    return next((r for f in fields if (r := readable(v.get(f))) is not None), None)


def at(v, *path):
    """`v[a][b]...` for a path of fields; `None` where an object is missing."""
    for p in path:
        if not isinstance(v, dict):
            return None
        v = v.get(p)
    return v
