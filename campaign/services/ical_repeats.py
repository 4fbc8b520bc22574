"""Expanding an iCal repeat rule (RRULE) over a bounded window of days, one day at a time.

Daily, weekly, monthly and yearly rules with INTERVAL, COUNT, UNTIL, BYDAY, BYMONTH, BYMONTHDAY
and WKST are expanded (RFC 5545 section 3.3.10); anything else is refused with the reason.
Testing each day of the window, rather than generating dates forward from DTSTART as general
libraries do, bounds the work by the window and a budget whatever the rule says: RFC 5545 allows
rules such as "the 30th of February", which never happen and would send a generator to year 9999.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_PARTS = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTH", "BYMONTHDAY", "WKST"}
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")


class RuleError(ValueError):
    """The rule cannot be expanded; the message says why in plain words."""


class Budget:
    """Days that may still be tested, shared by all the repeating events of one file."""

    def __init__(self, days: int) -> None:
        self.total = days
        self.left = days

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise RuleError(
                f"the file's repeating events need more than {self.total:,} days worked "
                "through; import fewer repeating events, or ones that start more recently"
            )


@dataclass(frozen=True)
class Rule:
    freq: str
    interval: int = 1
    count: int | None = None
    until: dt.date | None = None  # as in the file: a date, or a datetime (aware or floating)
    weekdays: frozenset[int] = frozenset()  # BYDAY without a number: 0 = Monday
    ordinals: frozenset[tuple[int, int]] = frozenset()  # BYDAY with one: (weekday, n), n != 0
    months: frozenset[int] = frozenset()
    monthdays: frozenset[int] = frozenset()
    wkst: int = 0


def parse_rule(recur: Any) -> Rule:
    """A Rule from icalendar's vRecur (a mapping of upper-case names to lists of values)."""
    if not hasattr(recur, "items"):
        raise RuleError("its repeat rule (RRULE) could not be read")
    parts = {str(key).upper(): list(values) for key, values in recur.items()}
    unknown = sorted(set(parts) - _PARTS)
    if unknown:
        raise RuleError(
            f"it repeats by {', '.join(unknown)}, which this import does not expand; add its "
            "dates one by one"
        )
    freq = str(parts.get("FREQ", [""])[0]).upper()
    if freq not in FREQUENCIES:
        raise RuleError(
            f"it repeats {freq.lower() or 'without a frequency'}; only daily, weekly, monthly "
            "and yearly repetitions are imported"
        )
    count = _number(parts, "COUNT", 1, 100_000)
    until = parts.get("UNTIL", [None])[0]
    if count is not None and until is not None:
        raise RuleError("its repeat rule has both COUNT and UNTIL, which iCal does not allow")
    if until is not None and not isinstance(until, dt.date):
        raise RuleError("its repeat rule's UNTIL is not a date")
    weekdays, ordinals = _byday(parts.get("BYDAY", []), freq)
    months = _ints(parts.get("BYMONTH", []), 1, 12, "BYMONTH")
    monthdays = _ints(parts.get("BYMONTHDAY", []), -31, 31, "BYMONTHDAY")
    if freq == "WEEKLY" and monthdays:
        raise RuleError(
            "its repeat rule has BYMONTHDAY in a weekly rule, which iCal does not allow"
        )
    if freq == "YEARLY" and ordinals and not months:
        raise RuleError(
            "it repeats on a numbered weekday of the year (such as the 20th Monday), which this "
            "import does not expand; add its dates one by one"
        )
    wkst = str(parts.get("WKST", ["MO"])[0]).upper()
    return Rule(
        freq=freq,
        interval=_number(parts, "INTERVAL", 1, 1000) or 1,
        count=count,
        until=until,
        weekdays=weekdays,
        ordinals=ordinals,
        months=months,
        monthdays=monthdays,
        wkst=_WEEKDAYS.index(wkst) if wkst in _WEEKDAYS else 0,
    )


def repeat_days(
    rule: Rule,
    start: dt.date,
    first: dt.date,
    last: dt.date,
    budget: Budget,
    until: dt.date | None = None,
) -> Iterator[dt.date]:
    """The days in [first, last] on which a series that starts on `start` happens, in order.

    `start` (DTSTART) is always the first occurrence, as RFC 5545 says. `until` is the last day
    allowed (the caller turns a timed UNTIL into a day); with a COUNT the days are counted from
    `start`, so those before `first` are tested too.
    """
    day = start if rule.count is not None else max(start, first)
    seen = 0
    while day <= last and (until is None or day <= until):
        budget.spend()
        if day == start or matches(rule, start, day):
            seen += 1
            if day >= first:
                yield day
            if rule.count is not None and seen >= rule.count:
                return
        day += dt.timedelta(days=1)


