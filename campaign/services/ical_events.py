"""Reading an uploaded iCal file into key-date spans: bytes in, plain dataclasses out.

Everything here assumes hostile input. The file is bounded in size and in events; each event is
read on its own, so a broken one is reported with its position and UID while the rest are kept.
Repeating events (RRULE) are expanded for the next twelve months only (see ical_repeats), within
a budget of days worked through for the whole file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from campaign.services import ServiceError
from campaign.services.ical_repeats import Budget, RuleError, parse_rule, repeat_days

MAX_BYTES = 1024 * 1024  # 1 MB
MAX_EVENTS = 1000
MAX_DATES = 2000  # key dates one file may produce, repetitions included
MAX_PER_SERIES = 366  # a daily event over the twelve months ahead
REPEAT_AHEAD = dt.timedelta(days=365)
DAY_BUDGET = 400_000  # days tested against repeat rules, across the whole file
FIRST_YEAR, LAST_YEAR = 1900, 2199
TITLE_MAX = 200
NOTES_MAX = 2000
UID_MAX = 255


@dataclass(frozen=True)
class EventDates:
    """One key date read from the file: a single event or one repetition of a series."""

    position: int  # the event's place among the file's events, from 1
    uid: str
    title: str
    notes: str
    starts_on: dt.date
    ends_on: dt.date  # inclusive


@dataclass(frozen=True)
class Refusal:
    position: int
    uid: str | None
    title: str | None
    reason: str


@dataclass
class Reading:
    dates: list[EventDates] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Refused(Exception):
    """This event cannot be imported; the message says why, in plain words."""


def read_events(data: bytes, zone: ZoneInfo, today: dt.date) -> Reading:
    """The key dates in an iCal file, with each refused event and the reason; ServiceError if
    the file as a whole cannot be read."""
    components = _events(_calendars(_text(data)))
    reading = Reading()
    budget = Budget(DAY_BUDGET)
    horizon = today + REPEAT_AHEAD
    found: dict[str, EventDates] = {}
    series_start: dict[str, dt.date | dt.datetime] = {}  # UID -> DTSTART, for overrides
    first_seen: dict[str, int] = {}
    overrides: list[tuple[int, Any]] = []
    for position, component in enumerate(components, start=1):
        if "RECURRENCE-ID" in component:
            overrides.append((position, component))
            continue
        shown, title = _label(component)
        try:
            uid = _uid(component, position)
            if uid in first_seen:
                raise _Refused(
                    f"it has the same UID as event {first_seen[uid]}, which was imported instead"
                )
            first_seen[uid] = position
            if _status(component) == "CANCELLED":
                raise _Refused("it is marked as cancelled in the calendar")
            event = _read(component, position, uid, zone)
            series_start[uid] = event.start
            dates = _expand(event, component, zone, today, horizon, budget, reading)
        except _Refused as refused:
            reading.refused.append(Refusal(position, shown, title, str(refused)))
            continue
        except Exception as exc:  # a hostile or broken event must not stop the others
            reading.refused.append(Refusal(position, shown, title, _unreadable(exc)))
            continue
        for item in dates:
            found[item.uid] = item
    for position, component in overrides:
        _apply_override(position, component, zone, today, horizon, series_start, found, reading)
    _keep_within_limit(found, reading)
    reading.refused.sort(key=lambda r: r.position)
    reading.dates = sorted(found.values(), key=lambda d: (d.starts_on, d.position, d.uid))
    return reading


# --- the file -------------------------------------------------------------------------------


def _text(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise ServiceError(
            "The file is larger than 1 MB, the limit for an iCal import. Export a shorter date "
            "range, or only the academic calendar, and try again."
        )
    if not data.strip():
        raise ServiceError(
            "The file is empty: choose an iCal (.ics) file exported from a calendar."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ServiceError(
            "This is not an iCal file we can read: it is not UTF-8 text. Export the calendar "
            "as iCal (.ics) and try again."
        ) from None
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise ServiceError(
            "This is not an iCal file: an iCal (.ics) file starts with BEGIN:VCALENDAR. Export "
            "the calendar as iCal or ICS (not CSV, Excel or a web page) and try again."
        )
    return text


def _calendars(text: str) -> list[Any]:
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except Exception as exc:  # icalendar raises several kinds on malformed input
        raise ServiceError(f"The file is not valid iCal: {_short(exc)}") from None
    if not calendars or any(c.name != "VCALENDAR" for c in calendars):
        raise ServiceError(
            "The file is not valid iCal: it does not hold a complete calendar (BEGIN:VCALENDAR "
            "to END:VCALENDAR); it may have been cut short."
        )
    return list(calendars)


def _events(calendars: list[Any]) -> list[Any]:
    # Only the calendars' own children: a VEVENT nested anywhere else is not an event.
    events = [c for cal in calendars for c in cal.subcomponents if c.name == "VEVENT"]
    if not events:
        raise ServiceError("The file has no events (VEVENT) in it, so there is nothing to import.")
    if len(events) > MAX_EVENTS:
        raise ServiceError(
            f"The file has {len(events)} events; at most {MAX_EVENTS} can be imported at once. "
            "Export only the academic calendar, or a shorter date range."
        )
    return events


# --- one event ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
    position: int
    uid: str
    title: str
    notes: str
    start: dt.date | dt.datetime  # as in the file: a date, or a datetime (aware or floating)
    length: dt.timedelta  # DTEND - DTSTART (days for all-day events)


def _read(component: Any, position: int, uid: str, zone: ZoneInfo) -> _Event:
    title = clean_text(str(component.get("SUMMARY") or ""), keep_newlines=False)
    if not title:
        raise _Refused("it has no title (SUMMARY)")
    if "DTSTART" not in component:
        raise _Refused("it has no start date (DTSTART)")
    start, end = component.start, component.end
    for value in (start, end):
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise _Refused(f"its dates must fall between {FIRST_YEAR} and {LAST_YEAR}")
    if isinstance(start, dt.datetime):
        # In UTC: between two datetimes of one zone, Python subtracts wall clocks.
        length = _in_zone(end, zone).astimezone(dt.UTC) - _in_zone(start, zone).astimezone(dt.UTC)
    else:
        # DTEND == DTSTART is not valid iCal, but some programs write it for one-day events.
        length = max(end - start, dt.timedelta(days=1)) if end >= start else end - start
    if length < dt.timedelta(0):
        raise _Refused("it ends before it starts")
    notes = clean_text(str(component.get("DESCRIPTION") or ""), keep_newlines=True)[:NOTES_MAX]
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return _Event(position, uid, title, notes, start, length)


def _span(
    start: dt.date | dt.datetime, length: dt.timedelta, zone: ZoneInfo
) -> tuple[dt.date, dt.date]:
    """The first and last local dates an occurrence covers: an all-day DTEND is exclusive, and a
    timed event ending exactly at midnight does not cover the day that begins then."""
    if not isinstance(start, dt.datetime):
        return start, start + length - dt.timedelta(days=1)
    first = _in_zone(start, zone)
    # Aware arithmetic in Python is wall-clock arithmetic: add the length in UTC instead.
    last = (first.astimezone(dt.UTC) + length).astimezone(zone)
    last_day = last.date()
    if length > dt.timedelta(0) and last.time() == dt.time(0):
        last_day -= dt.timedelta(days=1)
    return first.date(), max(last_day, first.date())


def _in_zone(value: dt.date | dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """A datetime in the organisation's zone; a floating time is read as the zone's wall time."""
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(0), zone)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(zone)


def _dates(event: _Event, start: dt.date | dt.datetime, uid: str, zone: ZoneInfo) -> EventDates:
    first, last = _span(start, event.length, zone)
    return EventDates(event.position, uid, event.title, event.notes, first, last)


# --- repetitions ----------------------------------------------------------------------------


def _expand(
    event: _Event,
    component: Any,
    zone: ZoneInfo,
    today: dt.date,
    horizon: dt.date,
    budget: Budget,
    reading: Reading,
) -> list[EventDates]:
    rules = component.rrules
    extra = component.rdates
    if not rules and not extra:
        return [_dates(event, event.start, event.uid, zone)]
    if len(rules) > 1:
        raise _Refused(
            "it has more than one repeat rule (RRULE), which this import does not expand"
        )
    starts: list[dt.date | dt.datetime] = [event.start]
    if rules:
        starts = _repeat(rules[0], event, zone, today, horizon, budget)
    starts += [_like(value[0], event.start, zone) for value in extra]
    excluded = {_wall(_like(value, event.start, zone)) for value in component.exdates}
    chosen: dict[str, EventDates] = {}
    for start in starts:
        if _wall(start) in excluded:
            continue
        item = _dates(event, start, _occurrence_uid(event, start), zone)
        if item.ends_on >= today and item.starts_on <= horizon:
            chosen[item.uid] = item
    dates = sorted(chosen.values(), key=lambda d: d.starts_on)[:MAX_PER_SERIES]
    if not dates:
        raise _Refused(
            f"it repeats, but none of its repetitions falls between {_day(today)} and "
            f"{_day(horizon)} (repeating events are imported for the next 12 months only)"
        )
    span = (
        f"1 date, {_day(dates[0].starts_on)}, was"
        if len(dates) == 1
        else f"{len(dates)} dates from {_day(dates[0].starts_on)} to "
        f"{_day(dates[-1].starts_on)} were"
    )
    reading.notes.append(
        f"“{event.title}” repeats: {span} imported. Repeating events are imported for the next "
        f"12 months only (until {_day(horizon)})."
    )
    return dates


def _repeat(
    recur: Any, event: _Event, zone: ZoneInfo, today: dt.date, horizon: dt.date, budget: Budget
) -> list[dt.date | dt.datetime]:
    """The series' starts that can touch the window, in the event's own wall time."""
    try:
        rule = parse_rule(recur)
    except RuleError as exc:
        raise _Refused(str(exc)) from None
    start = event.start
    start_day = start.date() if isinstance(start, dt.datetime) else start
    # A repetition that started before today may still be running: look back by its length.
    back = min(event.length, dt.timedelta(days=366)) + dt.timedelta(days=2)
    days = repeat_days(
        rule,
        start_day,
        today - dt.timedelta(days=back.days),
        horizon + dt.timedelta(days=1),
        budget,
        _until_day(rule.until, start, zone),
    )
    try:
        if isinstance(start, dt.datetime):
            return [dt.datetime.combine(day, start.timetz()) for day in days]
        return list(days)
    except RuleError as exc:
        raise _Refused(str(exc)) from None


def _until_day(
    value: dt.date | None, start: dt.date | dt.datetime, zone: ZoneInfo
) -> dt.date | None:
    """The last day a repetition may start on, from the rule's UNTIL (inclusive)."""
    if value is None or value.year > LAST_YEAR:
        return None
    if value.year < FIRST_YEAR:
        return dt.date(FIRST_YEAR, 1, 1) - dt.timedelta(days=1)
    converted = _like(value, start, zone) if isinstance(value, dt.datetime) else value
    if not isinstance(converted, dt.datetime) or not isinstance(start, dt.datetime):
        return converted if not isinstance(converted, dt.datetime) else converted.date()
    wall = converted.replace(tzinfo=None)
    return wall.date() if wall.time() >= start.time() else wall.date() - dt.timedelta(days=1)


