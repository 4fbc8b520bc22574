"""The metrics tick and `campaign metrics collect`, on a fresh database of each kind."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from campaign import create_app
from campaign.channels.base import PlatformMetrics
from campaign.cli import cli
from campaign.db import database_now
from campaign.models import Channel, Delivery, Post
from campaign.models.metrics import MetricSnapshot
from campaign.services.channel_runtime import SqlOutboxStore
from campaign.services.metric_adapters import set_outbox_metrics
from campaign.services.organisations import create_organisation
from campaign.web.context import state
from campaign.worker.scheduler import build_metrics_collector, build_scheduler, collect_metrics
from tests.conftest import settings_for


@pytest.fixture
def fresh_app(db_kind, fresh_database_url, tmp_path):
    application = create_app(settings_for(fresh_database_url(db_kind), tmp_path))
    result = application.test_cli_runner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    yield application
    state(application).engine.dispose()


def _seed(app):
    """An outbox post with figures and an X post whose channel has no credentials, both 2 h old."""
    factory = state(app).session_factory
    with factory.begin() as session:
        now = database_now(session)
        org = create_organisation(session, "metrics-uni", "Metrics Uni", "Europe/London", now)
        outbox = Channel(
            organisation_id=org.id, kind="outbox", display_name="Timeline", audience="students"
        )
        x = Channel(organisation_id=org.id, kind="x", display_name="Careers X", audience="students")
        session.add_all([outbox, x])
        session.flush()
        ids = (org.id, outbox.id, x.id)
    entry_id, _at = SqlOutboxStore(factory).insert(ids[1], "k-outbox", "Hello", None)
    published = now - dt.timedelta(hours=2)
    delivery_ids = {}
    with factory.begin() as session:
        for channel_id, external_id, key in (
            (ids[1], f"outbox-{entry_id}", "k-outbox"),
            (ids[2], "1234567890", "k-x"),
        ):
            post = Post(organisation_id=ids[0], text="Hello", status="approved")
            post.deliveries.append(
                Delivery(
                    channel_id=channel_id,
                    status="published",
                    due_at=published,
                    published_at=published,
                    external_id=external_id,
                    idempotency_key=key,
                )
            )
            session.add(post)
            session.flush()
            delivery_ids[channel_id] = post.deliveries[0].id
        set_outbox_metrics(session, entry_id, PlatformMetrics(impressions=90, likes=3), now)
    return ids, delivery_ids


def test_collect_prints_each_channels_counts_and_stores_snapshots(fresh_app):
    (_org, outbox_id, x_id), deliveries = _seed(fresh_app)
    result = fresh_app.test_cli_runner().invoke(cli, ["metrics", "collect"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        f"channel {outbox_id} (outbox, Timeline): 1 collected, 0 not found, 0 rate-limited, "
        "0 failed" in lines
    )
    [x_line] = [line for line in lines if line.startswith(f"channel {x_id} ")]
    assert re.search(
        r"0 collected, 0 not found, 0 rate-limited, 1 failed \(reconnect needed", x_line
    )
    assert lines[-1] == (
        "metrics collect: 1 collected, 0 not found, 0 rate-limited, 1 failed on 2 channel(s)"
    )
    with state(fresh_app).session_factory() as session:
        rows = session.scalars(
            select(MetricSnapshot).where(MetricSnapshot.delivery_id == deliveries[outbox_id])
        ).all()
    assert {(r.window, r.impressions, r.likes) for r in rows} == {("1h", 90, 3), ("latest", 90, 3)}


def test_collect_with_nothing_due_says_so(fresh_app):
    result = fresh_app.test_cli_runner().invoke(cli, ["metrics", "collect"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "metrics collect: 0 collected, 0 not found, 0 rate-limited, 0 failed on 0 channel(s)"
    )


def test_the_tick_collects_at_the_database_clock(fresh_app):
    (_org, outbox_id, _x), deliveries = _seed(fresh_app)
    report = collect_metrics(build_metrics_collector(state(fresh_app)))
    assert report.total("collected") == 1
    with state(fresh_app).session_factory() as session:
        [latest] = session.scalars(
            select(MetricSnapshot).where(
                MetricSnapshot.delivery_id == deliveries[outbox_id],
                MetricSnapshot.window == "latest",
            )
        ).all()
        now = database_now(session)
    assert dt.timedelta(hours=2) <= dt.timedelta(seconds=latest.age_seconds) < dt.timedelta(hours=3)
    assert latest.collected_at <= now


def test_the_scheduler_runs_metrics_on_its_configured_interval(
    db_kind, fresh_database_url, tmp_path
):
    settings = settings_for(
        fresh_database_url(db_kind), tmp_path, metrics={"collect_every_seconds": 120}
    )
    app = create_app(settings)
    try:
        scheduler = build_scheduler(state(app), blocking=False)
        job = scheduler.get_job("collect_metrics")
        assert job is not None and job.max_instances == 1
        assert job.trigger.interval == dt.timedelta(seconds=120)
    finally:
        state(app).engine.dispose()
