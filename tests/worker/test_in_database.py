"""Publishing to a channel in the app's own database: claim, store and complete in one transaction.

The outbox is published through the real AdapterFactory and SqlOutboxStore, on SQLite and
PostgreSQL. A stand-in adapter that says it publishes in this database, but fails there, checks
the fallback to one delivery at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import ClassVar

import pytest
from sqlalchemy import event, select, text, update

from campaign.channels.base import (
    Capabilities,
    ChannelContext,
    OutgoingPost,
    PublishedPost,
)
from campaign.channels.fake import FakeAdapter, FakeNetwork
from campaign.config import load_settings
from campaign.crypto import CredentialBox, generate_key
from campaign.db import database_now
from campaign.models import Channel, Delivery, DeliveryAttempt, OutboxEntry, Post
from campaign.services import completion, publishing
from campaign.services.channel_runtime import AdapterFactory, SqlOutboxStore
from campaign.services.dbclock import database_clock
from campaign.services.organisations import create_organisation
from campaign.worker.dispatch import Dispatcher
from tests.conftest import settings_for
from tests.factories import ENGINE_RULES

RULES = ENGINE_RULES


@pytest.fixture(autouse=True)
def _empty(factory):
    with factory.begin() as session:
        session.execute(text("DELETE FROM organisations"))


@pytest.fixture
def adapters(factory, tmp_path):
    settings = load_settings(settings_for("sqlite://", tmp_path), use_file=False)
    return AdapterFactory(settings, CredentialBox([generate_key()]), factory)


def _outbox_dispatcher(factory, adapters, worker="w1", stop=None):
    return Dispatcher(
        factory, adapters.build, worker, RULES, stop=stop, release_adapter=adapters.release
    )


def _seed(factory, *, count=1, kind="outbox", due_offset=dt.timedelta(seconds=-1), **channel):
    """An organisation, one channel and `count` approved posts due a moment ago."""
    with factory.begin() as session:
        now = database_now(session)
        org = create_organisation(session, f"o{uuid.uuid4().hex[:8]}", "Org", "Europe/London", now)
        chan = Channel(
            organisation_id=org.id,
            kind=kind,
            display_name="c",
            audience="students",
            created_at=now,
            **channel,
        )
        session.add(chan)
        ids = []
        for n in range(count):
            post = Post(organisation_id=org.id, text=f"post {n}", status="approved", created_at=now)
            post.deliveries.append(
                Delivery(
                    channel=chan,
                    due_at=now + due_offset,
                    idempotency_key=uuid.uuid4().hex,
                    updated_at=now,
                )
            )
            session.add(post)
            session.flush()
            ids.append(post.deliveries[0].id)
        return chan.id, ids


def _deliveries(factory, ids):
    with factory.begin() as session:
        found = session.scalars(select(Delivery).where(Delivery.id.in_(ids))).all()
        return {d.id: d for d in found}


def _entries(factory):
    with factory.begin() as session:
        return {e.idempotency_key: e for e in session.scalars(select(OutboxEntry)).all()}


def _attempts(factory, ids):
    with factory.begin() as session:
        return list(
            session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id.in_(ids))
                .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.id)
            )
        )


def test_a_batch_to_the_outbox_is_published_once_each_with_its_attempt(factory, adapters):
    _, ids = _seed(factory, count=7)
    report = _outbox_dispatcher(factory, adapters).dispatch()
    assert (report.counts["claimed"], report.counts["published"]) == (7, 7)
    assert _outbox_dispatcher(factory, adapters, worker="w2").dispatch().counts["claimed"] == 0
    deliveries, entries = _deliveries(factory, ids), _entries(factory)
    assert len(entries) == 7
    for delivery in deliveries.values():
        entry = entries[delivery.idempotency_key]
        assert delivery.status == "published"
        assert delivery.external_id == f"outbox-{entry.id}"
        assert delivery.external_url.endswith(f"/timeline#entry-{entry.id}")
        assert delivery.published_at == entry.published_at
        assert delivery.first_attempt_at is not None
        assert (delivery.lease_token, delivery.lease_expires_at, delivery.attempts) == (
            None,
            None,
            1,
        )
        assert entry.published_at.tzinfo == dt.UTC
    attempts = _attempts(factory, ids)
    assert [(a.kind, a.number, a.outcome) for a in attempts] == [("publish", 1, "published")] * 7
    assert {a.idempotency_key for a in attempts} == {d.idempotency_key for d in deliveries.values()}
    assert all(a.worker_id == "w1" and a.finished_at is not None for a in attempts)


def _count_commits_and_checkouts(factory, run):
    engine = factory.kw["bind"]
    commits, checkouts = [], []
    listeners = [
        (engine, "commit", lambda *_a: commits.append(1)),
        (engine.pool, "checkout", lambda *_a: checkouts.append(1)),
    ]
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    try:
        result = run()
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)
    return result, len(commits), len(checkouts)


def test_the_outbox_batch_is_claimed_and_published_in_one_transaction(factory, adapters):
    dispatcher = _outbox_dispatcher(factory, adapters)
    _seed(factory, count=2)
    # The first batch of a kind not seen yet: its adapter is built (and its kind learnt)
    # after the claim commits, and it is published in a second transaction.
    first, commits, checkouts = _count_commits_and_checkouts(factory, dispatcher.dispatch)
    assert (first.counts["published"], commits, checkouts) == (2, 2, 1)
    _seed(factory, count=5)
    report, commits, checkouts = _count_commits_and_checkouts(factory, dispatcher.dispatch)
    assert report.counts["published"] == 5
    # Then one transaction on one connection: nobody can see these deliveries claimed but not
    # done, and the pass pays for one connection checkout (and pre-ping), not one per step.
    assert (commits, checkouts) == (1, 1)


def test_no_network_adapter_is_built_while_the_claim_transaction_is_open(factory, adapters):
    _, outbox_ids = _seed(factory, count=2)
    _, network_ids = _seed(factory, count=2, kind="mastodon", base_url="https://m.example")
    network = FakeNetwork()
    states_at_build: list[set[str]] = []

    def build(channel):
        if channel.kind == "outbox":
            return adapters.build(channel)
        # Seen from another connection, the claim is already committed.
        with factory.begin() as session:
            states_at_build.append(
                set(
                    session.scalars(
                        select(Delivery.status).where(Delivery.id.in_(network_ids))
                    ).all()
                )
            )
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    dispatcher = Dispatcher(factory, build, "w1", RULES)
    dispatcher.dispatch()  # learns the kinds
    _, more_outbox = _seed(factory, count=2)
    _, network_ids[:] = _seed(factory, count=2, kind="mastodon", base_url="https://m.example")
    dispatcher.dispatch()
    assert states_at_build == [{"publishing"}, {"publishing"}]
    all_ids = outbox_ids + more_outbox + network_ids
    assert {d.status for d in _deliveries(factory, all_ids).values()} == {"published"}


def test_a_key_already_in_the_outbox_keeps_its_first_entry(factory, adapters):
    channel_id, [delivery_id] = _seed(factory)
    key = _deliveries(factory, [delivery_id])[delivery_id].idempotency_key
    first_id, first_at = SqlOutboxStore(factory).insert(channel_id, key, "the first one", None)
    _outbox_dispatcher(factory, adapters).dispatch()
    delivery = _deliveries(factory, [delivery_id])[delivery_id]
    [entry] = _entries(factory).values()
    assert (entry.id, entry.text, entry.published_at) == (first_id, "the first one", first_at)
    assert (delivery.status, delivery.external_id) == ("published", f"outbox-{first_id}")
    assert delivery.published_at == first_at


def test_the_store_returns_each_posts_entry_in_order_and_repeats_are_no_ops(factory):
    channel_id, _ = _seed(factory)
    store = SqlOutboxStore(factory)
    posts = [
        OutgoingPost(
            delivery_id=n,
            idempotency_key=f"key-{n}",
            text=f"text {n}",
            link_url=None if n % 2 else f"https://example.ac.uk/{n}",
            due_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        )
        for n in range(4)
    ]
    earlier = store.insert(channel_id, "key-2", "stored before", None)
    with factory.begin() as session:
        stored = store.insert_many(session, channel_id, posts)
    entries = _entries(factory)
    assert stored[2] == earlier
    assert [entry_id for entry_id, _ in stored] == [entries[f"key-{n}"].id for n in range(4)]
    assert entries["key-2"].text == "stored before"
    assert entries["key-1"].link_url is None and entries["key-0"].link_url.endswith("/0")
    assert store.insert(channel_id, "key-3", "again", None) == stored[3]
    assert store.find("key-3") == stored[3] and store.find("missing") is None


def test_a_claim_whose_lease_was_lost_is_not_published_and_the_loss_is_logged(
    factory, adapters, caplog
):
    _, ids = _seed(factory, count=3)
    with factory.begin() as session:
        claims = publishing.claim_due(session, database_now(session), "slow", RULES)
    # The reaper took the first one back and another worker holds it now.
    with factory.begin() as session:
        session.execute(
            update(Delivery).where(Delivery.id == ids[0]).values(lease_token="someone-else")
        )
    publisher = adapters.build(claims[0].channel)
    with caplog.at_level(logging.WARNING), factory.begin() as session:
        states = completion.publish_in_database(session, claims, publisher, "slow")
    assert states == ["lease_lost", "published", "published"]
    assert "was lost before completion" in caplog.text
    deliveries = _deliveries(factory, ids)
    assert deliveries[ids[0]].status == "publishing"
    assert deliveries[ids[0]].idempotency_key not in _entries(factory)
    assert [a.delivery_id for a in _attempts(factory, ids)] == ids[1:]


def test_claims_under_different_leases_are_refused_together(factory, adapters):
    _seed(factory, count=2)
    with factory.begin() as session:
        claims = publishing.claim_due(session, database_now(session), "w", RULES)
    mixed = [claims[0], dataclasses.replace(claims[1], lease_token="another")]
    with pytest.raises(ValueError, match="one lease token"), factory.begin() as session:
        completion.publish_in_database(session, mixed, adapters.build(claims[0].channel), "w")


def test_a_capped_outbox_channel_publishes_only_its_quota_per_hour(factory, adapters):
    _, ids = _seed(factory, count=5, max_posts_per_hour=2)
    dispatcher = _outbox_dispatcher(factory, adapters)
    assert dispatcher.dispatch().counts["published"] == 2
    assert dispatcher.dispatch().counts["claimed"] == 0
    assert sorted(d.status for d in _deliveries(factory, ids).values()).count("published") == 2


def test_a_stop_before_publishing_gives_the_claims_back_unsent(factory, adapters):
    import threading

    _, ids = _seed(factory, count=3)
    stop = threading.Event()
    stop.set()
    report = _outbox_dispatcher(factory, adapters, stop=stop).dispatch()
    assert (report.counts["claimed"], report.counts["released"]) == (3, 3)
    deliveries = _deliveries(factory, ids)
    assert {(d.status, d.attempts, d.lease_token) for d in deliveries.values()} == {
        ("scheduled", 0, None)
    }
    assert _entries(factory) == {} and _attempts(factory, ids) == []


class _BrokenInDatabase(FakeAdapter):
    """Says it publishes in the app's database, but fails there; publish() still works."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        **{**FakeAdapter.capabilities.__dict__, "publishes_in_app_database": True}
    )
    within_calls: ClassVar[list[int]] = []

    def publish_within(self, session, posts):
        self.within_calls.append(len(posts))
        # Something was written in the transaction before it failed: it must be rolled back.
        session.execute(update(Delivery).values(last_error="half-done"))
        raise RuntimeError("disk full")


