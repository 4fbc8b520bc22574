"""Benchmark the publishing engine against the raw database claim-and-update rate.

Run: .venv/bin/python bench/dispatch.py [--db sqlite|postgresql|both] [--deliveries 10000]
     [--workers 2] [--lateness-posts 30] [--profile]

For each database (a SQLite file in WAL mode; a throwaway PostgreSQL cluster) it:
1. seeds N approved posts on one outbox channel, each with one delivery due a few seconds ago;
2. runs `--workers` worker processes, each looping Dispatcher.dispatch() until a pass claims
   nothing, and times the run until the last delivery is published (engine rate);
3. checks in SQL that every delivery was published exactly once;
4. re-seeds N fresh deliveries and, with the same number of processes and the same driver, runs
   only what any engine must do per delivery: one batch claim (UPDATE ... RETURNING) and one
   committed UPDATE to published (raw rate); engine rate / raw rate is the ratio (target >= 0.5);
5. starts a real `campaign worker` ticking every second, inserts single deliveries due at
   "database now + 0-2 s" one at a time, and reports p50 and p99 of outbox published_at - due_at
   (target: p99 under 1 s plus the tick).
It prints one table row per database. --profile adds one in-process worker under cProfile,
with the database calls it makes per delivery and per batch.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import multiprocessing
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import database
from sqlalchemy import Engine, bindparam, event, func, insert, select, text

from campaign import create_app
from campaign.config import load_settings
from campaign.db import database_now, make_engine, make_session_factory
from campaign.models import Channel, Delivery, OutboxEntry, Post, WorkerHeartbeat
from campaign.services.organisations import create_organisation
from campaign.web.context import state
from campaign.worker.scheduler import build_dispatcher

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-secret-key-" + "x" * 32
DUE_AGO = dt.timedelta(seconds=5)
TICK_SECONDS = 1.0


@dataclass
class Result:
    """One database's row of the results table."""

    db: str
    deliveries: int
    workers: int
    engine_s: float
    raw_s: float
    exactly_once: bool
    lateness: list[float]

    @property
    def ratio(self) -> float:
        return self.raw_s / self.engine_s


# --- databases and seeding ------------------------------------------------------------------


def seed_channel(engine: Engine) -> int:
    """One organisation with one active outbox channel; returns the channel id."""
    with make_session_factory(engine).begin() as session:
        now = database_now(session)
        org = create_organisation(session, "bench-org", "Bench", "Europe/London", now)
        channel = Channel(
            organisation_id=org.id,
            kind="outbox",
            display_name="Timeline",
            audience="students",
            created_at=now,
        )
        session.add(channel)
        session.flush()
        return channel.id


def seed_deliveries(engine: Engine, channel_id: int, count: int, due_in: dt.timedelta) -> list[int]:
    """`count` approved posts, each with one delivery due at database now + `due_in`."""
    with make_session_factory(engine).begin() as session:
        now = database_now(session)
        org_id = session.scalar(
            text("SELECT organisation_id FROM channels WHERE id = :id"), {"id": channel_id}
        )
        post_ids = session.scalars(
            insert(Post).returning(Post.id, sort_by_parameter_order=True),
            [
                {
                    "organisation_id": org_id,
                    "text": f"Careers fair, stand {n}",
                    "status": "approved",
                    "created_at": now,
                }
                for n in range(count)
            ],
        ).all()
        session.execute(
            insert(Delivery),
            [
                {
                    "post_id": post_id,
                    "channel_id": channel_id,
                    "status": "scheduled",
                    "due_at": now + due_in,
                    "idempotency_key": uuid.uuid4().hex,
                    "attempts": 0,
                    "lookups": 0,
                    "updated_at": now,
                }
                for post_id in post_ids
            ],
        )
    return list(post_ids)


def analyse(engine: Engine) -> None:
    """Refresh planner statistics, as autovacuum would, so both runs get the same plans."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")


def clear_posts(engine: Engine) -> None:
    """Delete every post (deliveries and attempts cascade) and the outbox entries."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM outbox_entries"))
        conn.execute(text("DELETE FROM posts"))


