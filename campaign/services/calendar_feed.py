"""The private iCal feed of planned posts: plain events in, RFC 5545 bytes out.

Times are written in the organisation's zone with a TZID and the matching VTIMEZONE, so that
calendar apps show the same wall times as the app. All text goes through icalendar, which does the
escaping and line folding; nothing here writes iCal syntax by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vDuration
from icalendar.enums import STATUS

from campaign.services.local_time import as_zone

PRODID = "-//campaign//planned posts//EN"
STATUSES = frozenset({"CONFIRMED", "CANCELLED", "TENTATIVE"})
# Feed readers poll; ask for hourly refreshes (RFC 7986, and the older Microsoft property).
REFRESH = dt.timedelta(hours=1)


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    start_utc: dt.datetime
    duration: dt.timedelta
    summary: str
    description: str
    status: str  # CONFIRMED (scheduled or published), CANCELLED, TENTATIVE (awaiting approval)
    url: str | None = None


def build_calendar(
    events: Iterable[FeedEvent], zone: str, *, name: str, now_utc: dt.datetime
) -> bytes:
    """A VCALENDAR of the events in `zone`, with its VTIMEZONE; DTSTAMP is `now_utc`."""
    tz = as_zone(zone)
    stamp = _aware(now_utc, "now_utc").astimezone(dt.UTC)
    ordered = sorted(events, key=lambda e: (_aware(e.start_utc, e.uid), e.uid))
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.calendar_name = name  # NAME (RFC 7986) and X-WR-CALNAME
    calendar.add("X-WR-TIMEZONE", zone)
    calendar.add("REFRESH-INTERVAL", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", vDuration(REFRESH))
    for item in ordered:
        calendar.add_component(_event(item, tz, stamp))
    # The VTIMEZONE spans the events' years plus a margin, not icalendar's default 1970-2038,
    # which would list every transition since 1970 in each download.
    years = [e.start_utc.astimezone(tz).year for e in ordered] or [stamp.year]
    calendar.add_missing_timezones(
        first_date=dt.date(min(years) - 1, 1, 1), last_date=dt.date(max(years) + 2, 1, 1)
    )
    ical: bytes = calendar.to_ical()
    return ical


def _event(item: FeedEvent, tz: ZoneInfo, stamp: dt.datetime) -> Event:
    if item.status not in STATUSES:
        raise ValueError(f"status {item.status!r} is not one of {sorted(STATUSES)}")
    if item.duration < dt.timedelta(0):
        raise ValueError(f"event {item.uid} has a negative duration")
    start = item.start_utc.astimezone(dt.UTC)
    event = Event.new(
        uid=item.uid,
        stamp=stamp,
        start=_wall(start, tz),
        end=_wall(start + item.duration, tz),
        summary=item.summary,
        description=item.description,
        status=STATUS(item.status),
        url=item.url,
    )
    return event


def _wall(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The instant in `tz`, or in UTC when the wall time is the second of a repeated hour.

    RFC 5545 (3.3.5) reads a TZID time that happens twice as its first occurrence, so 01:30 GMT
    on the day the clocks go back would be read as 01:30 BST, an hour early; UTC is exact.
    """
    local = instant.astimezone(tz)
    if local.replace(fold=0).astimezone(dt.UTC) != instant:
        return instant
    return local


def _aware(value: dt.datetime, what: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: naive datetime {value!r}, an aware instant is needed")
    return value
