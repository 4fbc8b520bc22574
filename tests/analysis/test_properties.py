"""Property tests: invariants that hold for every valid input."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from campaign.analysis import compare_from_json
from campaign.analysis.sequential import sequential_p_value, sequential_p_values
from tests.analysis.reference import CONTRACT_ARM_KEYS, CONTRACT_COMPARISON_KEYS

PROPERTY = settings(deadline=None, max_examples=60)


@st.composite
def arm_counts(draw: st.DrawFn, max_impressions: int = 10**12) -> tuple[int, int]:
    scale = draw(st.sampled_from([10, 1_000, 10**6, max_impressions]))
    n = draw(st.integers(0, scale))
    rate = draw(st.sampled_from([0.0, 1e-6, 0.001, 0.02, 0.3, 1.0, None]))
    x = draw(st.integers(0, n)) if rate is None else round(n * rate)
    return x, n


def _request(counts: list[tuple[int, int]], control_index: int = 0) -> dict:
    return {
        "control_index": control_index,
        "arms": [
            {"name": f"arm {i}", "clicks": x, "impressions": n} for i, (x, n) in enumerate(counts)
        ],
    }


@PROPERTY
@given(st.lists(arm_counts(), min_size=2, max_size=8), st.data())
def test_output_is_strict_json_with_every_contract_key(
    counts: list[tuple[int, int]], data: st.DataObject
) -> None:
    control = data.draw(st.integers(0, len(counts) - 1))
    out = compare_from_json(_request(counts, control))
    json.dumps(out, allow_nan=False)
    assert not any(w.startswith("internal") for w in out["warnings"])
    for arm in out["arms"]:
        assert arm.keys() >= CONTRACT_ARM_KEYS
    assert len(out["comparisons"]) == len(counts) - 1
    for c in out["comparisons"]:
        assert c.keys() >= CONTRACT_COMPARISON_KEYS
    assert out["verdict"] in ("not_enough_data", "no_clear_difference", "better", "worse")
    assert isinstance(out["summary"], str) and out["summary"].endswith(".")
    assert "\n" not in out["summary"]


def _contains(interval: list[float] | None, value: float | None) -> bool:
    return interval is None or value is None or interval[0] <= value <= interval[1]


@PROPERTY
@given(st.lists(arm_counts(), min_size=2, max_size=8))
def test_every_interval_contains_its_estimate(counts: list[tuple[int, int]]) -> None:
    out = compare_from_json(_request(counts))
    for arm in out["arms"]:
        assert arm["rate"] is None or _contains(arm["wilson_95"], arm["rate"])
        assert 0.0 <= arm["wilson_95"][0] <= arm["wilson_95"][1] <= 1.0
        assert _contains(arm["credible_95"], arm["posterior_mean"])
    for c in out["comparisons"]:
        assert _contains(c["diff_95"], c["diff"])
        assert _contains(c["relative_lift_95"], c["relative_lift"])
        if c["relative_lift_95"] is not None:
            assert c["relative_lift_95"][0] >= -1.0


@PROPERTY
@given(st.lists(arm_counts(), min_size=2, max_size=8))
def test_probabilities_to_be_best_sum_to_one(counts: list[tuple[int, int]]) -> None:
    out = compare_from_json(_request(counts))
    probs = [a["prob_best"] for a in out["arms"]]
    assert abs(sum(probs) - 1.0) <= 1e-9
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert all(a["expected_loss"] >= 0.0 for a in out["arms"])
    for c in out["comparisons"]:
        assert 0.0 <= c["prob_beats_control"] <= 1.0


@PROPERTY
@given(st.lists(arm_counts(), min_size=3, max_size=8), st.data())
def test_swapping_two_non_control_arms_swaps_their_results(
    counts: list[tuple[int, int]], data: st.DataObject
) -> None:
    i, j = data.draw(st.sets(st.integers(1, len(counts) - 1), min_size=2, max_size=2).map(sorted))
    swapped = list(counts)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    before = compare_from_json(_request(counts))
    req = _request(swapped)
    # Names travel with the data, so each named arm should get the same numbers.
    req["arms"][i]["name"], req["arms"][j]["name"] = f"arm {j}", f"arm {i}"
    after = compare_from_json(req)
    by_name = {a["name"]: a for a in after["arms"]}
    for arm in before["arms"]:
        other = by_name[arm["name"]]
        assert np.isclose(arm["prob_best"], other["prob_best"], rtol=1e-9, atol=1e-12)
        assert np.isclose(arm["expected_loss"], other["expected_loss"], rtol=1e-9, atol=1e-15)
        assert arm["wilson_95"] == other["wilson_95"]
    comp_after = {c["arm"]: c for c in after["comparisons"]}
    for c in before["comparisons"]:
        d = comp_after[c["arm"]]
        for key in (
            "diff",
            "diff_95",
            "p_value",
            "p_value_holm",
            "relative_lift",
            "relative_lift_95",
            "verdict",
        ):
            assert c[key] == d[key], key
        assert np.isclose(c["prob_beats_control"], d["prob_beats_control"], rtol=1e-12, atol=1e-15)
    assert before["verdict"] == after["verdict"]


def _width(interval: list[float] | None) -> float:
    assert interval is not None
    return interval[1] - interval[0]


@PROPERTY
@given(
    st.integers(1, 10_000),
    st.integers(0, 1_000),
    st.integers(1, 10_000),
    st.integers(0, 1_000),
    st.integers(2, 1_000),
)
def test_scaling_all_counts_up_narrows_the_intervals(
    nc: int, xc: int, nt: int, xt: int, factor: int
) -> None:
    xc, xt = min(xc, nc), min(xt, nt)
    small = compare_from_json(_request([(xc, nc), (xt, nt)]))
    big = compare_from_json(_request([(xc * factor, nc * factor), (xt * factor, nt * factor)]))
    for a, b in zip(small["arms"], big["arms"], strict=True):
        assert _width(b["wilson_95"]) < _width(a["wilson_95"])
        assert _width(b["credible_95"]) < _width(a["credible_95"])
    cs, cb = small["comparisons"][0], big["comparisons"][0]
    assert _width(cb["diff_95"]) < _width(cs["diff_95"])
    if cs["relative_lift_95"] is not None:
        assume(_width(cs["relative_lift_95"]) > 0)  # all-click arms have a zero-width range
        assert _width(cb["relative_lift_95"]) < _width(cs["relative_lift_95"])


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)), min_size=2, max_size=2))
def test_scalar_and_vectorised_sequential_rules_agree(pairs: list[tuple[int, int]]) -> None:
    (xc, nc), (xt, nt) = [(min(x, n), n) for x, n in pairs]
    vector = float(sequential_p_values(xc, nc, xt, nt))
    if nc and nt:
        pooled = (xc + xt) / (nc + nt)
        var = pooled * (1 - pooled) * (1 / nc + 1 / nt)
        scalar = sequential_p_value(xt / nt - xc / nc, var, pooled)
    else:
        scalar = 1.0
    assert np.isclose(vector, scalar, rtol=1e-12, atol=0)


@st.composite
def arm_with_posts(draw: st.DrawFn, index: int) -> dict:
    scale = draw(st.sampled_from([10, 10_000, 10**9]))
    posts = []
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(0, scale))
        post = {"impressions": n, "clicks": draw(st.integers(0, n))}
        slot = draw(st.sampled_from(["mon-9", "tue-18", "sat-12", None]))
        if slot is not None:
            post["slot"] = slot
        posts.append(post)
    return {"name": f"arm {index}", "posts": posts}


@PROPERTY
@given(st.integers(2, 5).flatmap(lambda k: st.tuples(*(arm_with_posts(i) for i in range(k)))))
def test_posts_and_slots_never_produce_nan_or_broken_intervals(arms: tuple[dict, ...]) -> None:
    out = compare_from_json({"arms": list(arms)})
    json.dumps(out, allow_nan=False)
    assert not any(w.startswith("internal") for w in out["warnings"])
    for c in out["comparisons"]:
        assert _contains(c["diff_95"], c["diff"])
        post_level = c["post_level"]
        if post_level is not None:
            assert _contains(post_level["diff_95"], post_level["diff"])
        slots = c["slots"]
        if slots is not None and slots["stratified"] is not None:
            strat = slots["stratified"]
            if strat["odds_ratio"] is not None:
                assert _contains(strat["odds_ratio_95"], strat["odds_ratio"])