def _like(
    value: dt.date | dt.datetime, start: dt.date | dt.datetime, zone: ZoneInfo
) -> dt.date | dt.datetime:
    """An RDATE, EXDATE or UNTIL value in the same terms as DTSTART: a date, or a datetime in
    DTSTART's zone (floating when DTSTART is)."""
    if not isinstance(start, dt.datetime):
        return value.date() if isinstance(value, dt.datetime) else value
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, start.timetz())
    if value.tzinfo is None:
        return value.replace(tzinfo=start.tzinfo)
    return value.astimezone(start.tzinfo or zone) if start.tzinfo else _in_zone(value, zone)


def _wall(value: dt.date | dt.datetime) -> dt.date | dt.datetime:
    return value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value


def _occurrence_uid(event: _Event, start: dt.date | dt.datetime) -> str:
    """The series' first date keeps the event's UID; later repetitions add their date."""
    if _wall(start) == _wall(event.start):
        return event.uid
    day = start.date() if isinstance(start, dt.datetime) else start
    return f"{event.uid}/{day.isoformat()}"


def _apply_override(
    position: int,
    component: Any,
    zone: ZoneInfo,
    today: dt.date,
    horizon: dt.date,
    series_start: dict[str, dt.date | dt.datetime],
    found: dict[str, EventDates],
    reading: Reading,
) -> None:
    """A VEVENT with RECURRENCE-ID changes (or cancels) one repetition of its series."""
    uid, title = _label(component)
    try:
        base = _uid(component, position)
        original = component.get("RECURRENCE-ID").dt
        first = series_start.get(base)
        if first is not None and _wall(_like(original, first, zone)) == _wall(first):
            key = base
        else:
            day = original.date() if isinstance(original, dt.datetime) else original
            key = f"{base}/{day.isoformat()}"
        if _status(component) == "CANCELLED":
            found.pop(key, None)
            return
        event = _read(component, position, key, zone)
        item = _dates(event, event.start, key, zone)
    except _Refused as refused:
        reading.refused.append(Refusal(position, uid, title, str(refused)))
        return
    except Exception as exc:  # as for any event: report it, keep the others
        reading.refused.append(Refusal(position, uid, title, _unreadable(exc)))
        return
    if (item.ends_on >= today and item.starts_on <= horizon) or key in found:
        found[key] = item


