"""Which arm goes out in which slot: balanced, randomised, reproducible from a stored seed.

Per channel, the slots are taken in time order and cut into blocks of k (k = the number of arms).
Each block holds every arm once, so every arm gets the same number of posts per channel (±1 when
the slots do not divide by k). Within a cycle of k blocks the arms' orders are the k rotations of
a seeded permutation, themselves in a seeded order: a Latin square, so each arm takes each place
in a block (the morning slot, the evening slot, the first or second day) once per cycle and time
of day cannot decide the winner. The leftover slots of a channel go to the arms with the fewest
posts so far across channels, ties broken by the seed. The same seed and the same slots always
give the same assignment.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from campaign.models import Channel
from campaign.services import ServiceError
from campaign.services.local_time import as_zone, format_local, parse_local, slot_occurrences
from campaign.services.posts import MAX_AHEAD
from campaign.services.scheduling import channel_slots, key_dates_between, taken_times

# More slots than this in one experiment is a programme, not a test (and a page too long to read).
MAX_SLOTS = 300
# How far ahead queue slots are searched for an experiment's posts.
QUEUE_SEARCH_DAYS = 366
SEED_BITS = 62


@dataclass(frozen=True)
class SlotTime:
    """One channel at one instant (aware UTC)."""

    channel_id: int
    at: dt.datetime


def new_seed() -> int:
    """A fresh random seed that fits a signed 64-bit column."""
    return secrets.randbits(SEED_BITS)


def assign(slots: Sequence[SlotTime], arms: int, seed: int) -> list[int]:
    """The arm index (0 = control) for each slot, in the order given."""
    if arms < 1:
        raise ValueError("an assignment needs at least one arm")
    by_channel: dict[int, list[int]] = {}
    for index, slot in sorted(enumerate(slots), key=lambda p: (p[1].channel_id, p[1].at, p[0])):
        by_channel.setdefault(slot.channel_id, []).append(index)
    result = [0] * len(slots)
    totals = [0] * arms
    for number, channel_id in enumerate(sorted(by_channel)):
        # Reproducibility is the point here, not secrecy (a str seed is hashed with SHA-512).
        rng = random.Random(f"{seed}:{number}")  # noqa: S311
        indices = by_channel[channel_id]
        base = rng.sample(range(arms), arms)
        full = len(indices) // arms
        order: list[int] = []
        for start in range(0, full, arms):
            rotations = rng.sample(range(arms), arms)
            for shift in rotations[: min(arms, full - start)]:
                order.extend(base[shift:] + base[:shift])
        leftover = len(indices) - len(order)
        if leftover:
            ranked = sorted(range(arms), key=lambda a: (totals[a] + order.count(a), rng.random()))
            extra = ranked[:leftover]
            rng.shuffle(extra)
            order.extend(extra)
        for index, arm in zip(indices, order, strict=True):
            result[index] = arm
            totals[arm] += 1
    return result


def queue_times(
    session: Session,
    channel: Channel,
    zone: str,
    after: dt.datetime,
    count: int,
    also_taken: set[dt.datetime],
) -> list[dt.datetime]:
    """The channel's next `count` free queue slots after `after`; ServiceError if too few."""
    slots = channel_slots(session, channel.id)
    if not slots:
        raise ServiceError(
            f"{channel.display_name} has no queue slots yet: add some under Settings → Queue, "
            "or list the times."
        )
    taken = taken_times(session, channel.id) | also_taken
    window = slot_occurrences(slots, zone, after, after + dt.timedelta(days=QUEUE_SEARCH_DAYS))
    candidates = [r for r in window if r.utc > after and r.utc not in taken]
    blackouts = [
        k
        for k in key_dates_between(
            session,
            channel.organisation_id,
            after.astimezone(as_zone(zone)).date(),
            (after + dt.timedelta(days=QUEUE_SEARCH_DAYS + 1)).astimezone(as_zone(zone)).date(),
        )
        if k.effect == "blackout"
    ]
    # Slots inside a blackout key date are passed over, as "add to queue" does.
    free = [r.utc for r in candidates if not any(k.covers(r.local.date()) for k in blackouts)]
    free = free[:count]
    if len(free) < count:
        raise ServiceError(
            f"{channel.display_name} has only {len(free)} free queue slots in the next "
            f"{QUEUE_SEARCH_DAYS} days and the plan needs {count}: add queue slots or list times."
        )
    return free


def listed_times(texts: Sequence[str], zone: str, now: dt.datetime) -> list[dt.datetime]:
    """Times a person listed (wall times in the zone, or ISO 8601), in order, each once."""
    found: list[dt.datetime] = []
    for text in texts:
        if not text.strip():
            continue
        try:
            when = parse_local(text, zone).utc
        except (ValueError, OverflowError) as exc:
            raise ServiceError(str(exc)) from None
        if when <= now:
            raise ServiceError(
                f"{format_local(when, zone)} is in the past; list times from now on."
            )
        if when > now + MAX_AHEAD:
            raise ServiceError(f"{text.strip()} is more than five years ahead; list nearer times.")
        if when in found:
            raise ServiceError(f"{format_local(when, zone)} is listed twice; list each time once.")
        found.append(when)
    if not found:
        raise ServiceError("List at least one time, one per line, like 2026-03-10 09:30.")
    return sorted(found)


def check_count(total: int, arms: int) -> None:
    """Refuse too few slots to compare anything, or more than a page can show."""
    if total < 2 * arms:
        raise ServiceError(
            f"{total} slots are too few for {arms} arms: each arm needs at least two posts, so "
            f"list at least {2 * arms} slots."
        )
    if total > MAX_SLOTS:
        raise ServiceError(
            f"That makes {total} posts; an experiment can have at most {MAX_SLOTS}. Choose fewer "
            "channels or times, or plan for a larger lift."
        )
