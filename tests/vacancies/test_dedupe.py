"""Layered de-duplication, URL normalisation and content hashes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign.vacancies.dates import timezone
from campaign.vacancies.dedupe import (
    Existing,
    Match,
    content_hash,
    count_drop_warning,
    keys_for,
    match,
    simplify,
)
from campaign.vacancies.detect import parse_document
from campaign.vacancies.normalise import normalise, normalise_all
from campaign.vacancies.records import RawItem, Vacancy
from campaign.vacancies.urls import absolute_url, normalise_url

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "vacancies"
LONDON = timezone("Europe/London")
NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def fixture(name: str, scope: str = "feed") -> list[Vacancy]:
    result = parse_document((FIXTURES / name).read_bytes(), source_url="https://src.example.org/")
    return normalise_all(result.items, tz=LONDON, now=NOW, scope=scope)


def item(n: int, **fields: str) -> RawItem:
    defaults = {"title": f"Role {n}", "link": f"https://jobs.example.org/{n}", "guid": f"g{n}"}
    return RawItem(position=n, **(defaults | fields))  # type: ignore[arg-type]


def vacancy(raw: RawItem, scope: str = "feed") -> Vacancy:
    return normalise(raw, tz=LONDON, now=NOW, scope=scope)


def stored(record_id: int, v: Vacancy, content: str | None = None) -> Existing:
    return Existing(record_id, v.keys, content or v.content_hash)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://WWW.Example.ORG/Jobs/42/", "https://example.org/Jobs/42"),
        ("https://example.org/jobs/42#apply", "https://example.org/jobs/42"),
        ("https://example.org:443/jobs/42", "https://example.org/jobs/42"),
        ("https://example.org:8443/jobs/42", "https://example.org:8443/jobs/42"),
        (
            "https://example.org/j?utm_source=x&b=2&gclid=1&a=1&fbclid=2&mc_cid=3&_hsenc=4",
            "https://example.org/j?a=1&b=2",
        ),
        ("https://example.org/", "https://example.org"),
        ("mailto:jobs@example.org", None),
        ("javascript:alert(1)", None),
        ("not a url", None),
        ("https://[::1/", None),
    ],
)
def test_normalise_url(url: str, expected: str | None) -> None:
    assert normalise_url(url) == expected


@given(
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["", "www.", "WWW."]),
    st.from_regex(r"/[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(["", "/", "#frag", "?utm_medium=x", "/?fbclid=1#x"]),
)
def test_normalise_url_variants_agree(scheme: str, www: str, path: str, tail: str) -> None:
    assert normalise_url(f"{scheme}://{www}Jobs.Example.org{path}{tail}") == (
        f"https://jobs.example.org{path}"
    )


@given(st.text(max_size=40))
def test_normalise_url_never_raises(text: str) -> None:
    result = normalise_url(text)
    assert result is None or result.startswith("https://")


def test_absolute_url() -> None:
    assert absolute_url("/v/1", "https://a.example/feed.xml") == "https://a.example/v/1"
    assert absolute_url("  https://b.example/x ", "") == "https://b.example/x"
    assert absolute_url("v/1", "") is None
    assert absolute_url("ftp://a.example/x", "") is None


def test_simplify() -> None:
    assert simplify("  Research &  Insight – Intern!! ") == "research and insight intern"
    assert simplify("RESEARCH AND INSIGHT INTERN") == "research and insight intern"


def test_guid_scoped_to_source_unless_it_is_a_url() -> None:
    a = keys_for(guid="1", url="", employer="", title="T", location="", scope="s1")
    b = keys_for(guid="1", url="", employer="", title="T", location="", scope="s2")
    assert a.guid != b.guid
    c = keys_for(
        guid="http://www.x.example/j/1#0", url="", employer="", title="", location="", scope="s1"
    )
    assert c.guid == "url:https://x.example/j/1"
    assert keys_for(guid="", url="", employer="", title="T", location="").fingerprint is None


def test_new_update_unchanged() -> None:
    old = vacancy(item(1))
    edited = vacancy(item(1, description_html="Now with a salary: £20,000"))
    existing = [stored(7, old)]
    assert match([old], existing) == [Match(0, "unchanged", existing_id=7, matched_on="guid")]
    assert match([edited], existing) == [Match(0, "update", existing_id=7, matched_on="guid")]
    assert match([vacancy(item(2))], existing) == [Match(0, "new")]


def test_unstable_guid_falls_back_to_url() -> None:
    old = vacancy(item(1, link="https://www.jobs.example.org/1#0"))
    fresh = vacancy(item(1, guid="random-per-fetch", link="http://jobs.example.org/1/#3"))
    assert match([fresh], [stored(3, old)]) == [Match(0, "update", existing_id=3, matched_on="url")]


def test_missing_guid_uses_link() -> None:
    old = vacancy(item(1, guid=""))
    again = vacancy(item(1, guid=""))
    assert match([again], [stored(4, old)])[0].matched_on == "url"


def test_shared_guid_in_one_feed_is_not_trusted() -> None:
    batch = fixture("guids.rss")
    gas, electric = batch[2], batch[3]
    assert gas.keys.guid == electric.keys.guid
    results = match(batch, [])
    assert [r.outcome for r in results] == ["new", "duplicate", "new", "new", "new"]
    assert results[1] == Match(1, "duplicate", duplicate_of=0, matched_on="url")  # #0 vs /#3
    # An existing record with that GUID is not matched through it either.
    existing = [Existing(9, gas.keys, "x")]
    assert match(batch, existing)[3] == Match(3, "new")
    assert match(batch, existing)[2] == Match(2, "update", existing_id=9, matched_on="url")


def test_tracking_parameters_do_not_split_a_vacancy() -> None:
    batch = fixture("guids.rss")
    assert batch[4].keys.url == "https://tidewell.example/jobs/caretaker"


def test_same_url_different_titles_are_different_jobs() -> None:
    marketing, copywriter = fixture("careerjet.xml")
    assert match([marketing, copywriter], []) == [Match(0, "new"), Match(1, "new")]
    # Against stored records too: the URL alone never merges different titles.
    assert match([copywriter], [stored(1, marketing)]) == [Match(0, "new")]


def test_fingerprint_layer() -> None:
    old = vacancy(
        item(1, employer="Acme Ltd", location="Leeds", guid="", link="https://a.example/1")
    )
    moved = vacancy(
        item(
            1,
            title="ROLE  1!",
            employer="acme ltd",
            location="LEEDS",
            guid="",
            link="https://b.example/9",
        )
    )
    assert match([moved], [stored(5, old)]) == [
        Match(0, "update", existing_id=5, matched_on="fingerprint")
    ]


def test_same_item_in_two_feeds() -> None:
    (engineering,) = fixture("multi_feed_engineering.rss", scope="eng")
    (finance,) = fixture("multi_feed_finance.rss", scope="fin")
    assert engineering.content_hash == finance.content_hash
    assert match([engineering, finance], []) == [
        Match(0, "new"),
        Match(1, "duplicate", duplicate_of=0, matched_on="guid"),
    ]
    assert match([finance], [stored(2, engineering)]) == [
        Match(0, "unchanged", existing_id=2, matched_on="guid")
    ]


def test_content_hash_ignores_position_only() -> None:
    assert content_hash(item(1)) == content_hash(
        RawItem(position=99, title="Role 1", link="https://jobs.example.org/1", guid="g1")
    )
    assert content_hash(item(1)) != content_hash(item(1, closing_text="1 May 2027"))


def test_unchanged_items_skip_normalisation() -> None:
    raws = [item(1), item(2)]
    known = frozenset({content_hash(raws[0])})
    kept = normalise_all(raws, tz=LONDON, now=NOW, skip_hashes=known)
    assert [v.title for v in kept] == ["Role 2"]


def test_count_drop_warning() -> None:
    assert count_drop_warning(None, 0) is None
    assert count_drop_warning(100, 60) is None
    assert count_drop_warning(100, 120) is None
    assert count_drop_warning(100, 20) == (
        "the feed has 20 items, down from 100 at the last poll; check the source"
    )
