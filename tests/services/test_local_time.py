"""Wall times resolve to UTC with one DST policy: gaps move forward, repeated hours take the first."""

import datetime as dt
import itertools
import re
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign.services.local_time import (
    Slot,
    format_local,
    next_free_slot,
    parse_local,
    resolve_local,
    slot_occurrences,
)

UTC = dt.UTC
LONDON = "Europe/London"
MON, THU, SUN = 0, 3, 6


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# -- resolve_local -----------------------------------------------------------------------------

RESOLVE_CASES = [
    # zone, day, wall time, expected local (ISO, with offset), kind of note
    (LONDON, "2026-03-29", "01:30", "2026-03-29T02:30:00+01:00", "gap"),
    (LONDON, "2026-03-29", "02:30", "2026-03-29T02:30:00+01:00", None),  # after the 01:00 jump
    (LONDON, "2026-10-25", "01:30", "2026-10-25T01:30:00+01:00", "fold"),
    (LONDON, "2026-06-01", "09:00", "2026-06-01T09:00:00+01:00", None),
    ("Europe/Dublin", "2026-10-25", "01:30", "2026-10-25T01:30:00+01:00", "fold"),
    ("America/New_York", "2026-03-08", "02:30", "2026-03-08T03:30:00-04:00", "gap"),
    ("America/New_York", "2026-11-01", "01:30", "2026-11-01T01:30:00-04:00", "fold"),
    ("Australia/Sydney", "2026-04-05", "02:30", "2026-04-05T02:30:00+11:00", "fold"),
    ("Australia/Sydney", "2026-10-04", "02:30", "2026-10-04T03:30:00+11:00", "gap"),
    ("Australia/Lord_Howe", "2026-10-04", "02:15", "2026-10-04T02:45:00+11:00", "gap"),
    ("Australia/Lord_Howe", "2026-04-05", "01:45", "2026-04-05T01:45:00+11:00", "fold"),
    ("Asia/Kolkata", "2026-03-29", "02:30", "2026-03-29T02:30:00+05:30", None),
    ("Asia/Kolkata", "2026-10-25", "01:30", "2026-10-25T01:30:00+05:30", None),
    # Greenland jumps from Saturday 23:00 to Sunday 00:00: the forward shift crosses midnight.
    ("America/Nuuk", "2026-03-28", "23:30", "2026-03-29T00:30:00-01:00", "gap"),
]
NOTE_PATTERNS = {"gap": "does not exist on", "fold": "happens twice on"}


@pytest.mark.parametrize(("zone", "day", "at", "expected", "kind"), RESOLVE_CASES)
def test_resolve_local_applies_the_dst_policy(zone, day, at, expected, kind):
    got = resolve_local(dt.date.fromisoformat(day), dt.time.fromisoformat(at), zone)

    assert got.local.isoformat() == expected
    assert got.utc == dt.datetime.fromisoformat(expected)
    assert got.utc.tzinfo is UTC
    assert str(got.local.tzinfo) == zone
    if kind is None:
        assert got.note is None
    else:
        assert NOTE_PATTERNS[kind] in (got.note or "")


def test_a_time_in_the_spring_gap_says_where_it_moved():
    got = resolve_local(dt.date(2026, 3, 29), dt.time(1, 30), LONDON)

    assert got.note == (
        "01:30 does not exist on 29 March 2026 in Europe/London (the clocks go forward); "
        "it will be posted at 02:30 BST."
    )


def test_a_time_in_the_autumn_fold_says_which_occurrence_is_used():
    got = resolve_local(dt.date(2026, 10, 25), dt.time(1, 30), LONDON)

    assert got.note == (
        "01:30 happens twice on 25 October 2026 in Europe/London; "
        "the first time (01:30 BST, before the clocks go back) is used."
    )


def test_a_shift_across_midnight_names_the_new_date():
    got = resolve_local(dt.date(2026, 3, 28), dt.time(23, 30), "America/Nuuk")

    assert "it will be posted at 00:30 UTC-01:00 on 29 March 2026." in (got.note or "")


