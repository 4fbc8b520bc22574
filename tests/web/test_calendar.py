"""The calendar pages, the iCal feed and its settings, as people and calendar apps use them."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from icalendar import Calendar
from sqlalchemy import select

from campaign.models import AuditEvent, Channel, Delivery, KeyDate, Organisation, Post
from campaign.web.calendar import post_href
from tests.conftest import NOW

UTC = dt.UTC
XSS = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


def add_post(db, part, due, text=None, status="approved", delivery="scheduled", channel=None):
    post = Post(
        organisation_id=part.org.id,
        text=text or f"Post {uuid.uuid4().hex[:8]}",
        status=status,
        scheduled_for=due,
        created_at=NOW,
    )
    post.deliveries.append(
        Delivery(
            channel=channel or part.channel,
            due_at=due,
            status=delivery,
            idempotency_key=uuid.uuid4().hex,
            updated_at=NOW,
        )
    )
    db.add(post)
    db.flush()
    return post


def page(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    return response.get_data(as_text=True)


def day_cell(body, day):
    """The HTML of one day of the calendar."""
    found = re.search(
        rf'<li class="cal-day[^"]*" id="day-{day}">(.*?)</li>\s*(?=<li class="cal-day|</ol>)',
        body,
        re.S,
    )
    assert found, f"no day {day} on the page"
    return found.group(1)


def feed_path(part):
    return f"/calendar/{part.org.calendar_secret}.ics"


# --- the week and month views ---------------------------------------------------------------


def test_staff_see_this_week_with_each_post_its_time_channel_and_state(client, auth, world):
    auth.login(world.home.staff.email)
    body = page(client, "/calendar")

    assert "2 – 8 March 2026" in body
    assert body.count('class="cal-day') == 7
    monday = day_cell(body, "2026-03-02")
    assert '<time datetime="2026-03-02T11:30:00+00:00">11:30</time>' in monday
    assert "Outbox students" in monday and '<span class="cal-label">Scheduled</span>' in monday
    assert 'aria-current="date"' in monday


def test_each_entry_links_to_its_post(client, auth, world, db, app):
    post = add_post(db, world.home, dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC))
    auth.login(world.home.staff.email)
    body = page(client, "/calendar")
    with app.test_request_context():
        href = post_href(post.id, post.deliveries[0].id)

    assert f'<a href="{href}">' in day_cell(body, "2026-03-04")
    assert client.get(href).status_code == 200


def test_the_month_view_shows_the_whole_month_and_its_neighbours(client, auth, world, db):
    add_post(db, world.home, dt.datetime(2026, 6, 30, 8, 0, tzinfo=UTC), text="End of June")
    auth.login(world.home.staff.email)
    body = page(client, "/calendar?view=month&date=2026-06-15")

    assert '<h2 id="period-h" class="cal-title">June 2026' in body
    assert body.count('class="cal-day') == 35  # Mon 1 June to Sun 5 July
    assert "09:00" in day_cell(body, "2026-06-30") and "End of June" in body
    assert 'href="/calendar?view=month&amp;date=2026-05-01"' in body
    assert 'href="/calendar?view=month&amp;date=2026-07-01"' in body


def test_previous_next_and_today_keep_the_view_and_the_channel(client, auth, world):
    channel = world.home.channel.id
    auth.login(world.home.staff.email)
    body = page(client, f"/calendar?date=2026-04-15&channel={channel}")

    assert f'href="/calendar?view=week&amp;date=2026-04-06&amp;channel={channel}"' in body
    assert f'href="/calendar?view=week&amp;date=2026-04-20&amp;channel={channel}"' in body
    assert f'href="/calendar?view=week&amp;date=2026-03-02&amp;channel={channel}"' in body


@pytest.mark.parametrize(
    ("anchor", "day", "words"),
    [
        ("2026-03-25", "2026-03-29", "The clocks go forward at 01:00 GMT, to 02:00 BST"),
        ("2026-10-21", "2026-10-25", "The clocks go back at 02:00 BST, to 01:00 GMT"),
    ],
)
def test_a_week_with_a_clock_change_shows_seven_days_and_says_so(
    client, auth, world, anchor, day, words
):
    auth.login(world.home.staff.email)
    body = page(client, f"/calendar?date={anchor}")

    assert body.count('class="cal-day') == 7
    assert words in day_cell(body, day)


@pytest.mark.parametrize(
    ("due", "day", "shown"),
    [
        (dt.datetime(2026, 5, 31, 23, 30, tzinfo=UTC), "2026-06-01", "00:30"),  # BST
        (dt.datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "2026-03-30", "00:30"),  # first BST night
        (dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25", "01:30"),  # 01:30 GMT
        (dt.datetime(2026, 10, 25, 23, 30, tzinfo=UTC), "2026-10-25", "23:30"),  # GMT
    ],
)
def test_a_post_is_on_its_day_in_the_organisations_zone(client, auth, world, db, due, day, shown):
    add_post(db, world.home, due, text="Placed by local day")
    auth.login(world.home.staff.email)
    body = page(client, f"/calendar?view=month&date={day}")

    cell = day_cell(body, day)
    assert "Placed by local day" in cell and f">{shown}</time>" in cell
    assert body.count("Placed by local day") == 1


def test_every_state_has_a_text_label_and_its_own_class(client, auth, world, db):
    states = [("pending_approval", "scheduled"), ("draft", "scheduled"), ("rejected", "scheduled")]
    states += [("approved", s) for s in ("published", "failed", "missed")]
    states += [("cancelled", "cancelled")]
    for hour, (status, delivery) in enumerate(states, start=6):
        due = dt.datetime(2026, 3, 3, hour, tzinfo=UTC)
        add_post(db, world.home, due, status=status, delivery=delivery)
    auth.login(world.home.staff.email)
    tuesday = day_cell(page(client, "/calendar"), "2026-03-03")

    labels = re.findall(r'<span class="cal-label">([^<]+)</span>', tuesday)
    assert labels == [
        "Awaiting approval", "Draft", "Rejected", "Published", "Failed", "Missed", "Cancelled"
    ]  # fmt: skip
    classes = re.findall(r'class="cal-entry cal-status-(\w+)"', tuesday)
    assert classes == [
        "pending_approval", "draft", "rejected", "published", "failed", "missed", "cancelled"
    ]  # fmt: skip


def test_key_dates_are_shown_with_boosts_and_blackouts_marked(client, auth, world, db):
    db.add_all(
        [
            KeyDate(
                organisation_id=world.home.org.id,
                title="Spring careers fair",
                kind="careers_fair",
                effect="boost",
                starts_on=dt.date(2026, 3, 4),
                ends_on=dt.date(2026, 3, 4),
            ),
            KeyDate(
                organisation_id=world.home.org.id,
                title="Exams",
                kind="exams",
                effect="blackout",
                starts_on=dt.date(2026, 3, 6),
                ends_on=dt.date(2026, 3, 20),
            ),
            KeyDate(
                organisation_id=world.other.org.id,
                title="Their open day",
                effect="boost",
                starts_on=dt.date(2026, 3, 4),
                ends_on=dt.date(2026, 3, 4),
            ),
        ]
    )
    db.flush()
    auth.login(world.home.staff.email)
    body = page(client, "/calendar")

    assert "<strong>Boost:</strong> Spring careers fair" in day_cell(body, "2026-03-04")
    for day in ("2026-03-06", "2026-03-07", "2026-03-08"):
        assert "<strong>Blackout:</strong> Exams" in day_cell(body, day)
    assert 'class="cal-day cal-blackout" id="day-2026-03-06"' in body
    assert "Their open day" not in body


def test_the_channel_filter_shows_one_channel(client, auth, world, db):
    other = Channel(
        organisation_id=world.home.org.id,
        kind="manual",
        display_name="Careers Instagram",
        audience="students",
        created_at=NOW,
    )
    db.add(other)
    db.flush()
    add_post(db, world.home, NOW + dt.timedelta(days=1), text="On Instagram", channel=other)
    auth.login(world.home.staff.email)

    filtered = page(client, f"/calendar?channel={other.id}")
    everything = page(client, "/calendar?channel=")

    assert (
        "On Instagram" in filtered and '<span class="cal-channel">Outbox students' not in filtered
    )
    assert f'<option value="{other.id}" selected>Careers Instagram</option>' in filtered
    assert (
        "On Instagram" in everything and '<span class="cal-channel">Outbox students' in everything
    )


@pytest.mark.parametrize("value", ["other", "abc", "-1", "1.5", "99999999999", "²"])
def test_a_channel_of_another_organisation_or_no_channel_is_404(client, auth, world, value):
    auth.login(world.home.staff.email)
    channel = str(world.other.channel.id) if value == "other" else value
    page(client, f"/calendar?channel={channel}", status=404)


def test_another_organisations_posts_never_appear(client, auth, world, db):
    add_post(db, world.other, NOW + dt.timedelta(days=1), text="Other university secret post")
    auth.login(world.home.admin.email)
    for path in ("/calendar", "/calendar?view=month"):
        assert "Other university secret post" not in page(client, path)
    assert "Outbox students" in page(client, "/calendar")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("tomorrow", "“tomorrow” is not a date: write it like 2026-06-01."),
        ("2026-02-30", "2026-02-30 is not a date in the calendar."),
        ("0001-01-01", "Choose a date between 1970 and 2200."),
        ("9999-12-31", "Choose a date between 1970 and 2200."),
    ],
)
@pytest.mark.parametrize("view", ["week", "month"])
def test_a_bad_date_is_a_clear_message_not_an_error(client, auth, world, value, words, view):
    auth.login(world.home.staff.email)
    body = page(client, f"/calendar?view={view}&date={value}", status=400)

    assert words in body
    assert "Showing the" in body and "of today instead" in body


def test_an_unknown_view_falls_back_to_the_week(client, auth, world):
    auth.login(world.home.staff.email)
    assert page(client, "/calendar?view=decade").count('class="cal-day') == 7


def test_text_is_escaped_on_the_calendar(client, auth, world, db):
    world.home.channel.display_name = XSS
    db.add(
        KeyDate(
            organisation_id=world.home.org.id,
            title=XSS,
            starts_on=NOW.date(),
            ends_on=NOW.date(),
        )
    )
    add_post(db, world.home, NOW + dt.timedelta(hours=3), text=XSS)
    auth.login(world.home.staff.email)
    for path in ("/calendar", "/calendar?view=month"):
        body = page(client, path)
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert" in body


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    response = client.get("/calendar")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["staff", "manager", "admin"])
def test_every_member_sees_the_calendar(client, auth, world, role):
    auth.login(getattr(world.home, role).email)
    page(client, "/calendar")


# --- the iCal feed --------------------------------------------------------------------------


def test_the_feed_needs_no_sign_in_and_is_an_icalendar_file(client, world):
    response = client.get(feed_path(world.home))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert "no-store" in response.headers["Cache-Control"]
    calendar = Calendar.from_ical(response.data)
    assert str(calendar["X-WR-CALNAME"]) == "Home Uni: planned posts"
    assert [tz.tz_name for tz in calendar.timezones] == ["Europe/London"]
    assert calendar.get_missing_tzids() == set()


def test_feed_times_are_right_either_side_of_the_clocks_going_forward(client, world, db, app):
    # 09:00 Europe/London on the Monday before and the Monday after the change of 29 March 2026.
    before = add_post(db, world.home, dt.datetime(2026, 3, 23, 9, 0, tzinfo=UTC), text="Before")
    after = add_post(db, world.home, dt.datetime(2026, 3, 30, 8, 0, tzinfo=UTC), text="After")

    calendar = Calendar.from_ical(client.get(feed_path(world.home)).data)
    events = {str(e["UID"]): e for e in calendar.events}

    for post, utc_hour in ((before, 9), (after, 8)):
        item = events[f"delivery-{post.deliveries[0].id}@campaign"]
        assert item["DTSTART"].params["TZID"] == "Europe/London"
        assert item.start.replace(tzinfo=None) == dt.datetime.combine(
            post.scheduled_for.date(), dt.time(9, 0)
        )
        assert item.start.astimezone(UTC) == post.scheduled_for
        assert item.start.astimezone(UTC).hour == utc_hour
        with app.test_request_context():
            assert str(item["URL"]) == post_href(post.id, post.deliveries[0].id, external=True)
    own_zone = calendar.timezones[0].to_tz(lookup_tzid=False)
    wall = events[f"delivery-{after.deliveries[0].id}@campaign"].start.replace(tzinfo=None)
    assert wall.replace(tzinfo=own_zone).astimezone(UTC) == after.scheduled_for


def test_feed_times_are_right_either_side_of_the_clocks_going_back(client, world, db):
    before = add_post(db, world.home, dt.datetime(2026, 10, 19, 8, 0, tzinfo=UTC))  # 09:00 BST
    after = add_post(db, world.home, dt.datetime(2026, 10, 26, 9, 0, tzinfo=UTC))  # 09:00 GMT

    calendar = Calendar.from_ical(client.get(feed_path(world.home)).data)
    events = {str(e["UID"]): e for e in calendar.events}

    for post in (before, after):
        item = events[f"delivery-{post.deliveries[0].id}@campaign"]
        assert item["DTSTART"].to_ical().decode().endswith("T090000")
        assert item.start.astimezone(UTC) == post.scheduled_for


def test_the_feed_holds_only_its_own_organisations_posts(client, world, db):
    add_post(db, world.other, NOW + dt.timedelta(days=1), text="Other university secret post")
    add_post(db, world.home, NOW + dt.timedelta(days=1), text="Our own post")

    body = client.get(feed_path(world.home)).get_data(as_text=True)

    assert "Our own post" in body and "Other university secret post" not in body


@pytest.mark.parametrize(
    "path",
    [
        "/calendar/not-the-secret.ics",
        "/calendar/.ics",
        "/calendar/None.ics",
        "/calendar/" + "a" * 65 + ".ics",
    ],
)
def test_an_unknown_secret_is_404(client, world, path):
    assert client.get(path).status_code == 404


def test_a_feed_that_is_off_answers_no_address(client, world, db):
    world.home.org.calendar_secret = None
    world.other.org.calendar_secret = None
    db.flush()

    assert client.get("/calendar/None.ics").status_code == 404
    assert client.get("/calendar/.ics").status_code == 404


# --- the feed's settings --------------------------------------------------------------------


def test_admins_see_the_feed_address_with_a_copy_button(client, auth, world):
    auth.login(world.home.admin.email)
    body = page(client, "/settings/calendar-feed")

    url = f"http://localhost{feed_path(world.home)}"
    assert re.search(
        rf'<input type="text" id="feed-url"[^>]*value="{re.escape(url)}" readonly', body
    )
    assert re.search(r'<button type="button"[^>]*data-copy-from="feed-url"[^>]*hidden>', body)
    assert "Regenerate the secret" in body and "Turn the feed off" in body


@pytest.mark.parametrize("role", ["staff", "manager"])
def test_only_admins_reach_the_feed_settings(client, auth, world, db, role):
    old = world.home.org.calendar_secret
    auth.login(getattr(world.home, role).email)
    token = auth.csrf("/calendar")

    assert client.get("/settings/calendar-feed").status_code == 403
    for action in ("regenerate", "off"):
        response = client.post(f"/settings/calendar-feed/{action}", data={"csrf_token": token})
        assert response.status_code == 403
    db.expire_all()
    assert world.home.org.calendar_secret == old


def test_regenerating_makes_the_old_address_404_at_once(client, auth, world, db):
    old_path = feed_path(world.home)
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/calendar-feed")

    response = client.post(
        "/settings/calendar-feed/regenerate", data={"csrf_token": token}, follow_redirects=True
    )

    assert "Any earlier address stopped working" in response.get_data(as_text=True)
    db.expire_all()
    new_path = feed_path(world.home)
    assert new_path != old_path
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 200
    assert f"http://localhost{new_path}" in response.get_data(as_text=True)
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "calendar_feed.regenerated"))
    assert audit.actor_label == world.home.admin.email
    assert world.home.org.calendar_secret not in str(audit.detail)


def test_turning_the_feed_off_and_creating_it_again(client, auth, world, db):
    old_path = feed_path(world.home)
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/calendar-feed")

    off = client.post(
        "/settings/calendar-feed/off", data={"csrf_token": token}, follow_redirects=True
    )

    assert "The calendar feed is off" in off.get_data(as_text=True)
    assert "Create the feed" in off.get_data(as_text=True)
    db.expire_all()
    assert world.home.org.calendar_secret is None
    assert client.get(old_path).status_code == 404
    again = client.post(
        "/settings/calendar-feed/off", data={"csrf_token": token}, follow_redirects=True
    )
    assert "already off" in again.get_data(as_text=True)

    client.post("/settings/calendar-feed/regenerate", data={"csrf_token": token})

    db.expire_all()
    assert world.home.org.calendar_secret
    assert client.get(feed_path(world.home)).status_code == 200
    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.organisation_id == world.home.org.id)
        .where(AuditEvent.action.like("calendar_feed.%"))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["calendar_feed.turned_off", "calendar_feed.created"]


@pytest.mark.parametrize("action", ["regenerate", "off"])
def test_feed_changes_without_a_csrf_token_are_rejected(client, auth, world, db, app, action):
    app.config["WTF_CSRF_ENABLED"] = True
    old = world.home.org.calendar_secret
    auth.login(world.home.admin.email)

    response = client.post(f"/settings/calendar-feed/{action}", data={})

    assert response.status_code == 400
    db.expire_all()
    assert world.home.org.calendar_secret == old


def test_changing_the_feed_leaves_other_organisations_alone(client, auth, world, db):
    theirs = world.other.org.calendar_secret
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/calendar-feed")

    client.post("/settings/calendar-feed/regenerate", data={"csrf_token": token})
    client.post("/settings/calendar-feed/off", data={"csrf_token": token})

    db.expire_all()
    assert db.get(Organisation, world.other.org.id).calendar_secret == theirs
    assert client.get(f"/calendar/{theirs}.ics").status_code == 200
