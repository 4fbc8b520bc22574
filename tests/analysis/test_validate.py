"""Bad calculator input gives AnalysisInputError naming the field."""

from __future__ import annotations

import copy
import json

import pytest

from campaign.analysis import AnalysisInputError, compare_from_json, load_compare_json

GOOD = {
    "control_index": 0,
    "alpha": 0.05,
    "arms": [
        {"name": "bare", "impressions": 100, "clicks": 3},
        {"name": "context", "impressions": 110, "clicks": 6},
    ],
}


def _with(path: list, value: object) -> dict:
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _without(path: list) -> dict:
    data = copy.deepcopy(GOOD)
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


BAD = {
    "clicks_above_impressions": (_with(["arms", 1, "clicks"], 111), "arms[1].clicks"),
    "negative_clicks": (_with(["arms", 0, "clicks"], -1), "arms[0].clicks"),
    "negative_impressions": (_with(["arms", 1, "impressions"], -5), "arms[1].impressions"),
    "fractional_clicks": (_with(["arms", 1, "clicks"], 3.5), "arms[1].clicks"),
    "string_clicks": (_with(["arms", 0, "clicks"], "3"), "arms[0].clicks"),
    "boolean_clicks": (_with(["arms", 0, "clicks"], True), "arms[0].clicks"),
    "null_impressions": (_with(["arms", 1, "impressions"], None), "arms[1].impressions"),
    "list_impressions": (_with(["arms", 1, "impressions"], [100]), "arms[1].impressions"),
    "nan_clicks": (_with(["arms", 0, "clicks"], float("nan")), "arms[0].clicks"),
    "infinite_impressions": (
        _with(["arms", 0, "impressions"], float("inf")),
        "arms[0].impressions",
    ),
    "huge_impressions": (_with(["arms", 0, "impressions"], 10**12 + 1), "arms[0].impressions"),
    "huge_float": (_with(["arms", 0, "impressions"], 1e300), "arms[0].impressions"),
    "one_arm": (_with(["arms"], GOOD["arms"][:1]), "arms"),
    "no_arms": (_with(["arms"], []), "arms"),
    "nine_arms": (
        _with(["arms"], [{"name": f"a{i}", "impressions": 10, "clicks": 1} for i in range(9)]),
        "arms",
    ),
    "arms_not_a_list": (_with(["arms"], {"name": "x"}), "arms"),
    "arm_not_an_object": (_with(["arms", 1], "context"), "arms[1]"),
    "missing_arms": (_without(["arms"]), "arms"),
    "missing_clicks": (_without(["arms", 1, "clicks"]), "arms[1].clicks"),
    "missing_impressions": (_without(["arms", 0, "impressions"]), "arms[0].impressions"),
    "missing_name": (_without(["arms", 0, "name"]), "arms[0].name"),
    "empty_name": (_with(["arms", 0, "name"], "  "), "arms[0].name"),
    "duplicate_name": (_with(["arms", 1, "name"], "bare"), "arms[1].name"),
    "control_index_too_big": (_with(["control_index"], 2), "control_index"),
    "control_index_negative": (_with(["control_index"], -1), "control_index"),
    "control_index_string": (_with(["control_index"], "0"), "control_index"),
    "control_index_boolean": (_with(["control_index"], False), "control_index"),
    "control_index_fraction": (_with(["control_index"], 0.5), "control_index"),
    "alpha_zero": (_with(["alpha"], 0), "alpha"),
    "alpha_negative": (_with(["alpha"], -0.05), "alpha"),
    "alpha_too_big": (_with(["alpha"], 0.51), "alpha"),
    "alpha_string": (_with(["alpha"], "0.05"), "alpha"),
    "alpha_null": (_with(["alpha"], None), "alpha"),
    "alpha_nan": (_with(["alpha"], float("nan")), "alpha"),
    "unknown_top_level_key": (_with(["control"], 1), "control"),
    "unknown_arm_key": (_with(["arms", 0, "impresions"], 100), "arms[0].impresions"),
    "posts_not_a_list": (_with(["arms", 0, "posts"], {"impressions": 100}), "arms[0].posts"),
    "post_clicks_above_impressions": (
        _with(
            ["arms", 0, "posts"],
            [{"impressions": 50, "clicks": 2}, {"impressions": 50, "clicks": 51}],
        ),
        "arms[0].posts[1].clicks",
    ),
    "post_missing_impressions": (
        _with(["arms", 0, "posts"], [{"clicks": 3}]),
        "arms[0].posts[0].impressions",
    ),
    "post_bad_slot": (
        _with(["arms", 0, "posts"], [{"impressions": 100, "clicks": 3, "slot": 9}]),
        "arms[0].posts[0].slot",
    ),
    "post_unknown_key": (
        _with(["arms", 0, "posts"], [{"impressions": 100, "clicks": 3, "time": "9am"}]),
        "arms[0].posts[0].time",
    ),
    "posts_disagree_with_clicks": (
        _with(
            ["arms", 0, "posts"],
            [{"impressions": 60, "clicks": 1}, {"impressions": 40, "clicks": 1}],
        ),
        "arms[0].clicks",
    ),
    "posts_disagree_with_impressions": (
        _with(
            ["arms", 1, "posts"],
            [{"impressions": 60, "clicks": 6}, {"impressions": 40, "clicks": 0}],
        ),
        "arms[1].impressions",
    ),
}