def test_resolve_local_accepts_a_zoneinfo():
    zone = zoneinfo.ZoneInfo(LONDON)

    assert resolve_local(dt.date(2026, 1, 5), dt.time(9), zone).utc == utc(2026, 1, 5, 9)


def test_resolve_local_rejects_an_unknown_zone():
    with pytest.raises(ValueError, match="unknown IANA timezone 'Mars/Olympus'"):
        resolve_local(dt.date(2026, 1, 5), dt.time(9), "Mars/Olympus")


def test_resolve_local_rejects_an_aware_time():
    with pytest.raises(ValueError, match="wall time"):
        resolve_local(dt.date(2026, 1, 5), dt.time(9, tzinfo=UTC), LONDON)


# -- parse_local -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2026-06-01T09:00+02:00", utc(2026, 6, 1, 7)),
        ("2026-06-01 09:00 +0530", utc(2026, 6, 1, 3, 30)),
        ("2026-06-01T09:00:15Z", utc(2026, 6, 1, 9, 0, 15)),
        # The second 01:30 of the autumn change, named by its offset, is kept, not moved.
        ("2026-10-25T01:30+00:00", utc(2026, 10, 25, 1, 30)),
    ],
)
def test_parse_local_keeps_an_explicit_offset_exactly(text, expected_utc):
    got = parse_local(text, LONDON)

    assert got.utc == expected_utc
    assert got.local.astimezone(UTC) == expected_utc  # a fold=1 local never equals across zones
    assert str(got.local.tzinfo) == LONDON
    assert got.note is None


