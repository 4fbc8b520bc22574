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
from functools import cached_property
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request, url_for
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from campaign.db import read_only
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
# Query strings rendered per cached view (sort orders, trend figures, ...), the latest kept:
# a page is about 15 kB, so at most CACHE_SIZE x 8 x 15 kB (under 8 MB) a process.
PAGES_PER_VIEW = 8
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


@dataclass(frozen=True)
class Fragment:
    """The page's content for one view as rendered, and whether it draws a chart."""

    html: Markup
    chart: bool


class Sums:
    """One view's sums, the filter form's options they were checked against, and the content
    rendered from them for each query string asking for that view (sort, trend and all)."""

    def __init__(self, found: service.Dashboard, known: service.Options) -> None:
        self.found, self.known = found, known
        self._lock = threading.Lock()
        self._pages: OrderedDict[Hashable, Fragment] = OrderedDict()

    def page(self, args: Hashable) -> Fragment | None:
        with self._lock:
            return self._pages.get(args)

    def keep(self, args: Hashable, fragment: Fragment) -> None:
        with self._lock:
            self._pages[args] = fragment
            while len(self._pages) > PAGES_PER_VIEW:
                self._pages.popitem(last=False)


@dataclass
class View:
    """What a request asks for and, unless it asks for something wrong, the sums to show."""

    asked: Asked
    known: service.Options
    sums: Sums | None = None

    @cached_property
    def found(self) -> service.Dashboard | None:
        """The sums in the order asked for."""
        if self.sums is None:
            return None
        filters = self.asked.filters
        return service.sorted_by(self.sums.found, filters.sort, filters.descending)


def _view() -> View:
    organisation: Organisation = member().membership.organisation
    asked = read_filters(
        request.args, organisation, _ages(), local_today(organisation.timezone, now())
    )
    # Sorting is done on the sums, so every order of one view shares one cache entry. The
    # filters hold the organisation: one organisation's entry is never another's.
    key = (replace(asked.filters, sort="posts", descending=True), organisation.timezone)
    cache = _cache()
    sums = None if asked.problems else cache.get(key)
    # Cached sums were made for filters checked against these options; they are checked
    # again (the sort, which the key leaves out), without reading the options again.
    known = sums.known if sums else service.options(get_session(), organisation.id)
    try:
        service.check_filters(asked.filters, known)
    except service.FilterError as exc:
        asked.problems.extend(exc.problems)
    if asked.problems:
        return View(asked, known)
    if sums is None:
        sums = Sums(service.dashboard(get_session(), key[0], organisation.timezone, now()), known)
        cache.put(key, sums)
    return View(asked, known, sums)


class ResultCache:
    """Recent dashboards per filter set, kept CACHE_SECONDS: a team opening the same view (or
    sorting it, or exporting it) within a minute gets it without summing every post again."""

    def __init__(self, seconds: float = CACHE_SECONDS, size: int = CACHE_SIZE) -> None:
        self.seconds, self.size = seconds, size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Sums]] = OrderedDict()

    def get(self, key: Hashable) -> Sums | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= time.monotonic():
                return None
            return entry[1]

    def put(self, key: Hashable, found: Sums) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.seconds, found)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def _cache() -> ResultCache:
    found: ResultCache = current_app.extensions.setdefault("campaign.dashboard", ResultCache())
    return found


def _ages() -> dict[str, int]:
    return {w.label: w.seconds for w in windows_from(state().settings.metrics.ages)}


def _query() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The dashboard's parameters as asked, in their order: all the content depends on."""
    return tuple((k, tuple(request.args.getlist(k))) for k in request.args if k in PARAMETERS)


def _content(view: View) -> Fragment:
    """The page's content: the filter form, the table and the trend (no member's details)."""
    asked, found = view.asked, view.found
    chart = _chart(found, asked.trend) if found else None
    html = render_template(
        "dashboard/_content.html",
        asked=asked,
        filters=asked.filters,
        known=view.known,
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
        chart=chart,
    )
    # Rendered by Jinja with autoescaping: every value in it is escaped already.
    return Fragment(Markup(html), chart is not None)  # noqa: S704


# The read-only mark comes before the role check, so that loading the member, too, happens in
# the read-only transaction (on SQLite a deferred one, which neither waits for nor holds up
# writers).
@bp.route("/dashboard")
@read_only()
@role_required(Role.STAFF)
def index() -> Any:
    view = _view()
    if view.sums is None:
        fragment = _content(view)
    else:
        # The content of a view already shown in the last minute, as it was rendered: the same
        # sums, options and query string give the same content.
        query = _query()
        cached = view.sums.page(query)
        if cached is None:
            fragment = _content(view)
            view.sums.keep(query, fragment)
        else:
            fragment = cached
    page = render_template("dashboard/index.html", content=fragment.html, chart=fragment.chart)
    return (page, 400) if view.asked.problems else page


@bp.route("/dashboard.csv")
@read_only()
@role_required(Role.STAFF)
def export_csv() -> Response:
    view = _view()
    found = view.found
    if found is None:
        message = "The dashboard could not be exported. " + " ".join(view.asked.problems)
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
