"""Experiments with published posts, stored snapshots and tracked clicks, for the report tests."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign.channels.base import PlatformMetrics
from campaign.models import (
    Campaign,
    Channel,
    Delivery,
    Experiment,
    ExperimentArm,
    ExperimentSlot,
    FramingTag,
    Message,
    Organisation,
    Post,
    Variant,
)
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.services.metrics import SnapshotValues, store_snapshots

HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class Reading:
    """One stored snapshot: window label, real age, figures, and when it was stored."""

    window: str
    age_seconds: int
    impressions: int | None
    link_clicks: int | None = None
    likes: int | None = None
    source: str = "platform"
    collected_late: int = 0  # seconds after publishing + age at which it was read


@dataclass(frozen=True)
class PostSpec:
    """One published post of an arm: readings in insertion order, tracked clicks by age."""

    published_at: dt.datetime
    readings: Sequence[Reading] = ()
    click_ages: Sequence[int] | None = ()  # None: the delivery has no tracked link
    channel: Channel | None = None
    published: bool = True


@dataclass(frozen=True)
class ArmSpec:
    name: str
    tags: Sequence[str]
    posts: Sequence[PostSpec] = field(default_factory=tuple)


def _tag(db: Session, org: Organisation, key: str) -> FramingTag:
    return db.scalars(
        select(FramingTag).where(FramingTag.organisation_id == org.id, FramingTag.key == key)
    ).one()


def store_post(db: Session, org: Organisation, channel: Channel, spec: PostSpec) -> Post:
    """A published post with one delivery, its readings (as given, in order) and clicks."""
    post = Post(
        organisation_id=org.id,
        text="Hello",
        status="approved",
        scheduled_for=spec.published_at,
        created_at=spec.published_at,
    )
    delivery = Delivery(
        channel=spec.channel or channel,
        due_at=spec.published_at,
        idempotency_key=uuid.uuid4().hex,
        updated_at=spec.published_at,
        status="published" if spec.published else "scheduled",
        published_at=spec.published_at if spec.published else None,
    )
    post.deliveries.append(delivery)
    db.add(post)
    db.flush()
    for r in spec.readings:
        figures = PlatformMetrics(
            impressions=r.impressions, link_clicks=r.link_clicks, likes=r.likes
        )
        store_snapshots(
            db,
            [
                SnapshotValues(
                    delivery.id,
                    r.window,
                    None if r.window == "latest" else r.age_seconds,
                    r.source,
                    spec.published_at + dt.timedelta(seconds=r.age_seconds + r.collected_late),
                    r.age_seconds,
                    figures,
                )
            ],
            replace_ties=True,
        )
    if spec.click_ages is not None:
        target = f"https://example.ac.uk/{uuid.uuid4().hex}"
        link = TrackedLink(
            code=uuid.uuid4().hex[:12],
            delivery_id=delivery.id,
            organisation_id=org.id,
            target_url=target,
            target_sha256=hashlib.sha256(target.encode()).hexdigest(),
        )
        db.add(link)
        db.flush()
        for age in spec.click_ages:
            at = spec.published_at + dt.timedelta(seconds=age)
            db.add(LinkClick(link_id=link.id, clicked_at=at, day=at.date(), is_first_today=False))
    db.flush()
    return post


def make_experiment(
    db: Session,
    org: Organisation,
    channel: Channel,
    arms: Sequence[ArmSpec],
    *,
    name: str = "Context or bare link",
    metric: str = "clicks_per_impression",
    rule: str = "sequential",
    status: str = "running",
    planned_posts: int = 1,
    planned_impressions: int | None = None,
    age: int = DAY,
    now: dt.datetime,
) -> Experiment:
    """An experiment whose arms' slots hold the given published posts."""
    campaign = Campaign(organisation_id=org.id, name=f"Campaign for {name}", created_at=now)
    message = Message(campaign=campaign, title=name, link_url="https://example.ac.uk/")
    db.add(campaign)
    db.flush()
    exp = Experiment(
        message_id=message.id,
        organisation_id=org.id,
        name=name,
        hypothesis="Context gets more clicks",
        primary_metric=metric,
        report_age_seconds=age,
        planned_posts_per_arm=planned_posts,
        planned_impressions_per_arm=planned_impressions,
        verdict_rule=rule,
        seed=7,
        status=status,
        created_at=now,
    )
    db.add(exp)
    db.flush()
    position = 0
    for i, spec in enumerate(arms):
        tags = [_tag(db, org, key) for key in spec.tags]
        variant = Variant(
            message=message, label=spec.name, text=spec.name, audience="students", created_at=now
        )
        variant.framing_tags = tags
        db.add(variant)
        db.flush()
        arm = ExperimentArm(experiment=exp, variant_id=variant.id, name=spec.name, position=i)
        db.add(arm)
        db.flush()
        for post_spec in spec.posts:
            post = store_post(db, org, channel, post_spec)
            db.add(
                ExperimentSlot(
                    experiment=exp,
                    channel_id=(post_spec.channel or channel).id,
                    scheduled_at=post_spec.published_at,
                    position=position,
                    arm_id=arm.id,
                    post_id=post.id,
                )
            )
            position += 1
    db.flush()
    db.expire(exp)
    return exp
