"""The run's key/value store: what one step leaves for a later one."""

from __future__ import annotations

import json

from corral_sdk._host import HOST, HostError
from corral_sdk.errors import IntegrationError


def get_json(key: str):
    """A value stored with `set_json`; `None` when there is none."""
    raw = HOST.kv_get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise IntegrationError(f"kv: {key} does not hold JSON: {e}") from None


def set_json(key: str, value) -> None:
    try:
        HOST.kv_set(key, json.dumps(value, separators=(",", ":")).encode())
    except HostError as e:
        raise IntegrationError(f"kv: {key}: {e.value}") from None


def delete(key: str) -> bool:
    return HOST.kv_delete(key)