def matches(rule: Rule, start: dt.date, day: dt.date) -> bool:
    """Whether the rule puts an occurrence on `day` (on or after `start`)."""
    if day < start or not _in_step(rule, start, day):
        return False
    if rule.months and day.month not in rule.months:
        return False
    if rule.freq == "DAILY":  # BYDAY and BYMONTHDAY only limit (numbered days are refused)
        return (not rule.monthdays or _monthday(rule, day)) and (
            not rule.weekdays or day.weekday() in rule.weekdays
        )
    if rule.freq == "WEEKLY":
        return day.weekday() in (rule.weekdays or {start.weekday()})
    # A yearly rule with nothing but the frequency: DTSTART's month (numbered BYDAY needs BYMONTH).
    bare_year = rule.freq == "YEARLY" and not (rule.months or rule.monthdays or rule.weekdays)
    if bare_year and day.month != start.month:
        return False
    return _day_of_month(rule, start, day)


def _in_step(rule: Rule, start: dt.date, day: dt.date) -> bool:
    """Whether `day` falls in a period (day, week, month, year) that INTERVAL selects."""
    if rule.freq == "DAILY":
        steps = (day - start).days
    elif rule.freq == "WEEKLY":
        steps = (_week_start(day, rule.wkst) - _week_start(start, rule.wkst)).days // 7
    elif rule.freq == "MONTHLY":
        steps = (day.year - start.year) * 12 + day.month - start.month
    else:
        steps = day.year - start.year
    return steps % rule.interval == 0


def _day_of_month(rule: Rule, start: dt.date, day: dt.date) -> bool:
    """Monthly and yearly rules: BYMONTHDAY and BYDAY both limit when both are given; with
    neither, the day of the month of DTSTART (a month without that day is skipped)."""
    if not (rule.monthdays or rule.weekdays or rule.ordinals):
        return day.day == start.day
    if rule.monthdays and not _monthday(rule, day):
        return False
    if not (rule.weekdays or rule.ordinals):
        return True
    if day.weekday() in rule.weekdays:
        return True
    length = calendar.monthrange(day.year, day.month)[1]
    from_start, from_end = (day.day - 1) // 7 + 1, (length - day.day) // 7 + 1
    return any(
        weekday == day.weekday() and n in (from_start, -from_end) for weekday, n in rule.ordinals
    )


def _monthday(rule: Rule, day: dt.date) -> bool:
    length = calendar.monthrange(day.year, day.month)[1]
    return day.day in rule.monthdays or day.day - length - 1 in rule.monthdays


def _week_start(day: dt.date, wkst: int) -> dt.date:
    return day - dt.timedelta(days=(day.weekday() - wkst) % 7)


def _byday(values: list[Any], freq: str) -> tuple[frozenset[int], frozenset[tuple[int, int]]]:
    plain: set[int] = set()
    numbered: set[tuple[int, int]] = set()
    for value in values[:80]:
        match = _BYDAY.fullmatch(str(value).strip().upper())
        if match is None:
            raise RuleError(
                f"its repeat rule has a BYDAY value {str(value)[:20]!r} that is not a day"
            )
        weekday, n = _WEEKDAYS.index(match[2]), int(match[1] or 0)
        if n and (freq in ("DAILY", "WEEKLY") or not 1 <= abs(n) <= 5):
            raise RuleError(
                f"its repeat rule's BYDAY value {match[0]} does not fit a {freq.lower()} rule"
            )
        if n:
            numbered.add((weekday, n))
        else:
            plain.add(weekday)
    return frozenset(plain), frozenset(numbered)


def _ints(values: list[Any], low: int, high: int, name: str) -> frozenset[int]:
    found = set()
    for value in values[:80]:
        try:
            number = int(str(value))
        except ValueError:
            raise RuleError(f"its repeat rule has a {name} value that is not a number") from None
        if number == 0 or not low <= number <= high:
            raise RuleError(f"its repeat rule's {name} value {number} is out of range")
        found.add(number)
    return frozenset(found)


def _number(parts: dict[str, list[Any]], name: str, low: int, high: int) -> int | None:
    if name not in parts:
        return None
    try:
        number = int(str(parts[name][0]))
    except (ValueError, IndexError):
        raise RuleError(f"its repeat rule's {name} is not a number") from None
    if not low <= number <= high:
        raise RuleError(f"its repeat rule's {name} must be between {low} and {high}")
    return number
