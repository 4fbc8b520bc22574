"""Benchmark the experiment report and the framing report over 1,000,000 metric snapshots.

Run: .venv/bin/python bench/report.py [--posts 1000] [--snapshots 1000000] [--repeat 5]
                                      [--db sqlite|postgresql|both]

Data: one organisation, 20 experiments of 3 arms (control "bare link", two other framings whose
tags differ between experiments), 1,000 published posts (50 per experiment), one delivery each
with a tracked link and 0-40 clicks spread over two days, and 1,000 snapshots per delivery
(333 window labels x 3 sources, plus "latest"), their ages spread over two days. Reports read
each post's figures at 24h.

Per database it prints, best of --repeat (interleaved), in one run:
1. the experiment report (`experiment_report`, one experiment of 50 posts);
2. the best raw SQL aggregate for the same numbers: one statement, each post's latest snapshot
   at or before 24h by an index seek (LATERAL on PostgreSQL, a correlated subquery on SQLite)
   and its tracked clicks up to 24h; then the engine (`compare`, numpy/scipy) on that aggregate;
3. the ratio report / (raw SQL + engine); target <= 2;
4. the same for the framing report over all 20 experiments (`framing_report`, against the raw
   aggregate of all 1,000 posts plus `framing_tag_effects` and `league_table` on it).
Before timing it checks that both reports give the same clicks and impressions per arm as the
raw aggregate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import database  # noqa: E402

from campaign.analysis import (  # noqa: E402
    Arm,
    Post,
    TaggedArm,
    compare,
    framing_tag_effects,
    league_table,
)
from campaign.analysis import Experiment as TaggedExperiment  # noqa: E402
from campaign.db import make_engine, make_session_factory  # noqa: E402
from campaign.models import (  # noqa: E402
    Campaign,
    Channel,
    Delivery,
    Experiment,
    ExperimentArm,
    ExperimentSlot,
    FramingTag,
    Message,
    Variant,
)
from campaign.models import Post as PostRow  # noqa: E402
from campaign.models.engagement import TrackedLink  # noqa: E402
from campaign.services.experiment_reads import slot_label  # noqa: E402
from campaign.services.experiment_reports import experiment_report  # noqa: E402
from campaign.services.framing_report import framing_report, tagged_experiments  # noqa: E402
from campaign.services.metric_reads import lateness_allowed  # noqa: E402
from campaign.services.organisations import create_organisation  # noqa: E402

EXPERIMENTS, ARMS = 20, 3
AGE = 86400
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
START = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
OTHER_TAGS = ("context", "question", "statistic", "story", "call_to_action")
SOURCES = ("platform", "manual", "csv")
COLUMNS = (
    'delivery_id, "window", source, window_seconds, collected_at, age_seconds, impressions, '
    "link_clicks, likes"
)


def _content(session: Session) -> tuple[int, int, list[int]]:
    """Organisation, channel and the experiments with their arms and slots (posts made later)."""
    org = create_organisation(session, "bench", "Bench University", "Europe/London", NOW)
    channel = Channel(
        organisation_id=org.id, kind="outbox", display_name="Careers", audience="students",
        created_at=NOW,
    )  # fmt: skip
    session.add(channel)
    session.flush()
    tags = {
        t.key: t
        for t in session.scalars(select(FramingTag).where(FramingTag.organisation_id == org.id))
    }
    campaign = Campaign(organisation_id=org.id, name="Bench", created_at=NOW)
    session.add(campaign)
    ids = []
    for e in range(EXPERIMENTS):
        message = Message(campaign=campaign, title=f"Message {e}", created_at=NOW)
        keys = ["bare_link", OTHER_TAGS[e % 5], OTHER_TAGS[(e + 1 + e // 5) % 5]]
        if keys[2] == keys[1]:
            keys[2] = OTHER_TAGS[(e + 2) % 5]
        variants = []
        for key in keys:
            variant = Variant(
                message=message, label=key, text=key, audience="students", created_at=NOW
            )
            variant.framing_tags = [tags[key]]
            variants.append(variant)
        session.add_all(variants)
        session.flush()
        exp = Experiment(
            organisation_id=org.id, message_id=message.id, name=f"Experiment {e}",
            planned_posts_per_arm=10, seed=e, status="concluded" if e % 2 else "running",
            verdict_rule="sequential", created_at=NOW,
        )  # fmt: skip
        exp.arms = [
            ExperimentArm(variant_id=v.id, name=v.label, position=i) for i, v in enumerate(variants)
        ]
        session.add(exp)
        session.flush()
        ids.append(exp.id)
    return org.id, channel.id, ids


def _stamp(kind: str, value: dt.datetime) -> Any:
    """A datetime as the driver stores it: SQLAlchemy's SQLite text, or the aware value."""
    if kind == "sqlite":
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def build(url: str, kind: str, posts: int, snapshots: int) -> tuple[int, list[int]]:
    """Store the organisation's experiments, posts, clicks and snapshots; returns ids."""
    rng = random.Random(18)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    per_delivery = snapshots // posts
    windows = max(1, (per_delivery - 1) // len(SOURCES))
    step = (2 * 86400) // windows
    with factory.begin() as session:
        org_id, channel_id, exp_ids = _content(session)
        arms = {
            e: session.scalars(
                select(ExperimentArm.id)
                .where(ExperimentArm.experiment_id == e)
                .order_by(ExperimentArm.position)
            ).all()
            for e in exp_ids
        }
        deliveries: list[tuple[int, dt.datetime, float]] = []
        for n in range(posts):
            e = exp_ids[n % EXPERIMENTS]
            k = n // EXPERIMENTS
            at = START + dt.timedelta(days=k, hours=(n % EXPERIMENTS) % 12)
            arm_index = (k + e) % ARMS
            post = PostRow(
                organisation_id=org_id, text="Hello", status="approved", scheduled_for=at,
                created_at=at,
            )  # fmt: skip
            delivery = Delivery(
                channel_id=channel_id, due_at=at, idempotency_key=uuid.uuid4().hex,
                status="published", published_at=at, updated_at=at,
            )  # fmt: skip
            post.deliveries.append(delivery)
            session.add(post)
            session.flush()
            session.add(
                ExperimentSlot(
                    experiment_id=e, channel_id=channel_id, scheduled_at=at, position=k,
                    arm_id=arms[e][arm_index], post_id=post.id,
                )
            )  # fmt: skip
            session.add(
                TrackedLink(
                    code=uuid.uuid4().hex[:12], delivery_id=delivery.id, organisation_id=org_id,
                    target_url="https://example.ac.uk/", target_sha256=uuid.uuid4().hex * 2,
                )
            )  # fmt: skip
            rate = 0.01 * (1 + 0.3 * arm_index)
            deliveries.append((delivery.id, at, rate))
        session.flush()
        links = dict(session.execute(select(TrackedLink.delivery_id, TrackedLink.id)).all())
        clicks = []
        for delivery_id, at, _rate in deliveries:
            for _ in range(rng.randint(0, 40)):
                when = at + dt.timedelta(seconds=rng.randint(0, 2 * 86400))
                clicks.append((links[delivery_id], _stamp(kind, when), when.date().isoformat()))
        session.execute(
            text(
                "INSERT INTO link_clicks (link_id, clicked_at, day, is_first_today) "
                "VALUES (:l, :c, :d, false)"
            ),
            [{"l": link, "c": c, "d": d} for link, c, d in clicks],
        )
        for first in range(0, len(deliveries), 100):
            batch = deliveries[first : first + 100]
            _copy(session, kind, _snapshots(rng, kind, batch, windows, step))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return org_id, exp_ids


def _snapshots(
    rng: random.Random,
    kind: str,
    deliveries: list[tuple[int, dt.datetime, float]],
    windows: int,
    step: int,
) -> list[tuple[Any, ...]]:
    """Every window and source of these deliveries, plus "latest", ages spread over two days."""
    rows = []
    for delivery_id, at, rate in deliveries:
        reach = rng.randint(500, 5000)
        for w in range(windows):
            age = (w + 1) * step
            seen = int(reach * min(1.0, age / 86400) + w)
            for s, source in enumerate(SOURCES):
                collected = at + dt.timedelta(seconds=age + 30 * s)
                rows.append(
                    (delivery_id, f"w{w}", source, age, _stamp(kind, collected), age,
                     seen + s, int(seen * rate), w)
                )  # fmt: skip
        latest = at + dt.timedelta(days=3)
        rows.append(
            (delivery_id, "latest", "platform", None, _stamp(kind, latest), 3 * 86400,
             reach * 2, int(reach * 2 * rate), 0)
        )  # fmt: skip
    return rows


def _copy(session: Session, kind: str, rows: list[tuple[Any, ...]]) -> None:
    """Bulk-load the snapshots: COPY on PostgreSQL, executemany on SQLite."""
    raw = session.connection().connection.driver_connection
    if kind == "postgresql":
        with raw.cursor().copy(f"COPY metric_snapshots ({COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    raw.executemany(
        f"INSERT INTO metric_snapshots ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
    )


RAW_PG = """
SELECT s.experiment_id, a.position, d.published_at, m.impressions,
       (SELECT count(*) FROM link_clicks c JOIN tracked_links t ON t.id = c.link_id
         WHERE t.delivery_id = d.id
           AND c.clicked_at <= d.published_at + make_interval(secs => :age))
FROM experiment_slots s
JOIN experiment_arms a ON a.id = s.arm_id
JOIN deliveries d ON d.post_id = s.post_id AND d.status = 'published'
CROSS JOIN LATERAL (
  SELECT impressions FROM metric_snapshots ms
  WHERE ms.delivery_id = d.id AND ms.age_seconds <= :reading_age
  ORDER BY ms.age_seconds DESC, ms.collected_at DESC, ms.id DESC LIMIT 1) m
WHERE s.experiment_id = ANY(:ids)
"""
RAW_SQLITE = """
SELECT s.experiment_id, a.position, d.published_at,
       (SELECT impressions FROM metric_snapshots ms
         WHERE ms.delivery_id = d.id AND ms.age_seconds <= :reading_age
         ORDER BY ms.age_seconds DESC, ms.collected_at DESC, ms.id DESC LIMIT 1),
       (SELECT count(*) FROM link_clicks c JOIN tracked_links t ON t.id = c.link_id
         WHERE t.delivery_id = d.id
           AND c.clicked_at <= strftime('%Y-%m-%d %H:%M:%f', d.published_at, :shift) || '000')
FROM experiment_slots s
JOIN experiment_arms a ON a.id = s.arm_id
JOIN deliveries d ON d.post_id = s.post_id AND d.status = 'published'
WHERE s.experiment_id IN ({ids})
"""


# A reading made a little after the age counts as the reading at that age (metric_reads).
READING = {"age": AGE, "reading_age": AGE + lateness_allowed(AGE)}


def raw_aggregate(session: Session, kind: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """(experiment, arm position, published_at, impressions, clicks) per post, one statement."""
    if kind == "postgresql":
        return list(session.execute(text(RAW_PG), {**READING, "ids": ids}).all())
    sql = RAW_SQLITE.format(ids=", ".join(str(int(i)) for i in ids))
    return list(session.execute(text(sql), {**READING, "shift": f"+{AGE} seconds"}).all())


def _published(value: Any) -> dt.datetime:
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def engine_compare(rows: list[tuple[Any, ...]]) -> Any:
    """The engine on the raw aggregate of one experiment: per-post arms with slots, compare()."""
    import zoneinfo

    zone = zoneinfo.ZoneInfo("Europe/London")
    posts: dict[int, list[Post]] = {}
    for _e, position, published, impressions, clicks in rows:
        slot = slot_label("Careers", _published(published), zone)
        posts.setdefault(position, []).append(Post(impressions, clicks, slot))
    arms = [
        Arm(str(p), sum(x.impressions for x in ps), sum(x.clicks for x in ps), tuple(ps))
        for p, ps in sorted(posts.items())
    ]
    return compare(arms)


def raw_cells(rows: list[tuple[Any, ...]], ids: list[int]) -> list[list[tuple[int, int]]]:
    """(clicks, impressions) per experiment and arm position, from the raw aggregate."""
    cells: dict[tuple[int, int], tuple[int, int]] = {}
    for e, position, _published_at, impressions, clicks in rows:
        before = cells.get((e, position), (0, 0))
        cells[(e, position)] = (before[0] + clicks, before[1] + impressions)
    return [[cells.get((e, p), (0, 0)) for p in range(ARMS)] for e in ids]


def framing_cells(session: Session, org_id: int) -> list[list[tuple[int, int]]]:
    """(clicks, impressions) per experiment and arm, as the framing report gives the engine."""
    experiments, _controls, _left_out = tagged_experiments(session, org_id)
    return [[(a.clicks, a.impressions) for a in e.arms] for e in experiments]


def engine_framing(rows: list[tuple[Any, ...]], tags: dict[tuple[int, int], str]) -> Any:
    """The engine on the raw aggregate of all experiments: tag effects and league table."""
    cells: dict[tuple[int, int], list[int]] = {}
    for e, position, _published_at, impressions, clicks in rows:
        cell = cells.setdefault((e, position), [0, 0])
        cell[0] += clicks
        cell[1] += impressions
    experiments = []
    for e in sorted({k[0] for k in cells}):
        arms = tuple(
            TaggedArm(tags[(e, p)], *cells[(e, p)]) for p in range(ARMS) if (e, p) in cells
        )
        experiments.append(TaggedExperiment(str(e), arms))
    effects = framing_tag_effects(experiments, "bare_link")
    return league_table(effects)


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(kind: str, posts: int, snapshots: int, repeat: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="report-bench-") as tmp,
        database(kind, Path(tmp), "report_bench") as url,
    ):
        started = time.perf_counter()
        org_id, exp_ids = build(url, kind, posts, snapshots)
        built = time.perf_counter() - started
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory() as session:
            count = session.scalar(text("SELECT count(*) FROM metric_snapshots"))
            tags = {
                (e, a.position): a.name
                for e in exp_ids
                for a in session.scalars(
                    select(ExperimentArm).where(ExperimentArm.experiment_id == e)
                )
            }
            one = exp_ids[0]
            # Same numbers both ways, checked once before timing.
            report = experiment_report(session, one, org_id, NOW)
            raw = raw_aggregate(session, kind, [one])
            assert [a.impressions for a in report.comparison.arms] == [
                a.impressions for a in engine_compare(raw).arms
            ], "the report and the raw aggregate disagree"
            assert [a.clicks for a in report.comparison.arms] == [
                a.clicks for a in engine_compare(raw).arms
            ], "the report and the raw aggregate disagree on clicks"
            keys = ("exp", "exp_sql", "exp_stats", "fr", "fr_sql", "fr_stats")
            steps: dict[str, list[float]] = {k: [] for k in keys}
            all_rows = raw_aggregate(session, kind, exp_ids)
            # The framing report adds up its arms in the database: same totals per arm.
            assert framing_cells(session, org_id) == raw_cells(all_rows, exp_ids), (
                "the framing report and the raw aggregate disagree"
            )
            for _ in range(repeat):
                steps["exp"].append(best(lambda: experiment_report(session, one, org_id, NOW), 1))
                steps["exp_sql"].append(best(lambda: raw_aggregate(session, kind, [one]), 1))
                steps["exp_stats"].append(best(lambda: engine_compare(raw), 1))
                steps["fr"].append(best(lambda: framing_report(session, org_id, NOW), 1))
                steps["fr_sql"].append(best(lambda: raw_aggregate(session, kind, exp_ids), 1))
                steps["fr_stats"].append(best(lambda: engine_framing(all_rows, tags), 1))
        engine.dispose()
        t = {k: min(v) for k, v in steps.items()}
        print(f"\n{kind}: {count:,} snapshots, {posts:,} posts, built in {built:.0f} s")
        print(f"{'step':<52}{'ms':>10}")
        for label, key in (
            ("experiment report (50 posts, 3 arms)", "exp"),
            ("  raw SQL aggregate (latest snapshot per post)", "exp_sql"),
            ("  engine (compare) on that aggregate", "exp_stats"),
            ("framing report (20 experiments, 1,000 posts)", "fr"),
            ("  raw SQL aggregate (all experiments)", "fr_sql"),
            ("  engine (tag effects, league) on that aggregate", "fr_stats"),
        ):
            print(f"{label:<52}{t[key] * 1000:>10.1f}")
        print(
            f"experiment report / (raw + engine) = {t['exp'] / (t['exp_sql'] + t['exp_stats']):.2f}"
            " (target <= 2)"
        )
        print(
            f"framing report / (raw + engine) = {t['fr'] / (t['fr_sql'] + t['fr_stats']):.2f}"
            " (target <= 2)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--snapshots", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for kind in kinds:
        run(kind, args.posts, args.snapshots, args.repeat)


if __name__ == "__main__":
    main()