@pytest.mark.parametrize(
    ("text", "expected_local", "has_note"),
    [
        ("2026-06-01 09:00", "2026-06-01T09:00:00+01:00", False),
        ("2026-03-29T02:30", "2026-03-29T02:30:00+01:00", False),
        ("  2026-03-29 01:30  ", "2026-03-29T02:30:00+01:00", True),
        ("2026-10-25 01:30", "2026-10-25T01:30:00+01:00", True),
        ("2026-01-05 09:00:30", "2026-01-05T09:00:30+00:00", False),
    ],
)
def test_parse_local_reads_naive_text_as_wall_time_in_the_zone(text, expected_local, has_note):
    got = parse_local(text, LONDON)

    assert got.local.isoformat() == expected_local
    assert (got.note is not None) is has_note


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-02-30 09:00", "2026-02-30 is not a date"),
        ("2026-13-01 09:00", "2026-13-01 is not a date"),
        ("2026-01-01 24:00", "24:00 is not a time of day"),
        ("2026-01-01 09:60", "09:60 is not a time of day"),
        ("2026-01-01T09:00+25:00", "+25:00 is not a UTC offset"),
        ("tomorrow at nine", "'tomorrow at nine' is not a date and time"),
        ("2026-03-29", "'2026-03-29' is not a date and time"),
        ("", "'' is not a date and time"),
    ],
)
def test_parse_local_refuses_bad_text_with_a_plain_message(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_local(text, LONDON)


# -- slot_occurrences and next_free_slot: examples ----------------------------------------------


def test_a_weekly_slot_keeps_its_wall_time_across_the_spring_change():
    got = slot_occurrences([Slot(MON, dt.time(9))], LONDON, utc(2026, 3, 16), utc(2026, 4, 6))

    assert [r.utc for r in got] == [utc(2026, 3, 16, 9), utc(2026, 3, 23, 9), utc(2026, 3, 30, 8)]
    assert {r.local.time() for r in got} == {dt.time(9)}


@pytest.mark.parametrize(
    ("zone", "slot", "change_day", "expected_utc"),
    [
        (LONDON, Slot(SUN, dt.time(1, 30)), dt.date(2026, 3, 29), utc(2026, 3, 29, 1, 30)),
        (LONDON, Slot(SUN, dt.time(2, 30)), dt.date(2026, 3, 29), utc(2026, 3, 29, 1, 30)),
        (LONDON, Slot(SUN, dt.time(1, 30)), dt.date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
        (
            "America/New_York",
            Slot(SUN, dt.time(2, 30)),
            dt.date(2026, 3, 8),
            utc(2026, 3, 8, 7, 30),
        ),
        (
            "America/New_York",
            Slot(SUN, dt.time(1, 30)),
            dt.date(2026, 11, 1),
            utc(2026, 11, 1, 5, 30),
        ),
        (
            "Australia/Sydney",
            Slot(SUN, dt.time(2, 30)),
            dt.date(2026, 4, 5),
            utc(2026, 4, 4, 15, 30),
        ),
        (
            "Australia/Sydney",
            Slot(SUN, dt.time(2, 30)),
            dt.date(2026, 10, 4),
            utc(2026, 10, 3, 16, 30),
        ),
    ],
)
def test_a_slot_on_a_change_day_happens_exactly_once(zone, slot, change_day, expected_utc):
    monday = change_day - dt.timedelta(days=change_day.weekday())
    week = (
        resolve_local(monday, dt.time(0), zone).utc,
        resolve_local(monday + dt.timedelta(days=7), dt.time(0), zone).utc,
    )

    got = slot_occurrences([slot], zone, *week)

    assert [r.utc for r in got] == [expected_utc]


def test_two_slots_landing_on_one_instant_give_one_occurrence():
    slots = [Slot(SUN, dt.time(1, 30)), Slot(SUN, dt.time(2, 30))]

    got = slot_occurrences(slots, LONDON, utc(2026, 3, 29), utc(2026, 3, 30))

    assert len(got) == 1
    assert got[0].note is None  # described by the 02:30 slot, which was not moved


def test_slot_occurrences_is_half_open():
    slot = Slot(MON, dt.time(9))

    got = slot_occurrences([slot], LONDON, utc(2026, 1, 5, 9), utc(2026, 1, 12, 9))

    assert [r.utc for r in got] == [utc(2026, 1, 5, 9)]


def test_slot_occurrences_refuses_naive_bounds():
    with pytest.raises(ValueError, match="naive"):
        slot_occurrences([Slot(MON, dt.time(9))], LONDON, dt.datetime(2026, 1, 5), utc(2026, 2, 1))


@pytest.mark.parametrize(
    ("weekday", "at"), [(7, dt.time(9)), (-1, dt.time(9)), (0, dt.time(9, tzinfo=UTC))]
)
def test_a_slot_must_be_a_weekday_and_a_wall_time(weekday, at):
    with pytest.raises(ValueError):
        Slot(weekday, at)


QUEUE = [Slot(MON, dt.time(9)), Slot(THU, dt.time(12, 30))]


def test_next_free_slot_is_the_first_occurrence_after_the_given_instant():
    got = next_free_slot(QUEUE, LONDON, utc(2026, 1, 5, 9), taken_utc=[])

    assert got is not None
    assert got.utc == utc(2026, 1, 8, 12, 30)  # Monday 09:00 itself is not "after"


def test_next_free_slot_skips_taken_times_however_they_are_written():
    london = zoneinfo.ZoneInfo(LONDON)
    taken = [utc(2026, 1, 8, 12, 30), dt.datetime(2026, 1, 12, 9, tzinfo=london)]

    got = next_free_slot(QUEUE, LONDON, utc(2026, 1, 5, 10), taken)

    assert got is not None
    assert got.utc == utc(2026, 1, 15, 12, 30)


def test_next_free_slot_crosses_a_dst_change_by_wall_time():
    got = next_free_slot([Slot(MON, dt.time(9))], LONDON, utc(2026, 3, 27), taken_utc=[])

    assert got is not None
    assert got.utc == utc(2026, 3, 30, 8)
    assert format_local(got.utc, LONDON) == "Mon 30 Mar 2026, 09:00 BST"


def test_next_free_slot_is_none_when_the_horizon_is_full():
    after = utc(2026, 1, 1)
    everything = [
        r.utc for r in slot_occurrences(QUEUE, LONDON, after, after + dt.timedelta(days=14))
    ]

    assert next_free_slot(QUEUE, LONDON, after, everything, horizon_days=14) is None
    assert next_free_slot(QUEUE, LONDON, after, everything[:-1], horizon_days=14) is not None


def test_next_free_slot_is_none_without_slots():
    assert next_free_slot([], LONDON, utc(2026, 1, 1), taken_utc=[]) is None


def test_next_free_slot_refuses_naive_taken_times():
    with pytest.raises(ValueError, match="naive"):
        next_free_slot(QUEUE, LONDON, utc(2026, 1, 1), [dt.datetime(2026, 1, 5, 9)])


# -- format_local ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        (utc(2026, 3, 29, 2, 30), LONDON, "Sun 29 Mar 2026, 03:30 BST"),
        (utc(2026, 1, 5, 9), LONDON, "Mon 5 Jan 2026, 09:00 GMT"),
        (utc(2026, 9, 1, 12), "Asia/Kolkata", "Tue 1 Sep 2026, 17:30 IST"),
        (utc(2026, 1, 5, 12), "America/Santiago", "Mon 5 Jan 2026, 09:00 UTC-03:00"),
        (utc(2026, 6, 1), "Australia/Lord_Howe", "Mon 1 Jun 2026, 10:30 UTC+10:30"),
    ],
)
def test_format_local_shows_the_wall_time_and_zone_abbreviation(value, zone, expected):
    assert format_local(value, zone) == expected


