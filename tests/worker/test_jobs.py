import datetime as dt

from campaign.services import system
from campaign.web.context import state
from campaign.worker import jobs
from campaign.worker.scheduler import build_scheduler, new_identity


def test_heartbeat_is_reported_by_health(app, client, db):
    assert client.get("/api/v1/health").json["worker"]["last_tick"] is None
    system.record_heartbeat(
        db,
        "w1",
        "host",
        1,
        dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 9, 0, 5, tzinfo=dt.UTC),
    )
    assert client.get("/api/v1/health").json["worker"]["last_tick"] == "2026-03-02T09:00:05Z"


def test_health_reports_the_latest_of_several_workers(db):
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    system.record_heartbeat(db, "a", "h", 1, start, start + dt.timedelta(seconds=5))
    system.record_heartbeat(db, "b", "h", 2, start, start + dt.timedelta(seconds=9))
    system.record_heartbeat(db, "a", "h", 1, start, start + dt.timedelta(seconds=7))
    assert system.last_worker_tick(db) == start + dt.timedelta(seconds=9)


def test_scheduler_declares_fixed_ticks_not_jobs_per_post(app):
    scheduler = build_scheduler(state(app), blocking=False)
    assert {job.id for job in scheduler.get_jobs()} == {
        "heartbeat",
        "publish_due",
        "reconcile_unknown",
        "prune_logins",
        "prune_idempotency_keys",
        "instance_limits",
        "collect_metrics",
        "prune_clicks",
        "poll_feeds",
        "plan_alerts",
    }
    assert all(job.max_instances == 1 for job in scheduler.get_jobs())


def test_heartbeat_job_writes_in_its_own_transaction(app, fresh_database_url, db_kind, tmp_path):
    from campaign import create_app
    from campaign.migrate import upgrade
    from tests.conftest import settings_for

    url = fresh_database_url(db_kind)
    upgrade(url)
    fresh = create_app(settings_for(url, tmp_path))
    factory = state(fresh).session_factory
    jobs.heartbeat(factory, new_identity())
    with factory() as session:
        assert system.last_worker_tick(session) is not None
    state(fresh).engine.dispose()


def test_the_prune_clicks_job_deletes_what_is_past_retention(fresh_database_url, db_kind, tmp_path):
    from sqlalchemy import func, select

    from campaign import create_app
    from campaign.migrate import upgrade
    from campaign.models.engagement import LinkClick
    from campaign.services import links
    from tests.conftest import NOW, settings_for
    from tests.factories import build_world
    from tests.web.test_post_engagement import published_post

    url = fresh_database_url(db_kind)
    upgrade(url)
    fresh = create_app({**settings_for(url, tmp_path), "links": {"click_retention_days": 30}})
    factory = state(fresh).session_factory
    with factory.begin() as session:
        world = build_world(session, state(fresh).hasher, NOW)
        _post, delivery = published_post(session, world.home)
        published = links.ensure_links(session, [delivery.id], "https://c.example")
        code = next(iter(published[delivery.id].codes.values()))
        link_id = links.target_for(session, code, NOW).link_id
    now = dt.datetime.now(dt.UTC)
    links.record_click(state(fresh).engine, link_id, now - dt.timedelta(days=40), "old")
    links.record_click(state(fresh).engine, link_id, now - dt.timedelta(days=1), "new")
    jobs.prune_clicks(factory, state(fresh).settings)
    with factory() as session:
        assert session.scalar(select(func.count(LinkClick.id))) == 1
    state(fresh).engine.dispose()
