"""An experiment's planned sample: the power calculation, in numbers and in words.

Required impressions per arm come from the analysis engine (the two-proportion formula for the
planned rule, the mixture SPRT planner for the sequential rule), at the baseline rate and the
smallest relative lift worth acting on. They become posts per arm through a typical number of
impressions per post: the organisation's own median where it has published posts with figures,
else a stated assumption.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.analysis.sample_size import required_impressions
from campaign.analysis.sequential import sequential_sample_size
from campaign.channels import capabilities
from campaign.models import Channel, Delivery, Post
from campaign.models.metrics import METRIC_SOURCES
from campaign.services import ServiceError
from campaign.services.links import click_counts
from campaign.services.metric_reads import snapshots_at_age

# Stated when the organisation has no history to go on (stats.md §5: careers posts, ~1-2%).
ASSUMED_BASELINE_RATE = 0.01
ASSUMED_IMPRESSIONS_PER_POST = 500
HISTORY_POSTS = 200  # the most recent published deliveries the typical figures come from
MIN_POSTS_PER_ARM = 2  # with one post per arm, between-post variation cannot be estimated
POWER = 0.8
MAX_IMPRESSIONS_PER_ARM = 10**9  # fits the column, and more than any careers service reaches
MAX_POSTS_PER_ARM = 150  # an experiment holds at most experiment_slots.MAX_SLOTS posts


@dataclass(frozen=True)
class History:
    """What the organisation's recent published posts say (None where they say nothing)."""

    posts: int
    impressions_per_post: int | None
    clicks: int
    impressions: int

    @property
    def rate(self) -> float | None:
        if self.impressions <= 0 or self.clicks <= 0:
            return None
        return self.clicks / self.impressions


@dataclass(frozen=True)
class PowerPlan:
    """The planned sample and how it was reached."""

    arms: int
    verdict_rule: str
    alpha: float
    minimum_lift: float
    baseline_rate: float
    baseline_source: str
    impressions_per_post: int
    impressions_source: str
    required_impressions_per_arm: int
    computed_posts_per_arm: int
    posts_per_arm: int  # what the experiment plans (the person may choose more or fewer)

    def sentences(self) -> list[str]:
        """The calculation in words, as the plan page shows it."""
        rule = (
            "the two-proportion formula (80% power, two-sided)"
            if self.verdict_rule == "planned"
            else f"the always-valid sequential rule with {self.arms - 1} comparison(s) (80% power)"
        )
        said = [
            f"Baseline click rate {self.baseline_rate:.2%} ({self.baseline_source}); the smallest "
            f"improvement worth acting on is {self.minimum_lift:.0%}, so the plan looks for "
            f"{self.baseline_rate * (1 + self.minimum_lift):.2%} or better.",
            f"By {rule} at alpha {self.alpha:g}, each arm needs about "
            f"{self.required_impressions_per_arm:,} impressions.",
            f"At about {self.impressions_per_post:,} impressions per post "
            f"({self.impressions_source}) that is {self.computed_posts_per_arm} posts per arm.",
        ]
        if self.posts_per_arm != self.computed_posts_per_arm:
            said.append(
                f"You chose {self.posts_per_arm} posts per arm instead: "
                + (
                    "fewer than the calculation asks, so a real difference of that size may "
                    "well be missed."
                    if self.posts_per_arm < self.computed_posts_per_arm
                    else "more than the calculation asks, which only adds certainty."
                )
            )
        return said


def reports_impressions(channel: Channel) -> bool:
    """Whether a channel's network reports impressions by itself."""
    try:
        return "impressions" in capabilities(channel.kind).metrics
    except KeyError:
        return False


def default_metric(channels: Sequence[Channel]) -> str:
    """Clicks per impression, unless no chosen channel reports impressions."""
    if channels and not any(reports_impressions(c) for c in channels):
        return "clicks_per_post"
    return "clicks_per_impression"


def metric_note(metric: str, channels: Sequence[Channel]) -> str | None:
    """Plain words when the metric is per post, or when impressions must be entered by hand."""
    silent = [c.display_name for c in channels if not reports_impressions(c)]
    if metric == "clicks_per_post":
        return (
            "Compared on tracked-link clicks per post, because "
            + (f"{', '.join(silent)} report" if silent else "these channels report")
            + " no impressions: a framing posted to a bigger audience can look better for that "
            "reason alone."
        )
    if silent:
        return (
            f"{', '.join(silent)} report no impressions by themselves: enter them by hand or by "
            "CSV, or those posts are left out of the rate."
        )
    return None


def history(
    session: Session, organisation_id: int, channel_ids: Sequence[int], age_seconds: int
) -> History:
    """Typical impressions per post and the click rate of recent published posts.

    The chosen channels' posts are used when they have figures, else all the organisation's.
    """
    found = _history(session, organisation_id, channel_ids, age_seconds)
    if found.impressions_per_post is None and channel_ids:
        found = _history(session, organisation_id, (), age_seconds)
    return found


