"""Collecting platform metrics at fixed post ages, and storing snapshots by upsert.

One pass: claim the published deliveries that are due (a short transaction that moves their
`next_collect_at` past a claim, so that a second collector running at the same time takes
others), group them by channel, read each channel's figures outside any transaction, then store
each batch in its own short transaction. Snapshots are written with INSERT ... ON CONFLICT DO
UPDATE on (delivery, window, source), so a rerun or a concurrent collector can never add a
second row: a window keeps the reading closest to its nominal age, "latest" the newest.

A late reading (the worker was down) still fills its window and records the real age:
`metric_reads.is_late` says when a reading is too far past its window to compare like for
like, and reports should show such figures apart (or leave them out of comparisons).
`collected_at` is the pass's clock (the database's, read when the pass began).
A delivery the platform cannot find is flagged (`not_found_at`), never read again and never
counted as a success silently; its earlier snapshots stay.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from campaign.channels import capabilities
from campaign.channels.base import (
    ChannelAdapter,
    ChannelError,
    NotFoundOnPlatform,
    PlatformMetrics,
    PublishedRef,
    ReconnectNeeded,
    RetryableError,
    reads_metrics,
)
from campaign.db import database_now
from campaign.models import Channel, Delivery
from campaign.models.metrics import (
    LATEST_WINDOW,
    METRIC_FIELDS,
    MetricChannelState,
    MetricCollectionState,
    MetricSnapshot,
)
from campaign.services.metric_adapters import dialect_insert
from campaign.services.metric_windows import MetricsRules, next_collection, plan_collection
from campaign.services.publishing import ChannelSnapshot

log = logging.getLogger(__name__)

AdapterBuilder = Callable[[ChannelSnapshot], ChannelAdapter]
# Channel states in which a channel's figures are still read (a paused channel's posts exist).
_READABLE_CHANNELS = ("active", "paused")


@dataclass(frozen=True)
class SnapshotValues:
    """One snapshot to store: a delivery's figures at one window, from one source."""

    delivery_id: int
    window: str
    window_seconds: int | None
    source: str
    collected_at: dt.datetime
    age_seconds: int
    figures: PlatformMetrics


@dataclass
class ChannelReport:
    """What one pass did for one channel."""

    channel_id: int
    kind: str
    name: str
    collected: int = 0
    not_found: int = 0
    rate_limited: int = 0
    failed: int = 0
    error: str | None = None

    def line(self) -> str:
        text = (
            f"channel {self.channel_id} ({self.kind}, {self.name}): {self.collected} collected, "
            f"{self.not_found} not found, {self.rate_limited} rate-limited, {self.failed} failed"
        )
        return f"{text} ({self.error})" if self.error else text


@dataclass
class CollectReport:
    """What one pass did, per channel."""

    channels: list[ChannelReport] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(report, name)) for report in self.channels)

    def summary(self) -> str:
        return (
            f"{self.total('collected')} collected, {self.total('not_found')} not found, "
            f"{self.total('rate_limited')} rate-limited, {self.total('failed')} failed "
            f"on {len(self.channels)} channel(s)"
        )


@dataclass(frozen=True)
class _Due:
    """A claimed delivery: the post to read and the windows it already has."""

    ref: PublishedRef
    published_at: dt.datetime
    have: dict[str, dt.datetime]
    attempts: int


@dataclass
class _ChannelWork:
    channel: ChannelSnapshot
    name: str
    failures: int
    items: list[_Due] = field(default_factory=list)


def collect_metrics(
    factory: sessionmaker[Session],
    build: AdapterBuilder,
    rules: MetricsRules,
    now: dt.datetime,
    progress: Callable[[ChannelReport], None] | None = None,
    release: Callable[[ChannelAdapter], None] | None = None,
) -> CollectReport:
    """One pass: read every due delivery's figures and store its window and latest snapshots.

    Never raises for a platform's failure: each is recorded per channel or delivery, and a
    rate-limited or failing channel is left alone until its backoff ends.
    """
    report = CollectReport()
    for work in _claim_due(factory, rules, now):
        channel_report = ChannelReport(work.channel.id, work.channel.kind, work.name)
        try:
            _collect_channel(factory, build, rules, now, work, channel_report, release)
        except Exception as exc:  # a bug or a database error must not stop other channels
            log.exception("metrics: channel %s failed", work.channel.id)
            channel_report.error = channel_report.error or f"unexpected error: {exc}"
        report.channels.append(channel_report)
        if progress is not None:
            progress(channel_report)
    return report


