"""Benchmark vacancy feed ingestion against a bare feedparser parse and lxml iterparse.

Run: .venv/bin/python bench/ingest.py [--items 20000] [--repeat 3]

It generates an RSS feed of N invented vacancies (about 7.5 MB at 20,000 items) carrying the
quirks the feed edge handles (entity-escaped HTML descriptions, double-escaped titles, closing
dates in the text, free-text salaries, relative links, BST dates, tracking parameters, duplicate
items), then times in one run:

1. `feedparser.parse(bytes)`: the bare parse, the yardstick (target: ours <= 1.5x);
2. lxml `iterparse` over the same bytes, pulling each item's text (the floor);
3. ours: detect + parse (feedparser) + normalise + de-duplicate (`campaign.vacancies`);
4. re-polls: a 304 (nothing to do), an identical body (document hash), and a body with 1% of
   the items edited, handled two ways: a full parse with per-item content hashes (only the
   edited items are normalised), and `incremental.parse_changed` (each item's bytes hashed,
   only the edited items parsed).

There is no database yet: the upsert is added when the vacancy models land, so "ours" is the
feed edge only. Times are the best of --repeat runs, the steps interleaved so that load from
other processes falls on all of them alike; peak memory is the Python heap peak of a separate,
untimed run of each step under tracemalloc, in a forked child.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import io
import multiprocessing
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaign.vacancies.dates import timezone
from campaign.vacancies.dedupe import Existing, content_hash, match
from campaign.vacancies.detect import parse_document
from campaign.vacancies.incremental import parse_changed
from campaign.vacancies.normalise import normalise_all

SOURCE = "https://jobs.bench.example/feeds/all.xml"
LONDON = timezone("Europe/London")
NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
EMPLOYERS = ["Northgate Analytics", "Brightwater Council", "Kestrel Biosciences", "Oakridge plc"]
ROLES = ["Graduate Analyst", "Research &amp;amp; Insight Intern", "Lab Technician", "Engineer"]
SALARIES = ["£27,000 - £31,000 pa", "Up to £40k", "£12.21 per hour", "Competitive", "OTE £35k"]


def make_feed(items: int, seed: int = 1, edited: int = 0) -> bytes:
    """An RSS feed of `items` invented vacancies; `edited` of them get a changed description."""
    rng = random.Random(seed)
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>')
    out.write("<title>Bench vacancies</title><link>https://jobs.bench.example/</link>")
    out.write("<description>Generated</description>\n")
    for n in range(items):
        employer = EMPLOYERS[n % len(EMPLOYERS)]
        role = ROLES[rng.randrange(len(ROLES))]
        day = 1 + n % 28
        link = (
            f"/vacancies/{n}" if n % 3 else f"https://www.jobs.bench.example/v/{n}?utm_source=rss"
        )
        if n % 97 == 0 and n:
            link = f"/vacancies/{n - 1}"  # a duplicate of the previous item
        note = " (updated)" if n < edited else ""
        out.write(
            f"<item><title>{role} {n}</title><link>{link}</link>"
            f'<guid isPermaLink="false">bench-{n}</guid>'
            f"<pubDate>Tue, {day:02d} Apr 2025 10:00:00 BST</pubDate>"
            f"<description>&lt;p&gt;{employer} - Department {n % 40}&lt;br /&gt;"
            f"Salary: {SALARIES[n % len(SALARIES)]}&lt;/p&gt;&lt;p&gt;Join a friendly team in a "
            f"growing organisation, with training and mentoring.{note}&lt;/p&gt;"
            f"&lt;p&gt;Closing date: {day:02d}/05/2027&lt;/p&gt;</description></item>\n"
        )
    out.write("</channel></rss>\n")
    return out.getvalue().encode()


def bare_feedparser(body: bytes) -> int:
    return len(feedparser.parse(body).entries)


def lxml_iterparse(body: bytes) -> int:
    count = 0
    for _, element in etree.iterparse(io.BytesIO(body), tag="item", resolve_entities=False):
        fields = {child.tag: child.text for child in element}
        count += bool(fields)
        element.clear()
    return count


def ours(body: bytes, existing: list[Existing] | None = None) -> int:
    result = parse_document(body, content_type="application/rss+xml", source_url=SOURCE)
    assert result.error is None, result.error
    vacancies = normalise_all(result.items, tz=LONDON, now=NOW, source_url=SOURCE, scope="bench")
    decisions = match(vacancies, existing or [])
    return sum(d.outcome != "duplicate" for d in decisions)


def repoll_identical(body: bytes, previous_body_hash: str) -> int:
    """An unchanged body (server without validators): one hash of the document, then stop."""
    return 0 if hashlib.blake2b(body).hexdigest() == previous_body_hash else -1


def repoll_changed(body: bytes, known: frozenset[str], existing: list[Existing]) -> int:
    """A changed body: parse, hash every item, normalise and match only the changed ones."""
    result = parse_document(body, content_type="application/rss+xml", source_url=SOURCE)
    changed = normalise_all(
        result.items, tz=LONDON, now=NOW, source_url=SOURCE, scope="bench", skip_hashes=known
    )
    return len([d for d in match(changed, existing) if d.outcome == "update"])


def repoll_incremental(body: bytes, known_chunks: frozenset[str], existing: list[Existing]) -> int:
    """A changed body: hash each item's bytes, parse, normalise and match only the new ones."""
    changed = parse_changed(
        body, known_chunks, content_type="application/rss+xml", source_url=SOURCE
    )
    fresh = normalise_all(
        changed.result.items, tz=LONDON, now=NOW, source_url=SOURCE, scope="bench"
    )
    return len([d for d in match(fresh, existing) if d.outcome == "update"])


