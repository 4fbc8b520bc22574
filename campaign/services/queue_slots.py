"""Each channel's weekly queue slots: wall times in the organisation's zone, kept by managers.

"Add to queue" (scheduling.next_queue_time) takes a channel's next free slot. The slots are wall
times, so a slot keeps its local time across a DST change; local_time.resolve_local says what
happens on the change days (once at the first 01:30 in autumn; moved forward out of the spring
gap).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.models import Channel, QueueSlot, Role
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services.audit import Actor, record
from campaign.services.local_time import Resolved, Slot, as_zone, resolve_local, slot_occurrences
from campaign.services.scheduling import org_channel

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_SLOTS = 100  # per channel and week: more than anyone posts, few enough to show on one page
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::00)?")


@dataclass(frozen=True)
class ClockChange:
    """The next day the organisation's clocks change, and which way."""

    day: dt.date
    forward: bool
    by: dt.timedelta


def list_slots(session: Session, organisation_id: int, channel_id: int) -> list[QueueSlot]:
    """A channel's slots by weekday and time; NotFound for another organisation's channel."""
    org_channel(session, organisation_id, channel_id)
    return _slots(session, channel_id)


def list_by_channel(
    session: Session, organisation_id: int
) -> list[tuple[Channel, list[QueueSlot]]]:
    """Every channel of the organisation with its slots, channels in the order they were added."""
    channels = list(
        session.scalars(
            select(Channel).where(Channel.organisation_id == organisation_id).order_by(Channel.id)
        )
    )
    slots: dict[int, list[QueueSlot]] = {c.id: [] for c in channels}
    if channels:
        for slot in session.scalars(
            select(QueueSlot)
            .where(QueueSlot.channel_id.in_(list(slots)))
            .order_by(QueueSlot.weekday, QueueSlot.at, QueueSlot.id)
        ):
            slots[slot.channel_id].append(slot)
    return [(c, slots[c.id]) for c in channels]


def add_slot(
    session: Session,
    actor: Actor,
    channel_id: int,
    weekday: int | str,
    at: str,
    now: dt.datetime,
) -> QueueSlot:
    """Add a weekly slot (managers and admins); the same weekday and time twice is refused."""
    _require_manager(actor)
    channel = org_channel(session, actor.organisation_id, channel_id)
    wanted = parse_slot(weekday, at)
    existing = _slots(session, channel.id)
    if any((s.weekday, s.at) == (wanted.weekday, wanted.at) for s in existing):
        raise ServiceError(f"{channel.display_name} already has a slot on {describe(wanted)}.")
    if len(existing) >= MAX_SLOTS:
        raise ServiceError(f"A channel can have at most {MAX_SLOTS} queue slots a week.")
    slot = QueueSlot(channel_id=channel.id, weekday=wanted.weekday, at=wanted.at, created_at=now)
    session.add(slot)
    session.flush()
    record(
        session, actor, "queue_slot.added", "channel", channel.id, now,
        weekday=wanted.weekday, at=_hhmm(wanted.at),
    )  # fmt: skip
    return slot


def remove_slot(
    session: Session, actor: Actor, channel_id: int, slot_id: int, now: dt.datetime
) -> None:
    """Remove one of a channel's slots (managers and admins). Posts already given that time keep
    it: removing a slot changes where new posts go, not what is planned."""
    _require_manager(actor)
    channel = org_channel(session, actor.organisation_id, channel_id)
    slot = session.get(QueueSlot, slot_id)
    if slot is None or slot.channel_id != channel.id:
        raise NotFound("no such queue slot")
    gone = Slot(slot.weekday, slot.at)
    session.delete(slot)
    session.flush()
    record(
        session, actor, "queue_slot.removed", "channel", channel.id, now,
        weekday=gone.weekday, at=_hhmm(gone.at),
    )  # fmt: skip