def app_settings(url: str, instance: str) -> Any:
    return load_settings(
        {
            "app": {"env": "testing", "secret_key": SECRET_KEY, "instance_path": instance},
            "database": {"url": url},
        },
        use_file=False,
    )


# --- the engine run -------------------------------------------------------------------------


def engine_worker(url: str, instance: str, index: int, barrier: Any, done: Any) -> None:
    """One worker process: loop dispatch passes until one claims nothing."""
    st = state(create_app(app_settings(url, instance)))
    dispatcher = build_dispatcher(st, f"bench-engine-{index}")
    with st.engine.connect():
        pass  # open the pooled connection before the clock starts, as the raw worker does
    barrier.wait()
    while dispatcher.dispatch().counts["claimed"]:
        pass
    done.put(time.monotonic())
    st.engine.dispose()


def run_processes(target: Any, args: tuple[Any, ...], workers: int) -> float:
    """Start `workers` spawned processes, release them together, return the wall time."""
    ctx = multiprocessing.get_context("spawn")
    barrier, done = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, i, barrier, done)) for i in range(workers)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    start = time.monotonic()
    ends = [done.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a worker process exited with {proc.exitcode}")
    return max(ends) - start


# --- the raw baseline -----------------------------------------------------------------------

CLAIM = """
WITH chosen AS (
    SELECT id FROM deliveries
    WHERE status = 'scheduled' AND due_at <= {p}
    ORDER BY due_at
    LIMIT {p} {lock}
)
UPDATE deliveries
SET status = 'publishing', lease_token = {p}, lease_expires_at = {p}, attempts = attempts + 1
WHERE id IN (SELECT id FROM chosen) AND status = 'scheduled'
RETURNING id
"""
COMPLETE = """
UPDATE deliveries
SET status = 'published', published_at = {p}, lease_token = NULL, lease_expires_at = NULL
WHERE id = {p} AND lease_token = {p}
"""


def raw_worker(url: str, batch: int, index: int, barrier: Any, done: Any) -> None:
    """The bare minimum per delivery, in raw SQL through the engine's driver and settings."""
    engine = make_engine(url)
    proxy = engine.raw_connection()
    conn: Any = proxy.dbapi_connection
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        # make_engine's connect hook already set WAL, the busy timeout and manual BEGIN.
        claim_sql = CLAIM.format(p="?", lock="")
        complete_sql = COMPLETE.format(p="?")

        def stamp(value: dt.datetime) -> Any:
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    else:
        # Each statement is its own transaction: one round trip per claim and per completion.
        conn.rollback()
        conn.autocommit = True
        claim_sql = CLAIM.format(p="%s", lock="FOR UPDATE SKIP LOCKED")
        complete_sql = COMPLETE.format(p="%s")

        def stamp(value: dt.datetime) -> Any:
            return value

    def run(sql: str, params: tuple[Any, ...]) -> list[Any]:
        cur = conn.cursor()
        if sqlite:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
        if sqlite:
            cur.execute("COMMIT")
        cur.close()
        return rows

    barrier.wait()
    while True:
        now, token = dt.datetime.now(dt.UTC), uuid.uuid4().hex
        lease = now + dt.timedelta(seconds=120)
        ids = [row[0] for row in run(claim_sql, (stamp(now), batch, token, stamp(lease)))]
        if not ids:
            break
        for delivery_id in ids:
            run(complete_sql, (stamp(dt.datetime.now(dt.UTC)), delivery_id, token))
    done.put(time.monotonic())
    proxy.close()
    engine.dispose()


# --- checks ---------------------------------------------------------------------------------

CHECKS = {
    "deliveries": "SELECT count(*) FROM deliveries",
    "not published": "SELECT count(*) FROM deliveries WHERE status <> 'published'",
    "outbox entries": "SELECT count(*) FROM outbox_entries",
    "distinct outbox keys": "SELECT count(DISTINCT idempotency_key) FROM outbox_entries",
    "deliveries with their entry": (
        "SELECT count(*) FROM deliveries d"
        " JOIN outbox_entries o ON o.idempotency_key = d.idempotency_key"
    ),
    "deliveries with >1 published attempt": (
        "SELECT count(*) FROM (SELECT delivery_id FROM delivery_attempts"
        " WHERE outcome = 'published' GROUP BY delivery_id HAVING count(*) > 1) AS repeated"
    ),
}

CHECKS_LEFT = text("SELECT count(*) FROM deliveries WHERE status <> 'published'")


def exactly_once(engine: Engine, n: int) -> bool:
    """Every delivery published, one outbox entry per key, no second published attempt."""
    with engine.connect() as conn:
        found = {name: int(conn.execute(text(sql)).scalar_one()) for name, sql in CHECKS.items()}
    expected = dict.fromkeys(CHECKS, n) | {
        "not published": 0,
        "deliveries with >1 published attempt": 0,
    }
    wrong = {k: (v, expected[k]) for k, v in found.items() if v != expected[k]}
    for name, (got, want) in wrong.items():
        print(f"  FAIL {name}: {got}, expected {want}")
    return not wrong


# --- lateness with the real worker ----------------------------------------------------------


def start_worker(url: str, workdir: Path) -> subprocess.Popen[bytes]:
    """`campaign worker` ticking every TICK_SECONDS, logging to worker.log in `workdir`."""
    env = {k: v for k, v in os.environ.items() if k != "CAMPAIGN_CONFIG"} | {
        "CAMPAIGN_DATABASE__URL": url,
        "CAMPAIGN_APP__ENV": "testing",
        "CAMPAIGN_APP__SECRET_KEY": SECRET_KEY,
        "CAMPAIGN_APP__INSTANCE_PATH": str(workdir),
        "CAMPAIGN_WORKER__TICK_SECONDS": str(TICK_SECONDS),
    }
    with (workdir / "worker.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from campaign.cli import main; main()", "worker"],
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_for(engine: Engine, sql: Any, params: dict[str, Any], timeout: float) -> Any:
    """Poll until the query returns a row whose first column is truthy; that row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = conn.execute(sql, params).first()
        if row is not None and row[0]:
            return row
        time.sleep(0.05)
    raise TimeoutError(f"gave up after {timeout} s waiting for: {sql}")


def measure_lateness(
    url: str, engine: Engine, channel_id: int, workdir: Path, posts: int
) -> list[float]:
    """Seconds from due_at to the outbox entry, one single due delivery at a time."""
    published = (
        select(OutboxEntry.published_at, Delivery.due_at)
        .join(OutboxEntry, OutboxEntry.idempotency_key == Delivery.idempotency_key)
        .where(Delivery.post_id == bindparam("post_id"))
    )
    rng = random.Random(2026)
    worker = start_worker(url, workdir)
    try:
        wait_for(engine, select(func.max(WorkerHeartbeat.last_tick_at)), {}, timeout=60)
        samples = []
        # The first post is a warm-up (first SQL compilation, first adapter): not counted.
        for n in range(posts + 1):
            due_in = dt.timedelta(seconds=rng.uniform(0.0, 2.0))
            [post_id] = seed_deliveries(engine, channel_id, 1, due_in)
            at, due = wait_for(engine, published, {"post_id": post_id}, timeout=30)
            if n:
                samples.append((at - due).total_seconds())
        return samples
    except TimeoutError:
        print((workdir / "worker.log").read_text()[-4000:])
        raise
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            code = worker.wait()
        if code:
            print(f"  the worker exited with {code}:")
            print((workdir / "worker.log").read_text()[-4000:])


# --- profile of one in-process engine run ---------------------------------------------------


def profile_engine(url: str, instance: str, engine: Engine, channel_id: int, n: int) -> None:
    """One worker in this process under cProfile, with round trips counted per delivery."""
    seed_deliveries(engine, channel_id, n, -DUE_AGO)
    analyse(engine)
    st = state(create_app(app_settings(url, instance)))
    dispatcher = build_dispatcher(st, "bench-profile")
    trips: Counter[str] = Counter()

    @event.listens_for(st.engine, "before_cursor_execute")
    def _statement(*args: Any) -> None:
        words = args[2].split()
        if words[0].upper() != "BEGIN":  # counted by the begin event below
            trips[" ".join(words[:2]).upper()] += 1

    @event.listens_for(st.engine, "begin")
    def _begin(*_args: Any) -> None:
        trips["BEGIN"] += 1

    @event.listens_for(st.engine, "commit")
    def _commit(*_args: Any) -> None:
        trips["COMMIT"] += 1

    if st.engine.dialect.name == "postgresql":
        # pool_pre_ping costs one round trip per checkout, that is per transaction.
        @event.listens_for(st.engine.pool, "checkout")
        def _checkout(*_args: Any) -> None:
            trips["pre-ping on checkout"] += 1

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    batches = 0
    while dispatcher.dispatch().counts["claimed"]:
        batches += 1
    profiler.disable()
    elapsed = time.perf_counter() - start
    print(f"  one in-process worker: {n} deliveries in {elapsed:.2f} s ({n / elapsed:,.0f}/s)")
    print(f"  database calls per delivery, and per batch ({batches} batches):")
    for name, count in trips.most_common():
        print(f"    {count / n:6.2f}  {count / max(batches, 1):6.2f}  {name}")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    st.engine.dispose()


# --- the table ------------------------------------------------------------------------------


def bench_database(kind: str, n: int, workers: int, posts: int, profile: bool) -> Result:
    """Every measurement for one kind of database, in one run on one fresh database."""
    with (
        tempfile.TemporaryDirectory(prefix="campaign-bench-") as tmp,
        database(kind, Path(tmp)) as url,
    ):
        engine = make_engine(url)
        batch = app_settings(url, tmp).publishing.batch_size
        channel_id = seed_channel(engine)
        seed_deliveries(engine, channel_id, n, -DUE_AGO)
        analyse(engine)
        print(f"{kind}: engine, {workers} processes, {n} deliveries ...", flush=True)
        engine_s = run_processes(engine_worker, (url, tmp), workers)
        ok = exactly_once(engine, n)
        clear_posts(engine)
        seed_deliveries(engine, channel_id, n, -DUE_AGO)
        analyse(engine)
        print(f"{kind}: raw claim-and-update, {workers} processes ...", flush=True)
        raw_s = run_processes(raw_worker, (url, batch), workers)
        with engine.connect() as conn:
            left = conn.execute(CHECKS_LEFT).scalar_one()
        if left:
            raise SystemExit(f"the raw baseline left {left} deliveries unpublished")
        clear_posts(engine)
        print(f"{kind}: lateness, one worker ticking every {TICK_SECONDS:g} s ...", flush=True)
        lateness = measure_lateness(url, engine, channel_id, Path(tmp), posts)
        if profile:
            clear_posts(engine)
            profile_engine(url, tmp, engine, channel_id, min(n, 2000))
        engine.dispose()
    return Result(kind, n, workers, engine_s, raw_s, ok, lateness)


def print_table(results: list[Result]) -> None:
    header = (
        "db", "N", "workers", "engine s", "engine/s", "raw s", "raw/s", "ratio",
        "exactly once", "p50 late s", "p99 late s", "tick s",
    )  # fmt: skip
    rows = [header]
    for r in results:
        cuts = statistics.quantiles(r.lateness, n=100, method="inclusive")
        rows.append(
            (
                r.db,
                f"{r.deliveries:,}",
                str(r.workers),
                f"{r.engine_s:.2f}",
                f"{r.deliveries / r.engine_s:,.0f}",
                f"{r.raw_s:.2f}",
                f"{r.deliveries / r.raw_s:,.0f}",
                f"{r.ratio:.2f}",
                "PASS" if r.exactly_once else "FAIL",
                f"{statistics.median(r.lateness):.3f}",
                f"{cuts[98]:.3f}",
                f"{TICK_SECONDS:g}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    print("\nratio = engine/s over raw/s (target >= 0.5); target p99 lateness < 1 s + tick")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lateness-posts", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="also profile one worker")
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    # The figures mean little on a busy machine: say how busy it was.
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    results = [
        bench_database(kind, args.deliveries, args.workers, args.lateness_posts, args.profile)
        for kind in kinds
    ]
    print_table(results)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not all(r.exactly_once for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
