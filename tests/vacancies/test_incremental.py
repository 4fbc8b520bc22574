"""Re-polls that parse only new or edited items."""

from __future__ import annotations

from pathlib import Path

from campaign.vacancies.incremental import parse_changed
from campaign.vacancies.rss import parse_rss

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vacancies"
SOURCE = "https://src.example.org/feeds/main.xml"


def test_first_poll_parses_everything_and_returns_hashes() -> None:
    body = (FIXTURES / "closing_in_text.rss").read_bytes()
    first = parse_changed(body, frozenset(), source_url=SOURCE)
    full = parse_rss(body, source_url=SOURCE)
    assert first.result.items == full.items
    assert len(first.hashes) == 5 and len(set(first.hashes)) == 5
    assert not first.full


def test_unchanged_body_parses_nothing() -> None:
    body = (FIXTURES / "closing_in_text.rss").read_bytes()
    hashes = frozenset(parse_changed(body, frozenset()).hashes)
    again = parse_changed(body, hashes)
    assert again.result.items == [] and again.result.error is None
    assert set(again.hashes) == hashes


def test_only_edited_items_are_parsed_with_their_positions() -> None:
    body = (FIXTURES / "closing_in_text.rss").read_bytes()
    known = frozenset(parse_changed(body, frozenset()).hashes)
    edited = body.replace(b"No deadline mentioned.", b"Closing date: 1 May 2027").replace(
        b"<title>Library Assistant</title>", b"<title>Senior Library Assistant</title>"
    )
    again = parse_changed(edited, known, source_url=SOURCE)
    assert [(i.position, i.title) for i in again.result.items] == [
        (2, "Senior Library Assistant"),
        (5, "Gardener"),
    ]
    full = parse_rss(edited, source_url=SOURCE)
    assert again.result.items == [full.items[1], full.items[4]]


def test_xml_base_and_namespaces_stay_in_scope() -> None:
    body = (FIXTURES / "atom_base.atom").read_bytes()
    (entry,) = parse_changed(body, frozenset(), source_url=SOURCE).result.items
    assert entry.link == "https://careers.quayside.example/roles/vol-coord"
    body = (FIXTURES / "dates.rss").read_bytes()
    items = parse_changed(body, frozenset()).result.items
    assert items[0].closing_text == "03/04/2027"  # vac: namespace declared on the root


def test_broken_edit_falls_back_to_a_full_parse_with_its_error() -> None:
    body = (FIXTURES / "closing_in_text.rss").read_bytes()
    known = frozenset(parse_changed(body, frozenset()).hashes)
    broken = body.replace(b"<title>Porter</title>", b"<title>Porter & Cleaner</title>")
    again = parse_changed(broken, known)
    assert again.full
    assert again.result.error is not None
    assert again.result.error.startswith("the feed is not well-formed XML")
    assert again.hashes == []


def test_document_without_items_is_parsed_whole() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    result = parse_changed(body, frozenset())
    assert result.full and result.result.items == [] and result.result.error is None
