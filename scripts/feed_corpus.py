"""Run a corpus of feed documents through the production poll path and the pages that show it.

Shared by `scripts/feedparser_corpus.py` (feedparser's own test corpus, fetched from PyPI) and
`tests/vacancies/test_corpus.py` (our fixtures and hostile inputs). Each document becomes one
feed source of an organisation, polled by `campaign.services.vacancy_sources.poll_source` with
only the HTTP fetch replaced by a function returning the document's bytes; between batches and
at the end a manager opens the sources page (and, at the end, every page of the vacancy list and
every vacancy) through the Flask test client; finally one known-good source is polled to show
that the other sources keep working.

A document is *parsed* (with items, or empty) or *refused* with the parser's message. It has
*crashed* when an exception escaped `poll_source`, when `poll_source` caught one of its own
("internal error while polling"), or when an item could not be normalised (an exception inside
normalisation, reported as "could not be read (SomeError)"). A page answering 5xx (or raising,
since the test client propagates exceptions) is a *bad page*.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaign import create_app
from campaign.config import Settings
from campaign.models import Role, Vacancy, VacancySource
from campaign.services import vacancy_sources
from campaign.services.accounts import create_user
from campaign.services.organisations import create_organisation
from campaign.vacancies.fetch import FetchResult
from campaign.web.context import state

PASSWORD = "corpus-manager-password"  # noqa: S105 - a throwaway account of the run
INTERNAL = "internal error while polling"
ITEM_CRASH = re.compile(r"could not be read \((\w+)\)")
GOOD_FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Known good</title>'
    b"<link>https://good.example.org/</link><description>A feed that always works</description>"
    b"<item><title>Graduate Analyst</title><link>https://good.example.org/jobs/1</link>"
    b'<guid isPermaLink="false">good-1</guid><description>Closing date: 30 June 2027</description>'
    b"</item></channel></rss>"
)


@dataclass(frozen=True)
class Document:
    """One corpus file: a name (its path), its bytes, and the Content-Type it is served with."""

    name: str
    body: bytes
    content_type: str = ""


@dataclass
class FileResult:
    name: str
    outcome: str  # items, empty, refused, crashed
    items: int = 0
    error: str | None = None
    seconds: float = 0.0
    crash: str | None = None  # what crashed, for a crashed file


@dataclass
class CorpusReport:
    files: list[FileResult] = field(default_factory=list)
    pages: int = 0
    bad_pages: list[str] = field(default_factory=list)  # "GET path: status or exception"
    good_source: str = ""  # the known-good source's poll line
    good_source_ok: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    @property
    def crashed(self) -> list[FileResult]:
        return [f for f in self.files if f.outcome == "crashed"]

    @property
    def ok(self) -> bool:
        return not self.crashed and not self.bad_pages and self.good_source_ok

    def refusals(self) -> Counter[str]:
        """Refusal messages grouped, with the numbers in them (lines, columns) as N and any
        encoding's name as X."""
        return Counter(
            re.sub(r"\d+", "N", re.sub(r"(encoding: )[\w.-]+", r"\1X", f.error or ""))
            for f in self.files
            if f.outcome == "refused"
        )

    def summary(self, top: int = 25) -> list[str]:
        lines = [
            f"files: {len(self.files)}",
            f"parsed with items: {self.count('items')} "
            f"({sum(f.items for f in self.files)} items in all)",
            f"parsed empty: {self.count('empty')}",
            f"refused with a clear error: {self.count('refused')}",
        ]
        groups = self.refusals().most_common()
        for message, n in groups[:top]:
            lines.append(f"  {n:5d}  {message}")
        if len(groups) > top:
            rest = sum(n for _, n in groups[top:])
            lines.append(f"  {rest:5d}  ... in {len(groups) - top} more groups")
        lines.append(f"crashed: {len(self.crashed)}")
        for found in self.crashed:
            lines.append(f"  {found.name}: {found.crash}")
        lines.append(f"pages opened: {self.pages}; 5xx pages: {len(self.bad_pages)}")
        lines.extend(f"  {page}" for page in self.bad_pages)
        if self.files:
            slowest = max(self.files, key=lambda f: f.seconds)
            lines.append(f"slowest file: {slowest.name} ({slowest.seconds:.3f} s)")
        lines.append(f"known-good source afterwards: {self.good_source}")
        return lines


