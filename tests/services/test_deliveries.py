"""What staff and managers do about publishing, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from sqlalchemy import select, text

from campaign.db import database_now
from campaign.models import AuditEvent, Channel, Delivery, DeliveryAttempt, OutboxEntry, Post
from campaign.services import NotFound, PermissionDenied, ServiceError, deliveries, publishing
from campaign.services.audit import Actor
from campaign.services.organisations import create_organisation
from tests import factories
from tests.conftest import NOW
from tests.factories import ENGINE_RULES

RULES = ENGINE_RULES


def actor(part, role="staff"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def channel(db, part, kind="outbox", **values):
    found = Channel(
        organisation_id=part.org.id,
        kind=kind,
        display_name=f"{kind} channel",
        audience="students",
        created_at=NOW,
        **values,
    )
    db.add(found)
    db.flush()
    return found


def delivery(db, part, status="scheduled", kind="outbox", due=NOW, text="Hello", on=None, **values):
    """A delivery in the given state, on `on` or a fresh channel of the given kind.

    Built in one INSERT, so that `updated_at` is what the test says, not the wall clock.
    """
    values.setdefault("updated_at", NOW)
    found = Delivery(
        channel=on or channel(db, part, kind),
        due_at=due,
        idempotency_key=uuid.uuid4().hex,
        status=status,
        **values,
    )
    post = Post(organisation_id=part.org.id, text=text, status="approved", created_at=NOW)
    post.deliveries.append(found)
    db.add(post)
    db.flush()
    return found


def status_of(db, delivery_id):
    return db.scalar(select(Delivery.status).where(Delivery.id == delivery_id))


def events(db, action):
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_cancelling_a_scheduled_delivery_cancels_it_and_audits(db, world):
    found = delivery(db, world.home)
    deliveries.cancel_delivery(db, world.home.org.id, found.id, actor(world.home), NOW)
    assert found.status == "cancelled"
    [event] = events(db, "delivery.cancelled")
    assert (event.subject_id, event.organisation_id) == (found.id, world.home.org.id)


@pytest.mark.parametrize("status", ["publishing", "unknown"])
def test_cancelling_while_publishing_is_refused_and_changes_nothing(db, world, status):
    found = delivery(db, world.home, status)
    with pytest.raises(ServiceError, match="being published right now"):
        deliveries.cancel_delivery(db, world.home.org.id, found.id, actor(world.home), NOW)
    assert status_of(db, found.id) == status
    assert events(db, "delivery.cancelled") == []


@pytest.mark.parametrize(
    ("status", "says"),
    [("published", "already published"), ("cancelled", "already cancelled"), ("missed", "missed")],
)
def test_cancelling_a_finished_delivery_names_its_state(db, world, status, says):
    found = delivery(db, world.home, status)
    with pytest.raises(ServiceError, match=says):
        deliveries.cancel_delivery(db, world.home.org.id, found.id, actor(world.home), NOW)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("javascript:alert(1)", "https://"),
        ("ftp://x", "https://"),
        ("", "Enter the address"),
        ("   ", "Enter the address"),
        ("https://", "https://"),
        ("https://example.org/a b", "spaces"),
        ("https://example.org/" + "a" * 2000, "too long"),
    ],
)
@pytest.mark.parametrize(("kind", "status"), [("manual", "scheduled"), ("outbox", "needs_review")])
def test_marking_posted_refuses_a_bad_address(db, world, url, says, kind, status):
    found = delivery(db, world.home, status, kind)
    with pytest.raises(ServiceError, match=says):
        deliveries.mark_posted(db, world.home.org.id, found.id, url, actor(world.home), NOW)
    assert status_of(db, found.id) == status


@pytest.mark.parametrize(
    ("kind", "status"), [("manual", "scheduled"), ("manual", "missed"), ("x", "needs_review")]
)
def test_marking_posted_publishes_with_the_address_and_who(db, world, kind, status):
    found = delivery(db, world.home, status, kind, last_error="We could not confirm it.")
    url = "https://social.example/@careers/1"
    deliveries.mark_posted(db, world.home.org.id, found.id, f" {url} ", actor(world.home), NOW)
    assert (found.status, found.external_url, found.published_at) == ("published", url, NOW)
    assert (found.posted_by_id, found.last_error) == (world.home.staff.id, None)
    [event] = events(db, "delivery.marked_posted")
    assert event.detail == {"previous": status, "url": url}


def test_marking_an_automatic_scheduled_delivery_as_posted_is_refused(db, world):
    found = delivery(db, world.home, "scheduled", "outbox")
    with pytest.raises(ServiceError, match="publishes by itself"):
        deliveries.mark_posted(
            db, world.home.org.id, found.id, "https://x.example/1", actor(world.home), NOW
        )
    assert status_of(db, found.id) == "scheduled"


def test_staff_cannot_publish_again(db, world):
    found = delivery(db, world.home, "failed")
    with pytest.raises(PermissionDenied):
        deliveries.publish_again(db, world.home.org.id, found.id, actor(world.home), NOW)
    assert status_of(db, found.id) == "failed"


@pytest.mark.parametrize("status", ["needs_review", "failed", "missed"])
def test_publishing_again_reschedules_now_with_the_same_key(db, world, status):
    found = delivery(
        db,
        world.home,
        status,
        due=NOW - dt.timedelta(hours=3),
        attempts=3,
        lookups=2,
        next_attempt_at=NOW + dt.timedelta(hours=1),
        last_error="It went wrong.",
    )
    key = found.idempotency_key
    deliveries.publish_again(db, world.home.org.id, found.id, actor(world.home, "manager"), NOW)
    assert (found.status, found.due_at, found.next_attempt_at) == ("scheduled", NOW, None)
    assert (found.attempts, found.lookups, found.idempotency_key) == (0, 0, key)
    [event] = events(db, "delivery.republished")
    assert event.detail == {"previous": status, "error": "It went wrong."}


def test_publishing_again_a_scheduled_delivery_is_refused(db, world):
    found = delivery(db, world.home, "scheduled")
    with pytest.raises(ServiceError, match="still scheduled"):
        deliveries.publish_again(db, world.home.org.id, found.id, actor(world.home, "admin"), NOW)


def test_publishing_again_on_a_paused_channel_asks_to_resume_it_first(db, world):
    found = delivery(db, world.home, "failed")
    found.channel.status = "paused"
    db.flush()
    with pytest.raises(ServiceError, match="resume the channel first"):
        deliveries.publish_again(db, world.home.org.id, found.id, actor(world.home, "admin"), NOW)
    assert status_of(db, found.id) == "failed"


def test_publishing_again_an_unapproved_post_asks_for_approval_first(db, world):
    found = delivery(db, world.home, "missed")
    found.post.status = "pending_approval"
    db.flush()
    with pytest.raises(ServiceError, match="approve it first"):
        deliveries.publish_again(db, world.home.org.id, found.id, actor(world.home, "admin"), NOW)
    assert status_of(db, found.id) == "missed"


ACTIONS = {
    "get": lambda db, org, d, who: deliveries.get_delivery(db, org, d),
    "cancel": lambda db, org, d, who: deliveries.cancel_delivery(db, org, d, who, NOW),
    "mark_posted": lambda db, org, d, who: deliveries.mark_posted(
        db, org, d, "https://x.example/1", who, NOW
    ),
    "mark_posted_bad_url": lambda db, org, d, who: deliveries.mark_posted(db, org, d, "", who, NOW),
    "publish_again": lambda db, org, d, who: deliveries.publish_again(db, org, d, who, NOW),
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("status", ["scheduled", "needs_review"])
def test_another_organisations_delivery_is_not_found(db, world, action, status):
    foreign = delivery(db, world.other, status, "manual")
    with pytest.raises(NotFound):
        ACTIONS[action](db, world.home.org.id, foreign.id, actor(world.home, "admin"))
    assert status_of(db, foreign.id) == status


@pytest.mark.parametrize("action", [deliveries.pause_channel, deliveries.resume_channel])
def test_another_organisations_channel_is_not_found(db, world, action):
    with pytest.raises(NotFound):
        action(db, world.home.org.id, world.other.channel.id, actor(world.home, "admin"), NOW)


def test_lists_hold_the_right_states_in_the_right_order(db, world):
    home = world.home
    later = delivery(db, home, "scheduled", due=NOW + dt.timedelta(hours=5))
    sooner = delivery(db, home, "publishing", due=NOW + dt.timedelta(minutes=1))
    old_fail = delivery(db, home, "failed", updated_at=NOW - dt.timedelta(hours=2))
    new_unknown = delivery(db, home, "unknown", updated_at=NOW - dt.timedelta(minutes=1))
    published = delivery(db, home, "published", published_at=NOW)
    delivery(db, world.other, "failed")

    def ids(view):
        return [d.id for d in deliveries.list_deliveries(db, home.org.id, view, now=NOW)]

    base = db.scalar(select(Delivery.id).where(Delivery.channel_id == home.channel.id))
    assert ids("upcoming") == [sooner.id, base, later.id]
    assert ids("attention") == [new_unknown.id, old_fail.id]
    assert ids("published") == [published.id]


def test_manual_due_lists_manual_posts_due_within_the_hour(db, world):
    overdue = delivery(db, world.home, "scheduled", "manual", due=NOW - dt.timedelta(hours=1))
    soon = delivery(db, world.home, "scheduled", "manual", due=NOW + dt.timedelta(minutes=50))
    delivery(db, world.home, "scheduled", "manual", due=NOW + dt.timedelta(hours=2))
    delivery(db, world.home, "scheduled", "outbox", due=NOW)
    delivery(db, world.home, "published", "manual", due=NOW)
    delivery(db, world.other, "scheduled", "manual", due=NOW)
    found = deliveries.list_deliveries(db, world.home.org.id, "manual_due", now=NOW)
    assert [d.id for d in found] == [overdue.id, soon.id]
    assert deliveries.count_manual_due(db, world.home.org.id, NOW) == 2


def test_an_unknown_list_is_refused(db, world):
    with pytest.raises(ServiceError, match="unknown list"):
        deliveries.list_deliveries(db, world.home.org.id, "everything")


def test_attention_counts_each_state_for_this_organisation_only(db, world):
    for status in ("failed", "failed", "needs_review"):
        delivery(db, world.home, status)
    delivery(db, world.other, "missed")
    assert deliveries.count_attention(db, world.home.org.id) == {
        "failed": 2,
        "missed": 0,
        "needs_review": 1,
        "unknown": 0,
    }


def test_a_delivery_comes_with_its_attempts(db, world):
    found = delivery(db, world.home, "failed")
    db.add(
        DeliveryAttempt(
            delivery_id=found.id,
            number=1,
            lease_token="t",
            worker_id="w",
            idempotency_key=found.idempotency_key,
            started_at=NOW,
            outcome="failed",
            http_status=403,
        )
    )
    db.flush()
    db.expire_all()
    loaded = deliveries.get_delivery(db, world.home.org.id, found.id)
    assert [(a.outcome, a.http_status) for a in loaded.attempt_log] == [("failed", 403)]


def test_manual_text_is_the_post_text(db, world):
    found = delivery(db, world.home, "scheduled", "manual", text="Careers fair on Friday.")
    assert deliveries.manual_text(db, found, "https://careers.example") == "Careers fair on Friday."


def test_manual_text_carries_the_tracked_link_and_keeps_it(db, world):
    text = "Book a CV review: https://uni.example/cv?x=1 today."
    found = delivery(db, world.home, "scheduled", "manual", text=text)
    first = deliveries.manual_text(db, found, "https://careers.example/")
    code = first.split("https://careers.example/l/")[1].split()[0]
    assert first == f"Book a CV review: https://careers.example/l/{code} today."
    # Seen again, the same code: one tracked link per delivery and URL.
    assert deliveries.manual_text(db, found, "https://careers.example") == first


def _entry(db, channel_id, text, at):
    entry = OutboxEntry(
        channel_id=channel_id, idempotency_key=uuid.uuid4().hex, text=text, published_at=at
    )
    db.add(entry)
    db.flush()
    return entry


def test_timeline_is_this_organisations_outbox_newest_first(db, world):
    old = _entry(db, world.home.channel.id, "old", NOW - dt.timedelta(hours=1))
    new = _entry(db, world.home.channel.id, "new", NOW)
    _entry(db, world.other.channel.id, "theirs", NOW)
    found = deliveries.list_timeline(db, world.home.org.id)
    assert [(e.id, e.text) for e in found] == [(new.id, "new"), (old.id, "old")]
    assert found[0].channel_name == world.home.channel.display_name


def test_timeline_of_another_organisations_channel_is_not_found(db, world):
    with pytest.raises(NotFound):
        deliveries.list_timeline(db, world.home.org.id, world.other.channel.id)


def test_channel_health_counts_the_last_seven_days_for_this_organisation(db, world):
    home, ch = world.home, world.home.channel
    for status, age in [("published", 1), ("published", 8), ("failed", 2), ("needs_review", 0)]:
        at = NOW - dt.timedelta(days=age)
        delivery(db, home, status, on=ch, updated_at=at, published_at=at)
    delivery(db, home, "failed", on=ch, last_error="Too long.", updated_at=NOW - dt.timedelta(1))
    delivery(db, home, "failed", on=ch, last_error="Token revoked.", updated_at=NOW)
    delivery(db, world.other, "failed", on=world.other.channel, last_error="Theirs.")
    report = deliveries.channel_health(db, home.org.id, NOW)
    assert world.other.channel.id not in [h.channel.id for h in report]
    [health] = [h for h in report if h.channel.id == ch.id]
    assert health.counts == {
        "published": 1,
        "failed": 3,
        "missed": 0,
        "needs_review": 1,
        "unknown": 0,
    }
    assert health.last_published_at == NOW - dt.timedelta(days=1)
    assert health.latest_failure == "Token revoked."


def test_staff_cannot_pause_and_managers_cannot_resume(db, world):
    with pytest.raises(PermissionDenied):
        deliveries.pause_channel(
            db, world.home.org.id, world.home.channel.id, actor(world.home), NOW
        )
    with pytest.raises(PermissionDenied):
        deliveries.resume_channel(
            db, world.home.org.id, world.home.channel.id, actor(world.home, "manager"), NOW
        )


@pytest.mark.parametrize("previous", ["paused", "needs_reauth"])
def test_an_admin_resumes_a_channel_and_it_is_audited(db, world, previous):
    ch = world.home.channel
    ch.status, ch.status_detail = previous, "Token revoked."
    db.flush()
    deliveries.resume_channel(db, world.home.org.id, ch.id, actor(world.home, "admin"), NOW)
    assert (ch.status, ch.status_detail) == ("active", None)
    [event] = events(db, "channel.resumed")
    assert event.detail == {"previous": previous, "previous_detail": "Token revoked."}


def test_a_manager_pauses_an_active_channel_and_says_who(db, world):
    ch = world.home.channel
    deliveries.pause_channel(db, world.home.org.id, ch.id, actor(world.home, "manager"), NOW)
    assert ch.status == "paused"
    assert world.home.manager.email in ch.status_detail
    assert len(events(db, "channel.paused")) == 1


def test_resuming_an_active_channel_is_refused(db, world):
    with pytest.raises(ServiceError, match="is active"):
        deliveries.resume_channel(
            db, world.home.org.id, world.home.channel.id, actor(world.home, "admin"), NOW
        )


# Concurrency against the real claim, on committed data in a database of this test module's own.


@pytest.fixture
def due(factory):
    """A committed, due, approved delivery on an active outbox channel: (org id, delivery id)."""
    with factory.begin() as session:
        session.execute(text("DELETE FROM organisations"))
        now = database_now(session)
        org = create_organisation(session, f"o{uuid.uuid4().hex[:8]}", "Org", "UTC", now)
        ch = Channel(organisation_id=org.id, kind="outbox", display_name="O", audience="students")
        session.add(ch)
        session.flush()
        post = factories.make_post(session, org, ch, now - dt.timedelta(seconds=1), now)
        return org.id, post.deliveries[0].id


def _system(org_id):
    return Actor(org_id, "staff@example", None, "staff")


def test_a_claim_skips_a_delivery_being_cancelled(factory, due):
    org_id, delivery_id = due
    with factory() as cancelling, factory() as worker:
        deliveries.cancel_delivery(cancelling, org_id, delivery_id, _system(org_id), NOW)
        if cancelling.get_bind().dialect.name == "sqlite":
            # SQLite serialises writers: the claim would wait, so commit the cancel first.
            cancelling.commit()
        claims = publishing.claim_due(worker, database_now(worker), "w1", RULES)
        cancelling.commit()
        worker.commit()
    assert claims == []
    with factory() as session:
        assert status_of(session, delivery_id) == "cancelled"


def _wait_until_blocked(factory, dialect):
    if dialect == "sqlite":
        time.sleep(0.2)  # no lock table to watch; the cancel waits on the busy timeout meanwhile
        return
    deadline = time.monotonic() + 5
    with factory() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.01)
    pytest.fail("the cancel never waited for the claim's row lock")


def test_a_cancel_during_a_claim_waits_and_then_refuses(factory, due):
    org_id, delivery_id = due
    outcome: list[object] = []

    def cancel():
        with factory() as session:
            try:
                deliveries.cancel_delivery(session, org_id, delivery_id, _system(org_id), NOW)
                session.commit()
                outcome.append("cancelled")
            except ServiceError as exc:
                outcome.append(str(exc))

    with factory() as worker:
        claims = publishing.claim_due(worker, database_now(worker), "w1", RULES)
        assert [c.delivery_id for c in claims] == [delivery_id]
        thread = threading.Thread(target=cancel)
        thread.start()
        _wait_until_blocked(factory, worker.get_bind().dialect.name)
        worker.commit()
    thread.join(timeout=10)
    assert outcome and "being published right now" in str(outcome[0])
    with factory() as session:
        assert status_of(session, delivery_id) == "publishing"
