"""Threads: a post's later parts go out as replies, each only after the part before it, on
SQLite and PostgreSQL, against a scripted network that refuses a reply to a post it lacks."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid

import pytest
from sqlalchemy import select, text, update

from campaign.channels.base import (
    ChannelContext,
    PermanentError,
    PublishedPost,
    UnknownOutcome,
)
from campaign.channels.fake import FakeAdapter, FakeNetwork
from campaign.config import load_settings
from campaign.crypto import CredentialBox, generate_key
from campaign.db import database_now
from campaign.models import Channel, Delivery, Organisation, Post
from campaign.services import ServiceError, deliveries, posts, publishing
from campaign.services.audit import Actor
from campaign.services.channel_runtime import AdapterFactory
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
def network():
    return FakeNetwork()


def _dispatcher(factory, network, worker="w1"):
    def build(channel):
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    return Dispatcher(factory, build, worker, RULES)


def _actor(org_id):
    return Actor(organisation_id=org_id, label="test", user_id=None, role="manager")


def _seed_thread(factory, replies=3, *, due_offset=dt.timedelta(seconds=-1), kind="outbox"):
    """An approved post due a moment ago on one channel, with `replies` thread parts."""
    with factory.begin() as session:
        now = database_now(session)
        org = create_organisation(session, f"o{uuid.uuid4().hex[:8]}", "Org", "Europe/London", now)
        chan = Channel(
            organisation_id=org.id, kind=kind, display_name="c", audience="students",
            created_at=now,
        )  # fmt: skip
        session.add(chan)
        post = Post(organisation_id=org.id, text="New vacancies", status="approved", created_at=now)
        post.deliveries.append(
            Delivery(
                channel=chan, due_at=now + due_offset, idempotency_key=uuid.uuid4().hex,
                updated_at=now,
            )
        )  # fmt: skip
        session.add(post)
        session.flush()
        texts = [f"Vacancy {n}" for n in range(1, replies + 1)]
        posts.add_thread_parts(session, post, texts, _actor(org.id), now)
        ids = [d.id for d in sorted(post.deliveries, key=lambda d: d.part)]
        return org.id, post.id, ids


def _states(factory, ids):
    with factory.begin() as session:
        rows = {
            i: status
            for i, status in session.execute(
                select(Delivery.id, Delivery.status).where(Delivery.id.in_(ids))
            )
        }
    return [rows[i] for i in ids]


def _get(factory, delivery_id):
    with factory.begin() as session:
        return session.get(Delivery, delivery_id)


def _run(factory, dispatchers, passes=12):
    for _ in range(passes):
        for dispatcher in dispatchers:
            dispatcher.housekeeping(publishing_report())
            dispatcher.dispatch()
            dispatcher.reconcile()


def publishing_report():
    from campaign.worker.dispatch import PassReport

    return PassReport()


def _assert_chain(network, ids, factory):
    """The network got the head, then each part replying to the one before, each once."""
    rows = [_get(factory, i) for i in ids]
    keys = [c.idempotency_key for c in network.publish_calls]
    assert keys == [d.idempotency_key for d in rows]
    assert len(set(keys)) == len(ids)  # a key per part: each is published exactly once
    for before, after in itertools.pairwise(rows):
        assert network.replies[after.external_id] == before.external_id
    for call in network.publish_calls[1:]:
        assert call.reply_to is not None
        assert call.reply_to.root_id == rows[0].external_id
        assert call.link_url is None


def test_parts_wait_for_their_parent_and_reply_to_it_in_order(factory, network):
    _, _, ids = _seed_thread(factory, replies=3)
    assert _states(factory, ids) == ["scheduled", "waiting", "waiting", "waiting"]
    dispatcher = _dispatcher(factory, network)
    report = dispatcher.dispatch()
    # Only the head could be claimed; its first reply is scheduled the moment it is published.
    assert report.counts["claimed"] == 1
    assert _states(factory, ids) == ["published", "scheduled", "waiting", "waiting"]
    _run(factory, [dispatcher])
    assert _states(factory, ids) == ["published"] * 4
    _assert_chain(network, ids, factory)
    texts = [c.text for c in network.publish_calls]
    assert texts == ["New vacancies", "Vacancy 1", "Vacancy 2", "Vacancy 3"]


def test_two_workers_at_once_never_let_a_part_overtake_its_parent(factory, network, db_kind):
    threads = [_seed_thread(factory, replies=4)[2] for _ in range(3)]
    workers = [_dispatcher(factory, network, f"w{n}") for n in (1, 2)]
    errors: list[BaseException] = []
    if db_kind == "sqlite":
        # One writer at a time: the two workers' passes interleave.
        _run(factory, workers, passes=10)
    else:
        start = threading.Barrier(2)

        def work(dispatcher):
            try:
                start.wait()
                _run(factory, [dispatcher], passes=10)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        runners = [threading.Thread(target=work, args=(w,)) for w in workers]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
    assert errors == []
    # The fake network refuses a reply to a post it does not hold: a part that overtook its
    # parent would have failed. Each part was published once, after and in reply to its parent.
    for ids in threads:
        assert _states(factory, ids) == ["published"] * 5
        rows = [_get(factory, i) for i in ids]
        for before, after in itertools.pairwise(rows):
            assert network.replies[after.external_id] == before.external_id
            assert after.first_attempt_at >= before.published_at
    assert len(network.publish_calls) == 15


def test_a_failed_head_stops_the_thread_with_a_reason(factory, network):
    _, _, ids = _seed_thread(factory, replies=2)
    network.publish_script.append(PermanentError("Refused: text not allowed", status=403))
    _run(factory, [_dispatcher(factory, network)], passes=3)
    assert _states(factory, ids) == ["failed", "cancelled", "cancelled"]
    assert len(network.publish_calls) == 1
    message = _get(factory, ids[1]).last_error
    assert "the thread's first post failed" in message
    assert "was not sent" in message


def test_a_failed_middle_part_stops_only_the_parts_after_it(factory, network):
    _, _, ids = _seed_thread(factory, replies=3)
    network.publish_script += [lambda post: None, PermanentError("Refused", status=403)]
    _run(factory, [_dispatcher(factory, network)], passes=6)
    assert _states(factory, ids) == ["published", "failed", "cancelled", "cancelled"]
    assert "reply 1 of the thread failed" in _get(factory, ids[2]).last_error
    assert len(network.publish_calls) == 2


def test_a_missed_head_stops_the_thread(factory, network):
    _, _, ids = _seed_thread(factory, replies=2, due_offset=-RULES.grace - dt.timedelta(minutes=5))
    _run(factory, [_dispatcher(factory, network)], passes=2)
    assert _states(factory, ids) == ["missed", "cancelled", "cancelled"]
    assert "was missed" in _get(factory, ids[1]).last_error
    assert network.publish_calls == []


def test_a_parent_needing_review_stops_later_parts(factory, network):
    _, _, ids = _seed_thread(factory, replies=1)
    with factory.begin() as session:
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(status="needs_review"))
        publishing.advance_threads(session, database_now(session))
    assert _states(factory, ids) == ["needs_review", "cancelled"]
    assert "could not be confirmed" in _get(factory, ids[1]).last_error


def test_a_part_is_judged_late_from_when_its_parent_went_out(factory, network):
    """The head took retries and went out 40 minutes after its time (grace is 15): its reply,
    due at the same original time, is scheduled from then and published, not missed."""
    _, _, ids = _seed_thread(factory, replies=1, due_offset=-dt.timedelta(minutes=40))
    with factory.begin() as session:
        now = database_now(session)
        session.execute(
            update(Delivery)
            .where(Delivery.id == ids[0])
            .values(status="published", external_id="fake-head", published_at=now)
        )
    network.posts["head"] = PublishedPost(external_id="fake-head")
    _run(factory, [_dispatcher(factory, network)], passes=2)
    part = _get(factory, ids[1])
    assert part.status == "published"
    assert part.due_at >= now
    assert network.replies[part.external_id] == "fake-head"


def test_an_unknown_outcome_of_a_part_is_looked_up_not_resent(factory, network):
    _, _, ids = _seed_thread(factory, replies=2)

    def accepted_then_dropped(post):
        network.store(post)
        raise UnknownOutcome("The connection dropped after sending.")

    network.publish_script += [lambda post: None, accepted_then_dropped]
    _run(factory, [_dispatcher(factory, network)], passes=6)
    assert _states(factory, ids) == ["published"] * 3
    part = _get(factory, ids[1])
    # Published once (the lookup found it), then the next part went out in reply to it.
    assert [c.idempotency_key for c in network.publish_calls].count(part.idempotency_key) == 1
    assert [c.idempotency_key for c in network.lookup_calls] == [part.idempotency_key]
    assert network.replies[_get(factory, ids[2]).external_id] == part.external_id


def test_cancelling_the_post_cancels_every_part_not_sent(factory, network):
    org_id, post_id, ids = _seed_thread(factory, replies=2)
    _dispatcher(factory, network).dispatch()  # the head goes out
    with factory.begin() as session:
        organisation = session.get(Organisation, org_id)
        now = database_now(session)
        posts.cancel_post(session, organisation, post_id, _actor(org_id), now)
    assert _states(factory, ids) == ["published", "cancelled", "cancelled"]
    _run(factory, [_dispatcher(factory, network)], passes=2)
    assert len(network.publish_calls) == 1


def test_cancelling_one_reply_passes_over_it(factory, network):
    org_id, _, ids = _seed_thread(factory, replies=2)
    with factory.begin() as session:
        deliveries.cancel_delivery(session, org_id, ids[1], _actor(org_id), database_now(session))
    _run(factory, [_dispatcher(factory, network)], passes=4)
    assert _states(factory, ids) == ["published", "cancelled", "published"]
    head, last = _get(factory, ids[0]), _get(factory, ids[2])
    assert network.replies[last.external_id] == head.external_id


def test_cancelling_the_head_stops_the_thread(factory, network):
    org_id, _, ids = _seed_thread(factory, replies=2)
    with factory.begin() as session:
        deliveries.cancel_delivery(session, org_id, ids[0], _actor(org_id), database_now(session))
    assert _states(factory, ids) == ["cancelled", "cancelled", "cancelled"]
    assert "first post was cancelled" in _get(factory, ids[1]).last_error


def test_manual_parts_are_marked_posted_in_order(factory, network):
    org_id, _, ids = _seed_thread(factory, replies=2, kind="manual")
    actor = _actor(org_id)
    with factory.begin() as session:
        now = database_now(session)
        with pytest.raises(ServiceError, match="waiting for the part before it"):
            deliveries.mark_posted(session, org_id, ids[1], "https://example.org/p/2", actor, now)
    with factory.begin() as session:
        now = database_now(session)
        deliveries.mark_posted(session, org_id, ids[0], "https://example.org/p/1", actor, now)
    assert _states(factory, ids) == ["published", "scheduled", "waiting"]
    with factory.begin() as session:
        now = database_now(session)
        deliveries.mark_posted(session, org_id, ids[1], "https://example.org/p/2", actor, now)
    assert _states(factory, ids) == ["published", "published", "scheduled"]
    assert network.publish_calls == []  # the engine never posts manual channels


def test_a_thread_on_the_outbox_is_published_in_the_claim_transaction(factory, tmp_path):
    settings = load_settings(settings_for("sqlite://", tmp_path), use_file=False)
    adapters = AdapterFactory(settings, CredentialBox([generate_key()]), factory)
    org_id, _, ids = _seed_thread(factory, replies=2)
    dispatcher = Dispatcher(factory, adapters.build, "w1", RULES, release_adapter=adapters.release)
    for _ in range(4):
        dispatcher.dispatch()
    assert _states(factory, ids) == ["published"] * 3
    with factory.begin() as session:
        timeline = deliveries.list_timeline(session, org_id)
    by_text = {entry.text: entry for entry in timeline}
    head, first = by_text["New vacancies"], by_text["Vacancy 1"]
    assert head.reply_to_entry is None
    assert first.reply_to_entry == head.id
    assert by_text["Vacancy 2"].reply_to_entry == first.id


def test_a_part_publishes_its_own_words_with_tracked_links(factory, network):
    _, _, ids = _seed_thread(factory, replies=1)
    with factory.begin() as session:
        head, part = (session.get(Delivery, i) for i in ids)
        head.post.text = "New vacancies https://careers.example.ac.uk/all"
        part.text = "Role A apply https://jobs.example.org/a"

    def build(channel):
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    dispatcher = Dispatcher(factory, build, "w1", RULES, link_base_url="https://campaign.example")
    _run(factory, [dispatcher], passes=3)
    assert _states(factory, ids) == ["published", "published"]
    head_text, part_text = (call.text for call in network.publish_calls)
    assert head_text.startswith("New vacancies https://campaign.example/l/")
    # Never the first post's words or link: its own, with its link tracked where links are
    # stored per part (else as written).
    assert part_text.startswith("Role A apply https://")
    assert "careers.example.ac.uk" not in part_text
    assert network.publish_calls[1].link_url is None


def test_publishing_a_failed_head_again_sends_the_stopped_replies_after_it(factory, network):
    org_id, _, ids = _seed_thread(factory, replies=3)
    network.publish_script.append(PermanentError("Refused: try later", status=403))
    _run(factory, [_dispatcher(factory, network)], passes=3)
    assert _states(factory, ids) == ["failed", "cancelled", "cancelled", "cancelled"]
    with factory.begin() as session:  # a person cancels reply 2 meanwhile: it stays cancelled
        session.execute(update(Delivery).where(Delivery.id == ids[2])
                        .values(last_error=None))  # fmt: skip
    with factory.begin() as session:
        deliveries.publish_again(session, org_id, ids[0], _actor(org_id), database_now(session))
    assert _states(factory, ids) == ["scheduled", "waiting", "cancelled", "waiting"]
    _run(factory, [_dispatcher(factory, network)], passes=6)
    assert _states(factory, ids) == ["published", "published", "cancelled", "published"]
    rows = [_get(factory, i) for i in ids]
    assert network.replies[rows[1].external_id] == rows[0].external_id
    assert network.replies[rows[3].external_id] == rows[1].external_id  # passes over reply 2
    assert [c.idempotency_key for c in network.publish_calls] == [
        rows[0].idempotency_key, rows[0].idempotency_key, rows[1].idempotency_key,
        rows[3].idempotency_key,
    ]  # fmt: skip
    assert rows[1].last_error is None


def test_publishing_a_failed_reply_again_sends_only_the_parts_after_it(factory, network):
    org_id, _, ids = _seed_thread(factory, replies=3)
    network.publish_script += [lambda post: None, PermanentError("Refused", status=403)]
    _run(factory, [_dispatcher(factory, network)], passes=6)
    assert _states(factory, ids) == ["published", "failed", "cancelled", "cancelled"]
    with factory.begin() as session:
        deliveries.publish_again(session, org_id, ids[1], _actor(org_id), database_now(session))
    assert _states(factory, ids) == ["published", "scheduled", "waiting", "waiting"]
    _run(factory, [_dispatcher(factory, network)], passes=6)
    assert _states(factory, ids) == ["published"] * 4
    assert len(network.publish_calls) == 5  # the head once, reply 1 twice, replies 2 and 3
