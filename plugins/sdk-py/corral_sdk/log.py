"""The run log: leveled lines with typed fields, rate-limited and size-capped by the host."""

from __future__ import annotations

from corral_sdk._host import HOST


def _write(level: str, message: str, fields: dict) -> None:
    HOST.log_line(level, message, fields)


def debug(message: str, **fields) -> None:
    _write("debug", message, fields)


def info(message: str, **fields) -> None:
    _write("info", message, fields)


def warn(message: str, **fields) -> None:
    _write("warn", message, fields)


def error(message: str, **fields) -> None:
    _write("error", message, fields)
