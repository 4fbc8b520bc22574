"""What to try next: the engine's Thompson allocation over a message's framings' stored posts."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from campaign.analysis import FramingCounts, thompson_allocation
from campaign.models import Delivery, Post, Variant
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services import NotFound, suggestions
from tests.conftest import NOW


def tag(part, key):
    return next(t for t in part.org.framing_tags if t.key == key)


def published(db, part, variant, impressions, clicks):
    post = Post(organisation_id=part.org.id, text=variant.text, status="approved",
                variant_id=variant.id, scheduled_for=NOW - dt.timedelta(days=3),
                created_at=NOW)  # fmt: skip
    delivery = Delivery(channel=part.channel, due_at=NOW - dt.timedelta(days=3),
                        idempotency_key=uuid.uuid4().hex, status="published",
                        published_at=NOW - dt.timedelta(days=3))  # fmt: skip
    post.deliveries.append(delivery)
    db.add(post)
    db.flush()
    db.add(MetricSnapshot(delivery_id=delivery.id, window="7d", source="platform",
                          window_seconds=7 * 86400, collected_at=NOW, age_seconds=7 * 86400,
                          impressions=impressions))  # fmt: skip
    link = TrackedLink(code=uuid.uuid4().hex[:12], delivery_id=delivery.id,
                       organisation_id=part.org.id, target_url="https://example.ac.uk/o",
                       target_sha256=uuid.uuid4().hex)  # fmt: skip
    db.add(link)
    db.flush()
    db.add_all(LinkClick(link_id=link.id, clicked_at=NOW, day=NOW.date()) for _ in range(clicks))
    db.flush()


def variants(db, part):
    message = part.campaign.messages[0]
    question = tag(part, "question")
    message.variants.append(
        Variant(
            label="Question",
            text="Ready for results day?",
            audience="students",
            created_at=NOW,
            framing_tags=[question],
        )
    )
    db.flush()
    return message


def test_the_suggestion_is_the_engines_allocation_over_stored_counts(db, world):
    message = variants(db, world.home)
    bare, question = message.variants
    published(db, world.home, bare, 1000, 10)
    published(db, world.home, bare, 500, 5)
    published(db, world.home, question, 800, 30)
    found = suggestions.suggest_next(db, world.home.org.id, message.id, NOW)
    assert [(f.clicks, f.impressions, f.posts) for f in found.framings] == [
        (15, 1500, 2),
        (30, 800, 1),
    ]
    names = [f"Bare (#{bare.id})", f"Question (#{question.id})"]
    expected = thompson_allocation(
        [FramingCounts(names[0], 15, 1500), FramingCounts(names[1], 30, 800)],
        rng=message.id * 100_003 + NOW.date().toordinal(),
    )
    assert found.allocation == expected
    assert found.allocation.shares[names[0]] >= 0.1  # the floor keeps the loser in play
    assert "suggestion, not a verdict" in found.why
    assert "45 clicks from 2,300 impressions" in found.why


def test_a_framing_without_posts_borrows_from_posts_with_the_same_tags(db, world):
    home = world.home
    message = variants(db, home)
    other = home.campaign.messages[0].variants[1]
    twin_message = type(message)(campaign_id=home.campaign.id, title="Twin", created_at=NOW)
    twin = Variant(label="Twin question", text="Ready?", audience="students", created_at=NOW,
                   framing_tags=list(other.framing_tags))  # fmt: skip
    twin_message.variants.append(twin)
    db.add(twin_message)
    db.flush()
    published(db, home, twin, 400, 12)
    found = suggestions.suggest_next(db, home.org.id, message.id, NOW)
    question = next(f for f in found.framings if f.variant.id == other.id)
    assert (question.clicks, question.impressions, question.borrowed) == (12, 400, True)
    assert "same framing tags" in found.why


def test_with_no_history_every_framing_is_equally_likely(db, world):
    message = variants(db, world.home)
    found = suggestions.suggest_next(db, world.home.org.id, message.id, NOW)
    assert list(found.allocation.shares.values()) == pytest.approx([0.5, 0.5])
    assert "fair draw" in found.why


def test_another_organisations_message_is_not_found(db, world):
    with pytest.raises(NotFound):
        suggestions.suggest_next(db, world.home.org.id, world.other.campaign.messages[0].id, NOW)
