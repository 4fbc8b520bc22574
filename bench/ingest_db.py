"""Benchmark vacancy feed ingestion with the database upsert, on SQLite and PostgreSQL.

Run: .venv/bin/python bench/ingest_db.py [--items 20000] [--repeat 2] [--db sqlite|postgresql|both]

The feed is bench/ingest.py's generated RSS feed (about 7.5 MB at 20,000 items). Each step runs
the production path, `campaign.services.vacancy_sources.poll_source`, with only the HTTP fetch
replaced by a function returning the bytes (so claim, parse, normalise, de-duplicate against the
stored records, upsert and the source's bookkeeping are all timed):

1. `feedparser.parse(bytes)`: the bare parse, the yardstick (target: full ingest <= 1.5x);
2. full ingest: the first poll into an empty organisation (20,000 inserts);
3. re-poll, 304 Not Modified (conditional GET answered by the server);
4. re-poll, same items under a new ETag: every item's bytes hashed, nothing parsed, all touched;
5. re-poll, 1% of the items edited: only the edited items parsed, normalised and updated.

Times are the best of --repeat rounds, the steps interleaved within each round; the full
ingest is reset (its rows deleted) before each run, and the 1% edit starts from the original.
Peak memory is the Python heap peak (tracemalloc) of one extra, untimed run of each.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import feedparser
from sqlalchemy import delete, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import SOURCE, make_feed  # noqa: E402 - the generated feed of bench/ingest.py

from campaign.config import Settings  # noqa: E402
from campaign.db import make_engine, make_session_factory  # noqa: E402
from campaign.migrate import upgrade  # noqa: E402
from campaign.models import Vacancy, VacancySource  # noqa: E402
from campaign.services.organisations import create_organisation  # noqa: E402
from campaign.services.vacancy_sources import poll_source  # noqa: E402
from campaign.vacancies.fetch import FetchResult  # noqa: E402

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh, migrated database of this kind; yields its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'ingest.sqlite3'}"
        upgrade(url)
        yield url
        return
    from tests.pgserver import create_database, running_postgres

    with running_postgres() as server:
        url = create_database(server, "campaign_ingest_bench")
        upgrade(url)
        yield url


def fetcher(body: bytes, etag: str, not_modified: bool = False) -> Callable[..., FetchResult]:
    def fetch(url: str, **_kwargs: Any) -> FetchResult:
        if not_modified:
            return FetchResult(url, status=304, etag=etag, final_url=url, not_modified=True)
        return FetchResult(
            url, status=200, body=body, etag=etag, final_url=url,
            content_type="application/rss+xml",
        )  # fmt: skip

    return fetch


class Clock:
    """Each poll at a later time (withdrawal counts polls by their time)."""

    def __init__(self) -> None:
        self.now = NOW

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(minutes=1)
        return self.now


def timed(fn: Callable[[], Any], before: Callable[[], Any] | None = None) -> float:
    if before is not None:
        before()
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_mib(fn: Callable[[], Any], before: Callable[[], Any] | None = None) -> float:
    if before is not None:
        before()
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def run(kind: str, items: int, repeat: int) -> None:
    body = make_feed(items)
    edited = make_feed(items, edited=items // 100)
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            org = create_organisation(session, "bench", "Bench", "Europe/London", NOW)
            source = VacancySource(
                organisation_id=org.id, name="Bench feed", kind="feed", url=SOURCE,
                created_at=NOW,
            )  # fmt: skip
            session.add(source)
            session.flush()
            source_id = source.id
        clock = Clock()

        def reset() -> None:
            with factory.begin() as session:
                session.execute(delete(Vacancy).where(Vacancy.source_id == source_id))
                session.execute(
                    update(VacancySource)
                    .where(VacancySource.id == source_id)
                    .values(item_hashes=None, etag=None, last_modified=None, last_items=None)
                )

        def poll(fetch: Callable[..., FetchResult], expect: str = "ok") -> None:
            outcome = poll_source(factory, settings, source_id, clock.tick(), fetcher=fetch)
            assert outcome.status == expect, outcome.line()

        def full() -> None:
            poll(fetcher(body, '"v1"'))

        def edited_poll() -> None:
            poll(fetcher(edited, '"v3"'))

        def restore() -> None:
            poll(fetcher(body, '"v1"'))

        # (name, timed step, untimed preparation); the steps are interleaved round by round so
        # that load from other processes falls on all of them alike.
        steps: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
            ("feedparser.parse (bare)", lambda: feedparser.parse(body), None),
            ("full ingest (with upsert)", full, reset),
            ("re-poll: 304 Not Modified", lambda: poll(fetcher(b"", '"v1"', True), "not_modified"),
             None),
            ("re-poll: same items, new ETag", lambda: poll(fetcher(body, '"v2"')), None),
            ("re-poll: 1% of items edited", edited_poll, restore),
        ]  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name, _, _ in steps}
        for _ in range(repeat):
            for name, fn, before in steps:
                times[name].append(timed(fn, before))
        results = {name: (min(times[name]), peak_mib(fn, before)) for name, fn, before in steps}
        with factory() as session:
            stored = session.query(Vacancy).filter(Vacancy.source_id == source_id).count()
        engine.dispose()

    base = results["feedparser.parse (bare)"]
    ingest = results["full ingest (with upsert)"]
    print(f"\n{kind}: {items} items, {len(body) / 2**20:.1f} MiB, {stored} vacancies stored")
    print(f"{'step':<34}{'seconds':>10}{'peak MiB':>10}{'/ feedparser':>14}{'/ ingest':>10}")
    for name, (seconds, mib) in results.items():
        print(
            f"{name:<34}{seconds:>10.3f}{mib:>10.1f}{seconds / base[0]:>14.2f}"
            f"{seconds / ingest[0]:>10.3f}"
        )
    print(f"full ingest / feedparser = {ingest[0] / base[0]:.2f} (target <= 1.5)")
    print(f"memory full ingest / feedparser = {ingest[1] / base[1]:.2f} (target <= 2)")
    for name in ("re-poll: same items, new ETag", "re-poll: 1% of items edited"):
        print(f"{name} / full ingest = {results[name][0] / ingest[0]:.3f} (target <= 0.1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        run(kind, args.items, args.repeat)


if __name__ == "__main__":
    main()
