"""Verdict states and the summary sentence."""

from __future__ import annotations

import re

import pytest

from campaign.analysis import compare_from_json
from campaign.analysis.sequential import TAU_RELATIVE, sequential_sample_size


def _two(xc: int, nc: int, xt: int, nt: int) -> dict:
    return compare_from_json(
        {
            "arms": [
                {"name": "bare link", "clicks": xc, "impressions": nc},
                {"name": "context", "clicks": xt, "impressions": nt},
            ]
        }
    )


def test_a_clear_lift_is_better_and_said_plainly() -> None:
    out = _two(600, 20_000, 900, 20_000)
    assert out["verdict"] == "better" and out["comparisons"][0]["verdict"] == "better"
    assert out["summary"].startswith("'context' got more clicks than 'bare link'")
    assert "however often" in out["summary"]


def test_a_clear_drop_is_worse() -> None:
    out = _two(900, 20_000, 600, 20_000)
    assert out["verdict"] == "worse"
    assert "'context' got fewer clicks" in out["summary"]


def test_few_clicks_are_not_enough_data_even_with_many_impressions() -> None:
    out = _two(4, 100_000, 7, 100_000)
    assert out["verdict"] == "not_enough_data"
    assert out["summary"].startswith("Too early to tell")


def test_undecided_summary_says_how_many_more_impressions_per_arm() -> None:
    out = _two(30, 1_000, 36, 1_000)
    assert out["verdict"] == "not_enough_data"
    more = int(
        re.search(r"about ([\d,]+) more impressions per arm", out["summary"])[1].replace(",", "")
    )
    assert more == out["sequential_impressions_per_arm"] - 1_000
    assert out["sequential_impressions_per_arm"] == sequential_sample_size(0.03, 0.2)
    assert "+20%" in out["summary"]


def test_no_clear_difference_starts_exactly_at_the_size_for_a_50_percent_lift() -> None:
    n = 5_000
    crossing = next(c for c in range(10, 1_000) if n >= sequential_sample_size(c / n, 0.5))
    seen = set()
    for clicks in range(crossing - 3, crossing + 3):
        # Equal arms: the sequential rule never rejects, so only the data gate decides.
        out = _two(clicks, n, clicks, n)
        enough = n >= sequential_sample_size(clicks / n, 0.5)
        assert out["verdict"] == ("no_clear_difference" if enough else "not_enough_data")
        seen.add(out["verdict"])
    assert seen == {"no_clear_difference", "not_enough_data"}
    assert _two(crossing, n, crossing, n)["summary"].startswith("No clear difference")


def test_three_arms_one_better_one_worse_is_better_overall_and_names_both() -> None:
    out = compare_from_json(
        {
            "arms": [
                {"name": "bare", "clicks": 600, "impressions": 20_000},
                {"name": "question", "clicks": 350, "impressions": 20_000},
                {"name": "context", "clicks": 950, "impressions": 20_000},
            ]
        }
    )
    assert [c["verdict"] for c in out["comparisons"]] == ["worse", "better"]
    assert out["verdict"] == "better"
    assert "'context'" in out["summary"] and "'question' did worse" in out["summary"]


def test_sequential_p_values_are_holm_adjusted_across_arms() -> None:
    arms = [{"name": "bare", "clicks": 600, "impressions": 20_000}] + [
        {"name": f"v{i}", "clicks": 600 + 40 * i, "impressions": 20_000} for i in range(1, 4)
    ]
    out = compare_from_json({"arms": arms})
    raw = [c["p_value_sequential"] for c in out["comparisons"]]
    adjusted = [c["p_value_sequential_holm"] for c in out["comparisons"]]
    order = sorted(range(3), key=lambda i: raw[i])
    expected = [0.0] * 3
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[i]))
        expected[i] = running
    assert adjusted == pytest.approx(expected)


def test_an_arm_without_impressions_is_not_enough_data_and_blank() -> None:
    out = _two(5, 200, 0, 0)
    assert out["verdict"] == "not_enough_data"
    assert out["arms"][1]["rate"] is None and out["arms"][1]["wilson_95"] == [0.0, 1.0]
    c = out["comparisons"][0]
    assert c["diff"] is None and c["p_value"] is None and c["relative_lift"] is None
    assert "no impressions yet" in out["summary"]


def test_method_notes_name_the_sequential_rule_and_tau() -> None:
    out = _two(3, 100, 4, 100)
    assert f"tau = {TAU_RELATIVE}" in out["method"]["verdict"]


def test_fisher_p_value_is_given_only_for_small_tables_with_small_cells() -> None:
    small = _two(1, 60, 4, 55)["comparisons"][0]
    assert small["fisher_p_value"] is not None and 0 < small["fisher_p_value"] <= 1
    assert _two(600, 20_000, 650, 20_000)["comparisons"][0]["fisher_p_value"] is None
    huge = _two(0, 10**12, 3, 10**12)
    assert huge["comparisons"][0]["fisher_p_value"] is None
    assert any("treat its p-value with caution" in w for w in huge["warnings"])


def test_undecided_summary_follows_an_arm_that_shares_the_overall_verdict() -> None:
    out = compare_from_json(
        {
            "arms": [
                {"name": "bare", "clicks": 900, "impressions": 30_000},
                {"name": "question", "clicks": 905, "impressions": 30_000},
                {"name": "story", "clicks": 4, "impressions": 150},
            ]
        }
    )
    assert [c["verdict"] for c in out["comparisons"]] == ["no_clear_difference", "not_enough_data"]
    assert out["verdict"] == "not_enough_data"
    assert out["summary"].startswith("Too early to tell: 'story'")
    story = out["comparisons"][1]
    assert out["required_impressions_per_arm"] == story["required_impressions_per_arm"]
