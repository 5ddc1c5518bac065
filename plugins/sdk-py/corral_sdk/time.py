"""Timestamps to epoch milliseconds, as JupiterOne's `parseTimePropertyValue` gives them,
by the Rust SDK's rules: RFC 3339 / ISO 8601 date-times with `T` or a space, any number
of fractional digits (truncated to milliseconds), `Z`, `+HH:MM`, `+HHMM` or `+HH`
offsets; no offset is UTC, a bare date is midnight UTC. Anything else is `None`."""

from __future__ import annotations

import re

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_CLOCK = re.compile(r"(\d+):(\d+)(?::(\d+)(?:[.,](\d*))?)?")


def parse_epoch_ms(s) -> int | None:
    """`s` as epoch milliseconds; `None` for an empty, non-ASCII or unparsable value."""
    if not isinstance(s, str):
        return None
    t = s.strip()
    if len(t) < 10 or not t.isascii():
        return None
    m = _DATE.fullmatch(t[:10])
    if not m:
        return None
    year, month, day = (int(x) for x in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    days = _days_from_civil(year, month, day)
    rest = t[10:]
    if not rest:
        return days * 86_400_000
    if rest[0] not in "Tt ":
        return None
    time = _time_and_offset(rest[1:])
    return None if time is None else days * 86_400_000 + time[0] - time[1]


def _time_and_offset(t: str):
    split = next((i for i, c in enumerate(t) if c in "Zz+-"), len(t))
    clock, zone = t[:split], t[split:]
    m = _CLOCK.fullmatch(clock)
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2))
    second = int(m.group(3)) if m.group(3) is not None else 0
    frac = m.group(4) or ""
    millis = sum(int(c) * w for c, w in zip(frac[:3], (100, 10, 1)))
    if hour > 24 or minute > 59 or second > 60:
        return None
    offset = _offset_ms(zone)
    if offset is None:
        return None
    return ((hour * 60 + minute) * 60 + second) * 1000 + millis, offset


def _offset_ms(zone: str):
    if zone in ("", "Z", "z"):
        return 0
    sign = -1 if zone.startswith("-") else 1
    body = zone[1:].replace(":", "")
    if not body.isdigit():
        return None
    if len(body) == 2:
        return sign * int(body) * 3_600_000
    if len(body) == 4:
        return sign * (int(body[:2]) * 60 + int(body[2:])) * 60_000
    return None


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y = y - 1 if m <= 2 else y
    era = y // 400
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468
