"""Builders for JupiterOne's entity and direct-relationship shapes, as its SDK makes them.

The header (key, type, classes) is checked and a `DataModelError` raised at the call site;
a property the host would refuse the whole object for is left out with a warning naming
the object and the property, so the record itself is still stored.
"""

from __future__ import annotations

import re

from corral_sdk import log
from corral_sdk.datamodel import check_entity_header, key_problem, property_problem
from corral_sdk.errors import DataModelError

MAX_WARNINGS = 50
_warned = 0
_MISSING = object()


def create_integration_entity(*, key: str, type: str, cls, properties: dict | None = None, source=None) -> dict:
    """An entity: `_key`, `_type`, `_class` (a class or a list), its `properties` (`None`
    is kept as `null`), and `source`, the provider's object, as `_rawData` (unless empty).
    Raises `DataModelError` for a bad key, type or class."""
    classes = list(cls) if isinstance(cls, (list, tuple)) else [cls]
    check_entity_header(key, type, classes)
    obj = dict(properties or {})
    # The header is the builder's, whatever the properties held.
    obj.update({"_key": key, "_type": type, "_class": classes})
    conform(obj)
    if not obj.get("displayName") and obj.get("name"):
        obj["displayName"] = obj["name"]
    if source not in (None, {}):
        obj["_rawData"] = [{"name": "default", "rawData": source}]
    return obj


def relationship_type(cls: str, from_type: str, to_type: str) -> str:
    """`kandji_account` HAS `kandji_device` is `kandji_account_has_device`."""
    src, dst = from_type.split("_"), to_type.split("_")
    shared = 0
    while shared + 1 < len(dst) and shared < len(src) and src[shared] == dst[shared]:
        shared += 1
    return f"{from_type}_{cls.lower()}_{'_'.join(dst[shared:])}"


def relationship_key(cls: str, from_key: str, to_key: str) -> str:
    return f"{from_key}|{cls.lower()}|{to_key}"


def create_direct_relationship(*, cls: str, from_entity: dict, to_entity: dict, key: str | None = None, properties: dict | None = None) -> dict:
    """A direct relationship between two entities of this run (each a dict with `_key`
    and `_type`)."""
    if not re.fullmatch(r"[A-Z_]+", cls):
        raise DataModelError(f"relationship _class {cls!r} must be one upper-case verb such as HAS")
    ends = []
    for which, end in (("from", from_entity), ("to", to_entity)):
        k, t = end.get("_key"), end.get("_type")
        if not (isinstance(k, str) and k and isinstance(t, str) and t):
            raise DataModelError(f"relationship's {which} end needs a _key and a _type")
        ends.append((k, t))
    (fk, ft), (tk, tt) = ends
    key = key if key is not None else relationship_key(cls, fk, tk)
    problem = key_problem(key)
    if problem:
        raise DataModelError(f"{problem} (relationship {fk} {cls} {tk})")
    obj = {"displayName": cls, **(properties or {})}
    obj.update({
        "_key": key,
        "_type": relationship_type(cls, ft, tt),
        "_class": cls,
        "_fromEntityKey": fk,
        "_toEntityKey": tk,
    })
    conform(obj)
    return obj


def conform(obj: dict) -> list[tuple[str, str]]:
    """Holds `obj`'s properties (not the underscored ones) to the host's rules: a bad
    property is left out (a `name` is replaced by the `_key`), with a warning; never cut
    or cleaned, which would read as the provider's whole value."""
    key = obj.get("_key") if isinstance(obj.get("_key"), str) else ""
    changes = []
    for name, value in list(obj.items()):
        if name.startswith("_"):
            continue
        reason = property_problem(name, value)
        if reason is None:
            continue
        replaced = name == "name" and key != ""
        if replaced:
            obj["name"] = key
        else:
            del obj[name]
        changes.append((name, reason))
        _warn(key, name, reason, replaced)
    return changes


def _warn(key: str, prop: str, reason: str, replaced: bool) -> None:
    global _warned
    _warned += 1
    if _warned > MAX_WARNINGS + 1:
        return
    if _warned == MAX_WARNINGS + 1:
        log.warn("further properties left out for the host's rules are not logged", logged=MAX_WARNINGS)
        return
    message = (
        "name replaced by the key: the host would reject the record for it"
        if replaced
        else "property left out: the host would reject the record for it"
    )
    log.warn(message, key=key, property=prop, reason=reason)