def collect_now(
    factory: sessionmaker[Session],
    build: AdapterBuilder,
    rules: MetricsRules,
    progress: Callable[[ChannelReport], None] | None = None,
    release: Callable[[ChannelAdapter], None] | None = None,
) -> CollectReport:
    """One pass at the database clock (the worker's tick and `campaign metrics collect`)."""
    with factory() as session:
        now = database_now(session)
    return collect_metrics(factory, build, rules, now, progress, release)


def _reporting_kinds(session: Session) -> list[str]:
    """Channel kinds in use whose adapters can read figures (manual ones cannot)."""
    kinds = session.scalars(select(Channel.kind).distinct()).all()
    found = []
    for kind in kinds:
        try:
            caps = capabilities(kind)
        except (KeyError, ImportError):
            continue
        if caps.metrics and not caps.manual:
            found.append(kind)
    return found


def _claim_due(
    factory: sessionmaker[Session], rules: MetricsRules, now: dt.datetime
) -> list[_ChannelWork]:
    """Claim a batch of due deliveries, grouped by channel, in one short transaction."""
    state, channel_state = MetricCollectionState, MetricChannelState
    with factory.begin() as session:
        kinds = _reporting_kinds(session)
        if not kinds:
            return []
        rows = session.execute(
            select(
                Delivery.id,
                Delivery.external_id,
                Delivery.published_at,
                func.coalesce(state.attempts, 0),
                Channel.id,
                Channel.organisation_id,
                Channel.kind,
                Channel.base_url,
                Channel.credentials_encrypted,
                Channel.display_name,
                func.coalesce(channel_state.failures, 0),
            )
            .join(Channel, Channel.id == Delivery.channel_id)
            .outerjoin(state, state.delivery_id == Delivery.id)
            .outerjoin(channel_state, channel_state.channel_id == Channel.id)
            .where(
                Delivery.status == "published",
                Delivery.external_id.is_not(None),
                Delivery.published_at.is_not(None),
                Delivery.published_at >= now - rules.horizon,
                Channel.kind.in_(kinds),
                Channel.status.in_(_READABLE_CHANNELS),
                or_(state.delivery_id.is_(None), state.next_collect_at <= now),
                or_(channel_state.next_collect_at.is_(None), channel_state.next_collect_at <= now),
            )
            .order_by(func.coalesce(state.next_collect_at, Delivery.published_at), Delivery.id)
            .limit(rules.batch_size)
        ).all()
        claimed = _claim(session, [row[0] for row in rows], now + rules.claim, now)
        have = _windows_stored(session, sorted(claimed))
    work: dict[int, _ChannelWork] = {}
    for row in rows:
        delivery_id, external_id, published_at, attempts = row[:4]
        if delivery_id not in claimed or published_at is None:
            continue  # another collector took it between our read and our claim
        channel = ChannelSnapshot(row[4], row[5], row[6], row[7], row[8])
        entry = work.setdefault(channel.id, _ChannelWork(channel, row[9], row[10]))
        ref = PublishedRef(delivery_id, str(external_id), published_at)
        entry.items.append(_Due(ref, published_at, have.get(delivery_id, {}), attempts))
    return list(work.values())


def _claim(
    session: Session, delivery_ids: list[int], until: dt.datetime, now: dt.datetime
) -> set[int]:
    """Hold these deliveries until `until`; those another collector holds are not returned."""
    if not delivery_ids:
        return set()
    state = MetricCollectionState
    # In key order, so that two collectors claiming overlapping sets lock rows in one order
    # and cannot deadlock on PostgreSQL.
    stmt = dialect_insert(session, state).values(
        [{"delivery_id": i, "next_collect_at": until, "attempts": 0} for i in sorted(delivery_ids)]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[state.delivery_id],
        set_={"next_collect_at": stmt.excluded.next_collect_at},
        where=and_(state.next_collect_at.is_not(None), state.next_collect_at <= now),
    ).returning(state.delivery_id)
    return set(session.scalars(stmt).all())


