"""Age windows and the `[metrics]` settings: plain values, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from campaign.config import ConfigError, load_settings
from campaign.services.metric_reads import is_late
from campaign.services.metric_windows import (
    MetricsRules,
    Window,
    next_collection,
    parse_age,
    plan_collection,
    windows_from,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
RULES = MetricsRules(
    windows=windows_from(["1h", "24h", "7d"]),
    latest_every=dt.timedelta(hours=1),
    latest_margin=dt.timedelta(hours=48),
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h", 3600), ("24h", 86400), ("7d", 604800)]
)
def test_ages_parse_to_seconds(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "0h", "1w", "-1h", "h1", "1.5h"])
def test_bad_ages_are_refused_by_name(text):
    with pytest.raises(ValueError, match="is not an age"):
        parse_age(text)


def test_windows_are_sorted_by_age():
    assert windows_from(["7d", "1h", "30m"]) == (
        Window("30m", 1800),
        Window("1h", 3600),
        Window("7d", 604800),
    )


@pytest.mark.parametrize(
    ("ages", "problem"),
    [(["1h", "2x"], "'2x' is not an age"), (["1h", "1h"], "same age twice"), ([], "at least one")],
)
def test_config_refuses_bad_metric_ages(ages, problem, tmp_path):
    with pytest.raises(ConfigError, match=problem):
        load_settings(
            {"app": {"instance_path": str(tmp_path)}, "metrics": {"ages": ages}}, use_file=False
        )


def test_ages_from_the_environment_are_comma_separated(monkeypatch, tmp_path):
    monkeypatch.setenv("CAMPAIGN_METRICS__AGES", "2h, 3d")
    settings = load_settings({"app": {"instance_path": str(tmp_path)}}, use_file=False)
    assert settings.metrics.ages == ["2h", "3d"]
    rules = MetricsRules.from_settings(settings.metrics)
    assert rules.windows == (Window("2h", 7200), Window("3d", 259200))
    assert rules.horizon == dt.timedelta(days=3, hours=48)


def test_plan_takes_only_windows_the_post_has_reached_and_lacks():
    have = {"1h": T0 + dt.timedelta(hours=1), "latest": T0 + dt.timedelta(hours=1)}
    plan = plan_collection(T0, T0 + dt.timedelta(hours=25), have, RULES)
    assert [w.label for w in plan.windows] == ["24h"] and plan.latest


def test_latest_alone_waits_for_its_interval():
    have = {"latest": T0 + dt.timedelta(minutes=10)}
    assert plan_collection(T0, T0 + dt.timedelta(minutes=50), have, RULES).empty
    assert plan_collection(T0, T0 + dt.timedelta(minutes=70), have, RULES).latest


def test_next_collection_is_the_sooner_of_the_next_age_and_the_latest_refresh():
    now = T0 + dt.timedelta(minutes=30)
    assert next_collection(T0, now, {"latest"}, RULES) == T0 + dt.timedelta(hours=1)
    later = T0 + dt.timedelta(hours=2)
    assert next_collection(T0, later, {"1h", "latest"}, RULES) == later + dt.timedelta(hours=1)


def test_next_collection_ends_past_the_horizon():
    filled = {"1h", "24h", "7d", "latest"}
    assert (
        next_collection(T0, T0 + dt.timedelta(days=8, hours=23, minutes=30), filled, RULES) is None
    )


def test_backoff_doubles_up_to_the_cap():
    rules = MetricsRules(
        RULES.windows, RULES.latest_every, RULES.latest_margin, backoff_base=60, backoff_max=300
    )
    assert [rules.backoff(n).total_seconds() for n in (1, 2, 3, 4, 40)] == [60, 120, 240, 300, 300]


@pytest.mark.parametrize(
    ("window_seconds", "age", "late"),
    [
        (3600, 3600 + 900, False),
        (3600, 3600 + 901, True),
        (86400, 86400 + 8640, False),
        (86400, 86400 + 8641, True),
        (None, 10**7, False),
    ],
)
def test_a_reading_far_past_its_window_is_late(window_seconds, age, late):
    assert is_late(window_seconds, age) is late
