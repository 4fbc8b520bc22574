"""The calendar's weeks and months: local days across DST changes, isolation, the feed's events."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import event, select

from campaign.models import AuditEvent, Channel, Delivery, KeyDate, Post
from campaign.services import (
    NotFound,
    PermissionDenied,
    ServiceError,
    calendar_subscription,
    calendar_view,
)
from campaign.services.audit import Actor
from campaign.services.calendar_subscription import feed_events
from campaign.services.calendar_view import calendar_period, shown_status
from tests.conftest import NOW

UTC = dt.UTC
LONDON = "Europe/London"


def at(*parts):
    return dt.datetime(*parts, tzinfo=UTC)


def add_post(db, part, due, channel=None, status="approved", delivery="scheduled", text=None):
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


def add_channel(db, part, name):
    channel = Channel(
        organisation_id=part.org.id,
        kind="outbox",
        display_name=name,
        audience="students",
        created_at=NOW,
    )
    db.add(channel)
    db.flush()
    return channel


def add_key_date(db, part, title, starts_on, ends_on=None, effect="none", kind="other"):
    found = KeyDate(
        organisation_id=part.org.id,
        title=title,
        kind=kind,
        effect=effect,
        starts_on=starts_on,
        ends_on=ends_on or starts_on,
    )
    db.add(found)
    db.flush()
    return found


def period(db, part, view, anchor, **extra):
    return calendar_period(db, part.org.id, LONDON, view, anchor, NOW, **extra)


def day_of(found, post):
    """The local date of the calendar day that lists `post`, or None."""
    days = [d.date for d in found.days for e in d.entries if e.post_id == post.id]
    assert len(days) <= 1, "a delivery appears on one day only"
    return days[0] if days else None


# --- the shape of a period ------------------------------------------------------------------


def test_a_week_runs_monday_to_sunday_around_the_chosen_day(db, world):
    found = period(db, world.home, "week", dt.date(2026, 3, 5))  # a Thursday

    assert [d.date for d in found.days] == [dt.date(2026, 3, 2) + dt.timedelta(i) for i in range(7)]
    assert (found.previous, found.next) == (dt.date(2026, 2, 23), dt.date(2026, 3, 9))
    assert found.title == "2 – 8 March 2026"
    assert all(d.in_period for d in found.days)


def test_today_is_the_organisations_local_date(db, world):
    # 23:30 UTC on Sunday 31 May is 00:30 BST on Monday 1 June in London.
    late = at(2026, 5, 31, 23, 30)
    found = calendar_period(db, world.home.org.id, LONDON, "week", dt.date(2026, 6, 1), late)

    assert found.today == dt.date(2026, 6, 1)
    assert [d.date for d in found.days if d.is_today] == [dt.date(2026, 6, 1)]


def test_a_month_is_a_grid_of_whole_weeks_marking_the_days_of_the_month(db, world):
    found = period(db, world.home, "month", dt.date(2026, 3, 17))

    assert (found.first, found.last) == (dt.date(2026, 2, 23), dt.date(2026, 4, 5))
    assert len(found.days) == 42 and [len(w) for w in found.weeks] == [7] * 6
    assert [d.date.day for d in found.days if d.in_period] == list(range(1, 32))
    assert (found.previous, found.next) == (dt.date(2026, 2, 1), dt.date(2026, 4, 1))
    assert found.title == "March 2026"


@pytest.mark.parametrize(
    ("anchor", "title"),
    [
        (dt.date(2026, 3, 31), "30 March – 5 April 2026"),
        (dt.date(2026, 12, 30), "28 December 2026 – 3 January 2027"),
    ],
)
def test_a_week_across_months_or_years_names_both(db, world, anchor, title):
    assert period(db, world.home, "week", anchor).title == title


def test_an_unknown_view_is_refused(db, world):
    with pytest.raises(ValueError, match="view"):
        period(db, world.home, "year", dt.date(2026, 3, 2))


# --- days in the organisation's zone across DST ---------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "change_day", "words"),
    [
        (
            dt.date(2026, 3, 25),
            dt.date(2026, 3, 29),
            "The clocks go forward at 01:00 GMT, to 02:00 BST",
        ),
        (
            dt.date(2026, 10, 21),
            dt.date(2026, 10, 25),
            "The clocks go back at 02:00 BST, to 01:00 GMT",
        ),
    ],
)
def test_a_week_with_a_dst_change_has_seven_days_and_says_when(
    db, world, anchor, change_day, words
):
    found = period(db, world.home, "week", anchor)

    assert len(found.days) == 7
    assert [(d.date, d.clock_change) for d in found.days if d.clock_change] == [(change_day, words)]


def test_a_post_just_after_local_midnight_in_summer_is_on_its_local_day(db, world):
    post = add_post(db, world.home, at(2026, 5, 31, 23, 30))  # 00:30 BST on Monday 1 June

    june = period(db, world.home, "week", dt.date(2026, 6, 1))
    may = period(db, world.home, "week", dt.date(2026, 5, 31))

    assert day_of(june, post) == dt.date(2026, 6, 1)
    assert next(e for d in june.days for e in d.entries if e.post_id == post.id).time == "00:30"
    assert day_of(may, post) is None


@pytest.mark.parametrize(
    ("due", "local_day", "shown"),
    [
        (at(2026, 3, 28, 23, 30), dt.date(2026, 3, 28), "23:30"),  # GMT, the evening before
        (at(2026, 3, 29, 0, 30), dt.date(2026, 3, 29), "00:30"),  # GMT, before the change
        (at(2026, 3, 29, 1, 0), dt.date(2026, 3, 29), "02:00"),  # the first minute of BST
        (at(2026, 3, 29, 22, 30), dt.date(2026, 3, 29), "23:30"),  # BST, last hour of the day
        (at(2026, 3, 29, 23, 30), dt.date(2026, 3, 30), "00:30"),  # 00:30 BST on Monday
        (at(2026, 3, 30, 8, 0), dt.date(2026, 3, 30), "09:00"),
    ],
)
def test_posts_around_the_march_change_sit_on_their_london_day(db, world, due, local_day, shown):
    post = add_post(db, world.home, due)

    found = period(db, world.home, "month", dt.date(2026, 3, 1))

    assert day_of(found, post) == local_day
    assert next(e for d in found.days for e in d.entries if e.post_id == post.id).time == shown


@pytest.mark.parametrize(
    ("due", "local_day", "shown"),
    [
        (at(2026, 10, 24, 22, 30), dt.date(2026, 10, 24), "23:30"),  # BST, Saturday night
        (at(2026, 10, 24, 23, 30), dt.date(2026, 10, 25), "00:30"),  # BST, Sunday
        (at(2026, 10, 25, 0, 30), dt.date(2026, 10, 25), "01:30"),  # 01:30 BST, the first
        (at(2026, 10, 25, 1, 30), dt.date(2026, 10, 25), "01:30"),  # 01:30 GMT, the second
        (at(2026, 10, 25, 23, 30), dt.date(2026, 10, 25), "23:30"),  # GMT, last hour of the day
        (at(2026, 10, 26, 0, 30), dt.date(2026, 10, 26), "00:30"),
    ],
)
def test_posts_around_the_october_change_sit_on_their_london_day(db, world, due, local_day, shown):
    post = add_post(db, world.home, due)

    found = period(db, world.home, "month", dt.date(2026, 10, 1))

    assert day_of(found, post) == local_day
    assert next(e for d in found.days for e in d.entries if e.post_id == post.id).time == shown


def test_a_week_lists_posts_by_time_and_nothing_outside_it(db, world):
    later = add_post(db, world.home, at(2026, 3, 4, 15, 0))
    earlier = add_post(db, world.home, at(2026, 3, 4, 9, 0))
    add_post(db, world.home, at(2026, 3, 9, 0, 0))  # the next Monday, 00:00 GMT

    found = period(db, world.home, "week", dt.date(2026, 3, 2))
    wednesday = next(d for d in found.days if d.date == dt.date(2026, 3, 4))

    assert [e.post_id for e in wednesday.entries] == [earlier.id, later.id]
    assert found.entry_count == 3  # the two, and the world's own post on Monday


def test_month_padding_days_show_their_posts_but_are_not_counted(db, world):
    add_post(db, world.home, at(2026, 2, 24, 9, 0))  # in the grid of March, not in March

    found = period(db, world.home, "month", dt.date(2026, 3, 1))
    padding = next(d for d in found.days if d.date == dt.date(2026, 2, 24))

    assert not padding.in_period and len(padding.entries) == 1
    assert found.entry_count == 1  # only the world's post of 2 March


# --- what is shown for each post ------------------------------------------------------------


@pytest.mark.parametrize(
    ("post_status", "delivery_status", "shown"),
    [
        ("draft", "scheduled", "draft"),
        ("pending_approval", "scheduled", "pending_approval"),
        ("rejected", "scheduled", "rejected"),
        ("approved", "scheduled", "scheduled"),
        ("approved", "publishing", "publishing"),
        ("approved", "published", "published"),
        ("approved", "failed", "failed"),
        ("approved", "missed", "missed"),
        ("approved", "unknown", "unknown"),
        ("approved", "needs_review", "needs_review"),
        ("approved", "cancelled", "cancelled"),
        ("cancelled", "cancelled", "cancelled"),
        ("cancelled", "scheduled", "cancelled"),
        ("cancelled", "published", "published"),  # what went out stays published
        ("draft", "missed", "missed"),
    ],
)
def test_each_delivery_shows_one_state(post_status, delivery_status, shown):
    assert shown_status(post_status, delivery_status) == shown
    assert calendar_view.STATUS_LABELS[shown]


def test_every_state_of_a_post_appears_with_its_label(db, world):
    wanted = {
        ("draft", "scheduled"): "Draft",
        ("pending_approval", "scheduled"): "Awaiting approval",
        ("rejected", "scheduled"): "Rejected",
        ("approved", "published"): "Published",
        ("approved", "failed"): "Failed",
        ("approved", "missed"): "Missed",
        ("cancelled", "cancelled"): "Cancelled",
    }
    for hour, (status, delivery) in enumerate(wanted, start=8):
        add_post(db, world.home, at(2026, 3, 3, hour), status=status, delivery=delivery)

    found = period(db, world.home, "week", dt.date(2026, 3, 3))
    tuesday = next(d for d in found.days if d.date == dt.date(2026, 3, 3))

    assert [e.label for e in tuesday.entries] == list(wanted.values())


def test_each_channel_of_a_post_is_its_own_entry(db, world):
    second = add_channel(db, world.home, "Careers Mastodon")
    post = add_post(db, world.home, at(2026, 3, 3, 9, 0))
    post.deliveries.append(
        Delivery(channel=second, due_at=post.scheduled_for, idempotency_key=uuid.uuid4().hex)
    )
    db.flush()

    found = period(db, world.home, "week", dt.date(2026, 3, 3))
    names = [e.channel_name for d in found.days for e in d.entries if e.post_id == post.id]

    assert sorted(names) == ["Careers Mastodon", "Outbox students"]


def test_a_channel_filter_keeps_that_channel_only(db, world):
    second = add_channel(db, world.home, "Careers Mastodon")
    mine = add_post(db, world.home, at(2026, 3, 3, 9, 0), channel=second)

    found = period(db, world.home, "week", dt.date(2026, 3, 3), channel_id=second.id)

    assert [e.post_id for d in found.days for e in d.entries] == [mine.id]
    assert found.channel == second


def test_another_organisations_channel_is_not_found(db, world):
    with pytest.raises(NotFound):
        period(db, world.home, "week", dt.date(2026, 3, 3), channel_id=world.other.channel.id)


def test_another_organisations_posts_never_appear(db, world):
    theirs = add_post(db, world.other, at(2026, 3, 3, 9, 0))

    for view in ("week", "month"):
        found = period(db, world.home, view, dt.date(2026, 3, 3))
        assert theirs.id not in {e.post_id for d in found.days for e in d.entries}
        assert found.entry_count == 1  # the home world's post only


def test_a_crowded_period_is_cut_and_says_so(db, world):
    for hour in range(9, 13):
        add_post(db, world.home, at(2026, 3, 3, hour))

    found = period(db, world.home, "week", dt.date(2026, 3, 3), limit=3)

    assert found.truncated and found.entry_count == 3


def test_a_period_costs_the_same_queries_however_many_posts(db, world, engine):
    org_id, statements = world.home.org.id, []

    def count(*args):
        statements.append(args[2])

    def queries():
        db.flush()
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            calendar_period(db, org_id, LONDON, "month", dt.date(2026, 3, 1), NOW)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    few = queries()
    for day in range(3, 28):
        channel = add_channel(db, world.home, f"Channel {day}")
        add_post(db, world.home, at(2026, 3, day, 9), channel=channel)
    # One range query for the deliveries with their posts and channels, one for key dates.
    assert queries() == few == 2


# --- key dates ------------------------------------------------------------------------------


def test_key_dates_overlapping_the_week_are_on_each_day_they_cover(db, world):
    home = world.home
    fair = add_key_date(db, home, "Careers fair", dt.date(2026, 3, 4), effect="boost")
    exams = add_key_date(
        db, home, "Exams", dt.date(2026, 2, 20), dt.date(2026, 3, 3), effect="blackout"
    )
    add_key_date(db, home, "Last week", dt.date(2026, 2, 23), dt.date(2026, 3, 1))
    add_key_date(db, world.other, "Their fair", dt.date(2026, 3, 4), effect="boost")

    found = period(db, home, "week", dt.date(2026, 3, 2))
    by_day = {d.date: [k.title for k in d.key_dates] for d in found.days}

    assert [k.id for k in found.key_dates] == [exams.id, fair.id]
    assert by_day[dt.date(2026, 3, 2)] == by_day[dt.date(2026, 3, 3)] == ["Exams"]
    assert by_day[dt.date(2026, 3, 4)] == ["Careers fair"]
    assert [d.date for d in found.days if d.blackout] == [dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
    assert [d.date for d in found.days if d.boost] == [dt.date(2026, 3, 4)]


# --- dates from the address -----------------------------------------------------------------


def test_a_written_date_is_read():
    assert calendar_view.parse_day(" 2026-06-01 ") == dt.date(2026, 6, 1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tomorrow", "is not a date: write it like 2026-06-01"),
        ("20260601", "is not a date: write it like 2026-06-01"),
        ("2026-W23-1", "is not a date: write it like 2026-06-01"),
        ("2026-13-01", "2026-13-01 is not a date in the calendar"),
        ("2026-02-30", "2026-02-30 is not a date in the calendar"),
        ("0001-01-01", "Choose a date between 1970 and 2200"),
        ("9999-12-31", "Choose a date between 1970 and 2200"),
    ],
)
def test_a_bad_date_is_refused_with_the_reason(text, words):
    with pytest.raises(ValueError, match=words):
        calendar_view.parse_day(text)


# --- the iCal feed's events -----------------------------------------------------------------


def test_the_feed_has_planned_and_recently_published_posts_only(db, world):
    home = world.home
    planned = add_post(db, home, NOW + dt.timedelta(days=3))
    waiting = add_post(db, home, NOW + dt.timedelta(days=4), status="pending_approval")
    drafted = add_post(db, home, NOW + dt.timedelta(days=5), status="draft")
    recent = add_post(db, home, NOW - dt.timedelta(days=29), delivery="published")
    add_post(db, home, NOW - dt.timedelta(days=31), delivery="published")  # too long ago
    add_post(db, home, NOW + dt.timedelta(days=366))  # too far ahead
    add_post(db, home, NOW + dt.timedelta(days=6), status="rejected")
    add_post(db, home, NOW + dt.timedelta(days=7), status="cancelled", delivery="cancelled")
    add_post(db, home, NOW - dt.timedelta(days=2), delivery="failed")
    add_post(db, world.other, NOW + dt.timedelta(days=3))

    events = feed_events(db, home.org.id, NOW, lambda p, d: f"https://app.example/posts/{p}")
    world_post = db.scalar(select(Post.id).where(Post.organisation_id == home.org.id))
    expected = [recent.id, world_post, planned.id, waiting.id, drafted.id]  # by time

    assert [e.url for e in events] == [f"https://app.example/posts/{p}" for p in expected]
    statuses = {e.url.rsplit("/", 1)[1]: e.status for e in events}
    assert statuses[str(waiting.id)] == statuses[str(drafted.id)] == "TENTATIVE"
    assert statuses[str(planned.id)] == statuses[str(recent.id)] == "CONFIRMED"


def test_a_feed_event_says_what_where_and_when(db, world):
    post = add_post(db, world.home, at(2026, 3, 10, 9, 0), text="Mock interviews\nbook now")
    delivery = post.deliveries[0]

    found = next(
        e for e in feed_events(db, world.home.org.id, NOW) if e.start_utc == post.scheduled_for
    )

    assert found.uid == f"delivery-{delivery.id}@campaign"
    assert found.summary == "Scheduled on Outbox students: Mock interviews book now"
    assert found.description.startswith("Mock interviews\nbook now\n\nState: Scheduled")
    assert found.duration == dt.timedelta(minutes=15) and found.url is None


def test_the_feed_is_bounded_in_count(db, world):
    for day in range(1, 6):
        add_post(db, world.home, NOW + dt.timedelta(days=day))

    assert len(feed_events(db, world.home.org.id, NOW, limit=3)) == 3


def test_a_secret_finds_its_organisation_only(db, world):
    secret = world.home.org.calendar_secret

    assert calendar_subscription.organisation_for_secret(db, secret) == world.home.org
    assert calendar_subscription.organisation_for_secret(db, secret + "x") is None
    assert calendar_subscription.organisation_for_secret(db, secret[:-1]) is None
    assert calendar_subscription.organisation_for_secret(db, "") is None


# --- the feed's secret ----------------------------------------------------------------------


def admin(part, role="admin"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def test_regenerating_replaces_the_secret_and_audits_without_it(db, world):
    old = world.home.org.calendar_secret

    new = calendar_subscription.regenerate_feed_secret(db, admin(world.home), NOW)

    assert new != old and world.home.org.calendar_secret == new and len(new) >= 43
    assert calendar_subscription.organisation_for_secret(db, old) is None
    audit = db.scalar(select(AuditEvent).where(AuditEvent.action == "calendar_feed.regenerated"))
    assert (audit.subject_type, audit.subject_id) == ("organisation", world.home.org.id)
    assert new not in str(audit.detail) and old not in str(audit.detail)


def test_turning_the_feed_off_then_creating_it(db, world):
    calendar_subscription.turn_off_feed(db, admin(world.home), NOW)
    assert world.home.org.calendar_secret is None
    with pytest.raises(ServiceError, match="already off"):
        calendar_subscription.turn_off_feed(db, admin(world.home), NOW)

    calendar_subscription.regenerate_feed_secret(db, admin(world.home), NOW)

    actions = db.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.action.like("calendar_feed.%"))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["calendar_feed.turned_off", "calendar_feed.created"]
    assert world.home.org.calendar_secret


@pytest.mark.parametrize("role", ["staff", "manager"])
def test_only_an_admin_changes_the_feed(db, world, role):
    old = world.home.org.calendar_secret
    with pytest.raises(PermissionDenied):
        calendar_subscription.regenerate_feed_secret(db, admin(world.home, role), NOW)
    with pytest.raises(PermissionDenied):
        calendar_subscription.turn_off_feed(db, admin(world.home, role), NOW)
    assert world.home.org.calendar_secret == old
