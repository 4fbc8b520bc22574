"""CSV bulk import (preview, then commit of chosen rows) and export of posts."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from campaign.models import AuditEvent, Channel, KeyDate, Post, QueueSlot
from campaign.services import PermissionDenied, post_csv
from campaign.services.audit import Actor
from tests.conftest import NOW

HEADER = "text,channels,when,link_url,variant_id,blackout_override,submit"
LATER = "2026-03-10 09:00"  # a Tuesday; GMT in Europe/London
GOOD = f"Mock interviews next week: book now,Outbox students,{LATER},,,,no"


def actor(part, role="staff"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def add_channel(db, part, name, kind="outbox", **values):
    found = Channel(
        organisation_id=part.org.id,
        kind=kind,
        display_name=name,
        audience="students",
        created_at=NOW,
        **values,
    )
    db.add(found)
    db.flush()
    return found


def add_slots(db, channel, *slots):
    for weekday, hour, minute in slots:
        db.add(
            QueueSlot(
                channel_id=channel.id, weekday=weekday, at=dt.time(hour, minute), created_at=NOW
            )
        )
    db.flush()


def file_of(*lines, header=HEADER):
    return ("\r\n".join([header, *lines]) + "\r\n").encode()


def count_posts(db, part):
    return db.scalar(select(func.count(Post.id)).where(Post.organisation_id == part.org.id))


def preview(db, part, data):
    return post_csv.preview(db, part.org, data, NOW)


def only_row(result, line=2):
    assert not result.errors, result.errors
    return next(r for r in result.rows if r.line == line)


def errors_of(row):
    return [str(p) for p in row.errors]


# --- preview: good rows ---------------------------------------------------------------------


def test_a_good_row_previews_with_its_time_per_channel_and_nothing_is_saved(db, world):
    home = world.home
    second = add_channel(db, home, "Careers Mastodon", kind="mastodon")
    before_posts = count_posts(db, home)
    before_audit = db.scalar(select(func.count(AuditEvent.id)))
    result = preview(
        db,
        home,
        file_of(
            f"Mock interviews next week,outbox STUDENTS; {second.id},{LATER},"
            "https://careers.example.ac.uk/mock,,,yes"
        ),
    )
    row = only_row(result)
    assert row.ok, errors_of(row)
    assert [c.id for c in row.channels] == [home.channel.id, second.id]
    assert {r.utc for r in row.times.values()} == {dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)}
    assert row.submit is True
    assert row.values["link_url"] == "https://careers.example.ac.uk/mock"
    assert count_posts(db, home) == before_posts
    assert db.scalar(select(func.count(AuditEvent.id))) == before_audit


def test_a_utf8_byte_order_mark_and_header_case_are_accepted(db, world):
    data = "\ufeff".encode() + file_of(f"Hi,Outbox students,{LATER}", header="Text, Channels ,WHEN")
    assert only_row(preview(db, world.home, data)).ok


def test_blank_lines_are_skipped_but_keep_the_spreadsheets_line_numbers(db, world):
    data = file_of(GOOD, ",,,,,,", "", '"Two\nlines",Outbox students,2026-03-11 09:00,,,,')
    result = preview(db, world.home, data)
    assert [r.line for r in result.rows] == [2, 5]
    assert result.rows[1].text == "Two\nlines"
    assert all(r.ok for r in result.rows)


# --- preview: bad rows, each named with its line and column ---------------------------------


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ("Hi,Outbox students,2026-02-30 09:00,,,,", "when: 2026-02-30 is not a date"),
        ("Hi,Outbox students,2026-03-10 25:00,,,,", "when: 25:00 is not a time of day"),
        ("Hi,Outbox students,10/03/2026 09:00,,,,", "when: '10/03/2026 09:00' is not a date"),
        ("Hi,Outbox students,2026-03-01 09:00,,,,", "when: Sun 1 Mar 2026, 09:00 GMT is in the"),
        ("Hi,Nowhere,2026-03-10 09:00,,,,", "channels: unknown channel “Nowhere”"),
        ("Hi,,2026-03-10 09:00,,,,", "channels: is empty"),
        (",Outbox students,2026-03-10 09:00,,,,", "text: is empty"),
        ("Hi,Outbox students,2026-03-10 09:00,,,,maybe", "submit: “maybe” is neither yes nor no"),
        ("Hi,Outbox students,2026-03-10 09:00,,abc,,", "variant_id: “abc” is not a variant"),
        ("Hi,Outbox students,2026-03-10 09:00,,99999999999,,", "variant_id: there is no variant"),
        ("Hi,Outbox students,2026-03-10 09:00,,12345678,,", "variant_id: there is no variant"),
        ("Hi,Outbox students,2026-03-10 09:00,ftp://x.example,,,", "link_url: The link must"),
        ("Hi\x00,Outbox students,2026-03-10 09:00,,,,", "text: Outbox students: "),
        ("Hi,Outbox students,2026-03-10 09:00,,,Why\x00,", "blackout_override: contains a control"),
        (
            "Hi,Outbox students,2026-03-10 09:00,,,,,surplus",
            "cell 8 has a value but is beyond the header",
        ),
    ],
)
def test_a_bad_row_gets_a_message_naming_the_problem_and_its_line(db, world, cells, expected):
    result = preview(db, world.home, file_of(GOOD, cells))
    good, bad = result.rows
    assert good.ok and (good.line, bad.line) == (2, 3)
    assert not bad.ok
    assert any(expected in message for message in errors_of(bad)), errors_of(bad)


def test_oversize_text_for_x_is_refused_and_names_the_network(db, world):
    add_channel(db, world.home, "X", kind="x")
    row = only_row(preview(db, world.home, file_of(f"{'x' * 281},X,{LATER},,,,")))
    assert len(row.errors) == 1
    assert str(row.errors[0]).startswith("text: X: ") and "281" in str(row.errors[0])


def test_every_problem_of_a_row_is_reported_at_once(db, world):
    add_channel(db, world.home, "X", kind="x")
    row = only_row(preview(db, world.home, file_of(f"{'x' * 281},X,2026-02-30 09:00,,,,perhaps")))
    columns = [p.column for p in row.errors]
    assert columns == ["submit", "when", "text"], errors_of(row)


def test_another_organisations_channel_is_an_unknown_channel_by_name_or_number(db, world):
    world.other.channel.display_name = "Other University Careers"
    db.flush()
    result = preview(
        db,
        world.home,
        file_of(
            f"Hi,Other University Careers,{LATER},,,,",
            f"Hi,{world.other.channel.id},{LATER},,,,",
        ),
    )
    assert ["channels: unknown channel “Other University Careers”" in m
            for m in errors_of(result.rows[0])] == [True]  # fmt: skip
    assert f"unknown channel “{world.other.channel.id}”" in errors_of(result.rows[1])[0]
    assert "Other University" not in " ".join(errors_of(result.rows[0])[0].split("”")[1:])


def test_another_organisations_variant_is_refused(db, world):
    foreign = world.other.campaign.messages[0].variants[0]
    row = only_row(preview(db, world.home, file_of(f"Hi,Outbox students,{LATER},,{foreign.id},,")))
    assert errors_of(row) == [f"variant_id: there is no variant {foreign.id} in your organisation."]


def test_a_variant_of_the_organisation_is_accepted(db, world):
    own = world.home.campaign.messages[0].variants[0]
    row = only_row(preview(db, world.home, file_of(f"Hi,Outbox students,{LATER},,{own.id},,")))
    assert row.ok and row.variant_id == own.id


def test_a_name_shared_by_two_channels_asks_for_the_number(db, world):
    twin = add_channel(db, world.home, "outbox students")
    row = only_row(preview(db, world.home, file_of(f"Hi,Outbox students,{LATER},,,,")))
    assert f"use its number ({world.home.channel.id} or {twin.id})" in errors_of(row)[0]
    assert only_row(preview(db, world.home, file_of(f"Hi,{twin.id},{LATER},,,,"))).ok


def test_a_disabled_channel_is_refused(db, world):
    world.home.channel.status = "disabled"
    db.flush()
    row = only_row(preview(db, world.home, file_of(GOOD)))
    assert errors_of(row) == ["channels: Outbox students is disabled; choose another channel."]


def test_a_blackout_needs_the_override_column(db, world):
    db.add(
        KeyDate(
            organisation_id=world.home.org.id,
            title="Exam period",
            kind="exams",
            effect="blackout",
            starts_on=dt.date(2026, 3, 9),
            ends_on=dt.date(2026, 3, 13),
            created_at=NOW,
        )
    )
    db.flush()
    result = preview(
        db, world.home, file_of(GOOD, f"Hi,Outbox students,{LATER},,,Results support line,")
    )
    blocked, overridden = result.rows
    assert errors_of(blocked)[0].startswith("when: This falls inside the blackout “Exam period”")
    assert overridden.ok
    assert any("Results support line" in w for w in overridden.warnings)


def test_a_time_in_the_spring_gap_is_a_warning_that_says_where_it_moved(db, world):
    row = only_row(preview(db, world.home, file_of("Hi,Outbox students,2026-03-29 01:30,,,,")))
    assert row.ok
    assert any("does not exist" in w and "02:30 BST" in w for w in row.warnings)


def test_duplicates_in_the_database_and_in_the_file_are_warnings(db, world):
    hello = f"Hello,Outbox students,{(NOW + dt.timedelta(hours=3)):%Y-%m-%d %H:%M},,,,"
    result = preview(db, world.home, file_of(GOOD, GOOD.replace("book now", "book now!"), hello))
    first, second, third = result.rows
    assert first.ok and second.ok and third.ok
    assert first.warnings == []
    assert any("Nearly the same text is on line 2 of this file" in w for w in second.warnings)
    assert any("The same text is already planned on Outbox students" in w for w in third.warnings)


# --- preview: the file as a whole -----------------------------------------------------------


def test_unknown_columns_are_named(db, world):
    result = preview(db, world.home, file_of(GOOD + ",x,y", header=HEADER + ",colour,Size"))
    assert result.rows == []
    assert result.errors[0].startswith("Unknown columns: “colour”, “size”. The columns are text")


def test_missing_required_columns_are_named(db, world):
    result = preview(db, world.home, file_of("Hi,2026-03-10 09:00", header="text,when"))
    assert result.errors == ["Missing column: “channels”. The first line must be the header."]


def test_a_column_given_twice_is_refused(db, world):
    result = preview(db, world.home, file_of(GOOD + ",x", header=HEADER + ",TEXT"))
    assert result.errors == ["These columns appear more than once: “text”."]


def test_a_file_that_is_not_utf8_is_refused_with_a_clear_message(db, world):
    data = file_of(GOOD, "Café careers,Outbox students,2026-03-11 09:00,,,,").decode()
    result = preview(db, world.home, data.encode("cp1252"))
    assert result.rows == []
    assert result.errors == [
        "The file is not UTF-8 text: byte 0xe9 on line 3 is not UTF-8. Save it from your "
        "spreadsheet as “CSV UTF-8 (comma delimited)” and upload it again."
    ]


def test_a_utf16_file_is_refused_with_a_clear_message(db, world):
    result = preview(db, world.home, file_of(GOOD).decode().encode("utf-16"))
    assert "UTF-16" in result.errors[0]


def test_a_file_over_one_megabyte_is_refused(db, world):
    data = file_of(GOOD) + b" " * post_csv.MAX_BYTES
    result = preview(db, world.home, data)
    assert result.errors == [
        "The file is 1.0 MB; at most 1 MB can be imported at once. Split it into smaller files."
    ]


def test_more_than_a_thousand_rows_are_refused(db, world):
    result = preview(db, world.home, file_of(*[GOOD] * (post_csv.MAX_ROWS + 1)))
    assert result.rows == []
    assert "more than 1,000 rows" in result.errors[0]


def test_a_thousand_rows_are_accepted(db, world):
    start = dt.datetime(2026, 3, 10, 9, 0)
    lines = [
        f"Post {n},Outbox students,{start + dt.timedelta(hours=80 * n):%Y-%m-%d %H:%M},,,,"
        for n in range(post_csv.MAX_ROWS)
    ]
    result = preview(db, world.home, file_of(*lines))
    assert len(result.rows) == post_csv.MAX_ROWS and not result.errors


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "The file is empty"),
        (b"\r\n\r\n", "The file is empty"),
        (HEADER.encode(), "The file has a header but no rows"),
        (file_of('"Unclosed quote,Outbox students,,,,,', GOOD), "Line 2 is not valid CSV"),
        (file_of('Quoted "wrongly",x', '"a"b,c'), "Line 3 is not valid CSV"),
    ],
)
def test_an_unreadable_file_says_why(db, world, data, expected):
    result = preview(db, world.home, data)
    assert result.rows == []
    assert expected in result.errors[0], result.errors


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("9999-12-31 23:00", "more than five years ahead"),
        ("0001-01-01T00:00+05:00", "outside the dates that can be scheduled"),
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_refused_not_crashed_on(db, world, when, expected):
    row = only_row(preview(db, world.home, file_of(f"Hi,Outbox students,{when},,,,")))
    assert expected in errors_of(row)[0]


CSV_ISH = st.sampled_from(
    [",", ";", '"', "\r\n", "\n", "\r", " ", "'", "=", "x", "é", "🎓", "\x00", "\t", "9",
     "2026-03-10 09:00", "9999-12-31 23:59", "0001-01-01", "+23:59", "Outbox students", "yes",
     "text", "channels", "when", "submit", "variant_id", "2147483648", "https://a.example"]
)  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(CSV_ISH, max_size=60).map(
            lambda parts: (HEADER + "\r\n" + "".join(parts)).encode()
        ),
        st.lists(CSV_ISH, max_size=60).map(lambda parts: "".join(parts).encode()),
    )
)
def test_any_input_gets_rows_or_reasons_and_never_a_crash(db, world, data):
    before = count_posts(db, world.home)
    result = preview(db, world.home, data)
    assert bool(result.errors) != bool(result.rows)
    for row in result.rows:
        assert row.line >= 2
        assert all(str(p) for p in row.errors)
    assert count_posts(db, world.home) == before


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(CSV_ISH, max_size=60).map(lambda parts: (HEADER + "\r\n" + "".join(parts)).encode())
)
def test_any_input_is_committed_or_refused_and_never_crashes(db, world, data):
    report = post_csv.commit(db, world.home.org, data, None, actor(world.home), NOW)
    assert bool(report.errors) != bool(report.lines)
    for outcome in report.saved:
        assert db.get(Post, outcome.post_id).organisation_id == world.home.org.id


# --- queue rows -----------------------------------------------------------------------------


def test_queue_rows_of_one_file_take_distinct_slots_in_order(db, world):
    home = world.home
    add_slots(db, home.channel, (1, 9, 0), (3, 12, 30))  # Tuesdays 09:00, Thursdays 12:30
    # The world's post is two hours from now, on no slot; take Tuesday's slot with another.
    taken = "Already queued,Outbox students,2026-03-03 09:00,,,,"
    post_csv.commit(db, home.org, file_of(taken), None, actor(home), NOW)
    queued = [f"Queued {n},Outbox students,,,,," for n in range(3)]
    result = preview(db, home, file_of(*queued))
    times = [r.times[home.channel.id].utc for r in result.rows]
    assert times == [
        dt.datetime(2026, 3, 5, 12, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 12, 12, 30, tzinfo=dt.UTC),
    ]
    report = post_csv.commit(db, home.org, file_of(*queued), None, actor(home), NOW)
    saved = [db.get(Post, o.post_id).scheduled_for for o in report.saved]
    assert saved == times


def test_an_explicit_time_on_a_slot_keeps_queue_rows_off_it(db, world):
    home = world.home
    add_slots(db, home.channel, (1, 9, 0))
    result = preview(
        db,
        home,
        file_of("Fixed,Outbox students,2026-03-03 09:00,,,,", "Queued,Outbox students,,,,,"),
    )
    assert result.rows[1].times[home.channel.id].utc == dt.datetime(
        2026, 3, 10, 9, 0, tzinfo=dt.UTC
    )


def test_a_queue_row_on_a_channel_without_slots_says_so(db, world):
    row = only_row(preview(db, world.home, file_of("Queued,Outbox students,,,,,")))
    assert errors_of(row) == [
        "when: is empty, so the post joins the queue, but Outbox students has no queue slots "
        "yet: add some under Settings → Queue, or pick a date and time."
    ]


def test_a_bad_row_does_not_take_a_queue_slot(db, world):
    add_channel(db, world.home, "X", kind="x")
    add_slots(db, world.home.channel, (1, 9, 0))
    result = preview(
        db, world.home, file_of(f"{'x' * 281},X;Outbox students,,,,,", "Fine,Outbox students,,,,,")
    )
    bad, good = result.rows
    assert not bad.ok and good.ok
    assert good.times[world.home.channel.id].utc == dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


# --- commit ---------------------------------------------------------------------------------


def test_commit_saves_only_the_chosen_good_rows(db, world):
    home = world.home
    data = file_of(
        GOOD,
        "Bad date,Outbox students,2026-02-30 09:00,,,,",
        "Chosen,Outbox students,2026-03-11 09:00,,,,yes",
        "Left out,Outbox students,2026-03-12 09:00,,,,",
    )
    before = count_posts(db, home)
    report = post_csv.commit(db, home.org, data, {3, 4}, actor(home), NOW)
    assert [(o.line, o.outcome) for o in report.lines] == [
        (2, "not_chosen"),
        (3, "refused"),
        (4, "saved"),
        (5, "not_chosen"),
    ]
    assert "when: 2026-02-30 is not a date" in report.lines[1].messages[0]
    assert count_posts(db, home) == before + 1
    post = db.get(Post, report.lines[2].post_id)
    assert (post.text, post.status, post.organisation_id) == ("Chosen", "approved", home.org.id)
    assert post.created_by_id == home.staff.id
    events = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.subject_type == "post", AuditEvent.subject_id == post.id)
        .order_by(AuditEvent.id)
    ).all()
    assert events == ["post.created", "post.submitted", "post.scheduled"]


def test_commit_of_all_good_rows_saves_drafts_and_refuses_the_rest(db, world):
    home = world.home
    data = file_of(GOOD, "Hi,Nowhere,2026-03-11 09:00,,,,")
    report = post_csv.commit(db, home.org, data, None, actor(home), NOW)
    assert [o.outcome for o in report.lines] == ["saved", "refused"]
    assert db.get(Post, report.saved[0].post_id).status == "draft"
    assert report.lines[1].post_id is None


def test_submitting_onto_an_approval_channel_waits_for_a_manager(db, world):
    home = world.home
    home.channel.requires_approval = True
    db.flush()
    report = post_csv.commit(db, home.org, file_of(GOOD[:-2] + "yes"), None, actor(home), NOW)
    assert report.saved[0].status == "pending_approval"


def test_commit_checks_the_file_again(db, world):
    home = world.home
    assert only_row(preview(db, home, file_of(GOOD))).ok
    later = dt.datetime(2026, 3, 10, 10, 0, tzinfo=dt.UTC)  # the row's time has passed
    report = post_csv.commit(db, home.org, file_of(GOOD), None, actor(home), later)
    assert report.saved == []
    assert "is in the past" in report.lines[0].messages[0]


def test_commit_of_an_unusable_file_saves_nothing(db, world):
    before = count_posts(db, world.home)
    report = post_csv.commit(db, world.home.org, b"caf\xe9,x\r\n", None, actor(world.home), NOW)
    assert report.lines == [] and "not UTF-8" in report.errors[0]
    assert count_posts(db, world.home) == before


def test_commit_needs_a_member_role(db, world):
    nobody = Actor(world.home.org.id, "feed", None, None)
    with pytest.raises(PermissionDenied):
        post_csv.commit(db, world.home.org, file_of(GOOD), None, nobody, NOW)


# --- export ---------------------------------------------------------------------------------


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_export_writes_one_row_per_post_with_local_and_utc_times(db, world):
    home = world.home
    x = add_channel(db, home, "X", kind="x")
    data = file_of("Fair on Thursday,Outbox students;X,2026-07-01 10:00,https://c.example/f,,,")
    post_csv.commit(db, home.org, data, None, actor(home), NOW)
    rows = read_csv(post_csv.export(db, home.org.id))
    assert list(rows[0]) == list(post_csv.EXPORT_COLUMNS)
    world_post, fair = rows
    assert world_post["text"] == "Hello" and world_post["created_by"] == ""
    assert fair["channels"] == "Outbox students;X"
    assert fair["when"] == "2026-07-01 10:00"  # BST
    assert fair["when_utc"] == "2026-07-01T09:00:00Z"
    assert fair["delivery_statuses"] == "Outbox students: scheduled; X: scheduled"
    assert fair["status"] == "draft" and fair["link_url"] == "https://c.example/f"
    assert fair["created_by"] == home.staff.email
    assert fair["created_at"] == "2026-03-02T09:30:00Z"
    assert x.id  # the X channel took part


def test_export_defuses_cells_a_spreadsheet_would_run_as_formulas(db, world):
    home = world.home
    home.channel.display_name = "@careers"
    db.flush()
    lines = [
        f'"{text}",@careers,2026-03-1{n} 09:00,,,,'
        for n, text in enumerate(['=HYPERLINK(""http://evil"")', "+1", "-2 days left", "@here"])
    ]
    post_csv.commit(db, home.org, file_of(*lines), None, actor(home), NOW)
    exported = post_csv.export(db, home.org.id)
    texts = [r["text"] for r in read_csv(exported)[1:]]
    assert texts == ['\'=HYPERLINK("http://evil")', "'+1", "'-2 days left", "'@here"]
    assert {r["channels"] for r in read_csv(exported)} == {"'@careers"}


def test_export_then_import_round_trips(db, world):
    home = world.home
    own = home.campaign.messages[0].variants[0]
    second = add_channel(db, home, "Careers; grads")  # a name with the separator: exported as id
    data = file_of(
        f'"=1+1 is two\nsecond line","Outbox students;{second.id}",{LATER},https://c.example/a,'
        f"{own.id},,"
    )
    post_csv.commit(db, home.org, data, None, actor(home), NOW)
    exported = read_csv(post_csv.export(db, home.org.id))
    for row in exported:  # moved a week on, as a person would for next term
        when = dt.datetime.strptime(row["when"], "%Y-%m-%d %H:%M") + dt.timedelta(days=7)
        row["when"] = f"{when:%Y-%m-%d %H:%M}"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(post_csv.EXPORT_COLUMNS))
    writer.writeheader()
    writer.writerows(exported)
    again = post_csv.preview(db, home.org, out.getvalue().encode(), NOW)
    assert again.errors == []
    assert [r.ok for r in again.rows] == [True, True], [errors_of(r) for r in again.rows]
    copied = again.rows[1]
    assert copied.text == "=1+1 is two\nsecond line"
    assert [c.id for c in copied.channels] == [home.channel.id, second.id]
    assert copied.variant_id == own.id and copied.values["link_url"] == "https://c.example/a"
    report = post_csv.commit(db, home.org, out.getvalue().encode(), None, actor(home), NOW)
    assert len(report.saved) == 2


def test_export_keeps_the_offset_when_the_wall_time_happens_twice(db, world):
    home = world.home
    second_half_past_one = "2026-10-25T01:30:00+00:00"  # after the clocks went back
    post_csv.commit(
        db, home.org, file_of(f"Late,Outbox students,{second_half_past_one},,,,"), None,
        actor(home), NOW,
    )  # fmt: skip
    row = read_csv(post_csv.export(db, home.org.id))[-1]
    assert row["when"] == "2026-10-25T01:30:00+00:00"
    assert row["when_utc"] == "2026-10-25T01:30:00Z"


def test_export_filters_by_range_and_stays_in_the_organisation(db, world):
    home = world.home
    data = file_of(GOOD, "Summer,Outbox students,2026-07-01 09:00,,,,")
    post_csv.commit(db, home.org, data, None, actor(home), NOW)
    start, end = post_csv.export_range("2026-03-10", "2026-03-10", "Europe/London")
    rows = read_csv(post_csv.export(db, home.org.id, start, end))
    assert [r["text"] for r in rows] == ["Mock interviews next week: book now"]
    other = read_csv(post_csv.export(db, world.other.org.id))
    assert [r["text"] for r in other] == ["Hello"]


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("2026-02-30", None, "from: “2026-02-30” is not a date"),
        (None, "tomorrow", "to: “tomorrow” is not a date"),
        ("2026-03-10", "2026-03-01", "the last day comes before the first"),
    ],
)
def test_a_bad_export_range_says_why(first, last, expected):
    with pytest.raises(post_csv.ServiceError, match=expected):
        post_csv.export_range(first, last, "Europe/London")


@pytest.mark.parametrize("slots", [False, True])
def test_the_template_previews_without_errors(db, world, slots):
    if slots:
        add_slots(db, world.home.channel, (1, 9, 0))
    template = post_csv.template(db, world.home.org, NOW)
    result = preview(db, world.home, template.encode())
    assert result.errors == [] and [r.ok for r in result.rows] == [True, True]
    assert [r.use_queue for r in result.rows] == [False, slots]
    assert {c.id for r in result.rows for c in r.channels} == {world.home.channel.id}
