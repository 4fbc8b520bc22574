"""Run feedparser's own test corpus through our RSS/Atom source, the sources page and the rest.

Run: .venv/bin/python scripts/feedparser_corpus.py [--sdist PATH] [--database-url URL]

It downloads the source distribution of the installed feedparser version from PyPI (once: it is
cached in the temporary directory, and checked against the digest PyPI publishes), or uses the
file given with --sdist, and reads every test file in it (tests/**, about 2,200 feeds, real and
hostile) without unpacking anything to disk. Each file becomes one feed source in a temporary
SQLite database (or --database-url, which must be empty or migrated) and is polled through the
production path (scripts/feed_corpus.py, shared with tests/vacancies/test_corpus.py), then the
sources page and the vacancy pages are opened as a manager, and a known-good source is polled.

It prints how many files were parsed with items, parsed empty, refused with a clear error
(grouped by message), crashed, and how many pages answered 5xx, and the slowest file. The exit
status is 1 if anything crashed or any page answered 5xx. The corpus is never committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import feedparser
from feed_corpus import Document, FileResult, content_type_of, make_app, run_corpus

from campaign.migrate import upgrade

PYPI = "https://pypi.org/pypi/feedparser"
NOW = dt.datetime(2027, 1, 4, 9, 0, tzinfo=dt.UTC)
SKIP_SUFFIXES = (".py", ".pyc", ".cfg", ".txt", ".md", ".rst")


def _json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - a fixed https URL
            found: dict[str, Any] = json.load(answer)
            return found
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def sdist_entry(wanted: str) -> dict[str, str]:
    """PyPI's record of the sdist of feedparser `wanted`: its URL, file name and sha256."""
    data = _json(f"{PYPI}/{wanted}/json")
    files = data.get("urls") if data else None
    if not files:  # PyPI may answer only the project-wide document (404 for the version's)
        project = _json(f"{PYPI}/json") or {}
        releases = project.get("releases")
        files = releases.get(wanted) if isinstance(releases, dict) else None
    for entry in files or []:
        if isinstance(entry, dict) and entry.get("packagetype") == "sdist":
            return {
                "url": str(entry["url"]),
                "filename": str(entry["filename"]),
                "sha256": str(entry.get("digests", {}).get("sha256", "")),
            }
    raise SystemExit(f"PyPI lists no source distribution of feedparser {wanted}")


def download_sdist(wanted: str) -> Path:
    entry = sdist_entry(wanted)
    cache = Path(tempfile.gettempdir()) / "campaign-feedparser-corpus"
    cache.mkdir(exist_ok=True)
    target = cache / entry["filename"]
    if target.exists() and _sha256(target) == entry["sha256"]:
        return target
    print(f"downloading {entry['url']}", file=sys.stderr)
    with urllib.request.urlopen(entry["url"], timeout=120) as answer:  # noqa: S310 - PyPI's URL
        body = answer.read()
    if entry["sha256"] and hashlib.sha256(body).hexdigest() != entry["sha256"]:
        raise SystemExit("the downloaded sdist does not match the sha256 PyPI publishes")
    target.write_bytes(body)
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corpus(sdist: Path) -> list[Document]:
    """Every test file in the sdist (tests/** but code), read in memory, sorted by path."""
    found = []
    with tarfile.open(sdist, "r:*") as archive:
        for member in archive.getmembers():
            parts = member.name.split("/")
            if not member.isfile() or "tests" not in parts[:2]:
                continue
            if member.name.endswith(SKIP_SUFFIXES):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            body = handle.read()
            name = "/".join(parts[parts.index("tests") :])
            found.append(Document(name, body, content_type_of(body)))
    return sorted(found, key=lambda d: d.name)


def lost_items(documents: list[Document], results: list[FileResult]) -> list[str]:
    """Files we stored nothing from although feedparser alone finds entries in them (not a
    failure: many are refused on purpose, such as feeds relying on undeclared entities), by
    our outcome and the document's root element."""
    bodies = {d.name: d for d in documents}
    groups: Counter[str] = Counter()
    for result in results:
        if result.outcome not in ("empty", "refused"):
            continue
        document = bodies[result.name]
        parsed = feedparser.parse(
            document.body, response_headers={"content-type": document.content_type or "text/xml"}
        )
        if parsed.entries:
            bare = re.sub(rb"<!--.*?-->|<\?.*?\?>|<!DOCTYPE[^>]*>", b"", document.body, flags=re.S)
            root = re.search(rb"<([A-Za-z_][\w:.-]*)[\s/>]", bare)
            tag = root.group(1).decode("latin-1") if root else "?"
            groups[f"{result.outcome}, <{tag}>, feedparser bozo={bool(parsed.bozo)}"] += 1
    lines = [f"stored nothing although feedparser finds entries: {sum(groups.values())}"]
    lines.extend(f"  {n:5d}  {what}" for what, n in groups.most_common())
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdist", type=Path, help="a feedparser sdist (.tar.gz) to use")
    parser.add_argument("--database-url", help="an empty or migrated database (default: SQLite)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N files")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    args = parser.parse_args(argv)
    installed = version("feedparser")
    sdist = args.sdist or download_sdist(installed)
    documents = corpus(sdist)
    if args.limit:
        documents = documents[: args.limit]
    print(f"feedparser {installed}: {len(documents)} test files from {sdist.name}")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'corpus.sqlite3'}"
        upgrade(url)
        app = make_app(url, tmp)

        def progress(n: int, result: FileResult) -> None:
            if result.outcome == "crashed":
                print(f"\ncrashed: {result.name}: {result.crash}", file=sys.stderr)
            if not args.quiet and (n % 100 == 0 or n == len(documents)):
                print(f"\r{n}/{len(documents)} files", end="", file=sys.stderr, flush=True)

        started = time.perf_counter()
        slug = f"feedparser-corpus-{int(time.time())}"
        report = run_corpus(documents, app, NOW, slug=slug, progress=progress)
        if not args.quiet:
            print(file=sys.stderr)
        print("\n".join(report.summary()))
        print("\n".join(lost_items(documents, report.files)))
        print(f"total time: {time.perf_counter() - started:.1f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
