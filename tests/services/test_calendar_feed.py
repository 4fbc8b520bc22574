"""The iCal feed parses back with icalendar to the same instants, across DST changes."""

import dataclasses
import datetime as dt

import pytest
from icalendar import Calendar

from campaign.services.calendar_feed import FeedEvent, build_calendar

UTC = dt.UTC
LONDON = "Europe/London"
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
QUARTER = dt.timedelta(minutes=15)


def event(uid: str, start_utc: dt.datetime, **changes: object) -> FeedEvent:
    base = FeedEvent(
        uid=uid,
        start_utc=start_utc,
        duration=QUARTER,
        summary=f"X: post {uid}",
        description="Planned post",
        status="CONFIRMED",
    )
    return dataclasses.replace(base, **changes)


# 09:00 GMT the day before the spring change, the first minute of BST, and 09:00 BST after it.
ACROSS_SPRING = [
    event("delivery-1@campaign", dt.datetime(2026, 3, 28, 9, 0, tzinfo=UTC)),
    event("delivery-2@campaign", dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    event("delivery-3@campaign", dt.datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),
]


def parsed(events: list[FeedEvent], zone: str = LONDON, name: str = "Careers") -> Calendar:
    return Calendar.from_ical(build_calendar(events, zone, name=name, now_utc=NOW))


def by_uid(calendar: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in calendar.events}


def test_the_calendar_names_itself_and_its_zone():
    calendar = parsed(ACROSS_SPRING, name="Careers Service, planned posts")

    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"]) == "-//campaign//planned posts//EN"
    assert str(calendar["X-WR-CALNAME"]) == "Careers Service, planned posts"
    assert str(calendar["X-WR-TIMEZONE"]) == LONDON


def test_the_calendar_carries_the_vtimezone_its_events_refer_to():
    calendar = parsed(ACROSS_SPRING)

    assert [tz.tz_name for tz in calendar.timezones] == [LONDON]
    assert calendar.get_missing_tzids() == set()


def test_each_start_is_written_in_the_organisation_zone():
    calendar = parsed(ACROSS_SPRING)

    for item in calendar.events:
        assert item["DTSTART"].params["TZID"] == LONDON
        assert item["DTEND"].params["TZID"] == LONDON


@pytest.mark.parametrize("source", ACROSS_SPRING, ids=lambda e: e.uid)
def test_starts_and_ends_parse_back_to_the_same_instants_across_the_spring_change(source):
    parsed_event = by_uid(parsed(ACROSS_SPRING))[source.uid]

    assert parsed_event.start.astimezone(UTC) == source.start_utc
    assert parsed_event.end.astimezone(UTC) == source.start_utc + QUARTER


@pytest.mark.parametrize("source", ACROSS_SPRING, ids=lambda e: e.uid)
def test_the_vtimezone_alone_gives_the_same_instants(source):
    # A client that does not know IANA names reads the wall time through our VTIMEZONE.
    calendar = parsed(ACROSS_SPRING)
    own_zone = calendar.timezones[0].to_tz(lookup_tzid=False)
    wall = by_uid(calendar)[source.uid].start.replace(tzinfo=None)

    assert wall.replace(tzinfo=own_zone).astimezone(UTC) == source.start_utc


@pytest.mark.parametrize(
    ("start_utc", "expected_wall"),
    [
        (dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "20261025T013000"),  # 01:30 BST
        (dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "20261025T013000Z"),  # 01:30 GMT
    ],
)
def test_both_occurrences_of_the_repeated_hour_keep_their_instants(start_utc, expected_wall):
    # A TZID time that happens twice means the first one (RFC 5545 3.3.5), so the second is UTC.
    calendar = parsed([event("fold@campaign", start_utc)])
    item = calendar.events[0]

    assert item["DTSTART"].to_ical().decode() == expected_wall
    assert item.start.astimezone(UTC) == start_utc


def test_text_with_commas_semicolons_newlines_and_non_ascii_round_trips_exactly():
    text = "X: Careers fair, bookings close Friday; 9–5\nCafé ☕ \\ «Stellenbörse»"
    source = event("text@campaign", ACROSS_SPRING[0].start_utc, summary=text, description=text)

    item = parsed([source]).events[0]

    assert str(item["SUMMARY"]) == text
    assert str(item["DESCRIPTION"]) == text


@pytest.mark.parametrize("status", ["CONFIRMED", "CANCELLED", "TENTATIVE"])
def test_each_event_keeps_its_status(status):
    item = parsed([event("s@campaign", ACROSS_SPRING[0].start_utc, status=status)]).events[0]

    assert str(item["STATUS"]) == status


def test_the_stamp_is_now_and_the_url_is_kept():
    source = event("u@campaign", ACROSS_SPRING[0].start_utc, url="https://campaign.example/posts/7")

    item = parsed([source]).events[0]

    assert item["DTSTAMP"].dt == NOW
    assert str(item["URL"]) == "https://campaign.example/posts/7"


def test_the_feed_is_the_same_bytes_whatever_the_order_of_events():
    forwards = build_calendar(ACROSS_SPRING, LONDON, name="C", now_utc=NOW)
    backwards = build_calendar(reversed(ACROSS_SPRING), LONDON, name="C", now_utc=NOW)

    assert forwards == backwards
    assert [str(e["UID"]) for e in Calendar.from_ical(forwards).events] == [
        e.uid for e in ACROSS_SPRING
    ]


def test_an_empty_feed_is_a_valid_calendar():
    calendar = parsed([])

    assert calendar.events == []
    assert str(calendar["X-WR-TIMEZONE"]) == LONDON


def test_a_zone_without_dst_still_gets_its_vtimezone():
    source = event("k@campaign", dt.datetime(2026, 3, 29, 3, 30, tzinfo=UTC))

    calendar = parsed([source], zone="Asia/Kolkata")

    assert [tz.tz_name for tz in calendar.timezones] == ["Asia/Kolkata"]
    assert calendar.events[0]["DTSTART"].to_ical().decode() == "20260329T090000"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"status": "DONE"}, "status 'DONE'"),
        ({"start_utc": dt.datetime(2026, 3, 28, 9, 0)}, "naive datetime"),
        ({"duration": dt.timedelta(minutes=-1)}, "negative duration"),
    ],
)
def test_an_invalid_event_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        build_calendar(
            [dataclasses.replace(event("bad@campaign", NOW), **bad)], LONDON, name="C", now_utc=NOW
        )


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="now_utc"):
        build_calendar([], LONDON, name="C", now_utc=dt.datetime(2026, 3, 20, 12))