def timed_rounds(runs: list[tuple[str, Callable[[], Any]]], repeat: int) -> dict[str, float]:
    """Best of `repeat` for each step, the steps interleaved so machine load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    for _ in range(repeat):
        for name, fn in runs:
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


def _child(fn: Callable[[], Any], queue: Any) -> None:
    tracemalloc.start()
    fn()
    queue.put(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak Python heap allocated by one run of `fn` (tracemalloc, in a forked child so the
    tracing overhead and the parent's heap stay out of the timings)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(fn, queue))
    process.start()
    peak = int(queue.get())
    process.join()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    body = make_feed(args.items)
    edited_body = make_feed(args.items, edited=args.items // 100)
    print(
        f"feed: {args.items} items, {len(body) / 2**20:.1f} MiB (Python {sys.version.split()[0]})"
    )
    print("no database yet: 'ours' is detect + parse + normalise + de-duplicate; the upsert is")
    print("added when the vacancy models land.")

    first = parse_document(body, source_url=SOURCE)
    vacancies = normalise_all(first.items, tz=LONDON, now=NOW, source_url=SOURCE, scope="bench")
    existing = [Existing(n, v.keys, v.content_hash) for n, v in enumerate(vacancies)]
    known = frozenset(content_hash(item) for item in first.items)
    body_hash = hashlib.blake2b(body).hexdigest()
    assert repoll_changed(edited_body, known, existing) == args.items // 100
    known_chunks = frozenset(parse_changed(body, frozenset()).hashes)
    assert repoll_incremental(edited_body, known_chunks, existing) == args.items // 100
    del first, vacancies
    # The stored keys stand in for database rows; keep the collector from re-scanning them
    # during every timed step (a worker holds no such heap).
    gc.collect()
    gc.freeze()

    runs: list[tuple[str, Callable[[], Any]]] = [
        ("feedparser.parse (bare)", lambda: bare_feedparser(body)),
        ("lxml iterparse", lambda: lxml_iterparse(body)),
        ("ours: parse+normalise+dedupe", lambda: ours(body)),
        ("re-poll: 304 Not Modified", lambda: None),
        ("re-poll: identical body", lambda: repoll_identical(body, body_hash)),
        ("re-poll: 1% of items edited", lambda: repoll_changed(edited_body, known, existing)),
        (
            "re-poll: 1% edited, item bytes",
            lambda: repoll_incremental(edited_body, known_chunks, existing),
        ),
    ]
    seconds = timed_rounds(runs, args.repeat)
    results = {name: (seconds[name], peak_mib(fn)) for name, fn in runs}
    base, floor = results["feedparser.parse (bare)"][0], results["lxml iterparse"][0]
    full = results["ours: parse+normalise+dedupe"][0]
    print(f"\n{'step':<32}{'seconds':>10}{'peak MiB':>10}{'/ feedparser':>14}{'/ iterparse':>13}")
    for name, (seconds, mib) in results.items():
        print(
            f"{name:<32}{seconds:>10.3f}{mib:>10.1f}{seconds / base:>14.2f}{seconds / floor:>13.1f}"
        )
    print(f"\nours / feedparser = {full / base:.2f} (target <= 1.5)")
    print(f"ours / iterparse  = {full / floor:.1f}")
    mem = results["ours: parse+normalise+dedupe"][1] / results["feedparser.parse (bare)"][1]
    print(f"memory ours / feedparser = {mem:.2f} (target <= 2)")
    for name in ("re-poll: 1% of items edited", "re-poll: 1% edited, item bytes"):
        print(f"{name} / full ingest = {results[name][0] / full:.3f} (target <= 0.1)")


if __name__ == "__main__":
    main()
