"""The manager dashboard: published posts compared by channel, campaign, framing, audience or
period, like for like, with a weekly trend.

The unit is a post on one channel (a delivery): a post sent to two channels counts once on each.
Figures are read at one post age (24 h by default): per delivery, the latest snapshot read at or
before that age (any source), and the tracked-link clicks made up to that age. A delivery
younger than the age counts as published but gives no figures yet, so a post of this morning
never sits beside last month's with a day less of clicks.

Everything is summed in the database (campaign.services.dashboard_sql: one GROUP BY per group
and week over one row per delivery); Python only adds up those few rows into the table, the
total and the trend, so the cost grows with the number of groups, not of posts read back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import (
    AUDIENCES,
    Campaign,
    Channel,
    FramingTag,
)
from campaign.services import ServiceError
from campaign.services.calendar_view import day_start
from campaign.services.dashboard_sql import totals_query

GROUPINGS = {
    "channel": "Channel",
    "campaign": "Campaign",
    "framing": "Framing tag",
    "audience": "Audience",
    "week": "Week",
    "month": "Month",
}
SORT_KEYS = (
    "group", "posts", "with_figures", "impressions", "clicks", "rate",
    "likes", "reposts", "replies",
)  # fmt: skip
# Below this many measured posts a group's rate is shown, but said to be too few to compare.
MIN_POSTS = 5
# The longest period one page may cover (weekly buckets are a CASE of this many branches).
MAX_DAYS = 3 * 366
# The trend draws this many groups (those with the most posts); the table shows every group.
MAX_SERIES = 6
NO_CAMPAIGN, NO_TAG = "No campaign", "No framing tag"


class FilterError(ServiceError):
    """The filters name something that does not exist or cannot be read; each problem named."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Filters:
    """What to compare: a period of local dates (both included) and optional narrowing."""

    organisation_id: int
    start: dt.date
    end: dt.date
    channel_ids: tuple[int, ...] = ()
    campaign_ids: tuple[int, ...] = ()
    framing_tags: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    group_by: str = "channel"
    sort: str = "posts"
    descending: bool = True
    age_seconds: int = 86400


@dataclass(frozen=True)
class Row:
    """One group's totals; every figure is over the measured posts (old enough for the age)."""

    key: Any
    label: str
    posts: int
    measured: int
    with_figures: int
    impressions: int | None
    posts_with_impressions: int
    clicks: int
    clicks_with_impressions: int
    likes: int | None
    reposts: int | None
    replies: int | None

    @property
    def basis(self) -> str | None:
        """ "impressions" (clicks per impression), "per_post" (no impressions), or None."""
        if self.posts_with_impressions and self.impressions:
            return "impressions"
        return "per_post" if self.measured else None

    @property
    def rate(self) -> float | None:
        if self.basis == "impressions":
            return self.clicks_with_impressions / (self.impressions or 1)
        return self.clicks / self.measured if self.basis == "per_post" else None

    @property
    def rate_posts(self) -> int:
        """How many posts the rate is over."""
        return self.posts_with_impressions if self.basis == "impressions" else self.measured

    @property
    def rate_95(self) -> tuple[float, float] | None:
        """The Wilson 95% interval of a click rate; None per post, or with more clicks than
        impressions (the link was also shared elsewhere, so it is no proportion)."""
        impressions = self.impressions or 0
        if self.basis != "impressions" or self.clicks_with_impressions > impressions:
            return None
        # numpy and scipy load on first use, so that workers and the CLI start quickly.
        from campaign.analysis.proportions import wilson_interval

        return wilson_interval(self.clicks_with_impressions, impressions)

    @property
    def too_few(self) -> bool:
        return self.rate_posts < MIN_POSTS

    def value(self, name: str) -> Any:
        return self.rate if name == "rate" else getattr(self, name)


@dataclass(frozen=True)
class Series:
    key: Any
    label: str
    points: tuple[Row | None, ...]  # one per week of Trend.weeks; None: no post that week


@dataclass
class Dashboard:
    filters: Filters
    rows: list[Row] = field(default_factory=list)
    total: Row | None = None
    weeks: list[dt.date] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    as_of: dt.datetime | None = None  # when the sums were made

    @property
    def bases(self) -> set[str]:
        return {row.basis for row in self.rows if row.basis}


