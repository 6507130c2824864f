"""Time as integer epoch milliseconds, and its ISO-8601 rendering."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_iso(epoch_ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}Z"


def from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone, for example 2027-01-31T00:00:00Z")
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def add_days(epoch_ms: int, days: int) -> int:
    return epoch_ms + days * 86_400_000


def add_months(epoch_ms: int, months: int) -> int:
    """Calendar months in UTC; the day is clamped (Jan 31 + 1 month = Feb 28/29)."""
    millis = epoch_ms % 1000
    start = _EPOCH + timedelta(milliseconds=epoch_ms - millis)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return from_datetime(start.replace(year=year, month=month, day=day)) + millis