def _windows_stored(session: Session, delivery_ids: list[int]) -> dict[int, dict[str, dt.datetime]]:
    found: dict[int, dict[str, dt.datetime]] = {}
    if not delivery_ids:
        return found
    rows = session.execute(
        select(MetricSnapshot.delivery_id, MetricSnapshot.window, MetricSnapshot.collected_at)
        .where(MetricSnapshot.delivery_id.in_(delivery_ids))
        .where(MetricSnapshot.source == "platform")
    )
    for delivery_id, window, collected_at in rows:
        found.setdefault(delivery_id, {})[window] = collected_at
    return found


def _chunks(items: list[_Due], size: int) -> Iterator[list[_Due]]:
    size = max(1, size)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _collect_channel(
    factory: sessionmaker[Session],
    build: AdapterBuilder,
    rules: MetricsRules,
    now: dt.datetime,
    work: _ChannelWork,
    report: ChannelReport,
    release: Callable[[ChannelAdapter], None] | None,
) -> None:
    pending = list(work.items)
    try:
        adapter = build(work.channel)
    except Exception as exc:  # undecryptable credentials, an unknown kind: the channel's problem
        error = exc if isinstance(exc, ChannelError) else ChannelError(f"unexpected error: {exc}")
        _stop_channel(factory, rules, now, work, pending, error, report)
        return
    try:
        if not reads_metrics(adapter):
            _stop_channel(
                factory, rules, now, work, pending, ChannelError("cannot read metrics"), report
            )
            return
        for chunk in _chunks(work.items, int(getattr(adapter, "metrics_batch_size", 1))):
            try:
                results = adapter.fetch_metrics([item.ref for item in chunk])  # type: ignore[attr-defined]
            except ChannelError as exc:
                _stop_channel(factory, rules, now, work, pending, exc, report)
                return
            except Exception as exc:
                log.exception("metrics: reading channel %s failed", work.channel.id)
                error = ChannelError(f"unexpected error while reading metrics: {exc}")
                _stop_channel(factory, rules, now, work, pending, error, report)
                return
            _record(factory, rules, now, chunk, results, report)
            pending = pending[len(chunk) :]
        if work.failures:
            _channel_recovered(factory, work.channel.id, now)
    finally:
        if release is not None:
            release(adapter)


def _stop_channel(
    factory: sessionmaker[Session],
    rules: MetricsRules,
    now: dt.datetime,
    work: _ChannelWork,
    pending: list[_Due],
    error: ChannelError,
    report: ChannelReport,
) -> None:
    """Leave the channel alone until its backoff (or the platform's reset) ends."""
    failures = work.failures + 1
    wait = rules.backoff(failures)
    if isinstance(error, RetryableError) and error.retry_after is not None:
        wait = dt.timedelta(seconds=max(error.retry_after, 1.0))
    retry_at = now + wait
    rate_limited = isinstance(error, RetryableError) and error.status == 429
    if rate_limited:
        report.rate_limited += len(pending)
    else:
        report.failed += len(pending)
    report.error = error.message if isinstance(error, ChannelError) else str(error)
    if isinstance(error, ReconnectNeeded):
        report.error = f"reconnect needed: {report.error}"
    log.warning("metrics: channel %s stopped until %s: %s", work.channel.id, retry_at, report.error)
    with factory.begin() as session:
        values = {
            "next_collect_at": retry_at,
            "last_error": report.error,
            "failures": failures,
            "updated_at": now,
        }
        stmt = dialect_insert(session, MetricChannelState).values(
            channel_id=work.channel.id, **values
        )
        session.execute(
            stmt.on_conflict_do_update(index_elements=[MetricChannelState.channel_id], set_=values)
        )
        if pending:
            # Give the claimed deliveries back for when the channel may be asked again.
            session.execute(
                update(MetricCollectionState)
                .where(MetricCollectionState.delivery_id.in_([i.ref.delivery_id for i in pending]))
                .values(next_collect_at=retry_at)
            )


def _channel_recovered(factory: sessionmaker[Session], channel_id: int, now: dt.datetime) -> None:
    with factory.begin() as session:
        session.execute(
            update(MetricChannelState)
            .where(MetricChannelState.channel_id == channel_id)
            .values(next_collect_at=None, last_error=None, failures=0, updated_at=now)
        )


