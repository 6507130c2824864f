"""Time as integer epoch milliseconds, and its ISO-8601 rendering."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Every instant Tollbooth accepts or computes lies in [2000-01-01, 2100-01-01) UTC. Far
# enough for any billing period, and far inside what datetime can convert: an offset on
# year 1 or year 9999 overflows when it is moved to UTC.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_iso(epoch_ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}Z"


def in_range(moment: datetime) -> datetime:
    """``moment`` in UTC, or ValueError when it has no zone or lies outside the range above."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone, for example 2027-01-31T00:00:00Z")
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError) as error:
        raise ValueError("timestamp out of range: it must lie between the years 2000 and 2099") from error
    if not EARLIEST <= utc < LATEST:
        raise ValueError("timestamp out of range: it must lie between the years 2000 and 2099")
    return utc


def from_datetime(moment: datetime) -> int:
    """Epoch milliseconds of an instant a caller or a file gave (bounded, see ``in_range``)."""
    return _epoch_ms(in_range(moment))


def _epoch_ms(utc: datetime) -> int:
    delta = utc - _EPOCH
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
    return _epoch_ms(start.replace(year=year, month=month, day=day)) + millis
