"""Engagement figures entered by people: a CSV file (previewed, then saved) or the post page's form.

A row names a post (`post_id`) or a platform post (`external_id`); both are looked up in the
acting organisation only, so another organisation's ids are simply "not found". Each good
reading is stored as a snapshot of source "csv" (or "manual" for the form) in the largest age
window it is old enough for (from `[metrics] ages`), and as that source's "latest". Storing is
an upsert with ties replaced: importing the same file again changes nothing, and a corrected
file (same `collected_at`, new figures) replaces the figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaign.channels.base import PlatformMetrics
from campaign.models import Delivery, Organisation, Post, Role
from campaign.models.metrics import LATEST_WINDOW
from campaign.services import NotFound, PermissionDenied, ServiceError, audit
from campaign.services.audit import Actor
from campaign.services.csv_files import CsvFileError
from campaign.services.engagement_csv import EngagementRow, RowProblem, parse
from campaign.services.metric_windows import Window, windows_from
from campaign.services.metrics import SnapshotValues, store_snapshots

# The windows of the default `[metrics] ages`, for callers without settings at hand.
DEFAULT_WINDOWS = windows_from(["1h", "24h", "7d"])
# A reading may be stamped a little ahead of our clock (the reader's clock runs fast).
FUTURE_SLACK = dt.timedelta(minutes=5)
# The CSV's `clicks` is the platform's count of clicks on the post's link.
CSV_TO_FIELD = {"clicks": "link_clicks"}
MANUAL_FIGURES = (
    "impressions",
    "link_clicks",
    "likes",
    "reposts",
    "replies",
    "quotes",
    "bookmarks",
    "profile_clicks",
)
_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Reading:
    """A good row matched to one published delivery: what will be stored for it."""

    line: int
    post_id: int
    delivery_id: int
    channel: str
    external_id: str | None
    collected_at: dt.datetime
    published_at: dt.datetime
    window: Window | None  # None: younger than the smallest age; only "latest" is kept
    figures: PlatformMetrics

    @property
    def age_seconds(self) -> int:
        return max(0, int((self.collected_at - self.published_at).total_seconds()))

    def snapshots(self, source: str) -> list[SnapshotValues]:
        made = [
            SnapshotValues(
                self.delivery_id,
                LATEST_WINDOW,
                None,
                source,
                self.collected_at,
                self.age_seconds,
                self.figures,
            )
        ]
        if self.window is not None:
            made.insert(
                0,
                SnapshotValues(
                    self.delivery_id,
                    self.window.label,
                    self.window.seconds,
                    source,
                    self.collected_at,
                    self.age_seconds,
                    self.figures,
                ),
            )
        return made


@dataclass
class Preview:
    """Every row of a file: the good ones resolved, the bad ones with line and reason."""

    readings: list[Reading] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # about the whole file
    skipped: list[int] = field(default_factory=list)  # tracked-link lines of an export

    @property
    def bad_lines(self) -> list[int]:
        return sorted({p.line for p in self.problems})

    def problems_on(self, line: int) -> list[RowProblem]:
        return [p for p in self.problems if p.line == line]


@dataclass
class CommitReport:
    saved: list[Reading] = field(default_factory=list)
    refused: list[RowProblem] = field(default_factory=list)
    not_chosen: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


# --- resolving -------------------------------------------------------------------------------


def window_for(age_seconds: int, windows: Sequence[Window]) -> Window | None:
    """The largest window the reading is old enough for; None when younger than all of them."""
    fitting = [w for w in windows if w.seconds <= age_seconds]
    return max(fitting, key=lambda w: w.seconds) if fitting else None


def figures_of(row: EngagementRow) -> PlatformMetrics:
    """The row's figures as stored: the CSV's `clicks` is the platform's `link_clicks`."""
    return PlatformMetrics(**{CSV_TO_FIELD.get(k, k): v for k, v in row.figures.items()})


def _published(deliveries: Iterable[Delivery]) -> list[Delivery]:
    return [d for d in deliveries if d.status == "published" and d.published_at is not None]


def _names(deliveries: Sequence[Delivery]) -> str:
    return ", ".join(d.channel.display_name for d in deliveries)


