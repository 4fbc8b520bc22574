"""Date parsing: RFC 822, ISO 8601, UK day-first, named zones, impossible dates, phrases."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaign.vacancies.dates import closing_from_text, parse_date, timezone

LONDON = timezone("Europe/London")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 01 Apr 2025 10:00:00 BST", utc(2025, 4, 1, 9)),
        ("Tue, 01 Apr 2025 10:00:00 GMT", utc(2025, 4, 1, 10)),
        ("Mon, 01 Feb 2027 08:00:00 -0500", utc(2027, 2, 1, 13)),
        ("Sat, 03 Apr 27 09:00 EST", utc(2027, 4, 3, 14)),
        ("2027-04-03T10:00:00Z", utc(2027, 4, 3, 10)),
        ("2027-04-03T10:00:00.123+01:00", utc(2027, 4, 3, 9)),
        ("2027-07-01 09:00", utc(2027, 7, 1, 8)),  # no zone: London (BST)
        ("2027-01-01", utc(2027, 1, 1)),
        ("03/04/2027", utc(2027, 4, 2, 23)),  # day first: 3 April, BST
        ("3.4.27", utc(2027, 4, 2, 23)),
        ("03-04-2027 14:30", utc(2027, 4, 3, 13, 30)),
        ("3rd April 2027 at 5pm", utc(2027, 4, 3, 16)),
        ("April 3, 2027", utc(2027, 4, 2, 23)),
        ("Friday 3 December 2027 12 noon", utc(2027, 12, 3, 12)),
        ("1 Dec 2027 12am", utc(2027, 12, 1)),
    ],
)
def test_formats(text: str, expected: dt.datetime) -> None:
    parsed = parse_date(text, LONDON)
    assert parsed.value == expected
    assert parsed.warning is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("31/02/2027", "31/02/2027"),
        ("2027-13-01", "2027-13-01"),
        ("30 February 2027", "30 February 2027"),
        ("1 May 2027 13pm", "1 May 2027 13pm"),
        ("1 May 2027 25:00", "1 May 2027 25:00"),
    ],
)
def test_impossible_dates_are_never_rolled_over(text: str, shown: str) -> None:
    parsed = parse_date(text, LONDON, label="closing date", end_of_day=True)
    assert parsed.value is None
    assert parsed.warning == f"closing date {shown} is impossible; no closing date set"


def test_unrecognised_and_empty() -> None:
    assert parse_date("ASAP", LONDON).warning == "date 'ASAP' was not recognised; no date set"
    assert parse_date("   ", LONDON).value is None
    assert parse_date("   ", LONDON).warning is None


def test_end_of_day_for_date_only_closing() -> None:
    assert parse_date("2027-01-15", LONDON, end_of_day=True).value == utc(2027, 1, 15, 23, 59, 59)
    assert parse_date("2027-07-15", LONDON, end_of_day=True).value == utc(2027, 7, 15, 22, 59, 59)
    sydney = timezone("Australia/Sydney")
    assert parse_date("2027-01-15", sydney, end_of_day=True).value == utc(2027, 1, 15, 12, 59, 59)


def test_unknown_timezone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        timezone("Mars/Olympus")


@pytest.mark.parametrize(
    ("text", "expected", "phrase"),
    [
        ("Closing date: 14 May 2027", utc(2027, 5, 14, 22, 59, 59), "Closing date: 14 May 2027"),
        ("Closes: 14/05/2027 at 17:00", utc(2027, 5, 14, 16), "Closes: 14/05/2027 at 17:00"),
        (
            "Deadline - midnight on 2 June 2027",
            utc(2027, 6, 2, 22, 59, 59),
            "Deadline - midnight on 2 June 2027",
        ),
        (
            "Please apply by 9am, 4 January 2027.",
            utc(2027, 1, 4, 9),
            "apply by 9am, 4 January 2027",
        ),
        (
            "Applications must be received by 1 March 2027 (GMT)",
            utc(2027, 3, 1, 23, 59, 59),
            "Applications must be received by 1 March 2027 (GMT)",
        ),
        ("The closing date is 31 June 2027.", None, "closing date is 31 June 2027"),
    ],
)
def test_closing_phrases(text: str, expected: dt.datetime | None, phrase: str) -> None:
    found, seen = closing_from_text(text, LONDON)
    assert found is not None
    assert found.value == expected
    assert seen == phrase


def test_closing_phrase_memo_keeps_each_timezone_apart() -> None:
    memo: dict = {}
    text = "Closing date: 3 May 2027"
    in_london, _ = closing_from_text(text, LONDON, memo)
    in_utc, phrase = closing_from_text(text, timezone("UTC"), memo)
    assert in_london is not None and in_utc is not None
    assert in_london.value == utc(2027, 5, 3, 22, 59, 59)  # BST
    assert in_utc.value == utc(2027, 5, 3, 23, 59, 59)
    assert phrase == "Closing date: 3 May 2027"
    assert closing_from_text(text, LONDON, memo) == closing_from_text(text, LONDON)
    assert len(memo) == 2


def test_no_closing_phrase() -> None:
    assert closing_from_text("Interviews on 3 May 2027.", LONDON) == (None, "")
    assert closing_from_text("Closing soon!", LONDON) == (None, "")


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31)))
def test_iso_round_trip(moment: dt.datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=dt.UTC)
    assert parse_date(moment.isoformat(), LONDON).value == moment


@given(st.dates(min_value=dt.date(1971, 1, 1), max_value=dt.date(2069, 12, 31)))
def test_day_first_round_trip(day: dt.date) -> None:
    parsed = parse_date(day.strftime("%d/%m/%Y"), LONDON).value
    assert parsed is not None
    assert parsed.astimezone(LONDON).date() == day
    rfc = parse_date(day.strftime("%a, %d %b %Y 12:00:00 GMT"), LONDON).value
    assert rfc == dt.datetime.combine(day, dt.time(12), dt.UTC)


@given(st.text(max_size=60))
def test_never_raises(text: str) -> None:
    parsed = parse_date(text, LONDON)
    assert parsed.value is None or parsed.value.tzinfo is dt.UTC
