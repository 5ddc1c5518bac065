"""The instance's config: plain fields by value, secret fields only by name."""

from __future__ import annotations

from corral_sdk._host import HOST, HostError
from corral_sdk.errors import ConfigError


def get(name: str) -> str | None:
    """A plain field's value (`None` when unset). A secret field is a `ConfigError`: its
    value never reaches the plugin; name it in a request's `bearer` instead."""
    try:
        return HOST.config_get(name)
    except HostError:
        raise ConfigError(f"{name} is a secret: it can only be sent by reference") from None


def required(name: str) -> str:
    """A plain field that must be set and not blank."""
    value = get(name)
    if value is None or not value.strip():
        raise ConfigError(f"config field {name} is required")
    return value


def is_on(name: str) -> bool:
    """Whether a flag field reads "true" (the host hands every field over as text)."""
    return (get(name) or "").strip().lower() == "true"


def has_secret(name: str) -> bool:
    """Whether a secret field has a value, without revealing it."""
    return HOST.has_secret(name)


def instance_id() -> str:
    return HOST.instance_id()


def instance_name() -> str:
    return HOST.instance_name()