def corpus_settings(database_url: str, instance_path: str) -> dict[str, Any]:
    """App settings for a throwaway run (cheap password hashing, no HTTPS-only cookies)."""
    return {
        "app": {
            "env": "testing",
            "secret_key": "feed-corpus-secret-key-" + "x" * 32,
            "instance_path": instance_path,
        },
        "database": {"url": database_url},
        "security": {
            "session_cookie_secure": False,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 64,
        },
    }


def make_app(database_url: str, instance_path: str) -> Flask:
    """The app on a migrated database (the caller migrates)."""
    return create_app(corpus_settings(database_url, instance_path))


def serving(document: Document) -> Callable[..., FetchResult]:
    """A fetcher that answers any URL with the document, as a server would with a 200."""

    def fetch(url: str, **_kwargs: Any) -> FetchResult:
        return FetchResult(
            url,
            status=200,
            body=document.body,
            etag=None,
            final_url=url,
            content_type=document.content_type,
        )

    return fetch


class _Crashes(logging.Handler):
    """Keeps the last frame of each exception `poll_source` logs, to say what crashed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = traceback.extract_tb(record.exc_info[2])
            ours = [f for f in frames if "/campaign/" in f.filename.replace("\\", "/")]
            frame = (ours or frames)[-1] if frames else None
            shown = "/".join(frame.filename.replace("\\", "/").split("/")[-3:]) if frame else ""
            where = f" at {shown}:{frame.lineno}" if frame else ""
            self.last = f"{type(exc).__name__}: {exc}{where}"[:500]


def _csrf(client: Any, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    if found is None:
        raise RuntimeError(f"no CSRF token on {path}")
    return found.group(1)


def _organisation(
    factory: sessionmaker[Session], app: Flask, slug: str, now: dt.datetime
) -> tuple[int, str]:
    """The run's organisation and its manager (their email)."""
    hasher = state(app).hasher
    with factory.begin() as session:
        org = create_organisation(session, slug, "Feed corpus", "Europe/London", now)
        email = f"manager@{slug}.example"
        create_user(session, org.id, email, PASSWORD, Role.MANAGER, "", hasher, None, now)
        return org.id, email


def _source(factory: sessionmaker[Session], org_id: int, name: str, now: dt.datetime) -> int:
    with factory.begin() as session:
        source = VacancySource(
            organisation_id=org_id,
            name=name[:200],
            kind="feed",
            url="https://corpus.example.org/" + re.sub(r"[^A-Za-z0-9._/-]", "_", name)[:1500],
            next_poll_at=now,
            created_at=now,
        )
        session.add(source)
        session.flush()
        return source.id


def _classify(name: str, outcome: vacancy_sources.PollOutcome, crash: str | None) -> FileResult:
    if outcome.status == "error":
        error = outcome.error or ""
        if error.startswith(INTERNAL) or not error.strip():
            return FileResult(name, "crashed", error=error, crash=crash or error or "no message")
        return FileResult(name, "refused", error=error)
    broken = [w for w in outcome.warnings if ITEM_CRASH.search(w)]
    if broken:
        return FileResult(name, "crashed", outcome.items, crash="; ".join(broken[:3]))
    if outcome.status != "ok":
        return FileResult(name, "crashed", crash=f"unexpected poll status {outcome.status}")
    kept = outcome.new + outcome.updated + outcome.unchanged  # an item already stored counts
    return FileResult(name, "items" if kept else "empty", outcome.items)