def _history(
    session: Session, organisation_id: int, channel_ids: Sequence[int], age_seconds: int
) -> History:
    query = (
        select(Delivery.id)
        .join(Post, Post.id == Delivery.post_id)
        .where(Post.organisation_id == organisation_id, Delivery.status == "published")
        .order_by(Delivery.published_at.desc(), Delivery.id.desc())
        .limit(HISTORY_POSTS)
    )
    if channel_ids:
        query = query.where(Delivery.channel_id.in_(list(channel_ids)))
    ids = list(session.scalars(query))
    impressions: dict[int, int] = {}
    for source in reversed(METRIC_SOURCES):  # platform figures win over manual and CSV ones
        for delivery_id, row in snapshots_at_age(session, ids, age_seconds, source).items():
            if row.figures.impressions is not None:
                impressions[delivery_id] = row.figures.impressions
    if not impressions:
        return History(len(ids), None, 0, 0)
    clicks = click_counts(session, impressions)
    return History(
        posts=len(ids),
        impressions_per_post=max(1, round(statistics.median(impressions.values()))),
        clicks=sum(clicks[i].clicks for i in impressions),
        impressions=sum(impressions.values()),
    )


def power_plan(
    arms: int,
    verdict_rule: str,
    alpha: float,
    minimum_lift: float,
    baseline_rate: float | None,
    impressions_per_post: int | None,
    past: History,
    posts_per_arm: int | None = None,
) -> PowerPlan:
    """The planned sample; ServiceError naming the input when no plan is possible."""
    if not 0.0001 <= alpha < 0.5:
        raise ServiceError("Alpha must be from 0.0001 to below 0.5 (0.05 is usual).")
    if not 0.0 < minimum_lift <= 10.0:
        raise ServiceError("The smallest lift worth acting on must be above 0% and at most 1000%.")
    if baseline_rate is not None:
        rate, rate_source = baseline_rate, "as you gave it"
    elif past.rate is not None:
        rate = past.rate
        rate_source = f"your last {past.posts} posts: {past.clicks:,} clicks from " + (
            f"{past.impressions:,} impressions"
        )
    else:
        rate, rate_source = ASSUMED_BASELINE_RATE, "assumed: no click history yet"
    if not 0.0 < rate < 1.0:
        raise ServiceError("The baseline click rate must be above 0% and below 100%.")
    if impressions_per_post is not None:
        if impressions_per_post < 1:
            raise ServiceError("Impressions per post must be at least 1.")
        per_post, per_post_source = impressions_per_post, "as you gave it"
    elif past.impressions_per_post is not None:
        per_post = past.impressions_per_post
        per_post_source = f"the median of your last {past.posts} published posts"
    else:
        per_post = ASSUMED_IMPRESSIONS_PER_POST
        per_post_source = "assumed: no impression figures yet"
    try:
        if verdict_rule == "sequential":
            needed = sequential_sample_size(rate, minimum_lift, alpha, comparisons=arms - 1)
        else:
            needed = required_impressions(rate, minimum_lift, alpha, POWER)
    except (OverflowError, ValueError, ZeroDivisionError):
        needed = None
    if needed is None:
        raise ServiceError(
            f"No plan fits a {minimum_lift:.0%} lift on a {rate:.2%} baseline at alpha "
            f"{alpha:g}: the target must be a click rate below 100% and the lift large enough "
            "to detect. Choose a different lift or check the baseline."
        )
    if needed > MAX_IMPRESSIONS_PER_ARM:
        raise ServiceError(
            f"That plan needs {needed:,} impressions per arm, more than any experiment here can "
            "reach: plan for a larger lift."
        )
    computed = max(MIN_POSTS_PER_ARM, math.ceil(needed / per_post))
    if computed > MAX_POSTS_PER_ARM and posts_per_arm is None:
        raise ServiceError(
            f"That plan needs {computed:,} posts per arm (about {needed:,} impressions at "
            f"{per_post:,} per post), more than the {MAX_POSTS_PER_ARM} an experiment can hold: "
            "plan for a larger lift, or choose the posts per arm yourself and accept less power."
        )
    chosen = computed if posts_per_arm is None else posts_per_arm
    if not MIN_POSTS_PER_ARM <= chosen <= MAX_POSTS_PER_ARM:
        raise ServiceError(f"Plan from {MIN_POSTS_PER_ARM} to {MAX_POSTS_PER_ARM} posts per arm.")
    return PowerPlan(
        arms=arms,
        verdict_rule=verdict_rule,
        alpha=alpha,
        minimum_lift=minimum_lift,
        baseline_rate=rate,
        baseline_source=rate_source,
        impressions_per_post=per_post,
        impressions_source=per_post_source,
        required_impressions_per_arm=needed,
        computed_posts_per_arm=computed,
        posts_per_arm=chosen,
    )
