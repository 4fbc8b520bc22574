"""The framing report's per-arm totals, added up in the database, equal the experiment report's
per-post figures; and an experiment with no data yet says so plainly."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest

from campaign.analysis import framing_tag_effects, league_table
from campaign.channels.base import PlatformMetrics
from campaign.models import Channel, Delivery, Post
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.services.experiment_reads import rate_sums
from campaign.services.experiment_report_output import report_json, report_text
from campaign.services.experiment_reports import experiment_report
from campaign.services.experiment_verdicts import NO_DATA
from campaign.services.framing_report import framing_report, tagged_experiments
from campaign.services.metric_reads import lateness_allowed
from campaign.services.metrics import SnapshotValues, store_snapshots
from tests import factories
from tests.conftest import NOW
from tests.report_fixtures import DAY, HOUR, ArmSpec, PostSpec, Reading, make_experiment

MON = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)


def _day(n: int, hour: int = 9) -> dt.datetime:
    return MON.replace(hour=hour) + dt.timedelta(days=n)


@pytest.fixture
def org(db):
    return factories.make_org(db, "framing-totals-uni", NOW)


@pytest.fixture
def channel(db, org):
    return factories.make_channel(db, org, NOW)


@pytest.fixture
def other(db, org):
    """A second channel, for posts with two deliveries."""
    return factories.make_channel(db, org, NOW, audience="graduates")


def _add_delivery(
    db,
    post: Post,
    channel: Channel,
    impressions: int | None,
    link_clicks: int | None = None,
    click_ages: list[int] | None = None,
    published: bool = True,
) -> None:
    """A second delivery of an experiment's post: one 24h reading (None: no reading)."""
    at = post.scheduled_for
    delivery = Delivery(
        post_id=post.id,
        channel=channel,
        due_at=at,
        idempotency_key=uuid.uuid4().hex,
        updated_at=at,
        status="published" if published else "scheduled",
        published_at=at if published else None,
    )
    db.add(delivery)
    db.flush()
    if impressions is not None or link_clicks is not None:
        figures = PlatformMetrics(impressions=impressions, link_clicks=link_clicks)
        store_snapshots(
            db, [SnapshotValues(delivery.id, "24h", DAY, "platform", at + dt.timedelta(days=1),
                                DAY, figures)],
        )  # fmt: skip
    if click_ages is not None:
        target = f"https://example.ac.uk/{uuid.uuid4().hex}"
        link = TrackedLink(
            code=uuid.uuid4().hex[:12], delivery_id=delivery.id, organisation_id=post.organisation_id,
            target_url=target, target_sha256=hashlib.sha256(target.encode()).hexdigest(),
        )  # fmt: skip
        db.add(link)
        db.flush()
        for age in click_ages:
            when = at + dt.timedelta(seconds=age)
            db.add(
                LinkClick(link_id=link.id, clicked_at=when, day=when.date(), is_first_today=False)
            )
    db.flush()


def _posts(db, exp) -> dict[int, list[Post]]:
    """Each arm's posts (by arm position), in slot order."""
    found: dict[int, list[Post]] = {}
    for slot in sorted(exp.slots, key=lambda s: s.position):
        found.setdefault(slot.arm.position, []).append(db.get(Post, slot.post_id))
    return found


