"""Broken and hostile input: every document is parsed or refused with a message, never a raise."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign.vacancies.detect import parse_document
from campaign.vacancies.normalise import normalise_all

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
PREFIXES = [
    b"",
    b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>',
    b"<source><job><title>",
    b'<html><script type="application/ld+json">{"@type": "JobPosting", "title": "',
    b'{"results": [{"title": "',
    b"title,url\r\n",
]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(PREFIXES), st.binary(max_size=300))
def test_any_bytes_parse_or_refuse(prefix: bytes, tail: bytes) -> None:
    result = parse_document(prefix + tail, source_url="https://src.example.org/")
    assert result.error is None or result.error.strip()
    assert result.error is None or not result.items
    for vacancy in normalise_all(result.items, tz="Europe/London", now=NOW):
        assert vacancy.url == "" or vacancy.url.startswith(("http://", "https://"))
        assert "<script" not in vacancy.description_html.lower()


def test_deeply_nested_json_is_refused() -> None:
    result = parse_document(b"[" * 100_000 + b"]" * 100_000)
    assert result.error is not None and "nested too deeply" in result.error


def test_deeply_nested_jsonld_block_is_reported() -> None:
    page = b'<html><script type="application/ld+json">' + b"[" * 50_000 + b"</script></html>"
    result = parse_document(page)
    assert result.items == []
    assert result.errors and result.errors[0].position == 1


def test_bad_utf8_in_utf8_declared_feed_does_not_crash() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<link>https://e.example/</link><description>d</description><item><title>Caf\xe9 "
        b"\xff\xfe Manager</title><link>https://e.example/1</link></item></channel></rss>"
    )
    result = parse_document(body)
    assert result.error is None or result.error.startswith("the feed is not well-formed XML")
    if result.error is None:
        assert result.items[0].title.startswith("Caf")


def test_csv_bad_rows_reported_by_line() -> None:
    body = b'title,url\r\nA,https://e.example/1\r\n"bad"x,https://e.example/2\r\nC,https://e.example/3\r\n'
    result = parse_document(body, content_type="text/csv")
    assert [(e.position, e.message) for e in result.errors] == [
        (3, "line 3: ',' expected after '\"'")
    ]
    assert [i.title for i in result.items] == ["A", "C"]
    unterminated = b'title,url\r\n"unterminated,https://e.example/1\r\nOK,https://e.example/2\r\n'
    result = parse_document(unterminated, content_type="text/csv")
    assert [(e.position, e.message) for e in result.errors] == [
        (2, "line 2: unexpected end of data")
    ]


def test_csv_extra_cells_reported() -> None:
    body = b"title,url\r\nA,https://e.example/1,surplus\r\nB,https://e.example/2\r\n"
    result = parse_document(body, content_type="text/csv")
    assert [(e.position, e.message) for e in result.errors] == [
        (2, "line 2: 3 cells but the header has 2")
    ]
    assert [i.title for i in result.items] == ["B"]


def test_csv_without_title_column_refused() -> None:
    result = parse_document(b"name,link\r\nA,https://e.example/1\r\n", content_type="text/csv")
    assert result.error == "the CSV header has no title column"


def test_unknown_timezone_is_a_clear_error() -> None:
    result = parse_document(
        b"<source><job><title>A</title><url>https://e.example/</url></job></source>"
    )
    with pytest.raises(ValueError, match="unknown timezone 'Nowhere/Else'"):
        normalise_all(result.items, tz="Nowhere/Else", now=NOW)


def test_unclosed_tags_page_is_scanned_not_choked_on() -> None:
    result = parse_document(b"<html>" + b"<a" * 200_000)
    assert result.error is None and result.items == []
    assert result.warnings == ["no JSON-LD blocks on the page"]


def test_garbage_feed_is_refused_by_the_fast_check() -> None:
    body = b'<rss version="2.0"><channel>' + b"<item x" * 200_000
    result = parse_document(body)
    assert result.error == (
        "the feed is not well-formed XML: not well-formed (invalid token) (line 1, column 35)"
    )


def test_html_entity_in_legacy_rss_is_refused_with_the_parser_message() -> None:
    # RSS 0.91 relies on an external DTD for `&eacute;`. feedparser's strict parser stops at it;
    # its lenient fallback may drop items silently, so the feed is refused, naming the problem.
    body = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss version="0.91"><channel>'
        b"<title>t</title><link>https://e.example/</link><description>d</description><item>"
        b"<title>Caf&eacute; Assistant</title><link>https://e.example/1</link></item></channel></rss>"
    )
    result = parse_document(body)
    assert result.items == []
    assert result.error == (
        "the feed is not well-formed XML: <unknown>:3:120: undefined entity (line 3)"
    )
