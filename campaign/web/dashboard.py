"""The manager dashboard: posts compared by channel, campaign, framing, audience or period,
as a sortable table, a weekly trend (chart and table) and a CSV export of the same rows.

Open to staff, like the reports and every post's engagement: nothing on it is more private
than the post pages it sums. The filters are the query string, so a view can be bookmarked.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from campaign.models import Organisation, Role
from campaign.services import dashboard as service
from campaign.services.calendar_view import local_today, parse_day
from campaign.services.csv_files import write
from campaign.services.metric_windows import windows_from
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now, state

bp = Blueprint("dashboard", __name__)
DEFAULT_WEEKS = 12
# Figures on the page may be this old; the page says so. Sorting by another column, switching
# the trend's figure and exporting reuse the sums instead of reading every post again.
CACHE_SECONDS, CACHE_SIZE = 60.0, 64
DEFAULT_AGE = "24h"
_ID = re.compile(r"[0-9]{1,10}")
_MAX_ID = 2**31 - 1
TRENDS = {
    "clicks": "Tracked-link clicks",
    "posts": "Posts published",
    "rate": "Clicks per 100 impressions",
    "impressions": "Impressions",
}
COLUMNS = (
    ("group", None),
    ("posts", "Posts published"),
    ("with_figures", "Posts with figures"),
    ("impressions", "Impressions"),
    ("clicks", "Tracked clicks"),
    ("rate", "Click rate"),
    ("likes", "Likes"),
    ("reposts", "Reposts"),
    ("replies", "Replies"),
)
CSV_COLUMNS = (
    "group", "posts_published", "posts_measured", "posts_with_figures", "impressions",
    "tracked_clicks", "click_rate", "click_rate_low_95", "click_rate_high_95", "rate_basis",
    "rate_posts", "likes", "reposts", "replies", "note",
)  # fmt: skip


PARAMETERS = frozenset(
    {
        "from",
        "to",
        "channel",
        "campaign",
        "framing",
        "audience",
        "group",
        "sort",
        "dir",
        "age",
        "trend",
    }
)


@dataclass
class Asked:
    """The query string, read: filters for the service, and what to say about bad values."""

    filters: service.Filters
    age_label: str
    trend: str
    problems: list[str] = field(default_factory=list)


def _ids(args: MultiDict[str, str], name: str, what: str, problems: list[str]) -> tuple[int, ...]:
    found = []
    for raw in args.getlist(name):
        value = raw.strip()
        if not value:
            continue
        if _ID.fullmatch(value) and int(value) <= _MAX_ID:
            found.append(int(value))
        else:
            problems.append(f"“{value[:40]}” is not a {what} number.")
    return tuple(found)


def _day(args: MultiDict[str, str], name: str, default: dt.date, problems: list[str]) -> dt.date:
    raw = args.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_day(raw)
    except ValueError as exc:
        problems.append(f"{'From' if name == 'from' else 'To'}: {exc}")
        return default


def read_filters(
    args: MultiDict[str, str], organisation: Organisation, ages: Mapping[str, int], today: dt.date
) -> Asked:
    """The filters in `args` (defaults for anything left out); bad values named in `problems`."""
    problems: list[str] = []
    group = args.get("group", "channel")
    time_grouping = group in ("week", "month")
    sort = args.get("sort", "group" if time_grouping else "posts")
    direction = args.get("dir", "asc" if time_grouping and sort == "group" else "desc")
    if direction not in ("asc", "desc"):
        problems.append(f"“{direction[:40]}” is not a sort direction (asc or desc).")
    age_label = args.get("age", DEFAULT_AGE if DEFAULT_AGE in ages else next(iter(ages)))
    if age_label not in ages:
        problems.append(
            f"“{age_label[:40]}” is not a post age the figures are read at ({', '.join(ages)})."
        )
        age_label = next(iter(ages))
    trend = args.get("trend", "clicks")
    if trend not in TRENDS:
        problems.append(f"“{trend[:40]}” is not a figure the trend can show.")
        trend = "clicks"
    end = _day(args, "to", today, problems)
    start = _day(args, "from", end - dt.timedelta(days=7 * DEFAULT_WEEKS - 1), problems)
    filters = service.Filters(
        organisation_id=organisation.id,
        start=start,
        end=end,
        channel_ids=_ids(args, "channel", "channel", problems),
        campaign_ids=_ids(args, "campaign", "campaign", problems),
        framing_tags=tuple(v.strip() for v in args.getlist("framing") if v.strip()),
        audiences=tuple(v.strip() for v in args.getlist("audience") if v.strip()),
        group_by=group,
        sort=sort,
        descending=direction != "asc",
        age_seconds=ages[age_label],
    )
    return Asked(filters, age_label, trend, problems)


def _asked() -> tuple[Asked, service.Options, service.Dashboard | None]:
    organisation: Organisation = member().membership.organisation
    ages = {w.label: w.seconds for w in windows_from(state().settings.metrics.ages)}
    asked = read_filters(
        request.args, organisation, ages, local_today(organisation.timezone, now())
    )
    db = get_session()
    known = service.options(db, organisation.id)
    try:
        service.check_filters(asked.filters, known)
    except service.FilterError as exc:
        asked.problems.extend(exc.problems)
    if asked.problems:
        return asked, known, None
    # Sorting is done on the sums, so every order of one view shares one cache entry.
    key = (replace(asked.filters, sort="posts", descending=True), organisation.timezone)
    cache = _cache()
    found = cache.get(key)
    if found is None:
        found = service.dashboard(db, key[0], organisation.timezone, now())
        cache.put(key, found)
    _end_reading(db)
    return asked, known, service.sorted_by(found, asked.filters.sort, asked.filters.descending)


def _end_reading(db: Session) -> None:
    """End the request's read transaction before the page is rendered.

    On SQLite every transaction holds the database's write lock (BEGIN IMMEDIATE), so a page
    that renders inside one queues every other request behind its rendering. What the page
    layout reads of the member (memberships and their organisations) is loaded first; the
    session keeps it after the commit.
    """
    user = member()
    for membership in user.user.memberships:
        _ = membership.organisation.name
    _ = user.membership.organisation.name
    db.commit()


class ResultCache:
    """Recent dashboards per filter set, kept CACHE_SECONDS: a team opening the same view (or
    sorting it, or exporting it) within a minute gets it without summing every post again."""

    def __init__(self, seconds: float = CACHE_SECONDS, size: int = CACHE_SIZE) -> None:
        self.seconds, self.size = seconds, size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, service.Dashboard]] = OrderedDict()

    def get(self, key: Hashable) -> service.Dashboard | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= time.monotonic():
                return None
            return entry[1]

    def put(self, key: Hashable, found: service.Dashboard) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.seconds, found)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def _cache() -> ResultCache:
    found: ResultCache = current_app.extensions.setdefault("campaign.dashboard", ResultCache())
    return found


@bp.route("/dashboard")
@role_required(Role.STAFF)
def index() -> Any:
    asked, known, found = _asked()
    page = render_template(
        "dashboard/index.html",
        asked=asked,
        filters=asked.filters,
        known=known,
        found=found,
        groupings=service.GROUPINGS,
        columns=COLUMNS,
        trends=TRENDS,
        ages=windows_from(state().settings.metrics.ages),
        min_posts=service.MIN_POSTS,
        max_series=service.MAX_SERIES,
        sort_href=_sort_href,
        trend_href=lambda key: url_for("dashboard.index", **_args(trend=key)),
        csv_href=url_for("dashboard.export_csv", **_args()),
        chart=_chart(found, asked.trend) if found else None,
    )
    return (page, 400) if asked.problems else page


@bp.route("/dashboard.csv")
@role_required(Role.STAFF)
def export_csv() -> Response:
    asked, _known, found = _asked()
    if found is None:
        message = "The dashboard could not be exported. " + " ".join(asked.problems)
        return Response(message + "\n", status=400, mimetype="text/plain")
    body = write([list(CSV_COLUMNS), *(_csv_line(row) for row in found.rows)])
    filters = found.filters
    name = f"dashboard-{filters.group_by}-{filters.start:%Y-%m-%d}-to-{filters.end:%Y-%m-%d}.csv"
    # The byte-order mark makes Excel read the file as UTF-8.
    response = Response("\ufeff" + body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _args(**changes: str) -> dict[str, Any]:
    args: dict[str, Any] = {k: request.args.getlist(k) for k in request.args if k in PARAMETERS}
    args.update(changes)
    return args


def _sort_href(column: str, current: service.Filters) -> str:
    """The link that sorts by `column`: descending first, flipping when it is already sorted."""
    if current.sort == column:
        direction = "asc" if current.descending else "desc"
    else:
        direction = "asc" if column == "group" else "desc"
    return url_for("dashboard.index", **_args(sort=column, dir=direction))


def _trend_value(row: service.Row | None, trend: str) -> float | int | None:
    if row is None:
        return None if trend == "rate" else 0
    if trend == "rate":
        return None if row.basis != "impressions" or row.rate is None else round(row.rate * 100, 2)
    value: int | None = getattr(row, trend)
    return value


def _chart(found: service.Dashboard, trend: str) -> dict[str, object]:
    """The trend for the chart and its table: a value per week per series (None: no figure)."""
    return {
        "labels": [week.isoformat() for week in found.weeks],
        "series": [
            {"name": s.label, "values": [_trend_value(p, trend) for p in s.points]}
            for s in found.series
        ],
    }


def _csv_line(row: service.Row) -> list[str]:
    interval = row.rate_95
    note = f"fewer than {service.MIN_POSTS} posts: too few to compare" if row.too_few else ""
    return [
        row.label,
        str(row.posts),
        str(row.measured),
        str(row.with_figures),
        "" if row.impressions is None else str(row.impressions),
        str(row.clicks),
        "" if row.rate is None else f"{row.rate:.6f}",
        "" if interval is None else f"{interval[0]:.6f}",
        "" if interval is None else f"{interval[1]:.6f}",
        {"impressions": "clicks per impression", "per_post": "clicks per post"}.get(
            row.basis or "", ""
        ),
        str(row.rate_posts),
        *("" if v is None else str(v) for v in (row.likes, row.reposts, row.replies)),
        note,
    ]
