"""Experiment and framing reports from stored rows equal the engine on the same totals."""

from __future__ import annotations

import datetime as dt

import pytest

from campaign.analysis import (
    Arm,
    CountArm,
    Post,
    PostCounts,
    TaggedArm,
    compare,
    compare_per_post,
    framing_tag_effects,
    league_table,
    to_json,
)
from campaign.analysis import Experiment as TaggedExperiment
from campaign.models import Channel
from campaign.services import NotFound
from campaign.services.experiment_report_output import report_csv, report_json, report_text
from campaign.services.experiment_reports import experiment_report, parse_age
from campaign.services.framing_report import framing_report
from tests import factories
from tests.conftest import NOW
from tests.report_fixtures import DAY, HOUR, ArmSpec, PostSpec, Reading, make_experiment

# Mondays to Fridays in March 2026 (GMT in London), at 09:00 and 19:00 UTC.
MON = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
AGE = 25 * HOUR


def _day(n: int, hour: int = 9) -> dt.datetime:
    return MON.replace(hour=hour) + dt.timedelta(days=n)


def _out_of_order(impressions: int, link_clicks: int | None = None) -> list[Reading]:
    """Later ages stored first, several windows and sources; the 25h figure is the CSV 24h one.

    The platform's 24h reading and a CSV correction share one age; the CSV one was read later.
    """
    return [
        Reading("7d", 7 * DAY, impressions * 5, link_clicks),
        Reading("latest", 2 * DAY, impressions * 3, link_clicks),
        Reading("24h", DAY + 60, impressions - 7, link_clicks),
        Reading("1h", HOUR, impressions // 10, link_clicks),
        Reading("24h", DAY + 60, impressions, link_clicks, source="csv", collected_late=120),
        Reading("28h", 28 * HOUR, impressions * 2, link_clicks),
    ]


@pytest.fixture
def org(db):
    return factories.make_org(db, "report-uni", NOW)


@pytest.fixture
def channel(db, org):
    return factories.make_channel(db, org, NOW)


@pytest.fixture
def mastodon(db, org):
    found = Channel(
        organisation_id=org.id,
        kind="mastodon",
        display_name="Careers on Mastodon",
        audience="students",
        created_at=NOW,
    )
    db.add(found)
    db.flush()
    return found


def test_report_equals_compare_on_the_same_totals(db, org, channel, mastodon):
    """Out-of-order snapshots, a zero-click arm, a post without impressions, a late click."""
    arms = [
        ArmSpec(
            "Bare link",
            ["bare_link"],
            [
                # Clicks at the exact age count; one a second later does not.
                PostSpec(_day(0), _out_of_order(400), [60, HOUR, AGE, AGE + 1]),
                PostSpec(_day(1, 19), _out_of_order(350), [10, 20]),
                # No impressions on Mastodon: left out of the rates, and said so.
                PostSpec(_day(2), [Reading("24h", DAY, None, likes=4)], [5], channel=mastodon),
            ],
        ),
        ArmSpec(
            "Context",
            ["context"],
            [
                PostSpec(_day(0, 19), _out_of_order(500), [1, 2, 3, 4, 5, 6]),
                # No tracked link: the network's own link clicks are used.
                PostSpec(_day(1), _out_of_order(450, link_clicks=9), None),
            ],
        ),
        # A zero-click arm: tracked links but no clicks.
        ArmSpec("Question", ["question"], [PostSpec(_day(3), _out_of_order(300), [])]),
    ]
    exp = make_experiment(db, org, channel, arms, age=AGE, now=NOW)
    report = experiment_report(db, exp.id, org.id, NOW)

    london = "Outbox students, weekday"
    expected = compare(
        [
            Arm(
                "Bare link",
                750,
                5,
                (Post(400, 3, f"{london} morning"), Post(350, 2, f"{london} evening")),
            ),
            Arm(
                "Context",
                950,
                15,
                (Post(500, 6, f"{london} evening"), Post(450, 9, f"{london} morning")),
            ),
            Arm("Question", 300, 0, (Post(300, 0, f"{london} morning"),)),
        ]
    )
    assert to_json(report.comparison) == to_json(expected)
    assert [(r.posts_published, r.posts_measured) for r in report.arms] == [(3, 2), (2, 2), (1, 1)]
    assert report.left_out == 1
    assert any("1 post had no impressions" in w for w in report.warnings)
    assert report.verdict == expected.verdict
    assert report.verdict_sentence == expected.summary
    # The JSON is the compare contract plus the experiment's fields.
    out = report_json(report)
    contract = to_json(expected)
    assert set(contract) <= set(out)
    assert [a["rate"] for a in out["arms"]] == [a["rate"] for a in contract["arms"]]
    assert out["comparisons"] == contract["comparisons"]
    assert out["experiment"]["id"] == exp.id and out["posts_left_out"] == 1


def test_report_at_another_age_reads_other_snapshots(db, org, channel):
    arms = [
        ArmSpec(
            "Bare link", ["bare_link"], [PostSpec(_day(0), _out_of_order(400), [60, 2 * HOUR])]
        ),
        ArmSpec("Context", ["context"], [PostSpec(_day(1), _out_of_order(500), [30])]),
    ]
    exp = make_experiment(db, org, channel, arms, age=AGE, now=NOW)
    report = experiment_report(db, exp.id, org.id, NOW, age_seconds=HOUR)
    expected = compare(
        [
            Arm("Bare link", 40, 1, (Post(40, 1, "Outbox students, weekday morning"),)),
            Arm("Context", 50, 1, (Post(50, 1, "Outbox students, weekday morning"),)),
        ]
    )
    assert to_json(report.comparison) == to_json(expected)


def test_clicks_per_post_uses_the_per_post_comparison(db, org, mastodon, channel):
    def post(n: int, clicks: int, likes: int) -> PostSpec:
        readings = [Reading("24h", DAY, None, likes=likes)]
        return PostSpec(_day(n), readings, [60] * clicks, channel=mastodon)

    arms = [
        ArmSpec("Bare link", ["bare_link"], [post(0, 2, 1), post(1, 0, 3)]),
        ArmSpec("Context", ["context"], [post(2, 5, 2), post(3, 4, 0)]),
    ]
    exp = make_experiment(
        db, org, channel, arms, metric="clicks_per_post", planned_posts=2, now=NOW
    )
    report = experiment_report(db, exp.id, org.id, NOW)
    expected = compare_per_post(
        [
            CountArm("Bare link", (PostCounts(2, 1), PostCounts(0, 3))),
            CountArm("Context", (PostCounts(5, 2), PostCounts(4, 0))),
        ]
    )
    assert report.comparison == expected
    assert report.left_out == 0
    assert report.progress.complete
    assert report.verdict in ("no_clear_difference", "better")
    out = report_json(report)
    assert out["comparisons"][0]["arm"] == "Context"
    assert "clicks_per_post" in out["arm_details"][0]


def test_planned_rule_gives_no_verdict_before_the_plan(db, org, channel):
    arms = [
        ArmSpec("Bare link", ["bare_link"], [PostSpec(_day(0), _out_of_order(4000), [60] * 10)]),
        ArmSpec("Context", ["context"], [PostSpec(_day(1), _out_of_order(4000), [60] * 90)]),
    ]
    exp = make_experiment(
        db, org, channel, arms, rule="planned", planned_impressions=5000, age=AGE, now=NOW
    )
    report = experiment_report(db, exp.id, org.id, NOW)
    assert report.verdict == "not_enough_data"
    assert report.verdict_sentence == (
        "Not enough evidence yet — planned 5,000 impressions per arm, have 4,000."
    )
    assert "1,000 more per arm" in report.progress.sentence
    # Once the plan is reached, the single planned look decides.
    exp2 = make_experiment(
        db, org, channel, arms, name="Second", rule="planned", planned_impressions=4000, age=AGE,
        now=NOW,
    )  # fmt: skip
    decided = experiment_report(db, exp2.id, org.id, NOW)
    assert decided.progress.complete
    assert decided.verdict == "better"
    assert "judged once at the planned sample" in decided.verdict_sentence


def test_report_of_another_organisations_experiment_is_not_found(db, org, channel):
    other = factories.make_org(db, "other-report-uni", NOW)
    arms = [
        ArmSpec("Bare link", ["bare_link"], [PostSpec(_day(0), _out_of_order(100), [1])]),
        ArmSpec("Context", ["context"], [PostSpec(_day(1), _out_of_order(100), [2])]),
    ]
    exp = make_experiment(db, org, channel, arms, age=AGE, now=NOW)
    with pytest.raises(NotFound):
        experiment_report(db, exp.id, other.id, NOW)
    with pytest.raises(NotFound):
        experiment_report(db, exp.id + 1000, org.id, NOW)


def test_csv_and_text_forms(db, org, channel):
    arms = [
        ArmSpec("=Bare link", ["bare_link"], [PostSpec(_day(0), _out_of_order(400), [60])]),
        ArmSpec("Context", ["context"], [PostSpec(_day(1), _out_of_order(500), [30, 40])]),
    ]
    exp = make_experiment(db, org, channel, arms, name="+Sum", age=AGE, now=NOW)
    report = experiment_report(db, exp.id, org.id, NOW)
    lines = report_csv(report).splitlines()
    assert lines[0].startswith("experiment_id,experiment,arm,control,")
    assert lines[1].startswith(f"{exp.id},'+Sum,'=Bare link,yes,1,1,400,1,")
    assert lines[2].split(",")[2] == "Context"
    text = report_text(report)
    assert "=Bare link (control): 1 clicks from 400 impressions" in text
    assert report.heading in text


def test_framing_report_equals_framing_tag_effects(db, org, channel):
    def two(name: str, base: int, extra: int, bare: int, ctx: int) -> None:
        make_experiment(
            db,
            org,
            channel,
            [
                ArmSpec(
                    "Bare", ["bare_link"], [PostSpec(_day(base), _out_of_order(1000), [60] * bare)]
                ),
                ArmSpec(
                    "Ctx", ["context"], [PostSpec(_day(base + 1), _out_of_order(900), [60] * ctx)]
                ),
                ArmSpec(
                    "Q",
                    ["question", "context"],
                    [PostSpec(_day(base + 2), _out_of_order(800), [60] * extra)],
                ),
            ],
            name=name,
            age=AGE,
            status="concluded" if base else "running",
            now=NOW,
        )

    two("First", 0, 4, 10, 20)
    two("Second", 7, 9, 12, 15)
    # Planned experiments are not pooled.
    make_experiment(
        db, org, channel,
        [ArmSpec("Bare", ["bare_link"], [PostSpec(_day(20), _out_of_order(10), [60])]),
         ArmSpec("Story", ["story"], [PostSpec(_day(21), _out_of_order(10), [60])])],
        name="Not yet", status="planned", age=AGE, now=NOW,
    )  # fmt: skip
    report = framing_report(db, org.id, NOW)
    expected = framing_tag_effects(
        [
            TaggedExperiment(
                label,
                (
                    TaggedArm("bare_link", bare, 1000),
                    TaggedArm("context", ctx, 900),
                    TaggedArm("context+question", extra, 800),
                ),
            )
            for label, bare, ctx, extra in (
                (f"First (#{_id(report, 'First')})", 10, 20, 4),
                (f"Second (#{_id(report, 'Second')})", 12, 15, 9),
            )
        ],
        "bare_link",
    )
    assert report.reference == "bare_link"
    assert report.effects == expected
    assert list(report.league) == league_table(expected)
    assert report.label("context+question") == "Context + Question"
    assert {row.tag: row.experiments for row in report.league}["context"] == 2
    with pytest.raises(ValueError, match="story"):
        framing_report(db, org.id, NOW, reference_tag="story")


def _id(report, name: str) -> str:
    return next(label for label in report.experiments if label.startswith(name)).split("#")[1][:-1]


def test_framing_report_with_no_experiments_is_empty(db, org):
    report = framing_report(db, org.id, NOW)
    assert report.effects is None and report.league == ()


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", DAY), ("7d", 7 * DAY), ("90m", 5400), ("3600", HOUR)]
)
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "1.5h", "0", "400d", "soon", "²h"])
def test_parse_age_rejects_bad_input(text):
    with pytest.raises(ValueError, match="age"):
        parse_age(text)