class _Pages:
    def __init__(self, app: Flask, email: str, report: CorpusReport) -> None:
        self.client = app.test_client()
        self.report = report
        token = _csrf(self.client, "/login")
        answer = self.client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
        )
        if answer.status_code != 302:
            raise RuntimeError(f"could not sign in as the corpus manager ({answer.status_code})")

    def get(self, path: str) -> str:
        self.report.pages += 1
        try:
            answer = self.client.get(path)
        except Exception as exc:  # the test client propagates a view's exception
            self.report.bad_pages.append(f"GET {path}: {type(exc).__name__}: {exc}"[:500])
            return ""
        if answer.status_code >= 500:
            self.report.bad_pages.append(f"GET {path}: {answer.status_code}")
        elif answer.status_code != 200:
            self.report.bad_pages.append(f"GET {path}: unexpected {answer.status_code}")
        return answer.get_data(as_text=True)


def run_corpus(
    documents: Iterable[Document],
    app: Flask,
    now: dt.datetime,
    *,
    slug: str = "feed-corpus",
    pages_every: int = 100,
    vacancy_pages: bool = True,
    progress: Callable[[int, FileResult], None] | None = None,
) -> CorpusReport:
    """Poll every document as its own source, check the pages, then poll a known-good source.
    The app's database must be migrated; the run adds one organisation (`slug`) to it."""
    factory = state(app).session_factory
    settings: Settings = state(app).settings
    report = CorpusReport()
    org_id, email = _organisation(factory, app, slug, now)
    pages = _Pages(app, email, report)
    crashes = _Crashes()
    watched = logging.getLogger(vacancy_sources.__name__)
    watched.addHandler(crashes)
    try:
        for n, document in enumerate(documents, 1):
            source_id = _source(factory, org_id, document.name, now)
            crashes.last = None
            started = time.perf_counter()
            try:
                outcome = vacancy_sources.poll_source(
                    factory, settings, source_id, now, fetcher=serving(document)
                )
            except Exception as exc:  # poll_source must never raise: this is a crash
                result = FileResult(document.name, "crashed", crash=f"{type(exc).__name__}: {exc}")
            else:
                result = _classify(document.name, outcome, crashes.last)
            result.seconds = time.perf_counter() - started
            report.files.append(result)
            if progress is not None:
                progress(n, result)
            if pages_every and n % pages_every == 0:
                pages.get("/vacancies/sources")
    finally:
        watched.removeHandler(crashes)
    pages.get("/vacancies/sources")
    if vacancy_pages:
        _vacancy_pages(factory, pages, org_id)
    good = _source(factory, org_id, "known good feed", now)
    outcome = vacancy_sources.poll_source(
        factory, settings, good, now, fetcher=serving(Document("good", GOOD_FEED))
    )
    report.good_source = outcome.line()
    report.good_source_ok = (outcome.status, outcome.new) == ("ok", 1)
    pages.get("/vacancies/sources")
    return report


def _vacancy_pages(factory: sessionmaker[Session], pages: _Pages, org_id: int) -> None:
    with factory() as session:
        ids = list(
            session.scalars(
                select(Vacancy.id).where(Vacancy.organisation_id == org_id).order_by(Vacancy.id)
            )
        )
    for page in range(1, len(ids) // 50 + 2):
        pages.get(f"/vacancies?status=all&page={page}")
    for vacancy_id in ids:
        pages.get(f"/vacancies/{vacancy_id}")


def content_type_of(body: bytes, default: str = "") -> str:
    """The Content-Type a feedparser corpus file asks to be served with ("Header: Content-type:
    ..." in a comment), else `default`."""
    found = re.search(rb"^\s*Header:\s+Content-type:\s*(.+?)\s*$", body, re.MULTILINE | re.I)
    if found is None:
        return default
    return found.group(1).decode("latin-1")


def documents_from(pairs: Sequence[tuple[str, bytes]]) -> list[Document]:
    return [Document(name, body, content_type_of(body)) for name, body in pairs]
