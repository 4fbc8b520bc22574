"""The calendar: a week or a month of deliveries, day by day, in the organisation's zone.

Reading only. Whatever the number of posts, a page costs one range query for the deliveries (with
the columns of their post and channel) and one for the key dates. Days are local calendar dates,
never 24-hour steps in UTC, so a week with a DST change still has seven days, and a post at 00:30
BST on 1 June is on 1 June, not on 31 May where UTC would put it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from campaign.models import Channel, Delivery, KeyDate, Post
from campaign.services.local_time import as_zone, resolve_local
from campaign.services.scheduling import key_dates_between, org_channel

VIEWS = ("week", "month")
# A page shows at most this many deliveries; more is said on the page, never silently cut.
MAX_ENTRIES = 1500
# Dates the calendar can show: wide enough for any plan, narrow enough for date arithmetic.
FIRST_YEAR, LAST_YEAR = 1970, 2200
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# Clock changes happen on the quarter hour (one off it is reported at the next quarter hour).
_STEP = dt.timedelta(minutes=15)

# What a delivery is, as one word for the page: the post's state until it is approved, then the
# delivery's own. Each has a label, so colour is never the only signal.
STATUS_LABELS = {
    "draft": "Draft",
    "pending_approval": "Awaiting approval",
    "rejected": "Rejected",
    "scheduled": "Scheduled",
    "publishing": "Publishing now",
    "published": "Published",
    "unknown": "Checking with the platform",
    "needs_review": "Needs your check",
    "failed": "Failed",
    "missed": "Missed",
    "cancelled": "Cancelled",
}
# Delivery states that mean something was sent or tried: they tell the truth whatever the post.
_ATTEMPTED = frozenset({"publishing", "published", "unknown", "needs_review", "failed"})
_BEFORE_APPROVAL = frozenset({"draft", "pending_approval", "rejected"})


def shown_status(post_status: str, delivery_status: str) -> str:
    """The one state the calendar shows for a delivery of a post (a key of STATUS_LABELS)."""
    if delivery_status in _ATTEMPTED:
        return delivery_status
    if delivery_status == "cancelled" or post_status == "cancelled":
        return "cancelled"
    if delivery_status == "missed":
        return "missed"
    if post_status in _BEFORE_APPROVAL:
        return post_status
    return delivery_status


@dataclass(frozen=True)
class Entry:
    """One delivery on the calendar."""

    delivery_id: int
    post_id: int
    channel_id: int
    channel_name: str
    status: str  # a key of STATUS_LABELS
    due_utc: dt.datetime
    local: dt.datetime  # due_utc in the organisation's zone
    text: str

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def time(self) -> str:
        return f"{self.local:%H:%M}"


@dataclass
class Day:
    date: dt.date
    in_period: bool  # False for the days of the neighbouring months that fill a month's grid
    is_today: bool
    entries: list[Entry] = field(default_factory=list)
    key_dates: list[KeyDate] = field(default_factory=list)
    clock_change: str | None = None  # plain words on the days the clocks go forward or back

    @property
    def blackout(self) -> bool:
        return any(k.effect == "blackout" for k in self.key_dates)

    @property
    def boost(self) -> bool:
        return any(k.effect == "boost" for k in self.key_dates)


@dataclass
class Period:
    """A week (Monday first) or a month's grid of whole weeks, ready to show."""

    view: str
    anchor: dt.date
    first: dt.date  # the first day shown
    last: dt.date  # the last day shown
    today: dt.date
    zone: str
    title: str
    previous: dt.date
    next: dt.date
    days: list[Day]
    key_dates: list[KeyDate]
    channel: Channel | None
    truncated: bool  # more than MAX_ENTRIES deliveries: only the first are shown

    @property
    def weeks(self) -> list[list[Day]]:
        return [self.days[i : i + 7] for i in range(0, len(self.days), 7)]

    @property
    def entry_count(self) -> int:
        return sum(len(day.entries) for day in self.days if day.in_period)


def parse_day(text: str) -> dt.date:
    """A date written YYYY-MM-DD; ValueError naming the problem otherwise."""
    value = text.strip()
    if not _DAY.fullmatch(value):
        raise ValueError(f"“{text[:40]}” is not a date: write it like 2026-06-01.")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a date in the calendar.") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"Choose a date between {FIRST_YEAR} and {LAST_YEAR}.")
    return day


def local_today(zone: str, now: dt.datetime) -> dt.date:
    return now.astimezone(as_zone(zone)).date()


