"""The key dates and queue slots settings pages, as admins, managers and staff use them."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from campaign.models import AuditEvent, KeyDate, QueueSlot
from tests.conftest import NOW

ACADEMIC_YEAR = (Path(__file__).parent.parent / "fixtures" / "ical" / "uk_academic_year_2026_27.ics").read_bytes()  # fmt: skip
XSS = '<script>alert("owned")</script>'


def add_key_date(db, part, title="Summer exams", first=dt.date(2026, 5, 11), last=None, **values):
    found = KeyDate(
        organisation_id=part.org.id,
        title=title,
        starts_on=first,
        ends_on=last or first,
        created_at=NOW,
        **values,
    )
    db.add(found)
    db.flush()
    return found


def add_slot(db, part, weekday=0, at=dt.time(9, 30)):
    slot = QueueSlot(channel_id=part.channel.id, weekday=weekday, at=at, created_at=NOW)
    db.add(slot)
    db.flush()
    return slot


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def key_date_count(db, part):
    return db.scalar(
        select(func.count()).select_from(KeyDate).where(KeyDate.organisation_id == part.org.id)
    )


def upload(client, token, data, name="calendar.ics", effect="none"):
    # Encoded in memory: the test client would spool a large body to a temporary file it never
    # closes (a ResourceWarning, an error under filterwarnings).
    boundary, body = encode_multipart(
        {"csrf_token": token, "effect": effect, "file": FileStorage(io.BytesIO(data), name)}
    )
    return client.post(
        "/settings/key-dates/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def form(token, **values):
    base = {"csrf_token": token, "title": "Careers fair", "starts_on": "2026-10-14",
            "ends_on": "", "kind": "careers_fair", "effect": "boost", "notes": ""}  # fmt: skip
    return {**base, **values}


# --- who may do what ------------------------------------------------------------------------

ROUTES = [
    # (method, path template, lowest role allowed)
    ("GET", "/settings/key-dates", "staff"),
    ("POST", "/settings/key-dates/add", "admin"),
    ("POST", "/settings/key-dates/import", "admin"),
    ("GET", "/settings/key-dates/{key_date}/edit", "admin"),
    ("POST", "/settings/key-dates/{key_date}/edit", "admin"),
    ("POST", "/settings/key-dates/{key_date}/delete", "admin"),
    ("GET", "/settings/queue", "manager"),
    ("POST", "/settings/queue/{channel}/add", "manager"),
    ("POST", "/settings/queue/{channel}/remove", "manager"),
]
RANK = {"staff": 1, "manager": 2, "admin": 3}


@pytest.mark.parametrize("role", ["staff", "manager", "admin"])
@pytest.mark.parametrize(("method", "template", "needed"), ROUTES)
def test_role_matrix(client, auth, world, db, role, method, template, needed):
    key_date, slot = add_key_date(db, world.home), add_slot(db, world.home)
    auth.login(getattr(world.home, role).email)
    token = auth.csrf("/")
    path = template.format(key_date=key_date.id, channel=world.home.channel.id)
    data = form(token, slot_id=str(slot.id), weekday="1", at="10:00")
    response = client.open(path, method=method, data=data)
    if RANK[role] >= RANK[needed]:
        assert response.status_code in (200, 302), f"{role} {method} {path}"
    else:
        assert response.status_code == 403, f"{role} {method} {path}"


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    for path in ("/settings/key-dates", "/settings/queue"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/settings/key-dates/{key_date}/edit"),
        ("POST", "/settings/key-dates/{key_date}/edit"),
        ("POST", "/settings/key-dates/{key_date}/delete"),
        ("POST", "/settings/queue/{channel}/add"),
        ("POST", "/settings/queue/{channel}/remove"),
    ],
)
def test_another_organisations_ids_are_404(client, auth, world, db, method, template):
    theirs, their_slot = add_key_date(db, world.other, "Their exams"), add_slot(db, world.other)
    auth.login(world.home.admin.email)
    token = auth.csrf("/")
    path = template.format(key_date=theirs.id, channel=world.other.channel.id)
    data = form(token, title="Mine now", slot_id=str(their_slot.id), weekday="1", at="10:00")
    assert client.open(path, method=method, data=data).status_code == 404
    db.expire_all()
    assert (theirs.title, db.get(QueueSlot, their_slot.id).at) == ("Their exams", dt.time(9, 30))
    assert db.scalar(select(func.count()).select_from(QueueSlot)) == 1  # none added


def test_another_organisations_slot_through_an_own_channel_is_404(client, auth, world, db):
    their_slot = add_slot(db, world.other)
    auth.login(world.home.manager.email)
    token = auth.csrf("/settings/queue")
    response = client.post(
        f"/settings/queue/{world.home.channel.id}/remove",
        data={"csrf_token": token, "slot_id": str(their_slot.id)},
    )
    assert response.status_code == 404
    assert db.get(QueueSlot, their_slot.id) is not None


@pytest.mark.parametrize(
    "template",
    [
        "/settings/key-dates/add",
        "/settings/key-dates/import",
        "/settings/key-dates/{key_date}/edit",
        "/settings/key-dates/{key_date}/delete",
        "/settings/queue/{channel}/add",
        "/settings/queue/{channel}/remove",
    ],
)
def test_posts_without_a_csrf_token_are_rejected(client, auth, world, db, app, template):
    app.config["WTF_CSRF_ENABLED"] = True
    key_date, slot = add_key_date(db, world.home), add_slot(db, world.home)
    auth.login(world.home.admin.email)
    path = template.format(key_date=key_date.id, channel=world.home.channel.id)
    data = {**form("")} | {"slot_id": str(slot.id), "weekday": "1", "at": "10:00"}
    del data["csrf_token"]
    data["file"] = (io.BytesIO(ACADEMIC_YEAR), "calendar.ics")
    response = client.post(path, data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    db.expire_all()
    assert key_date_count(db, world.home) == 1 and key_date.title == "Summer exams"
    assert db.scalar(select(func.count()).select_from(QueueSlot)) == 1


# --- key dates ------------------------------------------------------------------------------


def test_the_list_shows_upcoming_first_with_effect_badges(client, auth, world, db):
    add_key_date(db, world.home, "Results day", dt.date(2026, 8, 13), effect="boost")
    add_key_date(db, world.home, "Summer exams", dt.date(2026, 5, 11), dt.date(2026, 6, 5),
                 effect="blackout", kind="exams")  # fmt: skip
    add_key_date(db, world.home, "Spring term", dt.date(2026, 1, 12), dt.date(2026, 3, 27))
    add_key_date(db, world.home, "Welcome week", dt.date(2025, 9, 22), dt.date(2025, 9, 26))
    add_key_date(db, world.other, "Other university secret", dt.date(2026, 5, 1))
    auth.login(world.home.staff.email)
    body = page(client, "/settings/key-dates")
    upcoming, past = body.split("<summary>Past key dates</summary>")
    assert upcoming.index("Spring term") < upcoming.index("Summer exams")
    assert upcoming.index("Summer exams") < upcoming.index("Results day")
    assert "Welcome week" in past and "Welcome week" not in upcoming
    assert re.search(r"Mon 12 Jan – Fri 27 Mar 2026 <span class=\"status\">Now</span>", upcoming)
    assert 'class="status key-effect key-effect-blackout">Blackout<' in upcoming
    assert 'class="status key-effect key-effect-boost">Boost<' in upcoming
    assert 'class="status key-effect key-effect-none">Shown only<' in upcoming
    assert "Other university secret" not in body


def test_staff_and_managers_see_key_dates_without_changing_them(client, auth, world, db):
    found = add_key_date(db, world.home)
    for role in ("staff", "manager"):
        auth.login(getattr(world.home, role).email)
        body = page(client, "/settings/key-dates")
        assert "Summer exams" in body
        assert "An admin adds and changes key dates." in body
        assert f"/settings/key-dates/{found.id}/edit" not in body
        assert "Import an iCal file" not in body and "Add a key date" not in body
        auth.logout()


def test_past_key_dates_are_collapsed_and_paged(client, auth, world, db):
    for n in range(25):
        add_key_date(
            db, world.home, f"Past event {n:02d}", dt.date(2025, 1, 1) + dt.timedelta(days=n)
        )
    auth.login(world.home.admin.email)
    first = page(client, "/settings/key-dates")
    assert re.search(r"<details class=\"card\" >\s*<summary>Past key dates", first)  # closed
    assert "Past event 24" in first and "Past event 05" in first and "Past event 04" not in first
    assert 'href="/settings/key-dates?past=2">Older<' in first
    second = page(client, "/settings/key-dates?past=2")
    assert re.search(r"<details class=\"card\" open>", second)
    assert "Past event 04" in second and "Past event 00" in second
    assert "Past event 05" not in second
    assert 'href="/settings/key-dates?past=1">Newer<' in second
    assert page(client, "/settings/key-dates?past=-3")  # a silly page number is page 1
    assert page(client, "/settings/key-dates?past=abc")


def test_an_admin_adds_a_key_date(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/key-dates")
    response = client.post(
        "/settings/key-dates/add",
        data=form(token, ends_on="2026-10-15", notes="Great Hall"),
        follow_redirects=True,
    )
    body = response.get_data(as_text=True)
    assert "Added “Careers fair” (Wed 14 Oct – Thu 15 Oct 2026)." in body
    found = db.scalar(select(KeyDate).where(KeyDate.organisation_id == world.home.org.id))
    assert (found.kind, found.effect, found.ends_on, found.notes) == (
        "careers_fair",
        "boost",
        dt.date(2026, 10, 15),
        "Great Hall",
    )
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "key_date.created"))
    assert event.actor_label == world.home.admin.email


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"title": ""}, "Give the key date a title"),
        ({"starts_on": "14/10/2026"}, "is not a date; write it like 2026-09-28"),
        ({"ends_on": "2026-10-01"}, "is before the start"),
        ({"kind": "party"}, "Unknown kind"),
        ({"effect": "loud"}, "Unknown effect"),
    ],
)
def test_a_bad_key_date_is_refused_with_the_reason_and_the_form_kept(
    client, auth, world, db, values, message
):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/key-dates")
    response = client.post("/settings/key-dates/add", data=form(token, notes="Keep me", **values))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert message in body.replace("&#39;", "'")
    assert re.search(r">\s*Keep me</textarea>", body)
    assert key_date_count(db, world.home) == 0


def test_an_admin_edits_a_key_date(client, auth, world, db):
    found = add_key_date(db, world.home)
    auth.login(world.home.admin.email)
    body = page(client, f"/settings/key-dates/{found.id}/edit")
    assert 'value="2026-05-11"' in body and 'value="Summer exams"' in body
    token = auth.csrf(f"/settings/key-dates/{found.id}/edit")
    response = client.post(
        f"/settings/key-dates/{found.id}/edit",
        data=form(
            token,
            title="Summer exams",
            starts_on="2026-05-11",
            ends_on="2026-06-05",
            kind="exams",
            effect="blackout",
        ),
    )
    assert response.status_code == 302
    db.expire_all()
    assert (found.ends_on, found.effect) == (dt.date(2026, 6, 5), "blackout")
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "key_date.updated"))
    assert event.detail["changes"]["effect"] == ["none", "blackout"]


def test_a_bad_edit_says_why_and_changes_nothing(client, auth, world, db):
    found = add_key_date(db, world.home)
    auth.login(world.home.admin.email)
    token = auth.csrf(f"/settings/key-dates/{found.id}/edit")
    response = client.post(
        f"/settings/key-dates/{found.id}/edit",
        data=form(token, title="Exams", starts_on="2026-05-11", ends_on="2026-05-01"),
    )
    assert response.status_code == 200
    assert "is before the start" in response.get_data(as_text=True)
    db.expire_all()
    assert (found.title, found.ends_on) == ("Summer exams", dt.date(2026, 5, 11))


def test_an_admin_deletes_a_key_date(client, auth, world, db):
    found = add_key_date(db, world.home)
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/key-dates")
    response = client.post(
        f"/settings/key-dates/{found.id}/delete", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Deleted “Summer exams”." in response.get_data(as_text=True)
    assert key_date_count(db, world.home) == 0


def test_titles_are_escaped(client, auth, world, db):
    add_key_date(db, world.home, XSS)
    auth.login(world.home.staff.email)
    body = page(client, "/settings/key-dates")
    assert XSS not in body and "&lt;script&gt;" in body


# --- iCal upload ----------------------------------------------------------------------------


def test_an_admin_imports_an_academic_year_and_again_without_duplicates(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/key-dates")
    first = upload(client, token, ACADEMIC_YEAR, effect="boost")
    body = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "Import finished" in body
    assert "11 added, 0 updated, 0 already up to date." in body
    assert "Autumn Term" in body and "Summer examination period" in body
    assert db.scalar(select(KeyDate.effect).where(KeyDate.title == "Autumn Term")) == "boost"
    second = upload(client, token, ACADEMIC_YEAR).get_data(as_text=True)
    assert "0 added, 0 updated, 11 already up to date." in second
    assert key_date_count(db, world.home) == 11


def test_refused_events_are_listed_with_the_reason_and_good_ones_kept(client, auth, world, db):
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        b"BEGIN:VEVENT\r\nUID:ok\r\nSUMMARY:Careers fair\r\nDTSTART;VALUE=DATE:20261014\r\n"
        b"END:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:<b>no-start</b>\r\nSUMMARY:Reading week\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:back\r\nSUMMARY:Exams\r\nDTSTART;VALUE=DATE:20270605\r\n"
        b"DTEND;VALUE=DATE:20270510\r\nEND:VEVENT\r\n"
        b"END:VCALENDAR\r\n"
    )
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/key-dates")
    body = upload(client, token, data).get_data(as_text=True)
    assert "1 added, 0 updated, 0 already up to date, 2 not imported." in body
    assert re.search(
        r"<td>2</td><td>Reading week</td><td><code>&lt;b&gt;no-start&lt;/b&gt;</code></td>"
        r"<td>It has no start date \(DTSTART\).</td>",
        body,
    )
    assert "<td>It ends before it starts.</td>" in body
    assert key_date_count(db, world.home) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"Title,Start\r\nAutumn term,2026-09-28\r\n", "This is not an iCal file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "it is not UTF-8 text"),
        (b"BEGIN:VCALENDAR\r\n" + b"X" * (1024 * 1024), "larger than 1 MB"),
    ],
)
def test_an_upload_that_is_not_ical_gets_a_clear_message(client, auth, world, db, data, message):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/key-dates")
    response = upload(client, token, data, name="calendar.csv")
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert key_date_count(db, world.home) == 0


def test_an_import_without_a_file_asks_for_one(client, auth, world):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/key-dates")
    response = client.post(
        "/settings/key-dates/import",
        data={"csrf_token": token, "effect": "none"},
        content_type="multipart/form-data",
    )
    assert "Choose an iCal (.ics) file to import." in response.get_data(as_text=True)


# --- queue slots ----------------------------------------------------------------------------


def test_the_queue_page_names_the_zone_and_explains_clock_changes(client, auth, world, db):
    add_slot(db, world.home, 6, dt.time(1, 30))
    add_slot(db, world.home, 0, dt.time(9, 30))
    add_slot(db, world.other, 2, dt.time(7, 15))
    auth.login(world.home.manager.email)
    body = page(client, "/settings/queue")
    assert "Times are in Europe/London" in body
    assert "still happens only once" in body and "moves forward" in body
    assert "The next change in Europe/London is on <strong>Sunday 29 March 2026</strong>" in body
    assert "when the clocks go forward one hour" in body
    assert re.search(r"<th scope=\"row\">Monday</th>\s*<td><ul[^>]*>\s*<li><form", body)
    assert "<time>09:30</time>" in body and "<time>01:30</time>" in body
    assert "07:15" not in body  # the other organisation's slot
    # The Sunday 01:30 slot on the change day, in plain words.
    assert "Sunday at 01:30, on the day of the next clock change: 01:30 does not exist" in body
    assert "(the clocks go forward); it will be posted at 02:30 BST." in body
    assert "Mon 02 Mar 2026, 09:30 GMT" in body  # the next slot times, in the zone


def test_a_manager_adds_and_removes_a_slot(client, auth, world, db):
    auth.login(world.home.manager.email)
    token = auth.csrf("/settings/queue")
    channel_id = world.home.channel.id
    response = client.post(
        f"/settings/queue/{channel_id}/add",
        data={"csrf_token": token, "weekday": "3", "at": "12:45"},
        follow_redirects=True,
    )
    assert "Added a slot on Thursday at 12:45." in response.get_data(as_text=True)
    slot = db.scalar(select(QueueSlot).where(QueueSlot.channel_id == channel_id))
    assert (slot.weekday, slot.at) == (3, dt.time(12, 45))
    response = client.post(
        f"/settings/queue/{channel_id}/remove",
        data={"csrf_token": token, "slot_id": str(slot.id)},
        follow_redirects=True,
    )
    assert "Removed the slot on Thursday at 12:45" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(QueueSlot)) == 0
    actions = list(
        db.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "channel"))
    )
    assert actions == ["queue_slot.added", "queue_slot.removed"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"weekday": "3", "at": "12:00"}, "already has a slot on Thursday at 12:00"),
        ({"weekday": "3", "at": "noon"}, "is not a time of day; write it like 09:30"),
        ({"weekday": "9", "at": "12:00"}, "is not a weekday"),
    ],
)
def test_bad_or_duplicate_slots_are_refused_with_a_message(
    client, auth, world, db, values, message
):
    add_slot(db, world.home, 3, dt.time(12, 0))
    auth.login(world.home.manager.email)
    token = auth.csrf("/settings/queue")
    response = client.post(
        f"/settings/queue/{world.home.channel.id}/add",
        data={"csrf_token": token, **values},
        follow_redirects=True,
    )
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert db.scalar(select(func.count()).select_from(QueueSlot)) == 1


def test_removing_without_a_slot_says_so(client, auth, world, db):
    add_slot(db, world.home)
    auth.login(world.home.manager.email)
    token = auth.csrf("/settings/queue")
    response = client.post(
        f"/settings/queue/{world.home.channel.id}/remove",
        data={"csrf_token": token, "slot_id": "not-a-number"},
        follow_redirects=True,
    )
    assert "Choose the slot to remove." in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(QueueSlot)) == 1