def test_format_local_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="naive"):
        format_local(dt.datetime(2026, 1, 5, 9), LONDON)


# -- properties over zones and dates ------------------------------------------------------------

EDGE_ZONES = [
    "Europe/London",
    "Europe/Dublin",  # negative DST in tzdata: winter is the "daylight" offset
    "America/New_York",
    "America/St_Johns",  # half-hour offset with DST
    "America/Santiago",  # changes at midnight
    "America/Nuuk",  # gap from Saturday 23:00 to Sunday 00:00
    "America/Havana",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Apia",
    "Asia/Tehran",
    "Asia/Kolkata",
    "Africa/Casablanca",  # DST suspended for Ramadan: two changes a few weeks apart
    "Asia/Gaza",
]
ALL_ZONES = sorted(zoneinfo.available_timezones() - {"localtime"})

zones = st.sampled_from(EDGE_ZONES) | st.sampled_from(ALL_ZONES)
# Most changes happen between midnight and 04:00, so half the drawn times fall there.
wall_times = st.builds(
    dt.time,
    st.integers(0, 3) | st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45]) | st.integers(0, 59),
)
minutes = st.integers(0, 59)
# Slots near the week boundary (Monday early, Sunday late) are the ones that a week-stepping bug
# pushes into the neighbouring week, giving a week with no occurrence and one with two.
slots = (
    st.builds(Slot, st.integers(0, 6), wall_times)
    | st.builds(Slot, st.just(MON), st.builds(dt.time, st.integers(0, 1), minutes))
    | st.builds(Slot, st.just(SUN), st.builds(dt.time, st.integers(22, 23), minutes))
)
# Half the windows start in a month before one of the common change seasons.
any_day = st.dates(dt.date(2020, 1, 6), dt.date(2035, 12, 24))
change_season = st.builds(
    dt.date, st.integers(2020, 2035), st.sampled_from([2, 3, 8, 9, 10]), st.integers(1, 28)
)
mondays = (any_day | change_season).map(lambda d: d - dt.timedelta(days=d.weekday()))


def expected_resolution(
    day: dt.date, at: dt.time, zone: str
) -> tuple[dt.datetime, dt.datetime, bool]:
    """Oracle by brute force: try every offset the zone uses within a day and a bit of the time."""
    tz = zoneinfo.ZoneInfo(zone)
    wall = dt.datetime.combine(day, at)
    nearby = {
        (wall + dt.timedelta(hours=h)).replace(tzinfo=UTC).astimezone(tz).utcoffset()
        for h in range(-30, 31)
    }
    instants = sorted(
        (wall - offset).replace(tzinfo=UTC)
        for offset in nearby
        if offset is not None
        and (wall - offset).replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None) == wall
    )
    if instants:
        return instants[0], wall, len(instants) > 1
    before = (wall - dt.timedelta(hours=30)).replace(tzinfo=UTC).astimezone(tz).utcoffset()
    after = (wall + dt.timedelta(hours=30)).replace(tzinfo=UTC).astimezone(tz).utcoffset()
    assert before is not None and after is not None and after > before
    return (wall - before).replace(tzinfo=UTC), wall + (after - before), True