class _Index:
    """The organisation's posts and published deliveries that the rows name, looked up once."""

    def __init__(self, session: Session, organisation_id: int, rows: Sequence[EngagementRow]):
        post_ids = sorted({r.post_id for r in rows if r.post_id is not None})
        external_ids = sorted({r.external_id for r in rows if r.external_id is not None})
        self.posts: dict[int, Post] = {}
        for chunk in _chunks(post_ids):
            found = session.scalars(
                select(Post)
                .where(Post.organisation_id == organisation_id, Post.id.in_(chunk))
                .options(selectinload(Post.deliveries).selectinload(Delivery.channel))
            )
            self.posts.update({p.id: p for p in found})
        self.by_external: dict[str, list[Delivery]] = {}
        for chunk in _chunks(external_ids):
            deliveries = session.scalars(
                select(Delivery)
                .join(Post, Post.id == Delivery.post_id)
                .where(Post.organisation_id == organisation_id)
                .where(Delivery.external_id.in_(chunk))
                .where(Delivery.status == "published", Delivery.published_at.is_not(None))
                .options(selectinload(Delivery.channel))
                .order_by(Delivery.id)
            )
            for delivery in deliveries:
                self.by_external.setdefault(str(delivery.external_id), []).append(delivery)

    def find(self, row: EngagementRow) -> tuple[Delivery | None, str, str]:
        """The row's delivery, or the column at fault and why there is none."""
        post = None
        if row.post_id is not None:
            post = self.posts.get(row.post_id)
            if post is None:
                return None, "post_id", f"no post {row.post_id} in this organisation."
        if row.external_id is not None:
            matches = self.by_external.get(row.external_id, [])
            if post is not None:
                mine = [d for d in matches if d.post_id == post.id]
                if not mine and matches:
                    others = sorted({d.post_id for d in matches})
                    return (
                        None,
                        "external_id",
                        (
                            f"external_id “{row.external_id}” is post "
                            f"{', '.join(map(str, others))}, not post {post.id}; "
                            "correct one of them or leave one out."
                        ),
                    )
                matches = mine
            if not matches:
                return (
                    None,
                    "external_id",
                    (
                        f"no published post with external_id “{row.external_id}” "
                        "in this organisation."
                    ),
                )
            if len(matches) > 1:
                posts = ", ".join(str(d.post_id) for d in matches)
                return (
                    None,
                    "external_id",
                    (
                        f"external_id “{row.external_id}” is on {len(matches)} channels "
                        f"({_names(matches)}; posts {posts}); add the post_id column to say which."
                    ),
                )
            return matches[0], "", ""
        assert post is not None
        published = _published(post.heads)  # a thread's replies are read by delivery id
        if not published:
            return None, "post_id", f"post {post.id} has not been published on any channel yet."
        if len(published) > 1:
            return (
                None,
                "post_id",
                (
                    f"post {post.id} went out on {len(published)} channels ({_names(published)}); "
                    "use the external_id column to say which."
                ),
            )
        return published[0], "", ""


def _chunks(values: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _when_problem(delivery: Delivery, collected_at: dt.datetime, now: dt.datetime) -> str | None:
    published_at = delivery.published_at
    assert published_at is not None
    if collected_at < published_at:
        return (
            f"{_iso(collected_at)} is before the post went out on "
            f"{delivery.channel.display_name} ({_iso(published_at)})."
        )
    if collected_at > now + FUTURE_SLACK:
        return f"{_iso(collected_at)} is in the future."
    return None


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat(timespec="seconds")


def _resolve(
    session: Session,
    organisation_id: int,
    rows: Sequence[EngagementRow],
    now: dt.datetime,
    windows: Sequence[Window],
    label: str = "line",
) -> tuple[list[Reading], list[RowProblem]]:
    index = _Index(session, organisation_id, rows)
    readings: list[Reading] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[int, dt.datetime], tuple[int, PlatformMetrics]] = {}
    for row in rows:
        delivery, column, reason = index.find(row)
        if delivery is None:
            problems.append(RowProblem(row.line, column, reason))
            continue
        when = _when_problem(delivery, row.collected_at, now)
        if when is not None:
            problems.append(RowProblem(row.line, "collected_at", when))
            continue
        key = (delivery.id, row.collected_at)
        figures = figures_of(row)
        if key in seen and seen[key][1] != figures:
            problems.append(
                RowProblem(
                    row.line,
                    None,
                    f"gives other figures than {label} {seen[key][0]} for the same post, channel "
                    "and collected_at; keep one of them.",
                )
            )
            continue
        # The same figures again (an export's window and "latest" lines of one reading): fine.
        seen.setdefault(key, (row.line, figures))
        assert delivery.published_at is not None
        age = max(0, int((row.collected_at - delivery.published_at).total_seconds()))
        readings.append(
            Reading(
                line=row.line,
                post_id=delivery.post_id,
                delivery_id=delivery.id,
                channel=delivery.channel.display_name,
                external_id=delivery.external_id,
                collected_at=row.collected_at,
                published_at=delivery.published_at,
                window=window_for(age, windows),
                figures=figures,
            )
        )
    return readings, problems


