"""The demo organisation: a term of queued posts, key dates, one post waiting for approval."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import select

from campaign.models import Delivery, KeyDate, OutboxEntry, Post, QueueSlot
from campaign.models.engagement import LinkClick
from campaign.models.metrics import MetricSnapshot
from campaign.services import links
from campaign.services.demo import load_demo
from campaign.services.metric_reads import snapshots_at_age


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
    queued = [
        p
        for p in by_status["approved"]
        if p.variant_id is not None and p.deliveries[0].status == "scheduled"
    ]
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


def test_the_demo_has_weeks_of_published_history_with_clicks_and_figures(db, hasher):
    now = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
    org, _ = load_demo(db, hasher, now, link_base_url="https://careers.example")
    published = db.scalars(
        select(Delivery)
        .join(Post)
        .where(Post.organisation_id == org.id, Delivery.status == "published")
    ).all()
    assert len(published) >= 30
    assert min(d.published_at for d in published) < now - dt.timedelta(weeks=5)
    assert all(d.published_at < now for d in published)
    # Each framing went out equally often: a balanced history.
    per_variant = Counter(d.post.variant_id for d in published)
    assert len(set(per_variant.values())) == 1
    entries = {e.idempotency_key: e for e in db.scalars(select(OutboxEntry)).all()}
    for delivery in published:
        entry = entries[delivery.idempotency_key]
        assert delivery.external_id == f"outbox-{entry.id}"
        assert "https://careers.example/l/" in entry.text
        assert "https://www.example.ac.uk" not in entry.text
    ids = [d.id for d in published]
    counts = links.click_counts(db, ids)
    assert sum(c.clicks for c in counts.values()) > 100
    assert all(c.unique <= c.clicks for c in counts.values())
    clicks = db.scalars(select(LinkClick)).all()
    assert all(c.clicked_at <= now for c in clicks)
    windows = Counter(
        s.window for s in db.scalars(select(MetricSnapshot)).all() if s.delivery_id in set(ids)
    )
    assert windows["latest"] == len(published)
    assert windows["1h"] == len(published) and 0 < windows["7d"] < len(published)
    at_day = snapshots_at_age(db, ids, 86400 + 600)
    assert all(row.figures.impressions and row.window == "24h" for row in at_day.values())