def test_framing_totals_equal_the_experiment_reports_on_awkward_posts(db, org, channel, other):
    late_ok = DAY + lateness_allowed(DAY) - 60
    too_late = DAY + lateness_allowed(DAY) + 60
    mastodon = Channel(
        organisation_id=org.id, kind="mastodon", display_name="Careers on Mastodon",
        audience="students", created_at=NOW,
    )  # fmt: skip
    db.add(mastodon)
    db.flush()
    arms = [
        ArmSpec(
            "Bare",
            ["bare_link"],
            [
                # Clicks at the exact age count, one a second later does not.
                PostSpec(_day(0), [Reading("24h", DAY, 400)], [60, DAY, DAY + 1]),
                # A reading a little late counts as the 24h one; a later one does not (the 1h
                # reading is used instead).
                PostSpec(_day(1), [Reading("1h", HOUR, 30), Reading("24h", late_ok, 300)], [5]),
                PostSpec(_day(2), [Reading("1h", HOUR, 20), Reading("24h", too_late, 900)], [5]),
                # No impressions (Mastodon): left out.
                PostSpec(_day(3), [Reading("24h", DAY, None, likes=3)], [60], channel=mastodon),
                # More clicks than impressions: left out.
                PostSpec(_day(4), [Reading("24h", DAY, 3)], [1, 2, 3, 4, 5]),
                # Not published yet.
                PostSpec(_day(5), [], [], published=False),
            ],
        ),
        ArmSpec(
            "Ctx",
            ["context"],
            [
                # No tracked link: the network's link clicks.
                PostSpec(_day(0, 19), [Reading("24h", DAY, 500, link_clicks=9)], None),
                # No tracked link and no link-click figure: left out.
                PostSpec(_day(1, 19), [Reading("24h", DAY, 500)], None),
                # Two deliveries, both measured: added up (filled in below).
                PostSpec(_day(2, 19), [Reading("24h", DAY, 400)], [60, 120, 180]),
                # Two deliveries, the second without a reading: left out.
                PostSpec(_day(3, 19), [Reading("24h", DAY, 700)], [60]),
                # Two deliveries, the second not published: the first alone counts.
                PostSpec(_day(4, 19), [Reading("24h", DAY, 800)], [60, 60]),
                # No reading at all: left out.
                PostSpec(_day(5, 19), [], [60]),
            ],
        ),
        ArmSpec("Q", ["question", "context"], [PostSpec(_day(6), [Reading("24h", DAY, 250)], [])]),
        # Nothing measured in this arm: zero totals.
        ArmSpec("Story", ["story"], [PostSpec(_day(7), [], [60], published=False)]),
    ]
    first = make_experiment(db, org, channel, arms, name="Awkward", age=DAY, now=NOW)
    ctx = _posts(db, first)[1]
    _add_delivery(db, ctx[2], other, 100, link_clicks=2)
    _add_delivery(db, ctx[3], other, None, click_ages=[60])
    _add_delivery(db, ctx[4], other, 50, click_ages=[60], published=False)
    # A second experiment read at another age, so the report reads two ages.
    second = make_experiment(
        db, org, channel,
        [ArmSpec("Bare", ["bare_link"], [PostSpec(_day(10), [Reading("7d", 7 * DAY, 90),
                                                             Reading("24h", DAY, 40)], [60])]),
         ArmSpec("Ctx", ["context"], [PostSpec(_day(11), [Reading("7d", 7 * DAY, 80)],
                                               [60, 3 * DAY, 8 * DAY])])],
        name="Week", age=7 * DAY, status="concluded", now=NOW,
    )  # fmt: skip

    reports = [experiment_report(db, e.id, org.id, NOW) for e in (first, second)]
    expected = [
        [(t.clicks, t.impressions) for t in report.totals] for report in reports
    ]  # fmt: skip
    # The per-post path, worked out by hand for the awkward experiment: Bare 400 + 300 + 20
    # views with 2 + 1 + 1 clicks; Ctx 500 (9 clicks), 400 + 100 (3 + 2), 800 (2); Q 250 views
    # and no clicks; Story nothing.
    assert expected[0] == [(4, 720), (16, 1800), (0, 250), (0, 0)]
    assert expected[1] == [(1, 90), (2, 80)]

    for exp, report, want in zip((first, second), reports, expected, strict=True):
        sums = rate_sums(db, [exp.id], report.age_seconds)
        got = [(sums[a.id].clicks, sums[a.id].impressions) if a.id in sums else (0, 0)
               for a in exp.arms]  # fmt: skip
        assert got == want

    engine, controls, left_out = tagged_experiments(db, org.id)
    assert [[(a.tag, a.clicks, a.impressions) for a in e.arms] for e in engine] == [
        [(tag, c, v) for tag, (c, v) in zip(tags, want, strict=True)]
        for tags, want in (
            (["bare_link", "context", "context+question", "story"], expected[0]),
            (["bare_link", "context"], expected[1]),
        )
    ]
    assert controls == ["bare_link", "bare_link"] and left_out == []
    report = framing_report(db, org.id, NOW)
    assert report.effects == framing_tag_effects(engine, "bare_link")
    assert list(report.league) == league_table(report.effects)