def _keep_within_limit(found: dict[str, EventDates], reading: Reading) -> None:
    if len(found) <= MAX_DATES:
        return
    ordered = sorted(found.values(), key=lambda d: (d.starts_on, d.position))
    for item in ordered[MAX_DATES:]:
        del found[item.uid]
    reading.notes.append(
        f"The file gives {len(ordered)} dates; only the first {MAX_DATES} (by date) were "
        "imported. Import the rest from a file with a later date range."
    )


# --- small readers --------------------------------------------------------------------------


def _label(component: Any) -> tuple[str | None, str | None]:
    """The UID and title to name an event by in a refusal, read without ever failing."""
    try:
        uid = clean_text(str(component.get("UID") or ""), keep_newlines=False)[:120] or None
        title = clean_text(str(component.get("SUMMARY") or ""), keep_newlines=False)[:120] or None
    except Exception:  # a refusal must still be reported when even the label is broken
        return None, None
    return uid, title


def _uid(component: Any, position: int) -> str:
    """The event's UID, hashed when too long to store; derived from the event's title and start
    when missing, so importing the same file again still updates rather than duplicates."""
    uid = clean_text(str(component.get("UID") or ""), keep_newlines=False)
    if not uid:
        start = component["DTSTART"].to_ical() if "DTSTART" in component else position
        raw = f"{component.get('SUMMARY') or ''}|{start!r}"
        return "derived-" + hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:40]
    if len(uid) > UID_MAX - 12:  # room for "/YYYY-MM-DD" on repetitions
        return "sha256-" + hashlib.sha256(uid.encode()).hexdigest()
    return uid


def _status(component: Any) -> str:
    return str(component.get("STATUS") or "").strip().upper()


def clean_text(text: str, keep_newlines: bool) -> str:
    """Text without control characters (PostgreSQL refuses NUL); one line unless notes."""
    kept = "".join(
        ch if unicodedata.category(ch) != "Cc" or (keep_newlines and ch in "\n\t") else " "
        for ch in text
    )
    if keep_newlines:
        return "\n".join(" ".join(line.split()) for line in kept.strip().splitlines()).strip()
    return " ".join(kept.split())


def _unreadable(exc: Exception) -> str:
    return f"it could not be read ({_short(exc)})"


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"
