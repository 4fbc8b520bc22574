"""The demo's experiments: concluded, running and planned, each consistent with its own report."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import select

from campaign.models import Delivery, Membership, Post, User
from campaign.models.experiment import Experiment
from campaign.services import experiments
from campaign.services.audit import Actor
from campaign.services.demo import load_demo
from campaign.services.experiment_reports import experiment_report

NOW = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)


def _manager(db, org):
    row = db.execute(
        select(User.id, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == org.id, Membership.role == "manager")
    ).one()
    return Actor(org.id, row.email, row.id, "manager")


def _experiments(db, org):
    found = db.scalars(
        select(Experiment).where(Experiment.organisation_id == org.id).order_by(Experiment.id)
    ).all()
    return {e.status: e for e in found}


def test_the_demo_has_a_concluded_a_running_and_a_planned_experiment(db, hasher):
    org, _ = load_demo(db, hasher, NOW)
    by_status = _experiments(db, org)
    assert set(by_status) == {"concluded", "running", "planned"}
    concluded = by_status["concluded"]
    assert concluded.learning.strip() and concluded.decision is not None
    # Every slot of a recorded experiment is a post with its arm's variant.
    for experiment in (concluded, by_status["running"]):
        arms = {a.id: a for a in experiment.arms}
        for slot in experiment.slots:
            post = db.get(Post, slot.post_id)
            assert post.variant_id == arms[slot.arm_id].variant_id
    states = Counter(
        db.scalar(select(Delivery.status).where(Delivery.post_id == slot.post_id))
        for slot in by_status["running"].slots
    )
    assert states["published"] > 0 and states["scheduled"] > 0  # under way, not finished
    planned = by_status["planned"]
    assert all(slot.post_id is None for slot in planned.slots)
    per_arm = Counter(slot.arm_id for slot in planned.slots)
    assert len(per_arm) == len(planned.arms) and max(per_arm.values()) - min(per_arm.values()) <= 1


def test_the_concluded_decision_follows_what_its_report_says(db, hasher):
    org, _ = load_demo(db, hasher, NOW)
    concluded = _experiments(db, org)["concluded"]
    report = experiment_report(db, concluded.id, org.id, NOW)
    better = [c.arm for c in getattr(report.comparison, "comparisons", ()) if c.verdict == "better"]
    if better:
        assert concluded.decision == "adopt_variant"
        assert concluded.chosen_arm is not None and concluded.chosen_arm.name in better
    else:
        assert concluded.decision == "inconclusive" and concluded.chosen_arm_id is None
    # The demo's history makes clicks per impression realistic (a percent or two), not 10%+.
    rates = [row.rate for row in report.arms if row.rate is not None]
    assert rates and all(0.003 < rate < 0.05 for rate in rates), rates


def test_a_manager_can_approve_the_demos_planned_experiment(db, hasher):
    org, _ = load_demo(db, hasher, NOW)
    planned = _experiments(db, org)["planned"]
    approved = experiments.approve(db, org, planned.id, _manager(db, org), NOW)
    assert approved.status == "running"
    assert all(slot.post_id is not None for slot in approved.slots)