def test_framing_report_leaves_out_per_post_and_same_tag_experiments(db, org, channel):
    def one(day: int) -> list[PostSpec]:
        return [PostSpec(_day(day), [Reading("24h", DAY, 100)], [60])]

    make_experiment(
        db, org, channel, [ArmSpec("A", ["context"], one(0)), ArmSpec("B", ["context"], one(1))],
        name="Same tags", now=NOW,
    )  # fmt: skip
    make_experiment(
        db, org, channel, [ArmSpec("A", ["bare_link"], one(2)), ArmSpec("B", ["context"], one(3))],
        name="Per post", metric="clicks_per_post", now=NOW,
    )  # fmt: skip
    report = framing_report(db, org.id, NOW)
    assert report.effects is None and report.experiments == ()
    assert report.left_out == (
        "1 experiment measured in clicks per post (no impressions) cannot be pooled with rates "
        "and is left out.",
        "'Same tags' compares variants with the same framing tags.",
    )


@pytest.mark.parametrize("metric", ["clicks_per_impression", "clicks_per_post"])
def test_an_experiment_without_data_says_so_plainly(db, org, channel, metric):
    """A planned-rule experiment with no posts yet: no interval, no warning about totals."""
    exp = make_experiment(
        db, org, channel, [ArmSpec("Bare link", ["bare_link"]), ArmSpec("Context", ["context"])],
        metric=metric, rule="planned", planned_posts=10, now=NOW,
    )  # fmt: skip
    report = experiment_report(db, exp.id, org.id, NOW)
    assert report.comparison is None
    assert report.verdict == "not_enough_data"
    assert report.verdict_sentence == NO_DATA == report.summary
    assert report.warnings == ()
    assert [(r.rate, r.wilson_95, r.prob_best) for r in report.arms] == [(None, None, None)] * 2
    text = report_text(report)
    assert "  Bare link (control): no data yet; 0/0 posts measured\n" in text
    assert "  Context: no data yet; 0/0 posts measured\n" in text
    assert "per 1,000" not in text and "totals" not in text and "1e+03" not in text
    out = report_json(report)
    assert out["verdict"] == "not_enough_data" and out["summary"] == NO_DATA
    assert [a["wilson_95"] for a in out["arms"]] == [None, None]
    assert out["warnings"] == []


def test_published_posts_without_figures_are_no_data_but_counted(db, org, channel):
    """Published posts without readings at the age: no data yet, and the reason is given."""
    arms = [
        ArmSpec("Bare link", ["bare_link"], [PostSpec(_day(0), [], None)]),
        ArmSpec("Context", ["context"], [PostSpec(_day(1), [], None)]),
    ]
    exp = make_experiment(db, org, channel, arms, rule="planned", planned_posts=10, now=NOW)
    report = experiment_report(db, exp.id, org.id, NOW)
    assert report.comparison is None and report.verdict_sentence == NO_DATA
    assert report.warnings == (
        "2 published posts had no click figures at the report age yet and were left out.",
    )
    assert "Bare link (control): no data yet; 0/1 posts measured" in report_text(report)


def test_an_arm_without_impressions_shows_no_interval(db, org, channel):
    """Data in one arm only: the empty arm's line has no 0-to-1,000 range."""
    arms = [
        ArmSpec("Bare link", ["bare_link"], [PostSpec(_day(0), [Reading("24h", DAY, 400)], [60])]),
        ArmSpec("Context", ["context"], [PostSpec(_day(1), [], None)]),
    ]
    exp = make_experiment(db, org, channel, arms, now=NOW)
    report = experiment_report(db, exp.id, org.id, NOW)
    assert report.comparison is not None
    lines = report_text(report).splitlines()
    bare = next(line for line in lines if line.startswith("  Bare link"))
    context = next(line for line in lines if line.startswith("  Context"))
    assert " per 1,000 (" in bare
    assert context.startswith("  Context: 0 clicks from 0 impressions, — per 1,000,")
    assert "(0 to" not in context