# --- the CSV file ----------------------------------------------------------------------------


def preview(
    session: Session,
    organisation: Organisation,
    data: bytes,
    now: dt.datetime,
    windows: Sequence[Window] = DEFAULT_WINDOWS,
) -> Preview:
    """Every row read and matched to a delivery, every bad one with its reason; nothing saved."""
    try:
        parsed = parse(data)
    except CsvFileError as exc:
        return Preview(errors=exc.messages)
    readings, problems = _resolve(session, organisation.id, parsed.rows, now, windows)
    every = sorted(parsed.problems + problems, key=lambda p: p.line)
    return Preview(readings=readings, problems=every, skipped=parsed.skipped)


def commit(
    session: Session,
    actor: Actor,
    organisation: Organisation,
    data: bytes,
    now: dt.datetime,
    lines: set[int] | None = None,
    windows: Sequence[Window] = DEFAULT_WINDOWS,
) -> CommitReport:
    """Read the file again and save its good rows (or the chosen `lines`) as "csv" snapshots.

    Flushes with the caller's transaction and records one audit event with the count.
    """
    _require_staff(actor, organisation)
    try:
        parsed = parse(data)
    except CsvFileError as exc:
        return CommitReport(errors=exc.messages)
    report = CommitReport(skipped=parsed.skipped)
    rows = parsed.rows
    if lines is not None:
        report.not_chosen = sorted(r.line for r in rows if r.line not in lines)
        rows = [r for r in rows if r.line in lines]
    readings, problems = _resolve(session, organisation.id, rows, now, windows)
    report.refused = sorted(parsed.problems + problems, key=lambda p: p.line)
    save_readings(session, readings, "csv")
    report.saved = readings
    audit.record(
        session,
        actor,
        "engagement.imported",
        "organisation",
        organisation.id,
        now,
        saved=len(readings),
        refused=len({p.line for p in report.refused}),
        not_chosen=len(report.not_chosen),
    )
    return report


def save_readings(session: Session, readings: Sequence[Reading], source: str) -> None:
    """Store readings (each delivery and collected_at at most once) as snapshots of `source`.

    A window keeps the reading at the smallest age (the same age: the newer figures); "latest"
    keeps the newest reading. Several readings of one delivery for one window are reduced here
    first, since one upsert statement may not touch a row twice.
    """
    chosen: dict[tuple[int, str], SnapshotValues] = {}
    for reading in readings:
        for snapshot in reading.snapshots(source):
            key = (snapshot.delivery_id, snapshot.window)
            held = chosen.get(key)
            if held is None or _better(snapshot, held):
                chosen[key] = snapshot
    if chosen:
        store_snapshots(session, list(chosen.values()), replace_ties=True)
        session.flush()


def _better(new: SnapshotValues, held: SnapshotValues) -> bool:
    if new.window == LATEST_WINDOW:
        return new.collected_at > held.collected_at
    return new.age_seconds < held.age_seconds


def _require_staff(actor: Actor, organisation: Organisation) -> None:
    if actor.organisation_id != organisation.id:
        raise PermissionDenied("You can only enter figures for your own organisation.")
    try:
        allowed = actor.role is not None and Role(actor.role).covers(Role.STAFF)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied("Only a staff member or above can enter engagement figures.")


# --- one reading at a time (the post page's form, the API) -----------------------------------


@dataclass(frozen=True)
class ItemResult:
    """What became of one reading sent alone or in a batch: saved, or refused with the reason."""

    index: int
    saved: bool
    reason: str | None = None
    reading: Reading | None = None


