"""Queue slots: managers keep each channel's weekly times, inside their own organisation."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from campaign.models import AuditEvent, Channel, QueueSlot
from campaign.services import NotFound, PermissionDenied, ServiceError, queue_slots, scheduling
from campaign.services.audit import Actor
from campaign.services.local_time import Slot
from tests.conftest import NOW


def actor(part, role="manager"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def slots_of(db, channel):
    return [(s.weekday, s.at.strftime("%H:%M")) for s in queue_slots.list_slots(
        db, channel.organisation_id, channel.id
    )]  # fmt: skip


def audit(db, action):
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_managers_and_admins_add_slots_which_are_audited(db, world, role):
    channel = world.home.channel
    queue_slots.add_slot(db, actor(world.home, role), channel.id, 0, "09:30", NOW)
    queue_slots.add_slot(db, actor(world.home, role), channel.id, "Thursday", "13:05", NOW)
    assert slots_of(db, channel) == [(0, "09:30"), (3, "13:05")]
    (first, second) = audit(db, "queue_slot.added")
    assert (first.subject_type, first.subject_id) == ("channel", channel.id)
    assert first.detail == {"weekday": 0, "at": "09:30"}
    assert second.actor_label == getattr(world.home, role).email


def test_staff_cannot_change_slots(db, world):
    channel = world.home.channel
    with pytest.raises(PermissionDenied, match="manager or an admin"):
        queue_slots.add_slot(db, actor(world.home, "staff"), channel.id, 0, "09:30", NOW)
    slot = queue_slots.add_slot(db, actor(world.home), channel.id, 0, "09:30", NOW)
    with pytest.raises(PermissionDenied):
        queue_slots.remove_slot(db, actor(world.home, "staff"), channel.id, slot.id, NOW)
    with pytest.raises(PermissionDenied):
        queue_slots.replace_slots(db, actor(world.home, "staff"), channel.id, [], NOW)
    assert slots_of(db, channel) == [(0, "09:30")]


def test_a_duplicate_slot_is_refused_with_a_message(db, world):
    channel = world.home.channel
    queue_slots.add_slot(db, actor(world.home), channel.id, 2, "12:00", NOW)
    with pytest.raises(
        ServiceError, match="Outbox students already has a slot on Wednesday at 12:00"
    ):
        queue_slots.add_slot(db, actor(world.home), channel.id, "wed", "12:00", NOW)
    assert slots_of(db, channel) == [(2, "12:00")]


@pytest.mark.parametrize(
    ("weekday", "at", "message"),
    [
        (7, "09:00", "'7' is not a weekday"),
        ("Someday", "09:00", "'Someday' is not a weekday"),
        ("", "09:00", "'' is not a weekday"),
        (0, "9am", "'9am' is not a time of day; write it like 09:30"),
        (0, "24:00", "24:00 is not a time of day"),
        (0, "09:60", "09:60 is not a time of day"),
        (0, "", "'' is not a time of day"),
        (0, "09:30:15", "'09:30:15' is not a time of day"),
    ],
)
def test_bad_slots_are_refused_with_the_reason(db, world, weekday, at, message):
    with pytest.raises(ServiceError, match=re.escape(message)):
        queue_slots.add_slot(db, actor(world.home), world.home.channel.id, weekday, at, NOW)
    assert slots_of(db, world.home.channel) == []


def test_times_from_a_time_input_are_accepted(db, world):
    # Browsers send "HH:MM", or "HH:MM:00" when seconds are shown.
    queue_slots.add_slot(db, actor(world.home), world.home.channel.id, 1, "07:45:00", NOW)
    queue_slots.add_slot(db, actor(world.home), world.home.channel.id, 1, "8:05", NOW)
    assert slots_of(db, world.home.channel) == [(1, "07:45"), (1, "08:05")]


def test_another_organisations_channel_is_not_found(db, world):
    theirs = world.other.channel
    mine = actor(world.home)
    with pytest.raises(NotFound):
        queue_slots.list_slots(db, world.home.org.id, theirs.id)
    with pytest.raises(NotFound):
        queue_slots.add_slot(db, mine, theirs.id, 0, "09:00", NOW)
    with pytest.raises(NotFound):
        queue_slots.replace_slots(db, mine, theirs.id, [(0, "09:00")], NOW)
    slot = queue_slots.add_slot(db, actor(world.other), theirs.id, 0, "09:00", NOW)
    with pytest.raises(NotFound):
        queue_slots.remove_slot(db, mine, theirs.id, slot.id, NOW)
    # Nor through one of this organisation's channels.
    with pytest.raises(NotFound):
        queue_slots.remove_slot(db, mine, world.home.channel.id, slot.id, NOW)
    assert slots_of(db, theirs) == [(0, "09:00")]


def test_removing_a_slot_is_audited(db, world):
    channel = world.home.channel
    slot = queue_slots.add_slot(db, actor(world.home), channel.id, 4, "16:00", NOW)
    queue_slots.remove_slot(db, actor(world.home), channel.id, slot.id, NOW)
    assert slots_of(db, channel) == []
    (event,) = audit(db, "queue_slot.removed")
    assert event.detail == {"weekday": 4, "at": "16:00"}


def test_replacing_keeps_the_slots_that_stay_and_records_before_and_after(db, world):
    channel = world.home.channel
    kept = queue_slots.add_slot(db, actor(world.home), channel.id, 0, "09:30", NOW)
    queue_slots.add_slot(db, actor(world.home), channel.id, 2, "12:00", NOW)
    result = queue_slots.replace_slots(
        db, actor(world.home), channel.id, [(4, "16:00"), ("Monday", "09:30"), (2, "12:30")], NOW
    )
    assert [(s.weekday, s.at) for s in result] == [
        (0, dt.time(9, 30)),
        (2, dt.time(12, 30)),
        (4, dt.time(16, 0)),
    ]
    assert result[0].id == kept.id
    (event,) = audit(db, "queue_slots.replaced")
    assert event.detail == {
        "before": ["Mon 09:30", "Wed 12:00"],
        "after": ["Mon 09:30", "Wed 12:30", "Fri 16:00"],
    }


def test_replacing_with_a_removed_slots_time_reuses_it_without_a_clash(db, world):
    channel = world.home.channel
    queue_slots.add_slot(db, actor(world.home), channel.id, 0, "09:30", NOW)
    queue_slots.replace_slots(db, actor(world.home), channel.id, [], NOW)
    queue_slots.replace_slots(db, actor(world.home), channel.id, [(0, "09:30")], NOW)
    assert slots_of(db, channel) == [(0, "09:30")]


def test_replacing_with_the_same_slots_is_not_audited(db, world):
    channel = world.home.channel
    queue_slots.add_slot(db, actor(world.home), channel.id, 0, "09:30", NOW)
    queue_slots.replace_slots(db, actor(world.home), channel.id, [(0, "09:30")], NOW)
    assert audit(db, "queue_slots.replaced") == []


def test_replacing_refuses_a_slot_listed_twice_and_changes_nothing(db, world):
    channel = world.home.channel
    queue_slots.add_slot(db, actor(world.home), channel.id, 0, "09:30", NOW)
    with pytest.raises(ServiceError, match="Tuesday at 10:00 is listed twice"):
        queue_slots.replace_slots(
            db, actor(world.home), channel.id, [(1, "10:00"), ("tue", "10:00:00")], NOW
        )
    assert slots_of(db, channel) == [(0, "09:30")]


def test_a_channel_takes_at_most_a_hundred_slots(db, world):
    channel = world.home.channel
    wanted = [(day, f"{hour:02d}:{minute:02d}") for day in range(7) for hour in range(8)
              for minute in (0, 30)][:100]  # fmt: skip
    queue_slots.replace_slots(db, actor(world.home), channel.id, wanted, NOW)
    with pytest.raises(ServiceError, match="at most 100 queue slots"):
        queue_slots.add_slot(db, actor(world.home), channel.id, 6, "23:00", NOW)
    with pytest.raises(ServiceError, match="at most 100 queue slots"):
        queue_slots.replace_slots(db, actor(world.home), channel.id, [*wanted, (6, "23:00")], NOW)


def test_listing_by_channel_covers_every_channel_of_the_organisation_only(db, world):
    second = Channel(
        organisation_id=world.home.org.id,
        kind="manual",
        display_name="Manual graduates",
        audience="graduates",
        created_at=NOW,
    )
    db.add(second)
    db.flush()
    queue_slots.add_slot(db, actor(world.home), second.id, 1, "10:00", NOW)
    queue_slots.add_slot(db, actor(world.other), world.other.channel.id, 1, "11:00", NOW)
    listed = queue_slots.list_by_channel(db, world.home.org.id)
    assert [(c.display_name, [s.at for s in slots]) for c, slots in listed] == [
        ("Outbox students", []),
        ("Manual graduates", [dt.time(10, 0)]),
    ]


def test_added_slots_are_what_add_to_queue_uses(db, world):
    channel = world.home.channel
    queue_slots.add_slot(db, actor(world.home), channel.id, 1, "10:00", NOW)  # Tuesdays
    found = scheduling.next_queue_time(db, channel, "Europe/London", NOW)
    assert found.utc == dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)


def test_the_next_clock_change_is_found_both_ways():
    spring = queue_slots.next_clock_change("Europe/London", NOW)
    assert spring == queue_slots.ClockChange(dt.date(2026, 3, 29), True, dt.timedelta(hours=1))
    autumn = queue_slots.next_clock_change("Europe/London", dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
    assert autumn == queue_slots.ClockChange(dt.date(2026, 10, 25), False, dt.timedelta(hours=1))
    assert queue_slots.next_clock_change("Asia/Kolkata", NOW) is None


def test_what_happens_to_a_slot_on_the_change_days_is_said_in_plain_words():
    spring = queue_slots.ClockChange(dt.date(2026, 3, 29), True, dt.timedelta(hours=1))
    autumn = queue_slots.ClockChange(dt.date(2026, 10, 25), False, dt.timedelta(hours=1))
    sunday_0130 = Slot(6, dt.time(1, 30))
    moved = queue_slots.on_change_day(sunday_0130, spring, "Europe/London")
    assert moved is not None and "it will be posted at 02:30 BST" in moved
    once = queue_slots.on_change_day(sunday_0130, autumn, "Europe/London")
    assert once is not None and "happens twice" in once and "the first time" in once
    assert queue_slots.on_change_day(Slot(6, dt.time(9, 0)), spring, "Europe/London") is None
    assert queue_slots.on_change_day(Slot(0, dt.time(1, 30)), spring, "Europe/London") is None


def test_upcoming_lists_the_next_slot_times_with_dst_notes(db, world):
    channel = world.home.channel
    queue_slots.add_slot(db, actor(world.home), channel.id, 6, "01:30", NOW)  # Sundays
    after = dt.datetime(2026, 3, 27, tzinfo=dt.UTC)
    (first, second) = queue_slots.upcoming(db, channel.id, "Europe/London", after)
    # 29 March: 01:30 does not exist in London, so it happens at 02:30 BST (01:30 UTC).
    assert first.utc == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC) and first.note
    assert second.utc == dt.datetime(2026, 4, 5, 0, 30, tzinfo=dt.UTC) and second.note is None


def test_a_slot_row_stores_a_wall_time(db, world):
    slot = queue_slots.add_slot(db, actor(world.home), world.home.channel.id, 5, "18:15", NOW)
    db.expire_all()
    row = db.get(QueueSlot, slot.id)
    assert (row.weekday, row.at, row.at.tzinfo) == (5, dt.time(18, 15), None)