def calendar_period(
    session: Session,
    organisation_id: int,
    zone: str,
    view: str,
    anchor: dt.date,
    now: dt.datetime,
    channel_id: int | None = None,
    limit: int = MAX_ENTRIES,
) -> Period:
    """The week or month around `anchor`; NotFound if `channel_id` is not the organisation's."""
    if view not in VIEWS:
        raise ValueError(f"view {view!r} is not one of {VIEWS}")
    channel = org_channel(session, organisation_id, channel_id) if channel_id is not None else None
    first, last, previous, following, shown = _bounds(view, anchor)
    today = local_today(zone, now)
    days: dict[dt.date, Day] = {}
    for offset in range((last - first).days + 1):
        date = first + dt.timedelta(days=offset)
        days[date] = Day(
            date,
            in_period=shown[0] <= date <= shown[1],
            is_today=date == today,
            clock_change=_clock_change(date, zone),
        )
    entries = _entries(session, organisation_id, zone, first, last, channel_id, limit + 1)
    for entry in entries[:limit]:
        days[entry.local.date()].entries.append(entry)
    key_dates = key_dates_between(session, organisation_id, first, last)
    for key_date in key_dates:
        for day in days.values():
            if key_date.covers(day.date):
                day.key_dates.append(key_date)
    return Period(
        view=view,
        anchor=anchor,
        first=first,
        last=last,
        today=today,
        zone=zone,
        title=_title(view, first, last, anchor),
        previous=previous,
        next=following,
        days=list(days.values()),
        key_dates=[k for k in key_dates if k.starts_on <= shown[1] and k.ends_on >= shown[0]],
        channel=channel,
        truncated=len(entries) > limit,
    )


def _bounds(
    view: str, anchor: dt.date
) -> tuple[dt.date, dt.date, dt.date, dt.date, tuple[dt.date, dt.date]]:
    """First and last day shown, the anchors of the previous and next period, the period itself."""
    if view == "week":
        first = anchor - dt.timedelta(days=anchor.weekday())
        last = first + dt.timedelta(days=6)
        week = dt.timedelta(days=7)
        return first, last, first - week, first + week, (first, last)
    month_first = anchor.replace(day=1)
    month_last = (month_first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    first = month_first - dt.timedelta(days=month_first.weekday())
    last = month_last + dt.timedelta(days=6 - month_last.weekday())
    previous = (month_first - dt.timedelta(days=1)).replace(day=1)
    return first, last, previous, month_last + dt.timedelta(days=1), (month_first, month_last)


def _title(view: str, first: dt.date, last: dt.date, anchor: dt.date) -> str:
    if view == "month":
        return f"{anchor:%B %Y}"
    if first.year != last.year:
        return f"{first.day} {first:%B %Y} – {last.day} {last:%B %Y}"
    if first.month != last.month:
        return f"{first.day} {first:%B} – {last.day} {last:%B %Y}"
    return f"{first.day} – {last.day} {last:%B %Y}"


def day_start(day: dt.date, zone: str) -> dt.datetime:
    """The first instant of a local day, in UTC (midnight, or the end of a gap at midnight)."""
    return resolve_local(day, dt.time(0), zone).utc


def _clock_change(day: dt.date, zone: str) -> str | None:
    """Plain words for a day on which the UTC offset changes, e.g. the clocks going forward."""
    tz = as_zone(zone)
    start, end = day_start(day, zone), day_start(day + dt.timedelta(days=1), zone)
    before, after = start.astimezone(tz).utcoffset(), end.astimezone(tz).utcoffset()
    if before is None or after is None or before == after:
        return None
    change = start
    while change < end and change.astimezone(tz).utcoffset() == before:
        change += _STEP
    old_name = (change - _STEP).astimezone(tz).tzname() or ""
    new_name = change.astimezone(tz).tzname() or ""
    way = "forward" if after > before else "back"
    return (
        f"The clocks go {way} at {change + before:%H:%M} {old_name}, "
        f"to {change + after:%H:%M} {new_name}"
    ).replace(" ,", ",")


def deliveries_between(
    organisation_id: int, start: dt.datetime, end: dt.datetime
) -> Select[int, int, str, dt.datetime, str, str, int, str]:
    """The organisation's deliveries due in [start, end), with what a calendar shows of each:
    delivery id, post id, delivery status, due time, post status, text, channel id and name.

    The calendar page and the iCal feed both read it; each adds its own filters and order.
    """
    return (
        select(
            Delivery.id,
            Delivery.post_id,
            Delivery.status,
            Delivery.due_at,
            Post.status,
            Post.text,
            Channel.id,
            Channel.display_name,
        )
        .join(Post, Post.id == Delivery.post_id)
        .join(Channel, Channel.id == Delivery.channel_id)
        .where(
            Post.organisation_id == organisation_id,
            Channel.organisation_id == organisation_id,
            Delivery.due_at >= start,
            Delivery.due_at < end,
            Delivery.part == 0,  # the post on the channel, not its thread's replies
        )
    )


def _entries(
    session: Session,
    organisation_id: int,
    zone: str,
    first: dt.date,
    last: dt.date,
    channel_id: int | None,
    limit: int,
) -> list[Entry]:
    tz = as_zone(zone)
    query = (
        deliveries_between(
            organisation_id, day_start(first, zone), day_start(last + dt.timedelta(days=1), zone)
        )
        .order_by(Delivery.due_at, Channel.display_name, Delivery.id)
        .limit(limit)
    )
    if channel_id is not None:
        query = query.where(Delivery.channel_id == channel_id)
    return [
        Entry(
            delivery_id=d_id,
            post_id=post_id,
            channel_id=ch_id,
            channel_name=ch_name,
            status=shown_status(p_status, d_status),
            due_utc=due,
            local=due.astimezone(tz),
            text=text,
        )
        for d_id, post_id, d_status, due, p_status, text, ch_id, ch_name in session.execute(query)
    ]