@pytest.mark.parametrize("data,field", BAD.values(), ids=BAD.keys())
def test_bad_input_names_the_field(data: object, field: str) -> None:
    with pytest.raises(AnalysisInputError) as caught:
        compare_from_json(data)
    assert caught.value.field == field
    text = str(caught.value)
    assert field in text and "\n" not in text
    assert caught.value.message in text


@pytest.mark.parametrize("data", [[1, 2], "arms", 3, None, True, 2.5], ids=repr)
def test_top_level_must_be_an_object(data: object) -> None:
    with pytest.raises(AnalysisInputError) as caught:
        compare_from_json(data)
    assert caught.value.field == "body"


def test_analysis_input_error_is_a_value_error() -> None:
    assert issubclass(AnalysisInputError, ValueError)


def test_whole_floats_are_accepted_as_integers() -> None:
    data = _with(["arms", 0, "clicks"], 3.0)
    data["control_index"] = 0.0
    out = compare_from_json(data)
    assert out["arms"][0]["clicks"] == 3 and isinstance(out["arms"][0]["clicks"], int)


def test_defaults_apply_when_optional_fields_are_missing() -> None:
    out = compare_from_json({"arms": GOOD["arms"]})
    assert out["alpha"] == 0.05 and out["control"] == "bare"


def test_totals_are_derived_from_posts_when_left_out() -> None:
    arms = [
        {
            "name": "bare",
            "posts": [{"impressions": 60, "clicks": 1}, {"impressions": 40, "clicks": 2}],
        },
        {"name": "context", "posts": [{"impressions": 110, "clicks": 6}]},
    ]
    out = compare_from_json({"arms": arms})
    assert [(a["clicks"], a["impressions"]) for a in out["arms"]] == [(3, 100), (6, 110)]


def test_totals_that_agree_with_posts_are_accepted() -> None:
    data = _with(
        ["arms", 0, "posts"], [{"impressions": 60, "clicks": 1}, {"impressions": 40, "clicks": 2}]
    )
    assert compare_from_json(data)["arms"][0]["posts"] == 2


@pytest.mark.parametrize(
    "text",
    ["{", "", "[1,", '{"arms": NaN}', '{"alpha": Infinity}', "\x00", b"\xff\xfe{", "[" * 100_000],
    ids=[
        "truncated",
        "empty",
        "unclosed_list",
        "nan",
        "infinity",
        "control_char",
        "bad_bytes",
        "deep",
    ],
)
def test_malformed_json_is_an_error_on_body(text: str | bytes) -> None:
    with pytest.raises(AnalysisInputError) as caught:
        load_compare_json(text)
    assert caught.value.field == "body"


def test_load_compare_json_round_trips_good_input() -> None:
    assert compare_from_json(load_compare_json(json.dumps(GOOD)))["verdict"] in (
        "not_enough_data",
        "no_clear_difference",
        "better",
        "worse",
    )
