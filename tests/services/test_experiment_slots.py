"""Slot assignment: balanced per channel and arm, spread over places in the day, reproducible."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from campaign.services.experiment_slots import SlotTime, assign

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def slots_for(channels, per_channel, per_day=2):
    found = []
    for channel in channels:
        for i in range(per_channel):
            day, place = divmod(i, per_day)
            found.append(SlotTime(channel, START + dt.timedelta(days=day, hours=8 * place)))
    return found


@pytest.mark.parametrize(
    ("arms", "channels", "per_channel"),
    [(2, [1], 8), (3, [1, 2], 9), (3, [4, 7], 10), (4, [1, 2, 3], 6), (6, [5], 13), (2, [9], 5)],
)
def test_each_arm_gets_the_same_posts_per_channel_within_one(arms, channels, per_channel):
    slots = slots_for(channels, per_channel)
    chosen = assign(slots, arms, seed=12345)
    for channel in channels:
        counts = Counter(a for s, a in zip(slots, chosen, strict=True) if s.channel_id == channel)
        per_arm = [counts.get(a, 0) for a in range(arms)]
        assert max(per_arm) - min(per_arm) <= 1, (channel, per_arm)
        if per_channel % arms == 0:
            assert len(set(per_arm)) == 1
    overall = Counter(chosen)
    totals = [overall.get(a, 0) for a in range(arms)]
    assert max(totals) - min(totals) <= 1


def test_leftover_slots_go_to_different_arms_on_each_channel():
    # 3 channels of 7 slots with 2 arms: each channel has one leftover, and the arm short so far
    # across channels gets it, so the totals stay within one.
    slots = slots_for([1, 2, 3], 7)
    chosen = assign(slots, 2, seed=99)
    totals = Counter(chosen)
    assert abs(totals[0] - totals[1]) == 1


def test_the_same_seed_and_slots_give_the_same_assignment_whatever_their_order():
    slots = slots_for([1, 2], 12)
    first = assign(slots, 3, seed=2026)
    reversed_slots = list(reversed(slots))
    again = assign(reversed_slots, 3, seed=2026)
    assert dict(zip(slots, first, strict=True)) == dict(zip(reversed_slots, again, strict=True))


def test_different_seeds_give_different_assignments():
    slots = slots_for([1], 12)
    draws = {tuple(assign(slots, 3, seed=seed)) for seed in range(20)}
    assert len(draws) > 5


def test_within_a_cycle_each_arm_takes_each_place_in_the_block_once():
    # Latin square: over k blocks of k slots, arm a is at every block position exactly once, so
    # with k slots a day no arm always gets the morning.
    arms = 3
    slots = slots_for([1], 3 * arms * arms, per_day=arms)
    chosen = assign(slots, arms, seed=7)
    for cycle in range(3):
        places = Counter()
        for block in range(arms):
            start = (cycle * arms + block) * arms
            for place, arm in enumerate(chosen[start : start + arms]):
                places[(arm, place)] += 1
        assert all(places[(a, p)] == 1 for a in range(arms) for p in range(arms))


def test_consecutive_days_do_not_repeat_one_order_for_two_arms():
    slots = slots_for([1], 40, per_day=2)
    chosen = assign(slots, 2, seed=11)
    days = [tuple(chosen[i : i + 2]) for i in range(0, 40, 2)]
    assert set(days) == {(0, 1), (1, 0)}
    assert Counter(days)[(0, 1)] == Counter(days)[(1, 0)]
