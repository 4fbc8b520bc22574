"""The experiment workflow: plan with its power calculation, seeded slots, approval, conclusion."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from campaign.analysis.sample_size import required_impressions
from campaign.analysis.sequential import sequential_sample_size
from campaign.models import (
    AuditEvent,
    Channel,
    Delivery,
    KeyDate,
    Post,
    QueueSlot,
    Variant,
)
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services import NotFound, PermissionDenied, ServiceError, experiments
from campaign.services.audit import Actor
from campaign.services.experiment_plans import ASSUMED_IMPRESSIONS_PER_POST
from campaign.services.experiments import ExperimentInput
from tests.conftest import NOW

TIMES = tuple(f"2026-03-{day:02d} {hour}" for day in range(10, 14) for hour in ("09:00", "17:30"))


def actor(part, role="staff"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def tag(part, key):
    return next(t for t in part.org.framing_tags if t.key == key)


def add_variants(db, part, specs=(("Question", "question", "students"),
                                  ("Statistic", "statistic", "graduates"))):  # fmt: skip
    message = part.campaign.messages[0]
    message.variants[0].framing_tags = [tag(part, "bare_link")]
    for label, key, audience in specs:
        framing = tag(part, key)
        variant = Variant(
            label=label, text=f"{label} framing https://example.ac.uk/o", audience=audience,
            created_at=NOW, framing_tags=[framing],
        )  # fmt: skip
        message.variants.append(variant)
    db.flush()
    return message


def add_channel(db, part, kind="outbox", name="Second"):
    channel = Channel(
        organisation_id=part.org.id, kind=kind, display_name=name, audience="students",
        created_at=NOW,
    )  # fmt: skip
    db.add(channel)
    db.flush()
    return channel


def data_for(message, channels, **extra):
    values = {
        "name": "Question or statistic?",
        "message_id": message.id,
        "variant_ids": tuple(v.id for v in message.variants),
        "channel_ids": tuple(c.id for c in channels),
        "hypothesis": "A question gets more clicks than a bare link.",
        "baseline_rate": 0.02,
        "minimum_lift": 1.0,
        "impressions_per_post": 600,
        "times": TIMES,
    }
    values.update(extra)
    return ExperimentInput(**values)


def create(db, part, channels=None, role="staff", seed=4242, **extra):
    message = add_variants(db, part)
    data = data_for(message, channels or [part.channel], **extra)
    return experiments.create_experiment(db, part.org, data, actor(part, role), NOW, seed=seed)


def arm_counts(experiment):
    return Counter((s.channel_id, s.arm_id) for s in experiment.slots)


# --- planning -------------------------------------------------------------------------------


def test_a_planned_experiment_has_arms_in_order_and_balanced_slots(db, world):
    second = add_channel(db, world.home)
    found = create(db, world.home, channels=[world.home.channel, second])
    assert found.status == "planned"
    assert [a.position for a in found.arms] == [0, 1, 2]
    assert found.arms[0].variant_id == world.home.campaign.messages[0].variants[0].id
    assert len(found.slots) == 2 * len(TIMES)
    for channel in (world.home.channel, second):
        per_arm = [arm_counts(found)[(channel.id, a.id)] for a in found.arms]
        assert max(per_arm) - min(per_arm) <= 1
    assert {s.scheduled_at for s in found.slots} == {
        dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC)
        for t in TIMES  # GMT in March
    }


def test_the_planned_sample_is_the_engines_two_proportion_formula(db, world):
    found = create(db, world.home)
    expected = required_impressions(0.02, 1.0, 0.05)
    assert found.planned_impressions_per_arm == expected
    assert found.planned_posts_per_arm == -(-expected // 600)


def test_the_sequential_rule_plans_with_the_sequential_planner(db, world):
    found = create(db, world.home, verdict_rule="sequential")
    assert found.planned_impressions_per_arm == sequential_sample_size(0.02, 1.0, 0.05, 2)


def test_the_power_calculation_uses_history_when_none_is_given(db, world):
    home = world.home
    for impressions, clicks in ((400, 4), (1000, 10), (700, 21)):
        post = Post(organisation_id=home.org.id, text="Old", status="approved",
                    scheduled_for=NOW - dt.timedelta(days=9), created_at=NOW)  # fmt: skip
        delivery = Delivery(channel=home.channel, due_at=NOW - dt.timedelta(days=9),
                            idempotency_key=uuid.uuid4().hex, status="published",
                            published_at=NOW - dt.timedelta(days=9))  # fmt: skip
        post.deliveries.append(delivery)
        db.add(post)
        db.flush()
        db.add(MetricSnapshot(delivery_id=delivery.id, window="24h", source="platform",
                              window_seconds=86400, collected_at=NOW, age_seconds=86400,
                              impressions=impressions))  # fmt: skip
        link = TrackedLink(code=uuid.uuid4().hex[:12], delivery_id=delivery.id,
                           organisation_id=home.org.id, target_url="https://example.ac.uk/o",
                           target_sha256=uuid.uuid4().hex)  # fmt: skip
        db.add(link)
        db.flush()
        db.add_all(LinkClick(link_id=link.id, clicked_at=NOW, day=NOW.date())
                   for _ in range(clicks))  # fmt: skip
    db.flush()
    message = add_variants(db, home)
    data = data_for(message, [home.channel], baseline_rate=None, impressions_per_post=None)
    draft = experiments.check(db, home.org, data, NOW)
    assert draft.problems == []
    assert draft.plan.impressions_per_post == 700
    assert draft.plan.baseline_rate == pytest.approx(35 / 2100)
    assert "your last 3 posts" in draft.plan.baseline_source


def test_without_history_the_assumptions_are_stated(db, world):
    message = add_variants(db, world.home)
    data = data_for(message, [world.home.channel], baseline_rate=None, impressions_per_post=None)
    plan = experiments.check(db, world.home.org, data, NOW).plan
    assert plan.impressions_per_post == ASSUMED_IMPRESSIONS_PER_POST
    words = " ".join(plan.sentences())
    assert "assumed" in words
    assert f"{plan.required_impressions_per_arm:,} impressions" in words


def test_channels_without_impressions_default_to_clicks_per_post_and_say_so(db, world):
    manual = add_channel(db, world.home, kind="manual", name="Instagram by hand")
    found = create(db, world.home, channels=[manual])
    assert found.primary_metric == "clicks_per_post"
    message = world.home.campaign.messages[0]
    draft = experiments.check(db, world.home.org, data_for(message, [manual]), NOW)
    assert "Instagram by hand report no impressions" in draft.metric_note


def test_queue_slots_give_whole_blocks_per_channel_for_the_planned_posts(db, world):
    home = world.home
    for weekday in range(5):
        for at in (dt.time(9, 0), dt.time(13, 0), dt.time(17, 0)):
            db.add(QueueSlot(channel_id=home.channel.id, weekday=weekday, at=at, created_at=NOW))
    db.flush()
    found = create(db, home, times=(), posts_per_arm=5)
    assert len(found.slots) == 15
    assert all(s.scheduled_at > NOW for s in found.slots)
    assert set(Counter(s.arm_id for s in found.slots).values()) == {5}


def blackout(db, part, first, last):
    db.add(KeyDate(organisation_id=part.org.id, title="Exams", kind="exams", effect="blackout",
                   starts_on=first, ends_on=last, created_at=NOW))  # fmt: skip
    db.flush()


def test_queue_slots_inside_a_blackout_are_passed_over(db, world):
    home = world.home
    for weekday in range(5):
        db.add(QueueSlot(channel_id=home.channel.id, weekday=weekday, at=dt.time(9, 0),
                         created_at=NOW))  # fmt: skip
    blackout(db, home, dt.date(2026, 3, 3), dt.date(2026, 3, 6))
    found = create(db, home, times=(), posts_per_arm=2)
    days = sorted(s.scheduled_at.date() for s in found.slots)
    assert all(not dt.date(2026, 3, 3) <= d <= dt.date(2026, 3, 6) for d in days)
    assert days[0] == dt.date(2026, 3, 9)


def test_listed_times_inside_a_blackout_are_flagged_when_planning_and_refused_on_approval(
    db, world
):
    home = world.home
    blackout(db, home, dt.date(2026, 3, 11), dt.date(2026, 3, 11))
    message = add_variants(db, home)
    draft = experiments.check(db, home.org, data_for(message, [home.channel]), NOW)
    assert draft.problems == []
    assert any("inside the blackout" in w for w in draft.warnings)
    found = experiments.create_experiment(
        db, home.org, data_for(message, [home.channel]), actor(home), NOW
    )
    with pytest.raises(experiments.Refused, match="blackout"):
        experiments.approve(db, home.org, found.id, actor(home, "manager"), NOW)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": " "}, "Give the experiment a name."),
        ({"hypothesis": ""}, "Write the hypothesis"),
        ({"channel_ids": ()}, "Choose at least one channel."),
        ({"verdict_rule": "bayes"}, "Choose the verdict rule"),
        ({"minimum_lift": 0.0}, "smallest lift"),
        ({"baseline_rate": 0.7}, "must be a click rate below 100%"),
        ({"times": ("2026-03-01 09:00",)}, "is in the past"),
        ({"times": ("next tuesday",)}, "is not a date and time"),
        ({"times": TIMES[:3]}, "too few"),
        ({"report_age_seconds": 60}, "from 1 hour to 90 days"),
    ],
)
def test_bad_input_is_refused_with_the_reason(db, world, change, problem):
    with pytest.raises(experiments.Refused) as caught:
        create(db, world.home, **change)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_one_variant_is_not_an_experiment(db, world):
    message = add_variants(db, world.home)
    data = data_for(message, [world.home.channel], variant_ids=(message.variants[0].id,))
    with pytest.raises(experiments.Refused, match="Choose 2 to 6 variants"):
        experiments.create_experiment(db, world.home.org, data, actor(world.home), NOW)


def test_another_organisations_message_or_channel_is_refused(db, world):
    message = add_variants(db, world.home)
    foreign = world.other.campaign.messages[0]
    with pytest.raises(NotFound):
        experiments.create_experiment(
            db, world.home.org, data_for(foreign, [world.home.channel]), actor(world.home), NOW
        )
    with pytest.raises(experiments.Refused, match="does not exist"):
        experiments.create_experiment(
            db, world.home.org, data_for(message, [world.other.channel]), actor(world.home), NOW
        )
    found = create(db, world.other)
    with pytest.raises(NotFound):
        experiments.get_experiment(db, world.home.org.id, found.id)


# --- assignment -----------------------------------------------------------------------------


def test_the_stored_seed_reproduces_the_assignment(db, world):
    found = create(db, world.home, seed=777)
    again = create(db, world.other, seed=777)
    positions = {a.id: a.position for a in found.arms}
    other_positions = {a.id: a.position for a in again.arms}
    ours = [positions[a] for a in experiments.assignment(found)]
    theirs = [other_positions[a] for a in experiments.assignment(again)]
    assert ours == theirs  # same seed, same slot times, one channel each: the same draw


def test_redrawing_changes_the_seed_and_the_assignment_and_is_audited(db, world):
    found = create(db, world.home)
    before, seed = experiments.assignment(found), found.seed
    experiments.redraw(db, world.home.org, found.id, actor(world.home), NOW)
    assert found.seed != seed
    assert experiments.assignment(found) != before
    actions = [e.action for e in experiments.history(db, world.home.org.id, found.id)]
    assert actions == ["experiment.created", "experiment.redrawn"]


# --- approval -------------------------------------------------------------------------------


def test_approval_makes_one_approved_post_per_slot_with_its_arms_variant(db, world):
    home = world.home
    second = add_channel(db, home)
    found = create(db, home, channels=[home.channel, second])
    experiments.approve(db, home.org, found.id, actor(home, "manager"), NOW)
    assert found.status == "running"
    assert found.approved_by_id == home.manager.id
    arms = {a.id: a for a in found.arms}
    for slot in found.slots:
        post = db.get(Post, slot.post_id)
        variant = arms[slot.arm_id].variant
        assert post.status == "approved"
        assert post.approved_by_id == home.manager.id
        assert post.variant_id == variant.id
        assert post.text == variant.text
        assert post.link_url == home.campaign.messages[0].link_url
        assert [(d.channel_id, d.due_at) for d in post.deliveries] == [
            (slot.channel_id, slot.scheduled_at)
        ]


def test_approval_freezes_the_plan(db, world):
    found = create(db, world.home)
    experiments.approve(db, world.home.org, found.id, actor(world.home, "manager"), NOW)
    frozen = experiments.assignment(found)
    with pytest.raises(ServiceError, match="cannot be re-drawn"):
        experiments.redraw(db, world.home.org, found.id, actor(world.home), NOW)
    with pytest.raises(ServiceError, match="cannot be changed"):
        experiments.update_experiment(
            db, world.home.org, found.id, "New", "New", actor(world.home), NOW
        )
    with pytest.raises(ServiceError, match="cannot be approved"):
        experiments.approve(db, world.home.org, found.id, actor(world.home, "manager"), NOW)
    assert experiments.assignment(found) == frozen


def test_staff_cannot_approve_or_conclude(db, world):
    found = create(db, world.home)
    with pytest.raises(PermissionDenied):
        experiments.approve(db, world.home.org, found.id, actor(world.home), NOW)
    with pytest.raises(PermissionDenied):
        experiments.conclude(db, world.home.org, found.id, "inconclusive", None, "x",
                             actor(world.home), NOW)  # fmt: skip


def test_approval_is_refused_when_a_slot_has_passed(db, world):
    found = create(db, world.home)
    later = dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)
    with pytest.raises(experiments.Refused, match="in the past"):
        experiments.approve(db, world.home.org, found.id, actor(world.home, "manager"), later)


def test_a_planned_experiment_can_be_renamed(db, world):
    found = create(db, world.home)
    experiments.update_experiment(
        db, world.home.org, found.id, "Renamed", "Still a question", actor(world.home), NOW
    )
    assert (found.name, found.hypothesis) == ("Renamed", "Still a question")


# --- running and concluding -----------------------------------------------------------------


def running(db, part):
    found = create(db, part)
    experiments.approve(db, part.org, found.id, actor(part, "manager"), NOW)
    return found


def test_progress_counts_published_posts_per_arm(db, world):
    found = running(db, world.home)
    first = found.slots[0]
    delivery = db.scalar(select(Delivery).where(Delivery.post_id == first.post_id))
    delivery.status = "published"
    db.flush()
    rows = {p.arm.id: p for p in experiments.progress(db, found)}
    assert rows[first.arm_id].published == 1
    assert sum(p.published for p in rows.values()) == 1
    assert sum(p.scheduled for p in rows.values()) == len(found.slots) - 1
    assert all(p.planned == found.planned_posts_per_arm for p in rows.values())


def test_concluding_needs_a_note_and_cancels_posts_not_yet_sent(db, world):
    home = world.home
    found = running(db, home)
    chosen = found.arms[1]
    with pytest.raises(ServiceError, match="Write what you learnt"):
        experiments.conclude(db, home.org, found.id, "adopt_variant", chosen.id, " ",
                             actor(home, "manager"), NOW)  # fmt: skip
    with pytest.raises(ServiceError, match="not the control"):
        experiments.conclude(db, home.org, found.id, "adopt_variant", found.arms[0].id, "x",
                             actor(home, "manager"), NOW)  # fmt: skip
    experiments.conclude(db, home.org, found.id, "adopt_variant", chosen.id,
                         "Questions work for finalists.", actor(home, "manager"), NOW)  # fmt: skip
    assert (found.status, found.decision, found.chosen_arm_id) == (
        "concluded", "adopt_variant", chosen.id,
    )  # fmt: skip
    statuses = {db.get(Post, s.post_id).status for s in found.slots}
    assert statuses == {"cancelled"}
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "experiment.concluded"))
    assert event.detail["cancelled_posts"] == len(found.slots)


def test_abandoning_needs_a_reason(db, world):
    found = create(db, world.home)
    with pytest.raises(ServiceError, match="Say why"):
        experiments.abandon(db, world.home.org, found.id, "", actor(world.home, "manager"), NOW)
    experiments.abandon(db, world.home.org, found.id, "The event was cancelled.",
                        actor(world.home, "manager"), NOW)  # fmt: skip
    assert found.status == "abandoned"
    assert found.learning == "The event was cancelled."


def test_the_library_finds_concluded_and_abandoned_experiments_by_tag_audience_and_text(db, world):
    home = world.home
    kept = running(db, home)
    experiments.conclude(db, home.org, kept.id, "no_difference", None,
                         "Statistics did not beat a bare link.", actor(home, "manager"), NOW)  # fmt: skip
    message = home.campaign.messages[0]
    other = experiments.create_experiment(
        db, home.org,
        data_for(message, [home.channel], name="Parents",
                 variant_ids=(message.variants[0].id, message.variants[1].id)),
        actor(home), NOW,
    )  # fmt: skip
    experiments.abandon(db, home.org, other.id, "Wrong term.", actor(home, "manager"), NOW)
    still_planned = experiments.create_experiment(
        db, home.org, data_for(message, [home.channel], name="Not yet"), actor(home), NOW
    )

    def ids(**query):
        return {e.id for e in experiments.library(db, home.org.id, **query)}

    assert ids() == {kept.id, other.id}
    assert still_planned.id not in ids()
    assert ids(tag="statistic") == {kept.id}
    assert ids(tag="question") == {kept.id, other.id}
    assert ids(audience="graduates") == {kept.id}
    assert ids(text="STATISTICS did") == {kept.id}
    assert ids(text="bare LINK") == {kept.id, other.id}  # the hypothesis counts too
    assert ids(text="wrong term") == {other.id}
    assert ids(text="100%_") == set()
    assert experiments.library(db, world.other.org.id) == []


def test_every_state_change_is_audited(db, world):
    found = running(db, world.home)
    experiments.conclude(db, world.home.org, found.id, "inconclusive", None, "Too few clicks.",
                         actor(world.home, "manager"), NOW)  # fmt: skip
    actions = [e.action for e in experiments.history(db, world.home.org.id, found.id)]
    assert actions == ["experiment.created", "experiment.approved", "experiment.concluded"]