@dataclass(frozen=True)
class Options:
    """What the filter form offers: the organisation's own channels, campaigns and tags."""

    channels: list[tuple[int, str]]
    campaigns: list[tuple[int, str]]
    framing_tags: list[tuple[str, str]]
    audiences: tuple[str, ...] = AUDIENCES


def options(session: Session, organisation_id: int) -> Options:
    """The organisation's channels, campaigns (archived too: they have history) and tags."""
    channels = session.execute(
        select(Channel.id, Channel.display_name)
        .where(Channel.organisation_id == organisation_id)
        .order_by(Channel.display_name, Channel.id)
    ).all()
    found = session.execute(
        select(Campaign.id, Campaign.name)
        .where(Campaign.organisation_id == organisation_id)
        .order_by(Campaign.archived, Campaign.name, Campaign.id)
    ).all()
    tags = session.execute(
        select(FramingTag.key, FramingTag.label)
        .where(FramingTag.organisation_id == organisation_id)
        .order_by(FramingTag.position, FramingTag.id)
    ).all()
    return Options(
        [(i, n) for i, n in channels], [(i, n) for i, n in found], [(k, lb) for k, lb in tags]
    )


def check_filters(filters: Filters, known: Options) -> None:
    """FilterError naming every filter value that the organisation does not have."""
    problems = []
    if filters.group_by not in GROUPINGS:
        problems.append(f"“{filters.group_by[:40]}” is not a way to group posts.")
    if filters.sort not in SORT_KEYS:
        problems.append(f"“{filters.sort[:40]}” is not a column to sort by.")
    if filters.end < filters.start:
        problems.append("The period ends before it starts: swap the two dates.")
    elif (filters.end - filters.start).days >= MAX_DAYS:
        problems.append(f"Choose a period of at most {MAX_DAYS} days.")
    if filters.age_seconds <= 0:
        problems.append("The post age must be positive.")
    for what, asked, have in (
        ("channel", filters.channel_ids, {i for i, _ in known.channels}),
        ("campaign", filters.campaign_ids, {i for i, _ in known.campaigns}),
        ("framing tag", filters.framing_tags, {k for k, _ in known.framing_tags}),
        ("audience", filters.audiences, set(known.audiences)),
    ):
        unknown = [str(value)[:40] for value in asked if value not in have]
        if unknown:
            problems.append(f"No {what} {', '.join(unknown)} in your organisation.")
    if problems:
        raise FilterError(problems)


def dashboard(session: Session, filters: Filters, zone: str, now: dt.datetime) -> Dashboard:
    """The groups' totals, sorted, with a weekly trend; FilterError for unknown filter values."""
    check_filters(filters, options(session, filters.organisation_id))
    weeks = _week_starts(filters.start, filters.end)
    months = _month_starts(filters.start, filters.end)
    period = (day_start(filters.start, zone), day_start(filters.end + dt.timedelta(days=1), zone))
    week_bounds = [day_start(w, zone) for w in weeks[1:]]
    buckets = {"week": week_bounds, "month": [day_start(m, zone) for m in months[1:]]}
    found = Dashboard(filters, weeks=weeks, as_of=now)
    # Two statements: every post once per week (the total, and the trend of a time grouping),
    # and per group per week (the groups' rows are their weeks added up, the trend their weeks).
    everything = _weekly(session, filters, period, now, "all", buckets)
    if not everything:
        return found
    found.total = _sum([row for _week, row in everything])
    by_time = filters.group_by in ("week", "month")
    per_group = everything
    if filters.group_by != "week":
        per_group = _weekly(session, filters, period, now, filters.group_by, buckets)
    keyed: dict[Any, list[Row]] = {}
    for week, row in per_group:
        keyed.setdefault(week if filters.group_by == "week" else row.key, []).append(row)
    labels = {"week": weeks, "month": months}
    for key, parts in keyed.items():
        found.rows.append(_labelled(replace(_sum(parts), key=key), filters.group_by, labels))
    _sort(found.rows, filters.sort, filters.descending, filters.group_by)
    width = len(weeks)
    if by_time:
        points = dict(everything)
        found.series = [Series("all", "All posts", tuple(points.get(i) for i in range(width)))]
        return found
    shown = sorted(found.rows, key=lambda r: (-r.posts, r.label))[:MAX_SERIES]
    weekly: dict[Any, dict[int, Row]] = {}
    for week, row in per_group:
        weekly.setdefault(row.key, {})[week] = row
    found.series = [
        Series(r.key, r.label, tuple(weekly.get(r.key, {}).get(i) for i in range(width)))
        for r in shown
    ]
    return found


