"""Our own feed corpus through the production poll path and the pages, on SQLite and PostgreSQL.

The same loop as `scripts/feedparser_corpus.py` runs over feedparser's test corpus (fetched
from PyPI, never committed): here it runs over every fixture in tests/fixtures/vacancies/
(served with the content type its name implies, and again with none), the invented copies of
inputs the feedparser corpus crashed on (corpus_extra/), and generated hostile documents. Each
becomes a feed source polled by `poll_source`: every one must be parsed or refused with a
message, nothing may escape or crash, the sources page and every vacancy page must answer 200,
and a known-good source polled afterwards must still work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from campaign.migrate import upgrade
from campaign.vacancies.detect import parse_document
from campaign.web.context import state
from scripts.feed_corpus import CorpusReport, Document, make_app, run_corpus

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vacancies"
NOW = dt.datetime(2027, 1, 4, 9, 0, tzinfo=dt.UTC)
CONTENT_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".xml": "application/xml",
    ".json": "application/json",
    ".csv": "text/csv",
    ".html": "text/html; charset=utf-8",
}
RSS_HEAD = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
HOSTILE = {
    "empty": b"",
    "whitespace": b" \r\n\t ",
    "nul bytes": b"\x00" * 64,
    "deeply nested json": b"[" * 100_000 + b"]" * 100_000,
    "unclosed tags page": b"<html>" + b"<a" * 200_000,
    "garbage feed": b'<rss version="2.0"><channel>' + b"<item x" * 200_000,
    "truncated feed": RSS_HEAD + b"<item><title>Cut off",
    "bad utf-8": b'<?xml version="1.0" encoding="utf-8"?>' + RSS_HEAD[21:]
    + b"<item><title>Caf\xe9 \xff\xfe</title><link>https://e.example/1</link></item>"
    b"</channel></rss>",
    "utf-16 without bom": RSS_HEAD.decode().encode("utf-16-le"),
    "legacy entity": b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    b'"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel>'
    b"<item><title>Caf&eacute;</title></item></channel></rss>",
    "script in title": RSS_HEAD + b"<item><title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"
    b"<link>javascript:alert(1)</link></item></channel></rss>",
    "huge title": RSS_HEAD + b"<item><title>" + b"W" * 100_000
    + b"</title><link>https://e.example/2</link></item></channel></rss>",
    "jobxml without items": b"<source><publisher>x</publisher></source>",
    "json of the wrong shape": b'{"results": "none", "count": -1}',
    "csv of one cell": b"title\r\n\r\n",
}  # fmt: skip
UNREADABLE_ENCODING = "declares a character encoding that cannot be read"


def _documents() -> list[Document]:
    found = []
    for path in sorted(p for p in FIXTURES.rglob("*") if p.is_file()):
        name = path.relative_to(FIXTURES).as_posix()
        body = path.read_bytes()
        found.append(Document(name, body, CONTENT_TYPES.get(path.suffix, "")))
        found.append(Document(f"{name} (no content type)", body, ""))
    found.extend(Document(f"hostile: {name}", body) for name, body in HOSTILE.items())
    return found


@pytest.fixture(scope="module")
def app(db_kind: str, fresh_database_url: Any, tmp_path_factory: Any) -> Iterator[Flask]:
    url = fresh_database_url(db_kind)
    upgrade(url)
    made = make_app(url, str(tmp_path_factory.mktemp("corpus")))
    yield made
    state(made).engine.dispose()


@pytest.fixture(scope="module")
def report(app: Flask) -> CorpusReport:
    return run_corpus(_documents(), app, NOW, pages_every=10)


def test_every_document_is_parsed_or_refused_and_nothing_crashes(report: CorpusReport) -> None:
    assert len(report.files) == len(_documents())
    assert [(f.name, f.crash) for f in report.crashed] == []
    for found in report.files:
        assert found.outcome in ("items", "empty", "refused"), found
        if found.outcome == "refused":
            assert found.error and found.error.strip() == found.error and len(found.error) > 10
    outcomes = {f.name: f.outcome for f in report.files}
    errors = {f.name: f.error or "" for f in report.files}
    for hostile in ("billion_laughs.rss", "billion_laughs_job.xml", "xxe.rss", "xxe_job.xml",
                    "malformed.rss", "doctype_job.xml"):  # fmt: skip
        assert outcomes[hostile] == "refused", hostile
        assert outcomes[f"{hostile} (no content type)"] == "refused", hostile
    for good in ("jobsacuk.rss", "oxford_vacancies.xml", "careerjet.xml", "export.csv",
                 "jsonld_wild.html", "reed.json", "atom_base.atom", "windows1252.rss",
                 "corpus_extra/atom03.xml"):  # fmt: skip
        assert outcomes[good] == "items", (good, errors[good])
    for name in ("empty", "deeply nested json", "garbage feed", "legacy entity", "truncated feed"):
        assert outcomes[f"hostile: {name}"] == "refused", name
    assert UNREADABLE_ENCODING in errors["corpus_extra/unknown_encoding.rss"]
    assert UNREADABLE_ENCODING in errors["corpus_extra/unknown_encoding_atom03.xml"]


def test_no_page_answers_5xx_and_a_good_source_still_polls(report: CorpusReport) -> None:
    assert report.bad_pages == []
    # The sources page after every ten sources and twice at the end, and the vacancy pages:
    # at least one list page and one page per stored vacancy (one per file with items here).
    with_items = sum(1 for f in report.files if f.outcome == "items")
    assert report.pages >= len(report.files) // 10 + 2 + 1 + with_items // 2
    assert report.good_source_ok, report.good_source
    assert report.ok


@pytest.mark.parametrize(
    ("body", "word"),
    [
        (b'<?xml version="1.0" encoding="bogus"?><rss version="2.0"><channel/></rss>', "bogus"),
        (b'<?xml version="1.0" encoding="viscii"?><source><job/></source>', "viscii"),
    ],
)
def test_an_encoding_python_does_not_know_is_refused_with_a_message(body: bytes, word: str) -> None:
    result = parse_document(body)
    assert result.items == []
    assert result.error is not None and UNREADABLE_ENCODING in result.error and word in result.error


def test_the_report_summary_names_refusals_and_the_slowest_file(report: CorpusReport) -> None:
    lines = report.summary()
    assert lines[0] == f"files: {len(report.files)}"
    assert "crashed: 0" in lines
    assert any(line.startswith("slowest file: ") for line in lines)
    assert any("refused: the document" in line or "not well-formed" in line for line in lines)


def test_an_atom_0_3_feed_is_read_as_atom_not_as_job_xml() -> None:
    body = (FIXTURES / "corpus_extra" / "atom03.xml").read_bytes()
    result = parse_document(body, source_url="https://blog.example.org/")
    assert result.error is None
    [item] = result.items
    assert item.title == "Graduate Archivist"
    assert item.link == "https://blog.example.org/jobs/graduate-archivist"
