"""The collector through the real Mastodon adapter and guarded HTTP session, against the
loopback fake platform: a post reported published but never stored is flagged (R6)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from campaign.channels.base import OutgoingPost
from campaign.config import load_settings
from campaign.crypto import CredentialBox, generate_key
from campaign.db import database_now
from campaign.models import Channel, Delivery, Post
from campaign.models.metrics import MetricChannelState, MetricCollectionState, MetricSnapshot
from campaign.services.channel_runtime import AdapterFactory
from campaign.services.metric_adapters import MetricsAdapters
from campaign.services.metric_windows import MetricsRules, windows_from
from campaign.services.metrics import collect_metrics
from campaign.services.organisations import create_organisation
from campaign.services.publishing import ChannelSnapshot
from tests.fakeplatform import FakePlatform, running_fake_platform

RULES = MetricsRules(
    windows=windows_from(["1h", "24h"]),
    latest_every=dt.timedelta(hours=1),
    latest_margin=dt.timedelta(hours=24),
)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePlatform]:
    with running_fake_platform(tmp_path) as platform:
        yield platform


@pytest.fixture(autouse=True)
def _empty(factory):
    with factory.begin() as session:
        session.execute(text("DELETE FROM organisations"))


def _adapters(factory, tmp_path, box):
    settings = load_settings(
        {
            "app": {"instance_path": str(tmp_path)},
            "database": {"url": "sqlite://"},
            "network": {"allow_private_hosts": ["127.0.0.1"]},
            "publishing": {"request_timeout_seconds": 5},
        },
        use_file=False,
    )
    return MetricsAdapters(AdapterFactory(settings, box, factory))


def _publish_and_record(factory, adapters, fake, texts):
    """Publish each text through the real adapter, then record it as a published delivery."""
    box = adapters.adapters.credentials
    with factory.begin() as session:
        now = database_now(session)
        org = create_organisation(session, f"o{uuid.uuid4().hex[:8]}", "O", "Europe/London", now)
        channel = Channel(
            organisation_id=org.id,
            kind="mastodon",
            display_name="Careers on Mastodon",
            audience="students",
            base_url=fake.base_url,
            credentials_encrypted=box.encrypt(json.dumps({"access_token": "tok"}).encode()),
        )
        session.add(channel)
        session.flush()
        snapshot = ChannelSnapshot(
            channel.id, org.id, "mastodon", channel.base_url, channel.credentials_encrypted
        )
    publisher = adapters.adapters.build(snapshot)
    published_at = now - dt.timedelta(hours=2)
    ids = []
    for n, body in enumerate(texts):
        key = uuid.uuid4().hex
        result = publisher.publish(OutgoingPost(n, key, body, None, published_at))
        with factory.begin() as session:
            post = Post(organisation_id=org.id, text=body, status="approved")
            post.deliveries.append(
                Delivery(
                    channel_id=snapshot.id,
                    status="published",
                    due_at=published_at,
                    published_at=published_at,
                    external_id=result.external_id,
                    idempotency_key=key,
                )
            )
            session.add(post)
            session.flush()
            ids.append(post.deliveries[0].id)
    adapters.release(publisher)
    return snapshot.id, ids, now


def test_a_post_reported_published_but_not_stored_is_flagged_not_counted(factory, fake, tmp_path):
    adapters = _adapters(factory, tmp_path, CredentialBox([generate_key()]))
    fake.add_fault("success_not_stored", platform="mastodon", times=1)
    _channel, [ghost, real], now = _publish_and_record(
        factory, adapters, fake, ["Never stored", "Careers fair on Tuesday"]
    )
    report = collect_metrics(factory, adapters.build, RULES, now, release=adapters.release)
    assert (report.total("collected"), report.total("not_found")) == (1, 1)
    with factory.begin() as session:
        flagged = session.get(MetricCollectionState, ghost)
        assert flagged.not_found_at == now and flagged.next_collect_at is None
        rows = session.scalars(select(MetricSnapshot).order_by(MetricSnapshot.window)).all()
    assert {(r.delivery_id, r.window) for r in rows} == {(real, "1h"), (real, "latest")}
    assert all(
        (r.likes, r.reposts, r.replies, r.quotes, r.impressions) == (0, 0, 0, 0, None) for r in rows
    )
    reads = [c for c in fake.calls("mastodon") if c["method"] == "GET"]
    assert all(c["authorization"] == "Bearer tok" for c in reads)


def test_a_rate_limited_instance_is_left_alone_until_its_reset(factory, fake, tmp_path):
    adapters = _adapters(factory, tmp_path, CredentialBox([generate_key()]))
    channel_id, [delivery_id], now = _publish_and_record(factory, adapters, fake, ["Apply now"])
    fake.add_fault("rate_limit", platform="mastodon", path="lookup", retry_after=900)
    report = collect_metrics(factory, adapters.build, RULES, now, release=adapters.release)
    assert report.total("rate_limited") == 1
    with factory.begin() as session:
        state = session.get(MetricChannelState, channel_id)
        wait = state.next_collect_at - now
        held = session.get(MetricCollectionState, delivery_id).next_collect_at
    assert dt.timedelta(minutes=10) < wait <= dt.timedelta(minutes=16)
    assert held == state.next_collect_at