def sorted_by(found: Dashboard, sort: str, descending: bool) -> Dashboard:
    """The same dashboard with its rows in another order (the trend keeps its groups)."""
    rows = list(found.rows)
    _sort(rows, sort, descending, found.filters.group_by)
    filters = replace(found.filters, sort=sort, descending=descending)
    return Dashboard(filters, rows, found.total, found.weeks, found.series, found.as_of)


def _weekly(
    session: Session,
    filters: Filters,
    period: tuple[dt.datetime, dt.datetime],
    now: dt.datetime,
    grouping: str,
    buckets: dict[str, list[dt.datetime]],
) -> list[tuple[int, Row]]:
    """(week, the group's totals that week) for every group and week with a post."""
    query = totals_query(filters, period, now, grouping, buckets)
    return [(int(r.week), _row(r)) for r in session.execute(query)]


def _sum(rows: Sequence[Row]) -> Row:
    """Rows added up (a figure no row reports stays None)."""

    def total(name: str) -> Any:
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        return sum(values) if values else None

    first = rows[0]
    return Row(first.key, first.label, **{name: total(name) for name in _ADDED})


_ADDED = (
    "posts", "measured", "with_figures", "impressions", "posts_with_impressions", "clicks",
    "clicks_with_impressions", "likes", "reposts", "replies",
)  # fmt: skip


def _row(r: Any) -> Row:
    return Row(
        key=r.gkey,
        label=r.glabel if r.glabel is not None else "",
        posts=int(r.posts),
        measured=int(r.measured or 0),
        with_figures=int(r.with_figures or 0),
        impressions=None if r.impressions is None else int(r.impressions),
        posts_with_impressions=int(r.posts_with_impressions or 0),
        clicks=int(r.clicks or 0),
        clicks_with_impressions=int(r.clicks_with_impressions or 0),
        likes=None if r.likes is None else int(r.likes),
        reposts=None if r.reposts is None else int(r.reposts),
        replies=None if r.replies is None else int(r.replies),
    )


def _labelled(row: Row, grouping: str, labels: dict[str, list[dt.date]]) -> Row:
    """Time groups get their first day as the key and a name people read; others as named."""
    if grouping == "week":
        first = labels["week"][int(row.key)]
        return _replace(row, first, f"Week of {first.day} {first:%b %Y}")
    if grouping == "month":
        first = labels["month"][int(row.key)]
        return _replace(row, first, f"{first:%B %Y}")
    if row.key is None:
        return _replace(row, None, NO_CAMPAIGN if grouping == "campaign" else NO_TAG)
    if grouping == "audience":
        return _replace(row, row.key, str(row.key).capitalize())
    return row


def _replace(row: Row, key: Any, label: str) -> Row:
    return replace(row, key=key, label=label)


def _sort(rows: list[Row], sort: str, descending: bool, grouping: str) -> None:
    """Sort in place; groups without a value go last either way, ties by the group's name."""
    rows.sort(key=lambda r: r.label.casefold())
    if sort == "group":
        if grouping in ("week", "month"):
            rows.sort(key=lambda r: r.key, reverse=descending)
        else:
            rows.sort(key=lambda r: r.label.casefold(), reverse=descending)
        return
    present = [r for r in rows if r.value(sort) is not None]
    absent = [r for r in rows if r.value(sort) is None]
    present.sort(key=lambda r: r.value(sort), reverse=descending)
    rows[:] = present + absent


def _week_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every Monday from the one on or before `start` to `end`."""
    monday = start - dt.timedelta(days=start.weekday())
    return [monday + dt.timedelta(weeks=i) for i in range((end - monday).days // 7 + 1)]


def _month_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    found, first = [], start.replace(day=1)
    while first <= end:
        found.append(first)
        first = (first + dt.timedelta(days=32)).replace(day=1)
    return found