@pytest.mark.parametrize("kind_seen_before", [False, True], ids=["first-batch", "later-batch"])
def test_when_publishing_in_the_database_fails_nothing_half_done_stays_and_each_goes_alone(
    factory, caplog, kind_seen_before
):
    network = FakeNetwork()

    def build(channel):
        return _BrokenInDatabase(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    dispatcher = Dispatcher(factory, build, "w1", RULES)
    if kind_seen_before:
        _seed(factory)
        dispatcher.dispatch()
    _, ids = _seed(factory, count=3)
    _BrokenInDatabase.within_calls.clear()
    network.publish_calls.clear()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        report = dispatcher.dispatch()
    assert _BrokenInDatabase.within_calls == [3]
    if kind_seen_before:
        # In the claim transaction: all of it rolled back, then claimed again.
        assert "claiming again and publishing one at a time" in caplog.text
    else:
        # In a transaction of its own after the claim: rolled back, then one at a time.
        assert "publishing 3 deliveries in one transaction failed" in caplog.text
    assert (report.counts["claimed"], report.counts["published"]) == (3, 3)
    deliveries = _deliveries(factory, ids)
    assert {(d.status, d.attempts, d.last_error) for d in deliveries.values()} == {
        ("published", 1, None)
    }
    assert len(network.publish_calls) == 3
    assert [(a.kind, a.outcome) for a in _attempts(factory, ids)] == [("publish", "published")] * 3


def test_a_poison_post_in_a_failing_database_channel_is_bounded_and_the_others_go_out(factory):
    _, [poison, *healthy] = _seed(factory, count=3)
    rules = publishing.EngineRules(**{**RULES.__dict__, "backoff_base": 0.0, "backoff_max": 0.0})
    poison_key = _deliveries(factory, [poison])[poison].idempotency_key
    network = FakeNetwork()

    def explode(post: OutgoingPost) -> PublishedPost | None:
        if post.idempotency_key == poison_key:
            raise RuntimeError("adapter bug")
        return None

    network.publish_script.extend(explode for _ in range(20))
    network.lookup_script.extend((lambda post: None) for _ in range(20))

    def build(channel):
        return _BrokenInDatabase(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    dispatcher = Dispatcher(factory, build, "w1", rules)
    for _ in range(6):
        dispatcher.dispatch()
        dispatcher.reconcile()
    deliveries = _deliveries(factory, [poison, *healthy])
    assert {deliveries[i].status for i in healthy} == {"published"}
    assert deliveries[poison].status == "failed"
    assert sum(c.idempotency_key == poison_key for c in network.publish_calls) == 3


def test_in_a_mixed_batch_each_network_call_comes_after_its_committed_attempt_record(
    factory, adapters
):
    _, outbox_ids = _seed(factory, count=2)
    _, network_ids = _seed(factory, count=2, kind="mastodon", base_url="https://m.example")
    network = FakeNetwork()
    seen: list[tuple[str, str]] = []

    def check_attempt(post: OutgoingPost) -> PublishedPost | None:
        # Another connection sees the attempt already committed, and not inside a transaction
        # of this worker: the call is made outside any.
        with factory.begin() as session:
            outcome = session.scalar(
                select(DeliveryAttempt.outcome).where(
                    DeliveryAttempt.idempotency_key == post.idempotency_key
                )
            )
        seen.append((post.idempotency_key, outcome))
        return None

    network.publish_script.extend([check_attempt, check_attempt])

    def build(channel):
        if channel.kind == "outbox":
            return adapters.build(channel)
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    report = Dispatcher(factory, build, "w1", RULES).dispatch()
    assert (report.counts["claimed"], report.counts["published"]) == (4, 4)
    assert [outcome for _, outcome in seen] == ["pending", "pending"]
    deliveries = _deliveries(factory, outbox_ids + network_ids)
    assert {d.status for d in deliveries.values()} == {"published"}
    assert {d.idempotency_key for d in deliveries.values() if d.id in outbox_ids} == set(
        _entries(factory)
    )


def test_the_database_clock_in_a_statement_reads_and_stores_like_database_now(factory):
    channel_id, _ = _seed(factory)
    with factory.begin() as session:
        before = database_now(session)
        inside = session.execute(select(database_clock())).scalar_one()
        session.execute(
            OutboxEntry.__table__.insert().values(
                channel_id=channel_id, idempotency_key="k", text="t", published_at=database_clock()
            )
        )
        stored = session.scalar(select(OutboxEntry.published_at))
        after = database_now(session)
        raw = session.execute(text("SELECT published_at FROM outbox_entries")).scalar_one()
        # Compared with a stored value, the clock is the same kind of value (SQLite: text).
        later = session.scalar(
            select(OutboxEntry.id).where(OutboxEntry.published_at <= database_clock())
        )
    assert inside.tzinfo == dt.UTC and stored.tzinfo == dt.UTC
    assert before <= inside <= after + dt.timedelta(milliseconds=1)
    assert before <= stored <= after + dt.timedelta(milliseconds=1)
    assert later is not None
    if isinstance(raw, str):  # SQLite keeps UTCDateTime's text form, to the microsecond
        assert len(raw) == len("2026-03-02 09:30:00.000000") and raw[10] == " "


def test_the_database_clock_plus_seconds_and_the_driver_time_conversions(factory):
    from sqlalchemy import bindparam

    from campaign.services.dbclock import database_clock_plus, loaded_time, stored_time

    with factory.begin() as session:
        now, later, earlier = session.execute(
            select(
                database_clock(),
                database_clock_plus(bindparam("ahead", 120.5)),
                database_clock_plus(-bindparam("back", 900.0)),
            )
        ).one()
        dialect = session.get_bind().dialect
        # What exec_driver_sql is given and returns, converted as UTCDateTime converts it.
        stored = stored_time(dialect)(later)
        raw = session.connection().exec_driver_sql(
            "SELECT ?" if dialect.name == "sqlite" else "SELECT %s::timestamptz", (stored,)
        )
        [[back]] = raw.all()
    tolerance = dt.timedelta(milliseconds=2)
    assert abs(later - now - dt.timedelta(seconds=120.5)) <= tolerance
    assert abs(now - earlier - dt.timedelta(seconds=900)) <= tolerance
    assert loaded_time(dialect)(back) == later
    assert later.tzinfo == dt.UTC and earlier.tzinfo == dt.UTC
    # In another zone, the same instant is stored the same way.
    assert stored_time(dialect)(later.astimezone(dt.timezone(dt.timedelta(hours=5)))) == stored


def test_a_claim_reading_the_clock_itself_sees_changes_pending_in_its_session(factory):
    _, [delivery_id] = _seed(factory)
    with factory.begin() as session:
        delivery = session.get(Delivery, delivery_id)
        delivery.post.status = "draft"  # pending, not flushed: the claim must see it
        assert publishing.claim_due(session, None, "w", RULES) == []
        delivery.post.status = "approved"
        claims = publishing.claim_due(session, None, "w", RULES)
    assert [c.delivery_id for c in claims] == [delivery_id]
    assert claims[0].post.due_at.tzinfo == dt.UTC


def test_each_url_is_published_as_its_tracked_link_on_every_path(factory, adapters):
    from campaign.models.engagement import TrackedLink

    _, outbox_ids = _seed(factory, count=2)
    _, network_ids = _seed(factory, count=1, kind="mastodon", base_url="https://m.example")
    _, plain_ids = _seed(factory, count=1)
    with factory.begin() as session:
        session.execute(
            update(Post)
            .where(
                Post.id.in_(
                    select(Delivery.post_id).where(Delivery.id.in_(outbox_ids + network_ids))
                )
            )
            .values(
                text="Fair on Friday: https://uni.example/fair?day=fri.",
                link_url="https://uni.example/fair?day=fri",
            )
        )
    network = FakeNetwork()

    def build(channel):
        if channel.kind == "outbox":
            return adapters.build(channel)
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    dispatcher = Dispatcher(factory, build, "w1", RULES, link_base_url="https://careers.example")
    # The first pass meets the outbox kind for the first time, so it publishes after the claim
    # transaction; the second (below) publishes inside it. Both must carry the tracked link.
    report = dispatcher.dispatch()
    assert report.counts["published"] == 4
    with factory.begin() as session:
        codes = dict(session.execute(select(TrackedLink.delivery_id, TrackedLink.code)).all())
        targets = set(session.scalars(select(TrackedLink.target_url)))
    assert set(codes) == set(outbox_ids + network_ids)
    assert targets == {"https://uni.example/fair?day=fri"}
    assert len(set(codes.values())) == 3  # one code per delivery: clicks tell posts apart
    entries = _entries(factory)
    deliveries = _deliveries(factory, outbox_ids + plain_ids)
    for delivery_id in outbox_ids:
        entry = entries[deliveries[delivery_id].idempotency_key]
        short = f"https://careers.example/l/{codes[delivery_id]}"
        assert (entry.text, entry.link_url) == (f"Fair on Friday: {short}.", short)
    assert entries[deliveries[plain_ids[0]].idempotency_key].text == "post 0"
    [sent] = network.publish_calls
    short = f"https://careers.example/l/{codes[network_ids[0]]}"
    assert (sent.text, sent.link_url) == (f"Fair on Friday: {short}.", short)
    _, later_ids = _seed(factory, count=1)
    with factory.begin() as session:
        session.execute(
            update(Post)
            .where(
                Post.id
                == select(Delivery.post_id).where(Delivery.id == later_ids[0]).scalar_subquery()
            )
            .values(text="Again https://uni.example/fair")
        )
    assert dispatcher.dispatch().counts["published"] == 1
    with factory.begin() as session:
        code = session.scalar(
            select(TrackedLink.code).where(TrackedLink.delivery_id == later_ids[0])
        )
    later = _deliveries(factory, later_ids)[later_ids[0]]
    assert (
        _entries(factory)[later.idempotency_key].text == f"Again https://careers.example/l/{code}"
    )


def test_a_bluesky_post_too_long_with_its_tracked_link_goes_out_as_written(
    factory, adapters, caplog
):
    _, ids = _seed(factory, count=2, kind="bluesky", base_url="https://pds.example")
    short = "x" * 270 + " https://b.co/x"  # 285 graphemes as written
    fits = "y" * 200 + " https://b.co/y"
    with factory.begin() as session:
        for delivery_id, text in zip(ids, (short, fits), strict=True):
            session.execute(
                update(Post)
                .where(
                    Post.id
                    == select(Delivery.post_id).where(Delivery.id == delivery_id).scalar_subquery()
                )
                .values(text=text)
            )
    network = FakeNetwork()

    def build(channel):
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    base = "https://careers.example.ac.uk/students/links"
    with caplog.at_level(logging.WARNING):
        Dispatcher(factory, build, "w1", RULES, link_base_url=base).dispatch()
    sent = {post.delivery_id: post.text for post in network.publish_calls}
    assert sent[ids[0]] == short  # 285 + a 48-character tracked link would pass 300
    assert sent[ids[1]].startswith("y" * 200 + f" {base}/l/")
    assert "too long for bluesky" in caplog.text