def save_items(
    session: Session,
    actor: Actor,
    organisation: Organisation,
    rows: Sequence[EngagementRow],
    now: dt.datetime,
    source: str = "csv",
    windows: Sequence[Window] = DEFAULT_WINDOWS,
) -> list[ItemResult]:
    """Save each good reading, refuse each bad one with its reason; one audit event for all.

    `rows[i].line` is taken as the item's number (its position in the request).
    """
    _require_staff(actor, organisation)
    readings, problems = _resolve(session, organisation.id, rows, now, windows, "item")
    save_readings(session, readings, source)
    by_line = {r.line: r for r in readings}
    refused = {p.line: f"{p.column}: {p.message}" if p.column else p.message for p in problems}
    results = [
        ItemResult(row.line, row.line in by_line, refused.get(row.line), by_line.get(row.line))
        for row in rows
    ]
    audit.record(
        session,
        actor,
        "engagement.imported",
        "organisation",
        organisation.id,
        now,
        source=source,
        saved=len(readings),
        refused=len(refused),
    )
    return results


def find_post(session: Session, organisation_id: int, post_id: int) -> Post | None:
    """The organisation's post with its deliveries and their channels; None for any other."""
    if not 0 < post_id <= _MAX_ID:
        return None
    return session.scalar(
        select(Post)
        .where(Post.id == post_id, Post.organisation_id == organisation_id)
        .options(selectinload(Post.deliveries).selectinload(Delivery.channel))
    )


def check_delivery(
    session: Session, organisation: Organisation, post_id: int, delivery_id: int
) -> Delivery:
    """The organisation's delivery of that post; NotFound for anything else."""
    delivery = None
    if 0 < post_id <= _MAX_ID and 0 < delivery_id <= _MAX_ID:
        delivery = session.scalar(
            select(Delivery)
            .join(Post, Post.id == Delivery.post_id)
            .where(Delivery.id == delivery_id, Delivery.post_id == post_id)
            .where(Post.organisation_id == organisation.id)
            .options(selectinload(Delivery.channel))
        )
    if delivery is None:
        raise NotFound("That post or channel is not in your organisation.")
    return delivery


def save_manual(
    session: Session,
    actor: Actor,
    organisation: Organisation,
    post_id: int,
    delivery_id: int,
    figures: Mapping[str, int | None],
    collected_at: dt.datetime,
    now: dt.datetime,
    windows: Sequence[Window] = DEFAULT_WINDOWS,
) -> Reading:
    """Save figures a person read off a platform for one published delivery, as "manual".

    `figures` are keyed by the stored names (`link_clicks`, not the CSV's `clicks`).
    NotFound for another organisation's post or delivery; ServiceError naming the problem.
    """
    _require_staff(actor, organisation)
    delivery = check_delivery(session, organisation, post_id, delivery_id)
    if delivery.status != "published" or delivery.published_at is None:
        raise ServiceError(
            f"The post has not gone out on {delivery.channel.display_name} yet, "
            "so it has no figures to enter."
        )
    unknown = set(figures) - set(MANUAL_FIGURES)
    if unknown:
        raise ServiceError(f"Unknown figure: {', '.join(sorted(unknown))}.")
    for name, value in figures.items():
        if value is not None and not 0 <= value <= 2**31 - 1:
            raise ServiceError(
                f"{name.replace('_', ' ').capitalize()} must be a whole number from 0 to "
                f"{2**31 - 1:,}."
            )
    if all(v is None for v in figures.values()):
        raise ServiceError("Enter at least one figure.")
    collected_at = collected_at.astimezone(dt.UTC)
    when = _when_problem(delivery, collected_at, now)
    if when is not None:
        raise ServiceError(f"As of: {when}")
    published_at = delivery.published_at
    age = max(0, int((collected_at - published_at).total_seconds()))
    reading = Reading(
        line=0,
        post_id=post_id,
        delivery_id=delivery.id,
        channel=delivery.channel.display_name,
        external_id=delivery.external_id,
        collected_at=collected_at,
        published_at=published_at,
        window=window_for(age, windows),
        figures=PlatformMetrics(**dict(figures)),
    )
    save_readings(session, [reading], "manual")
    audit.record(
        session,
        actor,
        "engagement.entered",
        "delivery",
        delivery.id,
        now,
        post_id=post_id,
        collected_at=_iso(collected_at),
        window=reading.window.label if reading.window else None,
    )
    return reading