def week_bounds(monday: dt.date, weeks: int, zone: str) -> list[dt.datetime]:
    return [
        resolve_local(monday + dt.timedelta(weeks=k), dt.time(0), zone).utc
        for k in range(weeks + 1)
    ]


@settings(max_examples=400)  # the week-boundary cases are a small corner of the space
@given(zone=zones, slot=slots, monday=mondays, weeks=st.integers(1, 10))
def test_each_slot_happens_exactly_once_in_every_local_week(zone, slot, monday, weeks):
    bounds = week_bounds(monday, weeks, zone)

    got = slot_occurrences([slot], zone, bounds[0], bounds[-1])

    per_week = [sum(1 for r in got if lo <= r.utc < hi) for lo, hi in itertools.pairwise(bounds)]
    assert per_week == [1] * weeks


@given(zone=zones, slot=slots, monday=mondays, weeks=st.integers(1, 10))
def test_each_occurrence_is_the_slot_wall_time_or_moved_forward_by_the_gap(
    zone, slot, monday, weeks
):
    bounds = week_bounds(monday, weeks, zone)

    got = slot_occurrences([slot], zone, bounds[0], bounds[-1])

    assert len(got) == weeks
    for week, occurrence in enumerate(got):
        day = monday + dt.timedelta(weeks=week, days=slot.weekday)
        expected_utc, expected_wall, noted = expected_resolution(day, slot.at, zone)
        assert occurrence.utc == expected_utc
        assert occurrence.local.astimezone(UTC) == occurrence.utc
        assert occurrence.local.replace(tzinfo=None) == expected_wall
        assert (occurrence.note is not None) is noted
        if expected_wall.time() == slot.at:
            assert occurrence.local.weekday() == slot.weekday
        else:
            assert occurrence.local.replace(tzinfo=None) > dt.datetime.combine(day, slot.at)


@given(
    zone=zones,
    queue=st.lists(slots, min_size=1, max_size=6),
    monday=mondays,
    weeks=st.integers(1, 6),
)
def test_occurrences_of_many_slots_are_strictly_increasing_and_cover_every_slot(
    zone, queue, monday, weeks
):
    bounds = week_bounds(monday, weeks, zone)

    got = slot_occurrences(queue, zone, bounds[0], bounds[-1])
    each = {r.utc for slot in queue for r in slot_occurrences([slot], zone, bounds[0], bounds[-1])}

    instants = [r.utc for r in got]
    assert all(a < b for a, b in itertools.pairwise(instants))
    assert set(instants) == each
    assert all(r.utc.tzinfo is UTC for r in got)


@given(zone=zones, day=st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)), at=wall_times)
def test_resolve_local_agrees_with_a_brute_force_oracle(zone, day, at):
    expected_utc, expected_wall, noted = expected_resolution(day, at, zone)

    got = resolve_local(day, at, zone)

    assert (got.utc, got.local.replace(tzinfo=None), got.note is not None) == (
        expected_utc,
        expected_wall,
        noted,
    )


@given(
    zone=zones,
    queue=st.lists(slots, min_size=1, max_size=4),
    monday=mondays,
    taken_count=st.integers(0, 5),
)
def test_next_free_slot_is_the_first_untaken_occurrence(zone, queue, monday, taken_count):
    after = resolve_local(monday, dt.time(0), zone).utc
    window = slot_occurrences(queue, zone, after, after + dt.timedelta(days=28))
    taken = [r.utc for r in window[:taken_count]]

    got = next_free_slot(queue, zone, after, taken, horizon_days=28)

    free = [r for r in window if r.utc > after and r.utc not in taken]
    assert got == (free[0] if free else None)
