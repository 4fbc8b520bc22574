"""Choosing an alert rule's template variant: rotation until measured, then Thompson sampling."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from campaign.services.alert_choice import TemplateResult, choose_template


@dataclass(frozen=True)
class T:
    id: int


A, B = T(1), T(2)


def test_until_every_variant_is_measured_the_rule_rotates_by_fewest_alerts():
    measured_one = {1: TemplateResult(clicks=40, impressions=1000)}
    assert choose_template([A, B], {1: 3, 2: 1}, "s", measured_one) is B
    assert choose_template([A, B], {1: 1, 2: 3}, "s", {}) is A


def test_once_measured_the_better_variant_gets_most_alerts_and_the_other_keeps_its_floor():
    results = {1: TemplateResult(60, 2000), 2: TemplateResult(10, 2000)}
    picks = Counter(
        choose_template([A, B], {1: 9, 2: 1}, f"seed{n}", results).id for n in range(400)
    )
    # P(A best) is about 1, so A gets about 1 - floor = 90% of alerts; B keeps about 10%.
    assert 320 <= picks[1] <= 390
    assert picks[2] >= 10


def test_the_choice_is_reproducible_from_its_seed_and_ignores_the_order_of_choices():
    results = {1: TemplateResult(20, 1000), 2: TemplateResult(22, 1000)}
    for n in range(20):
        seed = f"7:{n}"
        assert choose_template([A, B], {}, seed, results) is choose_template(
            [B, A], {}, seed, results
        )
