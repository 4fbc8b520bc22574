"""The demo organisation: a term of queued posts, key dates, one post waiting for approval."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from campaign.models import Delivery, KeyDate, Post, QueueSlot
from campaign.services.demo import load_demo


@pytest.mark.parametrize(
    "now",
    [dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC), dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)],
)
def test_the_demo_plans_a_term_through_the_real_services(db, hasher, now):
    org, created = load_demo(db, hasher, now)
    assert created
    found = db.scalars(select(Post).where(Post.organisation_id == org.id)).all()
    by_status = {s: [p for p in found if p.status == s] for s in {p.status for p in found}}
    assert len(by_status["pending_approval"]) == 1
    assert len(by_status["approved"]) >= 14
    queued = [p for p in by_status["approved"] if p.variant_id is not None]
    # A term: the queue reaches at least six weeks ahead.
    assert max(p.scheduled_for for p in queued) - now > dt.timedelta(weeks=6)
    blackouts = db.scalars(
        select(KeyDate).where(KeyDate.organisation_id == org.id, KeyDate.effect == "blackout")
    ).all()
    assert len(blackouts) >= 2
    zone = org.zone
    for post in queued:
        day = post.scheduled_for.astimezone(zone).date()
        assert not any(k.covers(day) for k in blackouts), (post.scheduled_for, day)
    # No two queued posts share a slot on one channel.
    times = db.execute(
        select(Delivery.channel_id, Delivery.due_at)
        .join(Post)
        .where(Post.organisation_id == org.id)
    ).all()
    assert len(times) == len(set(times))
    assert db.scalars(select(QueueSlot)).all()
    assert load_demo(db, hasher, now)[1] is False
