"""Wall times in an organisation's timezone, resolved to UTC instants with a DST policy.

The policy (reliability scenario R15): a wall time inside a spring-forward gap is moved forward
by the size of the gap, and a wall time that happens twice takes its first occurrence (fold=0).
Whenever either applies, the result carries a plain-words note for the UI.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_INPUT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)"
    r"\s*(?P<offset>Z|[+-]\d{2}:?\d{2})?"
)


@dataclass(frozen=True)
class Resolved:
    utc: dt.datetime  # aware UTC: compare and store this one
    # Aware in the zone: the wall time that will happen. It may carry fold=1 (the second 01:30),
    # and Python never finds such a value equal to one in another zone (PEP 495).
    local: dt.datetime
    note: str | None  # plain words when the wall time was moved or was ambiguous


@dataclass(frozen=True)
class Slot:
    weekday: int  # 0 = Monday, as in dt.date.weekday()
    at: dt.time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday {self.weekday} is not between 0 (Monday) and 6 (Sunday)")
        if self.at.tzinfo is not None:
            raise ValueError("a slot time is a wall time and takes no timezone")


def as_zone(zone: str | ZoneInfo) -> ZoneInfo:
    """The ZoneInfo for an IANA name (or the ZoneInfo itself); ValueError if unknown."""
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {zone!r}") from exc


def resolve_local(day: dt.date, at: dt.time, zone: str | ZoneInfo) -> Resolved:
    """When wall time `at` on `day` happens in `zone`, with the DST policy applied."""
    tz = as_zone(zone)
    if at.tzinfo is not None:
        raise ValueError("a wall time takes no timezone")
    wall = dt.datetime.combine(day, at)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    if first == second:
        return Resolved(first, first.astimezone(tz), None)
    # Asking each candidate what wall time it shows tells a gap (neither shows `wall`) from a
    # fold (both do), whichever way the offset moves (Europe/Dublin's DST is negative in tzdata).
    if second.astimezone(tz).replace(tzinfo=None) == wall:
        utc = min(first, second)
        local = utc.astimezone(tz)
        note = (
            f"{_hhmm(at)} happens twice on {_long_date(day)} in {tz.key}; the first time "
            f"({_hhmm(local.time())} {_abbrev(local)}, before the clocks go back) is used."
        )
        return Resolved(utc, local, note)
    utc = max(first, second)  # the offset from before the change: a forward shift
    local = utc.astimezone(tz)
    moved_to = f"{_hhmm(local.time())} {_abbrev(local)}"
    if local.date() != day:
        moved_to += f" on {_long_date(local.date())}"
    note = (
        f"{_hhmm(at)} does not exist on {_long_date(day)} in {tz.key} (the clocks go forward); "
        f"it will be posted at {moved_to}."
    )
    return Resolved(utc, local, note)


def parse_local(text: str, zone: str | ZoneInfo) -> Resolved:
    """Read "2026-03-29 02:30" or ISO 8601: an explicit offset is kept exactly, else wall time."""
    tz = as_zone(zone)
    match = _INPUT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a date and time; write it like 2026-03-29 09:30")
    try:
        day = dt.date.fromisoformat(match["date"])
    except ValueError:
        raise ValueError(f"{match['date']} is not a date (in {text!r})") from None
    try:
        at = dt.time.fromisoformat(match["time"])
    except ValueError:
        raise ValueError(f"{match['time']} is not a time of day (in {text!r})") from None
    if match["offset"] is None:
        try:
            return resolve_local(day, at, tz)
        except OverflowError:
            raise ValueError(f"{text!r} is outside the dates that can be scheduled") from None
    try:
        instant = dt.datetime.fromisoformat(f"{match['date']}T{match['time']}{match['offset']}")
        utc = instant.astimezone(dt.UTC)
    except ValueError:
        raise ValueError(f"{match['offset']} is not a UTC offset (in {text!r})") from None
    except OverflowError:
        raise ValueError(f"{text!r} is outside the dates that can be scheduled") from None
    return Resolved(utc, utc.astimezone(tz), None)


def slot_occurrences(
    slots: Sequence[Slot], zone: str | ZoneInfo, start_utc: dt.datetime, end_utc: dt.datetime
) -> list[Resolved]:
    """Every occurrence of the weekly slots in [start, end), sorted, one per slot per local week."""
    tz = as_zone(zone)
    start, end = _utc(start_utc), _utc(end_utc)
    # Walk local calendar dates, never 7*24h steps in UTC: a week that contains a DST change is
    # not 168 hours long. A day's margin each side catches occurrences moved across midnight.
    day = start.astimezone(tz).date() - dt.timedelta(days=1)
    last = end.astimezone(tz).date() + dt.timedelta(days=1)
    found: list[Resolved] = []
    while day <= last:
        for slot in set(slots):
            if slot.weekday == day.weekday():
                resolved = resolve_local(day, slot.at, tz)
                if start <= resolved.utc < end:
                    found.append(resolved)
        day += dt.timedelta(days=1)
    # Two slots can land on one instant (02:30 and 03:30 on a spring-forward day): offer it once,
    # described by the slot that was not moved.
    found.sort(key=lambda r: (r.utc, r.note is not None))
    return [r for i, r in enumerate(found) if i == 0 or r.utc != found[i - 1].utc]


def next_free_slot(
    slots: Sequence[Slot],
    zone: str | ZoneInfo,
    after_utc: dt.datetime,
    taken_utc: Collection[dt.datetime],
    horizon_days: int = 56,
) -> Resolved | None:
    """ "Add to queue": the first occurrence strictly after `after_utc` not taken, or None."""
    after = _utc(after_utc)
    taken = {_utc(t) for t in taken_utc}
    window = slot_occurrences(slots, zone, after, after + dt.timedelta(days=horizon_days))
    return next((r for r in window if r.utc > after and r.utc not in taken), None)


def format_local(value_utc: dt.datetime, zone: str | ZoneInfo) -> str:
    """An instant as the organisation reads it, e.g. "Sun 29 Mar 2026, 03:30 BST"."""
    local = _utc(value_utc).astimezone(as_zone(zone))
    return (
        f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1][:3]} {local.year}, "
        f"{_hhmm(local.time())} {_abbrev(local)}"
    )


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: an aware instant is needed")
    return value.astimezone(dt.UTC)


def _hhmm(at: dt.time) -> str:
    return at.isoformat(timespec="minutes" if at.second == at.microsecond == 0 else "seconds")


def _long_date(day: dt.date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _abbrev(local: dt.datetime) -> str:
    """The zone's abbreviation (BST), or "UTC-03:00" where tzdata only has a number ("-03")."""
    name = local.tzname() or ""
    if name.isalpha():
        return name
    offset = local.utcoffset() or dt.timedelta(0)
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