def _record(
    factory: sessionmaker[Session],
    rules: MetricsRules,
    now: dt.datetime,
    chunk: list[_Due],
    results: dict[str, Any],
    report: ChannelReport,
) -> None:
    """Store one batch's snapshots and each delivery's next collection time."""
    snapshots: list[SnapshotValues] = []
    states: list[tuple[int, dict[str, Any]]] = []
    for item in chunk:
        result = results.get(item.ref.external_id)
        if isinstance(result, NotFoundOnPlatform):
            report.not_found += 1
            log.warning(
                "metrics: delivery %s not found on the platform: %s",
                item.ref.delivery_id,
                result.reason,
            )
            states.append(
                (
                    item.ref.delivery_id,
                    {"not_found_at": now, "next_collect_at": None, "last_error": result.reason},
                )
            )
        elif isinstance(result, PlatformMetrics):
            report.collected += 1
            snapshots += _snapshots_for(item, result, rules, now)
            filled = set(item.have) | {
                s.window for s in snapshots if s.delivery_id == item.ref.delivery_id
            }
            states.append(
                (
                    item.ref.delivery_id,
                    {
                        "last_collected_at": now,
                        "last_error": None,
                        "attempts": 0,
                        "next_collect_at": next_collection(item.published_at, now, filled, rules),
                    },
                )
            )
        else:
            report.failed += 1
            attempts = item.attempts + 1
            states.append(
                (
                    item.ref.delivery_id,
                    {
                        "attempts": attempts,
                        "last_error": "The platform's answer did not include this post.",
                        "next_collect_at": now + rules.backoff(attempts),
                    },
                )
            )
    with factory.begin() as session:
        store_snapshots(session, snapshots)
        for delivery_id, values in states:
            session.execute(
                update(MetricCollectionState)
                .where(MetricCollectionState.delivery_id == delivery_id)
                .values(**values)
            )


def _snapshots_for(
    item: _Due, figures: PlatformMetrics, rules: MetricsRules, now: dt.datetime
) -> list[SnapshotValues]:
    plan = plan_collection(item.published_at, now, item.have, rules)
    age = max(0, int((now - item.published_at).total_seconds()))
    made = [
        SnapshotValues(item.ref.delivery_id, w.label, w.seconds, "platform", now, age, figures)
        for w in plan.windows
    ]
    if plan.latest:
        made.append(
            SnapshotValues(item.ref.delivery_id, LATEST_WINDOW, None, "platform", now, age, figures)
        )
    return made


def store_snapshots(
    session: Session, snapshots: Sequence[SnapshotValues], replace_ties: bool = False
) -> None:
    """Upsert snapshots on (delivery, window, source); flushes, never commits.

    A window keeps the reading closest to its nominal age (the one made at the smaller age),
    "latest" the most recent reading, so reruns and concurrent collectors never add a row or
    move a figure backwards. `replace_ties`: a reading at the same age as the stored one
    replaces it (an import correcting figures it gave before); "latest" always does.
    Each (delivery, window, source) may appear once in `snapshots`.
    """
    windows = [s for s in snapshots if s.window != LATEST_WINDOW]
    latest = [s for s in snapshots if s.window == LATEST_WINDOW]
    snapshot = MetricSnapshot
    key = [snapshot.delivery_id, snapshot.window, snapshot.source]
    for group, newer in ((windows, False), (latest, True)):
        if not group:
            continue
        stmt = dialect_insert(session, snapshot).values([_row(s) for s in group])
        replace = {
            name: getattr(stmt.excluded, name)
            for name in (*METRIC_FIELDS, "collected_at", "age_seconds", "window_seconds")
        }
        if newer:
            condition = stmt.excluded.collected_at >= snapshot.collected_at
        else:
            condition = (
                stmt.excluded.age_seconds <= snapshot.age_seconds
                if replace_ties
                else stmt.excluded.age_seconds < snapshot.age_seconds
            )
        session.execute(
            stmt.on_conflict_do_update(index_elements=key, set_=replace, where=condition)
        )


def _row(values: SnapshotValues) -> dict[str, Any]:
    row = {name: getattr(values.figures, name) for name in METRIC_FIELDS}
    row.update(
        delivery_id=values.delivery_id,
        window=values.window,
        window_seconds=values.window_seconds,
        source=values.source,
        collected_at=values.collected_at,
        age_seconds=values.age_seconds,
    )
    return row