def replace_slots(
    session: Session,
    actor: Actor,
    channel_id: int,
    wanted: Sequence[tuple[int | str, str]],
    now: dt.datetime,
) -> list[QueueSlot]:
    """Make a channel's slots exactly `wanted` (managers and admins); a slot listed twice is
    refused. Slots that stay are kept as they are, so nothing else sees them disappear."""
    _require_manager(actor)
    channel = org_channel(session, actor.organisation_id, channel_id)
    parsed: list[Slot] = []
    for weekday, at in wanted:
        slot = parse_slot(weekday, at)
        if slot in parsed:
            raise ServiceError(f"{describe(slot)} is listed twice; list each slot once.")
        parsed.append(slot)
    if len(parsed) > MAX_SLOTS:
        raise ServiceError(f"A channel can have at most {MAX_SLOTS} queue slots a week.")
    existing = _slots(session, channel.id)
    before = sorted((Slot(s.weekday, s.at) for s in existing), key=_order)
    keep = set(parsed)
    for old in existing:
        if Slot(old.weekday, old.at) not in keep:
            session.delete(old)
    # Deletes first: a new row may reuse a removed one's (weekday, time) under the unique key.
    session.flush()
    have = {Slot(s.weekday, s.at) for s in existing}
    for slot in parsed:
        if slot not in have:
            session.add(
                QueueSlot(channel_id=channel.id, weekday=slot.weekday, at=slot.at, created_at=now)
            )
    session.flush()
    after = sorted(parsed, key=_order)
    if before != after:
        record(
            session, actor, "queue_slots.replaced", "channel", channel.id, now,
            before=[_label(s) for s in before], after=[_label(s) for s in after],
        )  # fmt: skip
    return _slots(session, channel.id)


def parse_slot(weekday: int | str, at: str) -> Slot:
    """A Slot from a weekday (0 = Monday to 6 = Sunday, or its name) and "HH:MM"."""
    day = _weekday(weekday)
    match = _TIME.fullmatch(at.strip())
    if match is None:
        raise ServiceError(f"{at.strip()[:20]!r} is not a time of day; write it like 09:30.")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ServiceError(f"{at.strip()} is not a time of day; use 00:00 to 23:59.")
    return Slot(day, dt.time(hour, minute))


def describe(slot: Slot | QueueSlot) -> str:
    """ "Monday at 09:30"."""
    return f"{DAY_NAMES[slot.weekday]} at {_hhmm(slot.at)}"


def next_clock_change(zone: str, after: dt.datetime, within_days: int = 400) -> ClockChange | None:
    """The next local day on which the zone's UTC offset changes, or None if it does not."""
    tz = as_zone(zone)
    day = after.astimezone(tz).date()
    offset = _offset_at_noon(day, tz)
    for _ in range(within_days):
        following = day + dt.timedelta(days=1)
        next_offset = _offset_at_noon(following, tz)
        if next_offset != offset:
            # Changes happen in the small hours: the day after the last one with the old offset.
            return ClockChange(following, next_offset > offset, abs(next_offset - offset))
        day, offset = following, next_offset
    return None


def upcoming(
    session: Session, channel_id: int, zone: str, after: dt.datetime, days: int = 14
) -> list[Resolved]:
    """The channel's slot times over the next `days`, with notes where DST moves one."""
    slots = [Slot(s.weekday, s.at) for s in _slots(session, channel_id)]
    return slot_occurrences(slots, zone, after, after + dt.timedelta(days=days))


def on_change_day(slot: Slot | QueueSlot, change: ClockChange, zone: str) -> str | None:
    """What happens to this slot on the clock-change day, in plain words, if anything."""
    if slot.weekday != change.day.weekday():
        return None
    return resolve_local(change.day, slot.at, zone).note


def _slots(session: Session, channel_id: int) -> list[QueueSlot]:
    return list(
        session.scalars(
            select(QueueSlot)
            .where(QueueSlot.channel_id == channel_id)
            .order_by(QueueSlot.weekday, QueueSlot.at, QueueSlot.id)
        )
    )


def _weekday(value: int | str) -> int:
    text = str(value).strip()
    if text.isdigit() and 0 <= int(text) <= 6:
        return int(text)
    for number, name in enumerate(DAY_NAMES):
        if text.lower() in (name.lower(), name[:3].lower()):
            return number
    raise ServiceError(f"{text[:20]!r} is not a weekday; pick Monday to Sunday.")


def _require_manager(actor: Actor) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(Role.MANAGER)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied("Only a manager or an admin can change queue slots.")


def _offset_at_noon(day: dt.date, tz: dt.tzinfo) -> dt.timedelta:
    return dt.datetime.combine(day, dt.time(12), tz).utcoffset() or dt.timedelta(0)


def _hhmm(at: dt.time) -> str:
    return at.strftime("%H:%M")


def _order(slot: Slot) -> tuple[int, dt.time]:
    return slot.weekday, slot.at


def _label(slot: Slot) -> str:
    return f"{DAY_NAMES[slot.weekday][:3]} {_hhmm(slot.at)}"
