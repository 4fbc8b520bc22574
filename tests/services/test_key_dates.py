"""Key dates: checked by hand, imported from iCal (hostile files included), audited, admins only."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event
from sqlalchemy import func, select

from campaign.models import AuditEvent, KeyDate
from campaign.services import NotFound, PermissionDenied, ServiceError, key_dates
from campaign.services.audit import Actor
from campaign.services.ical_repeats import Budget, RuleError, parse_rule, repeat_days
from campaign.services.key_dates import KeyDateInput, guess_kind
from tests.conftest import NOW

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ical"
ACADEMIC_YEAR = (FIXTURES / "uk_academic_year_2026_27.ics").read_bytes()
TODAY = dt.date(2026, 3, 2)  # NOW in Europe/London


def actor(part, role="admin"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def ical(*events: str) -> bytes:
    """A calendar around the given VEVENT bodies (one property a line)."""
    body = "".join(f"BEGIN:VEVENT\n{e.strip()}\nEND:VEVENT\n" for e in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def run_import(db, part, data, **kw):
    return key_dates.import_ical(db, part.org, data, actor(part), NOW, **kw)


def stored(db, part):
    return {
        k.uid: k for k in db.scalars(select(KeyDate).where(KeyDate.organisation_id == part.org.id))
    }


def count(db, part):
    return db.scalar(
        select(func.count()).select_from(KeyDate).where(KeyDate.organisation_id == part.org.id)
    )


# --- by hand --------------------------------------------------------------------------------


def test_an_admin_adds_a_key_date_and_it_is_audited(db, world):
    data = KeyDateInput("Summer exams", "2026-05-11", "2026-06-05", "exams", "blackout", "Quiet")
    made = key_dates.create_key_date(db, world.home.org.id, data, actor(world.home), NOW)
    assert (made.title, made.kind, made.effect) == ("Summer exams", "exams", "blackout")
    assert (made.starts_on, made.ends_on) == (dt.date(2026, 5, 11), dt.date(2026, 6, 5))
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "key_date.created"))
    assert (event.subject_type, event.subject_id) == ("key_date", made.id)
    assert event.detail["starts_on"] == "2026-05-11"
    assert event.actor_label == world.home.admin.email


def test_a_key_date_without_an_end_is_a_single_day(db, world):
    made = key_dates.create_key_date(
        db, world.home.org.id, KeyDateInput("Results day", "2026-08-13"), actor(world.home), NOW
    )
    assert made.starts_on == made.ends_on == dt.date(2026, 8, 13)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (KeyDateInput("   ", "2026-05-11"), "Give the key date a title"),
        (KeyDateInput("x" * 201, "2026-05-11"), "keep it to 200 at most"),
        (KeyDateInput("Fair", "2026-05-11", kind="party"), "Unknown kind 'party'"),
        (KeyDateInput("Fair", "2026-05-11", effect="mute"), "Unknown effect 'mute'"),
        (KeyDateInput("Fair", ""), "Give the start date"),
        (KeyDateInput("Fair", "11/05/2026"), "is not a date; write it like 2026-09-28"),
        (KeyDateInput("Fair", "2026-02-30"), "2026-02-30 does not exist"),
        (KeyDateInput("Fair", "2026-05-11", "2026-05-10"), "is before the start"),
        (KeyDateInput("Fair", "0001-01-01"), "between 1900 and 2199"),
        (KeyDateInput("Fair", "2026-05-11", notes="n" * 2001), "keep them to 2000"),
    ],
)
def test_bad_key_dates_are_refused_with_the_reason(db, world, data, message):
    with pytest.raises(ServiceError, match=re.escape(message)):
        key_dates.create_key_date(db, world.home.org.id, data, actor(world.home), NOW)
    assert count(db, world.home) == 0


def test_control_characters_never_reach_the_database(db, world):
    data = KeyDateInput("Careers\x00 fair\x07", "2026-10-14", notes="Hall A\x00\nBring CVs")
    made = key_dates.create_key_date(db, world.home.org.id, data, actor(world.home), NOW)
    db.expire_all()
    assert made.title == "Careers fair"
    assert made.notes == "Hall A\nBring CVs"


@pytest.mark.parametrize("role", ["staff", "manager"])
def test_only_admins_change_key_dates(db, world, role):
    home = world.home
    data = KeyDateInput("Exams", "2026-05-11")
    with pytest.raises(PermissionDenied):
        key_dates.create_key_date(db, home.org.id, data, actor(home, role), NOW)
    made = key_dates.create_key_date(db, home.org.id, data, actor(home), NOW)
    with pytest.raises(PermissionDenied):
        key_dates.update_key_date(db, home.org.id, made.id, data, actor(home, role), NOW)
    with pytest.raises(PermissionDenied):
        key_dates.delete_key_date(db, home.org.id, made.id, actor(home, role), NOW)
    with pytest.raises(PermissionDenied):
        key_dates.import_ical(db, home.org, ACADEMIC_YEAR, actor(home, role), NOW)
    assert count(db, home) == 1


def test_another_organisations_admin_cannot_act_for_this_one(db, world):
    with pytest.raises(PermissionDenied):
        key_dates.create_key_date(
            db, world.home.org.id, KeyDateInput("Exams", "2026-05-11"), actor(world.other), NOW
        )


def test_another_organisations_key_date_is_not_found(db, world):
    theirs = key_dates.create_key_date(
        db, world.other.org.id, KeyDateInput("Exams", "2026-05-11"), actor(world.other), NOW
    )
    home = world.home
    with pytest.raises(NotFound):
        key_dates.get_key_date(db, home.org.id, theirs.id)
    with pytest.raises(NotFound):
        key_dates.update_key_date(
            db, home.org.id, theirs.id, KeyDateInput("Mine", "2026-05-11"), actor(home), NOW
        )
    with pytest.raises(NotFound):
        key_dates.delete_key_date(db, home.org.id, theirs.id, actor(home), NOW)
    db.expire_all()
    assert db.get(KeyDate, theirs.id).title == "Exams"


def test_an_update_records_what_changed(db, world):
    home = world.home
    made = key_dates.create_key_date(
        db, home.org.id, KeyDateInput("Exams", "2026-05-11"), actor(home), NOW
    )
    key_dates.update_key_date(
        db,
        home.org.id,
        made.id,
        KeyDateInput("Summer exams", "2026-05-11", "2026-06-05", "exams", "blackout"),
        actor(home),
        NOW,
    )
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "key_date.updated"))
    assert event.detail["changes"] == {
        "title": ["Exams", "Summer exams"],
        "ends_on": ["2026-05-11", "2026-06-05"],
        "kind": ["other", "exams"],
        "effect": ["none", "blackout"],
    }


def test_an_update_that_changes_nothing_is_not_audited(db, world):
    home = world.home
    data = KeyDateInput("Exams", "2026-05-11")
    made = key_dates.create_key_date(db, home.org.id, data, actor(home), NOW)
    key_dates.update_key_date(db, home.org.id, made.id, data, actor(home), NOW)
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "key_date.updated")) is None


def test_a_deleted_key_date_is_gone_and_audited_with_what_it_was(db, world):
    home = world.home
    made = key_dates.create_key_date(
        db, home.org.id, KeyDateInput("Fair", "2026-10-14"), actor(home), NOW
    )
    key_dates.delete_key_date(db, home.org.id, made.id, actor(home), NOW)
    assert count(db, home) == 0
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "key_date.deleted"))
    assert (event.subject_id, event.detail["title"]) == (made.id, "Fair")


def test_listing_by_range_finds_overlaps_and_stays_in_the_organisation(db, world):
    home, other = world.home, world.other
    for title, first, last in [
        ("Spring term", "2026-01-12", "2026-03-27"),
        ("Easter", "2026-03-28", "2026-04-19"),
        ("Summer term", "2026-04-20", "2026-06-19"),
    ]:
        key_dates.create_key_date(
            db, home.org.id, KeyDateInput(title, first, last), actor(home), NOW
        )
    key_dates.create_key_date(
        db, other.org.id, KeyDateInput("Theirs", "2026-04-01"), actor(other), NOW
    )
    found = key_dates.list_key_dates(db, home.org.id, dt.date(2026, 3, 27), dt.date(2026, 4, 1))
    assert [k.title for k in found] == ["Spring term", "Easter"]
    assert [k.title for k in key_dates.list_key_dates(db, home.org.id)] == [
        "Spring term",
        "Easter",
        "Summer term",
    ]
    past = key_dates.list_past(db, home.org.id, dt.date(2026, 4, 20), limit=10)
    assert [k.title for k in past] == ["Easter", "Spring term"]


@pytest.mark.parametrize(
    ("title", "kind"),
    [
        ("Autumn Term", "term"),
        ("Spring semester begins", "term"),
        ("Summer examination period", "exams"),
        ("January exams", "exams"),
        ("A-level results day", "results"),
        ("Exam results published", "results"),
        ("Autumn Careers Fair", "careers_fair"),
        ("Graduate scheme applications deadline", "deadline"),
        ("Exam entry deadline", "deadline"),
        ("Welcome Week", "other"),
        ("Terminal 5 tour", "other"),  # "term" only as a word
    ],
)
def test_the_kind_is_guessed_from_the_title(title, kind):
    assert guess_kind(title) == kind


# --- iCal import ----------------------------------------------------------------------------


def test_a_uk_academic_year_file_is_imported(db, world):
    home = world.home
    report = run_import(db, home, ACADEMIC_YEAR, default_effect="boost")
    assert (report.added, report.updated, report.unchanged, report.refused) == (11, 0, 0, [])
    found = stored(db, home)
    autumn = found["autumn-term-2026@registry.example.ac.uk"]
    assert (autumn.title, autumn.kind, autumn.effect) == ("Autumn Term", "term", "boost")
    # An all-day DTEND is exclusive: 28 Sep to 12 Dec means the last day is 11 Dec.
    assert (autumn.starts_on, autumn.ends_on) == (dt.date(2026, 9, 28), dt.date(2026, 12, 11))
    exams = found["summer-exams-2027@registry.example.ac.uk"]
    assert (exams.kind, exams.starts_on, exams.ends_on) == (
        "exams",
        dt.date(2027, 5, 10),
        dt.date(2027, 6, 4),
    )
    assert exams.notes.startswith("Main assessment period.")
    fair = found["careers-fair-2026@careers.example.ac.uk"]
    assert (fair.kind, fair.starts_on, fair.ends_on) == (
        "careers_fair",
        dt.date(2026, 10, 14),
        dt.date(2026, 10, 14),
    )
    assert fair.notes == "Over 80 graduate employers, 10:00 to 16:00."
    results = found["a-level-results-2027@registry.example.ac.uk"]
    assert (results.kind, results.starts_on, results.ends_on) == (
        "results",
        dt.date(2027, 8, 12),
        dt.date(2027, 8, 12),
    )
    # No DTEND on an all-day event: one day.
    degree = found["degree-results-2027@registry.example.ac.uk"]
    assert degree.starts_on == degree.ends_on == dt.date(2027, 6, 30)
    # 23:30 UTC on 30 April 2027 is 00:30 BST on 1 May in London.
    deadline = found["internship-deadline-2027@careers.example.ac.uk"]
    assert (deadline.kind, deadline.starts_on) == ("deadline", dt.date(2027, 5, 1))
    assert found["welcome-week-2026@registry.example.ac.uk"].kind == "other"


def test_importing_a_file_is_audited_per_key_date_and_as_a_whole(db, world):
    run_import(db, world.home, ACADEMIC_YEAR)
    actions = list(
        db.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "key_date"))
    )
    assert actions.count("key_date.created") == 11
    summary = db.scalar(select(AuditEvent).where(AuditEvent.action == "key_dates.imported"))
    assert summary.detail == {"added": 11, "updated": 0, "unchanged": 0, "refused": 0}


def test_importing_the_same_file_again_changes_nothing(db, world):
    run_import(db, world.home, ACADEMIC_YEAR)
    again = run_import(db, world.home, ACADEMIC_YEAR)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 11)
    assert count(db, world.home) == 11


def test_reimporting_an_edited_file_updates_and_keeps_the_admins_choices(db, world):
    home = world.home
    run_import(db, home, ACADEMIC_YEAR)
    autumn = stored(db, home)["autumn-term-2026@registry.example.ac.uk"]
    key_dates.update_key_date(
        db,
        home.org.id,
        autumn.id,
        KeyDateInput("Autumn Term", "2026-09-28", "2026-12-11", "term", "blackout"),
        actor(home),
        NOW,
    )
    edited = ACADEMIC_YEAR.replace(b"DTEND;VALUE=DATE:20261212", b"DTEND;VALUE=DATE:20261219")
    edited = edited.replace(b"SUMMARY:Autumn Term", b"SUMMARY:Michaelmas Term")
    report = run_import(db, home, edited)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 10)
    db.expire_all()
    assert count(db, home) == 11
    assert (autumn.title, autumn.ends_on) == ("Michaelmas Term", dt.date(2026, 12, 18))
    assert (autumn.kind, autumn.effect) == ("term", "blackout")  # the admin's, not the file's
    (updated,) = [
        e
        for e in db.scalars(select(AuditEvent).where(AuditEvent.action == "key_date.updated"))
        if e.detail.get("source") == "ical"
    ]
    assert updated.detail["changes"]["title"] == ["Autumn Term", "Michaelmas Term"]


def test_an_import_stays_inside_the_organisation(db, world):
    run_import(db, world.other, ACADEMIC_YEAR)
    report = run_import(db, world.home, ACADEMIC_YEAR)
    assert report.added == 11  # the same UIDs in another organisation are not this one's
    assert count(db, world.home) == count(db, world.other) == 11


def test_bad_events_are_reported_and_good_ones_kept(db, world):
    data = ical(
        "UID:good-1\nSUMMARY:Spring term\nDTSTART;VALUE=DATE:20270111\nDTEND;VALUE=DATE:20270327",
        "UID:no-start\nSUMMARY:Reading week",
        "UID:no-title\nDTSTART;VALUE=DATE:20261102",
        "UID:backwards\nSUMMARY:Exams\nDTSTART;VALUE=DATE:20270605\nDTEND;VALUE=DATE:20270510",
        "UID:broken\nSUMMARY:Fair\nDTSTART:next tuesday",
        "UID:mixed\nSUMMARY:Fair\nDTSTART;VALUE=DATE:20261014\nDTEND:20261014T160000",
        "UID:good-2\nSUMMARY:Careers fair\nDTSTART;VALUE=DATE:20261014",
        "UID:good-1\nSUMMARY:Spring term again\nDTSTART;VALUE=DATE:20270111",
        "UID:cancelled\nSUMMARY:Open day\nSTATUS:CANCELLED\nDTSTART;VALUE=DATE:20260620",
    )
    report = run_import(db, world.home, data)
    assert report.added == 2
    assert set(stored(db, world.home)) == {"good-1", "good-2"}
    refused = {(r.position, r.uid): r.reason for r in report.refused}
    assert refused == {
        (2, "no-start"): "it has no start date (DTSTART)",
        (3, "no-title"): "it has no title (SUMMARY)",
        (4, "backwards"): "it ends before it starts",
        (5, "broken"): refused[(5, "broken")],
        (6, "mixed"): refused[(6, "mixed")],
        (8, "good-1"): "it has the same UID as event 1, which was imported instead",
        (9, "cancelled"): "it is marked as cancelled in the calendar",
    }
    assert refused[(5, "broken")].startswith("it could not be read (")
    assert "DTSTART" in refused[(5, "broken")]
    assert "same type" in refused[(6, "mixed")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"Title,Start,End\r\nAutumn term,2026-09-28,2026-12-11\r\n", "This is not an iCal file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "This is not an iCal file"),
        (b"\xff\xfeB\x00E\x00G\x00", "it is not UTF-8 text"),
        (b"<!doctype html><title>Calendar</title>", "starts with BEGIN:VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "no events (VEVENT)"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Cut\r\n", "may have been cut short"),
        (b"BEGIN:VCALENDAR\r\nthis line has no colon\r\nEND:VCALENDAR\r\n", "not valid iCal"),
        (b"BEGIN:VCALENDAR\r\n" + b"X" * (1024 * 1024), "larger than 1 MB"),
    ],
)
def test_a_file_that_is_not_ical_gets_a_clear_message(db, world, data, message):
    with pytest.raises(ServiceError, match=re.escape(message)):
        run_import(db, world.home, data)
    assert count(db, world.home) == 0


def test_a_file_with_too_many_events_is_refused(db, world):
    events = [f"UID:e{i}\nSUMMARY:Event {i}\nDTSTART;VALUE=DATE:20261014" for i in range(1001)]
    with pytest.raises(ServiceError, match="1001 events; at most 1000"):
        run_import(db, world.home, ical(*events))


def test_an_unknown_default_effect_is_refused(db, world):
    with pytest.raises(ServiceError, match="Unknown effect 'loud'"):
        run_import(db, world.home, ACADEMIC_YEAR, default_effect="loud")


def test_deeply_nested_components_do_not_crash_the_import(db, world):
    depth = 40_000
    data = "BEGIN:VCALENDAR\r\n" + "BEGIN:X-NEST\r\n" * depth + "END:X-NEST\r\n" * depth
    data += "BEGIN:VEVENT\r\nUID:ok\r\nSUMMARY:Exams\r\nDTSTART;VALUE=DATE:20270510\r\n"
    data += "END:VEVENT\r\nEND:VCALENDAR\r\n"
    assert len(data) < 1024 * 1024
    report = run_import(db, world.home, data.encode())
    assert report.added == 1


def test_hostile_values_are_cleaned_bounded_or_refused(db, world):
    long_uid = "u" * 5000
    data = ical(
        f"UID:{long_uid}\nSUMMARY:{'Long title ' * 40}\nDTSTART;VALUE=DATE:20261014",
        "UID:nul\nSUMMARY:Fair\\, with\x01 a bell\nDESCRIPTION:one\\ntwo\nDTSTART;VALUE=DATE:20261015",
        "UID:year-1\nSUMMARY:Ancient\nDTSTART;VALUE=DATE:00010101",
        "UID:year-9999\nSUMMARY:Far\nDTSTART:99991231T233000Z",
    )
    report = run_import(db, world.home, data)
    found = stored(db, world.home)
    assert report.added == 2
    hashed = next(uid for uid in found if uid.startswith("sha256-"))
    assert len(hashed) < 255
    assert len(found[hashed].title) == 200 and found[hashed].title.endswith("…")
    assert found["nul"].title == "Fair, with a bell"
    assert found["nul"].notes == "one\ntwo"
    assert {r.uid for r in report.refused} == {"year-1", "year-9999"}
    assert all("between 1900 and 2199" in r.reason for r in report.refused)
    again = run_import(db, world.home, data)
    assert (again.added, again.unchanged) == (0, 2)  # the hashed UID is stable


def test_events_without_a_uid_are_still_updated_not_duplicated(db, world):
    data = ical("SUMMARY:Results day\nDTSTART;VALUE=DATE:20260813")
    run_import(db, world.home, data)
    again = run_import(db, world.home, data)
    assert (again.added, again.unchanged) == (0, 1)
    assert count(db, world.home) == 1


def test_times_are_read_in_the_organisations_zone(db, world):
    data = ical(
        # 23:00 in New York is 04:00 the next day in London.
        "UID:ny\nSUMMARY:US fair\nDTSTART;TZID=America/New_York:20261014T230000",
        # Ending exactly at midnight does not cover the day that begins then.
        "UID:mid\nSUMMARY:Late\nDTSTART;TZID=Europe/London:20261014T220000\n"
        "DTEND;TZID=Europe/London:20261015T000000",
        # A floating time (no zone) is the organisation's wall time.
        "UID:float\nSUMMARY:Floating\nDTSTART:20261014T233000\nDTEND:20261015T010000",
        # An unknown TZID without a VTIMEZONE is read as floating, too.
        "UID:nowhere\nSUMMARY:Odd zone\nDTSTART;TZID=Nowhere/Land:20261014T120000",
    )
    run_import(db, world.home, data)
    found = {uid: (k.starts_on, k.ends_on) for uid, k in stored(db, world.home).items()}
    day = dt.date(2026, 10, 14)
    assert found == {
        "ny": (day + dt.timedelta(days=1), day + dt.timedelta(days=1)),
        "mid": (day, day),
        "float": (day, day + dt.timedelta(days=1)),
        "nowhere": (day, day),
    }


def test_an_event_built_with_icalendar_round_trips(db, world):
    calendar = Calendar()
    calendar.add("PRODID", "-//test//EN")
    calendar.add("VERSION", "2.0")
    event = Event.new(
        uid="graduation-2027",
        summary="Graduation week",
        start=dt.date(2027, 7, 12),
        end=dt.date(2027, 7, 17),
        stamp=NOW,
    )
    calendar.add_component(event)
    run_import(db, world.home, calendar.to_ical())
    found = stored(db, world.home)["graduation-2027"]
    assert (found.starts_on, found.ends_on) == (dt.date(2027, 7, 12), dt.date(2027, 7, 16))


# --- repeating events -----------------------------------------------------------------------


def test_a_weekly_event_is_expanded_for_the_next_twelve_months_only(db, world):
    data = ical(
        "UID:drop-in\nSUMMARY:CV drop-in\nDTSTART;TZID=Europe/London:20260107T140000\n"
        "DTEND;TZID=Europe/London:20260107T160000\nRRULE:FREQ=WEEKLY;BYDAY=WE\n"
        "EXDATE;TZID=Europe/London:20260311T140000"
    )
    report = run_import(db, world.home, data)
    days = sorted(k.starts_on for k in stored(db, world.home).values())
    assert days[0] == dt.date(2026, 3, 4)  # the first Wednesday from today
    assert dt.date(2026, 3, 11) not in days  # EXDATE
    assert days[-1] == dt.date(2027, 2, 24)  # the last before 2 March 2027
    assert len(days) == report.added == 51
    assert all(d.weekday() == 2 for d in days)
    assert "next 12 months only (until 2 March 2027)" in report.notes[0]
    assert "51 dates from 4 March 2026 to 24 February 2027" in report.notes[0]
    again = run_import(db, world.home, data)
    assert (again.added, again.unchanged) == (0, 51)


def test_a_yearly_event_gives_its_next_date_and_an_override_moves_it(db, world):
    data = ical(
        "UID:results\nSUMMARY:A-level results day\nDTSTART;VALUE=DATE:20200813\nRRULE:FREQ=YEARLY",
        "UID:results\nRECURRENCE-ID;VALUE=DATE:20260813\nSUMMARY:A-level results day (moved)\n"
        "DTSTART;VALUE=DATE:20260814",
    )
    report = run_import(db, world.home, data)
    assert report.added == 1
    (only,) = stored(db, world.home).values()
    assert (only.uid, only.title, only.starts_on) == (
        "results/2026-08-13",
        "A-level results day (moved)",
        dt.date(2026, 8, 14),
    )


def test_a_cancelled_repetition_is_left_out(db, world):
    data = ical(
        "UID:fair\nSUMMARY:Monthly employer fair\nDTSTART;VALUE=DATE:20260401\n"
        "RRULE:FREQ=MONTHLY;COUNT=3",
        "UID:fair\nRECURRENCE-ID;VALUE=DATE:20260501\nSTATUS:CANCELLED\nSUMMARY:x\n"
        "DTSTART;VALUE=DATE:20260501",
    )
    run_import(db, world.home, data)
    assert sorted(k.starts_on for k in stored(db, world.home).values()) == [
        dt.date(2026, 4, 1),
        dt.date(2026, 6, 1),
    ]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("FREQ=HOURLY", "it repeats hourly; only daily, weekly, monthly and yearly"),
        ("FREQ=DAILY;BYSETPOS=1", "it repeats by BYSETPOS, which this import does not expand"),
        ("FREQ=YEARLY;UNTIL=20150101", "none of its repetitions falls between 2 March 2026"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20270101", "both COUNT and UNTIL"),
        ("FREQ=WEEKLY;BYDAY=2MO", "BYDAY value 2MO does not fit a weekly rule"),
        ("FREQ=MONTHLY;BYMONTHDAY=40", "BYMONTHDAY value 40 is out of range"),
        ("FREQ=YEARLY;BYDAY=20MO", "does not fit a yearly rule"),
    ],
)
def test_repeat_rules_that_are_not_expanded_are_reported(db, world, rule, reason):
    data = ical(
        f"UID:r\nSUMMARY:Repeating\nDTSTART;VALUE=DATE:20100104\nRRULE:{rule}",
        "UID:plain\nSUMMARY:Plain\nDTSTART;VALUE=DATE:20261014",
    )
    report = run_import(db, world.home, data)
    assert [r.uid for r in report.refused] == ["r"]
    assert reason in report.refused[0].reason
    assert set(stored(db, world.home)) == {"plain"}


def test_a_rule_that_never_happens_is_refused(db, world):
    # RFC 5545 allows "every 30 February"; the expansion reports it like any past series.
    data = ical(
        "UID:never\nSUMMARY:Never\nDTSTART;VALUE=DATE:19000101\n"
        "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
    )
    report = run_import(db, world.home, data)
    assert report.added == 0
    assert "none of its repetitions falls" in report.refused[0].reason


def test_many_repeating_events_stop_at_the_budget_and_say_so(db, world):
    events = [
        f"UID:daily-{i}\nSUMMARY:Daily {i}\nDTSTART;VALUE=DATE:19000101\nRRULE:FREQ=DAILY;COUNT=100000"
        for i in range(20)
    ]
    report = run_import(db, world.home, ical(*events))
    assert report.refused
    assert all("more than 400,000 days worked through" in r.reason for r in report.refused)
    assert report.added <= 2000


# --- the expansion itself -------------------------------------------------------------------

WINDOW = (dt.date(2026, 3, 2), dt.date(2027, 3, 2))


def rule_of(text):
    from icalendar.prop import vRecur

    return parse_rule(vRecur.from_ical(text))


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=4",
        "FREQ=YEARLY;BYMONTH=2;BYDAY=5MO",
    ],
)
def test_a_rule_that_rarely_or_never_happens_costs_only_the_window(text):
    # A generator working forward from DTSTART (1900) would walk centuries, or to year 9999;
    # testing the window's days one by one spends about a year of budget whatever the rule.
    budget = Budget(400)
    days = list(repeat_days(rule_of(text), dt.date(1900, 1, 1), *WINDOW, budget))
    assert all(WINDOW[0] <= d <= WINDOW[1] for d in days)
    assert budget.left >= 0


def test_a_count_counts_from_dtstart_which_always_comes_first():
    # DTSTART, a Wednesday, is the first of three even though the rule names the last Friday.
    rule = rule_of("FREQ=MONTHLY;COUNT=3;BYDAY=-1FR")
    days = list(repeat_days(rule, dt.date(2026, 4, 1), *WINDOW, Budget(1000)))
    assert days == [dt.date(2026, 4, 1), dt.date(2026, 4, 24), dt.date(2026, 5, 29)]


def test_plain_and_numbered_weekdays_both_count():
    # "Every Monday, and the third Thursday" (dateutil would keep only Mondays that are both).
    rule = rule_of("FREQ=MONTHLY;BYDAY=MO,3TH")
    days = list(repeat_days(rule, dt.date(2026, 6, 1), *WINDOW, Budget(1000)))
    june = [d for d in days if d.month == 6]
    assert june == [dt.date(2026, 6, d) for d in (1, 8, 15, 18, 22, 29)]


def test_the_budget_stops_a_long_count():
    rule = rule_of("FREQ=DAILY;COUNT=100000")
    with pytest.raises(RuleError, match="more than 1,000 days"):
        list(repeat_days(rule, dt.date(1900, 1, 1), *WINDOW, Budget(1000)))


RULES = st.fixed_dictionaries(
    {"FREQ": st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"])},
    optional={
        "INTERVAL": st.integers(1, 4),
        "BYMONTH": st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True),
        "BYMONTHDAY": st.lists(
            st.integers(-31, 31).filter(bool), min_size=1, max_size=3, unique=True
        ),
        "BYDAY": st.lists(
            st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        "WKST": st.sampled_from(["MO", "SU"]),
        "NUMBERED": st.sampled_from(["1MO", "-1FR", "2TU", "3TH", "5WE", "-2SU"]),
    },
)


@settings(max_examples=150, deadline=None)
@given(parts=RULES, start=st.dates(dt.date(2018, 1, 1), dt.date(2026, 12, 31)))
def test_the_expansion_agrees_with_dateutil(parts, start):
    """Where DTSTART fits the rule, every repetition in the window is the same as dateutil's."""
    from dateutil import rrule as du

    numbered = parts.pop("NUMBERED", None)
    if parts["FREQ"] == "WEEKLY":
        parts.pop("BYMONTHDAY", None)
    if numbered and (
        parts["FREQ"] == "MONTHLY" or (parts["FREQ"], "BYMONTH" in parts) == ("YEARLY", True)
    ):
        # Alone: dateutil intersects plain and numbered days where RFC 5545 lists both (below).
        parts["BYDAY"] = [numbered]
    text = ";".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in parts.items()
    )
    rule = rule_of(text)
    begin = dt.datetime.combine(start, dt.time(0))
    found = [d for d in _matching(rule, start, dt.date(2031, 1, 1))]
    assume(found)  # a rule that never fits within years is covered above
    # DTSTART must itself be a repetition for the two to agree (dateutil skips it otherwise).
    first = found[0]
    theirs = du.rrulestr(f"RRULE:{text}", dtstart=dt.datetime.combine(first, dt.time(0)))
    last = first + dt.timedelta(days=730)
    expected = [
        d.date() for d in theirs.between(begin, dt.datetime.combine(last, dt.time(0)), inc=True)
    ]
    ours = list(repeat_days(rule, first, first, last, Budget(10_000)))
    assert ours == expected


def _matching(rule, start, until):
    from campaign.services.ical_repeats import matches

    day = start
    while day < until:
        if matches(rule, start, day):
            yield day
        day += dt.timedelta(days=1)
