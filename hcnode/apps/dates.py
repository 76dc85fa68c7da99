"""Calendar dates for the apps: ISO date fields, block time as a date, year arithmetic.

Owns: how a payload date is written ("YYYY-MM-DD", or "YYYY-MM" where a
month-only date is allowed), checking that it is a real calendar date, and
turning block time into a date. Must not know any app's rules, and never reads
the wall clock: the only "now" an app has is ``ctx.block.time_ms``.

Dates are UTC calendar days. A month-only date means the month's last day (the
convention of ClinicalTrials.gov and FDAAA 801 trackers); callers learn that a
date was month-only so they can flag it.
"""

from __future__ import annotations

import calendar
import datetime
import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from hcnode.chain.errors import Rejected
from hcnode.chain.schema import Spec

__all__ = ["CalendarDate", "add_years", "block_date", "block_day", "parse_date", "resolve_month", "to_text"]

_MS_PER_DAY: Final = 86_400_000
_EPOCH: Final = datetime.date(1970, 1, 1)
_FULL: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTH: Final = re.compile(r"([0-9]{4})-([0-9]{2})")


def block_date(time_ms: int) -> datetime.date:
    """The UTC calendar day of a block time (integer arithmetic only)."""
    return _EPOCH + datetime.timedelta(days=time_ms // _MS_PER_DAY)


@functools.lru_cache(maxsize=256)
def block_day(time_ms: int) -> str:
    """``block_date`` as ISO text ("YYYY-MM-DD"). Cached: every transaction of a block asks for the
    same day (a claim compares each date of service with it), and a pure function of its argument."""
    return block_date(time_ms).isoformat()


def to_text(day: datetime.date) -> str:
    return day.isoformat()


def resolve_month(text: str) -> tuple[datetime.date, bool]:
    """A checked date and whether it was month-only (then it is that month's last day)."""
    full = _FULL.fullmatch(text)
    try:
        if full:
            return datetime.date(int(full[1]), int(full[2]), int(full[3])), False
        month = _MONTH.fullmatch(text)
        if month:
            year, mon = int(month[1]), int(month[2])
            return datetime.date(year, mon, calendar.monthrange(year, mon)[1]), True
    except ValueError:
        pass
    raise ValueError(f"{text!r} is not a calendar date")


def parse_date(text: str) -> datetime.date:
    """A checked full date; for payload values the schema has already checked the shape."""
    day, month_only = resolve_month(text)
    if month_only:
        raise ValueError(f"{text!r} is a month; a full date YYYY-MM-DD is needed")
    return day


def add_years(day: datetime.date, years: int) -> datetime.date:
    """The same day ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class CalendarDate(Spec):
    """A payload date: "YYYY-MM-DD" that exists on the calendar (or "YYYY-MM" with ``allow_month``)."""

    allow_month: bool = False

    def check(self, value: Any, path: str) -> None:
        shape = "YYYY-MM-DD or YYYY-MM" if self.allow_month else "YYYY-MM-DD"
        if type(value) is not str:
            raise Rejected("bad_payload", f"{path}: expected a date as text {shape}, got {type(value).__name__}")
        if len(value) > 10 or not (_FULL.fullmatch(value) or (self.allow_month and _MONTH.fullmatch(value))):
            raise Rejected("bad_payload", f"{path}: {value[:40]!r} is not a date written {shape}")
        try:
            resolve_month(value)
        except ValueError:
            raise Rejected("bad_payload", f"{path}: {value!r} is not a calendar date") from None
        if value[:4] < "1900":
            raise Rejected("bad_payload", f"{path}: {value!r} is before 1900")

    def describe(self) -> str:
        return "tstr (YYYY-MM-DD or YYYY-MM)" if self.allow_month else "tstr (YYYY-MM-DD)"
