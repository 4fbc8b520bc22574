"""The publishing engine in one process, on SQLite and PostgreSQL, against a scripted network."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select, text, update

from campaign.channels.base import (
    ChannelContext,
    DuplicateRejected,
    LookupUnavailable,
    PermanentError,
    ReconnectNeeded,
    RetryableError,
    UnknownOutcome,
)
from campaign.channels.fake import FakeAdapter, FakeNetwork
from campaign.crypto import CredentialBox, generate_key
from campaign.db import database_now
from campaign.models import Channel, Delivery, DeliveryAttempt, Post
from campaign.services import publishing
from campaign.services.channel_runtime import AdapterFactory
from campaign.services.organisations import create_organisation
from campaign.services.publishing import EngineRules
from campaign.worker.dispatch import Dispatcher, PassReport
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


def _dispatcher(factory, network, rules=RULES, worker="w1"):
    def build(channel):
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    return Dispatcher(factory, build, worker, rules)


def _db_now(factory):
    with factory.begin() as session:
        return database_now(session)


def _seed(factory, *, due_offset=dt.timedelta(seconds=-1), count=1, status="approved", **channel):
    """An organisation, one channel and `count` posts due `due_offset` from the database clock."""
    with factory.begin() as session:
        now = database_now(session)
        org = create_organisation(session, f"o{uuid.uuid4().hex[:8]}", "Org", "Europe/London", now)
        chan = Channel(
            organisation_id=org.id,
            kind=channel.pop("kind", "outbox"),
            display_name="c",
            audience="students",
            created_at=now,
            **channel,
        )
        session.add(chan)
        ids = []
        for n in range(count):
            post = Post(organisation_id=org.id, text=f"post {n}", status=status, created_at=now)
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
        return org.id, chan.id, ids


def _delivery(factory, delivery_id):
    with factory.begin() as session:
        return session.get(Delivery, delivery_id)


def _attempts(factory, delivery_id):
    with factory.begin() as session:
        return list(
            session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.id)
            )
        )


def test_a_due_delivery_is_published_once_with_its_attempt_recorded(factory, network):
    _, _, [delivery_id] = _seed(factory)
    report = _dispatcher(factory, network).dispatch()
    _dispatcher(factory, network).dispatch()
    found = _delivery(factory, delivery_id)
    assert report.counts["published"] == 1
    assert found.status == "published"
    assert found.external_id == "fake-1"
    assert found.lease_token is None
    assert len(network.publish_calls) == 1
    assert network.publish_calls[0].idempotency_key == found.idempotency_key
    [attempt] = _attempts(factory, delivery_id)
    assert (attempt.outcome, attempt.kind, attempt.number) == ("published", "publish", 1)


@pytest.mark.parametrize(
    ("seed", "why"),
    [
        ({"due_offset": dt.timedelta(minutes=5)}, "not yet due"),
        ({"status": "pending_approval"}, "not approved"),
        ({"status": "draft"}, "a draft"),
        ({"kind": "manual"}, "posted by hand"),
        ({"status_": "paused"}, "channel paused"),
        ({"status_": "needs_reauth"}, "channel needs reconnecting"),
    ],
)
def test_deliveries_that_must_not_go_out_are_not_claimed(factory, network, seed, why):
    if "status_" in seed:
        seed = {"status": "approved", **{"status": seed["status_"]}}
        _, channel_id, [delivery_id] = _seed(factory)
        with factory.begin() as session:
            session.execute(
                update(Channel).where(Channel.id == channel_id).values(status=seed["status"])
            )
    else:
        _, _, [delivery_id] = _seed(factory, **seed)
    _dispatcher(factory, network).dispatch()
    assert network.publish_calls == [], why
    assert _delivery(factory, delivery_id).status == "scheduled"


def test_a_delivery_later_than_the_grace_window_is_missed_and_never_sent(factory, network):
    _, _, [delivery_id] = _seed(factory, due_offset=dt.timedelta(minutes=-40))
    dispatcher = _dispatcher(factory, network)
    report = dispatcher.dispatch()
    assert report.counts["claimed"] == 0
    dispatcher.housekeeping(report)
    found = _delivery(factory, delivery_id)
    assert found.status == "missed"
    assert "15-minute grace window" in found.last_error
    assert "not sent late" in found.last_error
    assert network.publish_calls == []


def test_a_delivery_inside_the_grace_window_is_still_published(factory, network):
    _, _, [delivery_id] = _seed(factory, due_offset=dt.timedelta(minutes=-14))
    _dispatcher(factory, network).dispatch()
    assert _delivery(factory, delivery_id).status == "published"


def test_rate_limit_waits_at_least_retry_after_then_succeeds(factory, network):
    _, _, [delivery_id] = _seed(factory)
    network.publish_script.append(RetryableError("Too many requests", retry_after=900, status=429))
    dispatcher = _dispatcher(factory, network)
    dispatcher.dispatch()
    found = _delivery(factory, delivery_id)
    assert found.status == "scheduled"
    assert found.next_attempt_at - _db_now(factory) > dt.timedelta(seconds=890)
    assert dispatcher.dispatch().counts["claimed"] == 0
    with factory.begin() as session:
        session.execute(
            update(Delivery).where(Delivery.id == delivery_id).values(next_attempt_at=None)
        )
    dispatcher.dispatch()
    assert _delivery(factory, delivery_id).status == "published"
    assert [a.outcome for a in _attempts(factory, delivery_id)] == ["retry", "published"]


def test_retries_stop_at_the_attempt_cap_with_a_readable_reason(factory, network):
    _, _, [delivery_id] = _seed(factory)
    rules = EngineRules(**{**RULES.__dict__, "backoff_base": 0.0, "backoff_max": 0.0})
    network.publish_script.extend(RetryableError("connection refused") for _ in range(5))
    dispatcher = _dispatcher(factory, network, rules)
    for _ in range(5):
        dispatcher.dispatch()
    found = _delivery(factory, delivery_id)
    assert found.status == "failed"
    assert found.last_error.startswith("Gave up after 3 attempts")
    assert len(network.publish_calls) == 3


def test_a_revoked_token_fails_the_delivery_and_asks_to_reconnect_the_channel(factory, network):
    _, channel_id, [first, second] = _seed(factory, count=2)
    network.publish_script.append(ReconnectNeeded("The access token is invalid", status=401))
    _dispatcher(factory, network).dispatch()
    assert _delivery(factory, first).status == "failed"
    with factory.begin() as session:
        channel = session.get(Channel, channel_id)
        assert channel.status == "needs_reauth"
        assert "access token is invalid" in channel.status_detail
    # The second delivery was claimed in the same batch and went out before the channel paused;
    # later ones wait for the reconnect.
    assert _delivery(factory, second).status in {"published", "scheduled"}


def test_a_permanent_refusal_fails_with_the_platform_message(factory, network):
    _, _, [delivery_id] = _seed(factory)
    network.publish_script.append(PermanentError("Validation failed: Text too long", status=422))
    _dispatcher(factory, network).dispatch()
    found = _delivery(factory, delivery_id)
    assert (found.status, found.last_error) == ("failed", "Validation failed: Text too long")


@pytest.mark.parametrize(
    "error", [UnknownOutcome("503 Service Unavailable"), DuplicateRejected("duplicate content")]
)
def test_an_unknown_outcome_is_looked_up_and_found_without_a_second_post(factory, network, error):
    _, _, [delivery_id] = _seed(factory)

    def accepted_then_error(post):
        network.store(post)
        raise error

    network.publish_script.append(accepted_then_error)
    dispatcher = _dispatcher(factory, network)
    dispatcher.dispatch()
    assert _delivery(factory, delivery_id).status == "unknown"
    dispatcher.reconcile()
    found = _delivery(factory, delivery_id)
    assert found.status == "published"
    assert len(network.publish_calls) == 1
    assert [a.kind for a in _attempts(factory, delivery_id)] == ["publish", "lookup"]


def test_an_unknown_outcome_not_found_is_published_again_with_the_same_key(factory, network):
    _, _, [delivery_id] = _seed(factory)
    network.publish_script.append(UnknownOutcome("read timeout"))
    dispatcher = _dispatcher(factory, network)
    dispatcher.dispatch()
    dispatcher.reconcile()
    assert _delivery(factory, delivery_id).status == "scheduled"
    dispatcher.dispatch()
    assert _delivery(factory, delivery_id).status == "published"
    keys = {call.idempotency_key for call in network.publish_calls}
    assert len(network.publish_calls) == 2 and len(keys) == 1


def test_an_unknown_outcome_that_cannot_be_checked_goes_to_a_person(factory, network):
    _, _, [delivery_id] = _seed(factory)
    rules = EngineRules(**{**RULES.__dict__, "backoff_base": 0.0, "backoff_max": 0.0})
    network.publish_script.append(UnknownOutcome("502 Bad Gateway"))
    network.lookup_script.extend(LookupUnavailable("lookup returned 503") for _ in range(5))
    dispatcher = _dispatcher(factory, network, rules)
    dispatcher.dispatch()
    for _ in range(4):
        dispatcher.reconcile()
    found = _delivery(factory, delivery_id)
    assert found.status == "needs_review"
    assert "could not confirm whether this post was published" in found.last_error
    assert len(network.publish_calls) == 1
    assert len(network.lookup_calls) == RULES.max_lookups


def test_a_lost_lease_makes_the_late_completion_change_nothing(factory, network):
    _, _, [delivery_id] = _seed(factory)
    with factory.begin() as session:
        [claim] = publishing.claim_due(session, database_now(session), "slow", RULES)
        publishing.start_attempts(session, [claim], database_now(session), "slow")
    # The slow worker's lease expires; the reaper and a second worker take over.
    with factory.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(lease_expires_at=database_now(session) - dt.timedelta(seconds=1))
        )
    dispatcher = _dispatcher(factory, network, worker="w2")
    report = PassReport()
    dispatcher.housekeeping(report)
    assert report.counts["reaped_to_unknown"] == 1
    dispatcher.reconcile()
    dispatcher.dispatch()
    assert _delivery(factory, delivery_id).status == "published"
    from campaign.services import completion
    from campaign.services.publishing import Outcome

    with factory.begin() as session:
        state = completion.complete_publish(
            session,
            claim,
            Outcome("published", published=network.store(claim.post)),
            database_now(session),
            RULES,
        )
    assert state == "lease_lost"
    assert _attempts(factory, delivery_id)[0].outcome == "lease_expired"


def test_the_reaper_requeues_a_claim_whose_call_never_started(factory, network):
    _, _, [delivery_id] = _seed(factory)
    with factory.begin() as session:
        publishing.claim_due(session, database_now(session), "dead", RULES)
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(lease_expires_at=database_now(session) - dt.timedelta(seconds=1))
        )
    with factory.begin() as session:
        counts = publishing.reap_expired_leases(session, database_now(session))
    assert counts == {"scheduled": 1, "unknown": 0}
    assert _delivery(factory, delivery_id).status == "scheduled"


def test_hourly_cap_limits_what_one_pass_claims(factory, network):
    _seed(factory, count=5, max_posts_per_hour=2)
    report = _dispatcher(factory, network).dispatch()
    assert report.counts["published"] == 2
    assert _dispatcher(factory, network).dispatch().counts["claimed"] == 0


def test_undecryptable_credentials_mark_the_channel_without_crashing(factory, network, tmp_path):
    from campaign.config import load_settings

    _, channel_id, [delivery_id] = _seed(factory, kind="mastodon", base_url="https://m.example")
    with factory.begin() as session:
        session.execute(
            update(Channel)
            .where(Channel.id == channel_id)
            .values(credentials_encrypted=CredentialBox([generate_key()]).encrypt(b"{}"))
        )
    settings = load_settings(settings_for("sqlite://", tmp_path), use_file=False)
    adapters = AdapterFactory(settings, CredentialBox([generate_key()]), factory)
    Dispatcher(factory, adapters.build, "w", RULES).dispatch()
    assert _delivery(factory, delivery_id).status == "failed"
    with factory.begin() as session:
        assert session.get(Channel, channel_id).status == "needs_reauth"


def test_an_adapter_that_always_raises_is_bounded_then_failed(factory, network):
    _, _, [poison] = _seed(factory)
    _, _, [healthy] = _seed(factory)
    rules = EngineRules(**{**RULES.__dict__, "backoff_base": 0.0, "backoff_max": 0.0})
    poison_key = _delivery(factory, poison).idempotency_key

    def explode(post):
        if post.idempotency_key == poison_key:
            raise RuntimeError("adapter bug")
        return None

    network.publish_script.extend(explode for _ in range(20))
    network.lookup_script.extend((lambda post: None) for _ in range(20))
    dispatcher = _dispatcher(factory, network, rules)
    for _ in range(6):
        dispatcher.dispatch()
        dispatcher.reconcile()
    assert _delivery(factory, healthy).status == "published"
    assert _delivery(factory, poison).status == "failed"
    assert sum(c.idempotency_key == poison_key for c in network.publish_calls) == 3


def test_a_lookup_whose_worker_died_is_taken_over_after_its_lease(factory, network):
    from campaign.services import completion

    _, _, [delivery_id] = _seed(factory)
    network.publish_script.append(UnknownOutcome("read timeout"))
    _dispatcher(factory, network).dispatch()
    with factory.begin() as session:
        now = database_now(session)
        [claim] = completion.claim_unknown(session, now, "dead", RULES)
        publishing.start_attempts(session, [claim], now, "dead", kind="lookup")
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(lease_expires_at=now - dt.timedelta(seconds=1))
        )
    _dispatcher(factory, network, worker="w2").reconcile()
    _dispatcher(factory, network, worker="w2").dispatch()
    assert _delivery(factory, delivery_id).status == "published"
    kinds_and_outcomes = [(a.kind, a.outcome) for a in _attempts(factory, delivery_id)]
    assert ("lookup", "pending") not in kinds_and_outcomes
    assert ("lookup", "lease_expired") in kinds_and_outcomes


def test_a_long_batch_renews_the_leases_of_claims_still_waiting(factory, network):
    _, _, ids = _seed(factory, count=3)
    rules = EngineRules(**{**RULES.__dict__, "lease": dt.timedelta(seconds=3)})
    seen = []

    def slow(post):
        # While the first call is slow, the others' leases would lapse without renewal.
        import time

        time.sleep(1.1)
        with factory.begin() as session:
            seen.append(
                dict(
                    session.execute(
                        select(Delivery.id, Delivery.lease_expires_at).where(Delivery.id.in_(ids))
                    ).all()
                )
            )
        return None

    network.publish_script.extend([slow, slow, slow])
    _dispatcher(factory, network, rules).dispatch()
    assert set(_delivery(factory, i).status for i in ids) == {"published"}
    last_id = ids[-1]
    assert seen[-1][last_id] > seen[0][last_id], "the waiting claim's lease was renewed"


def test_each_pass_releases_the_adapters_it_built(factory, network):
    _seed(factory, count=2)
    released = []

    def build(channel):
        return FakeAdapter(
            ChannelContext(
                kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    dispatcher = Dispatcher(factory, build, "w", RULES, release_adapter=released.append)
    dispatcher.dispatch()
    assert len(released) == 1 and isinstance(released[0], FakeAdapter)
    dispatcher.reconcile()
    assert len(released) == 1


def test_a_claim_reaped_while_its_batch_waited_is_not_called(factory, network, caplog):
    import logging
    import time

    _, _, ids = _seed(factory, count=3)
    rules = EngineRules(**{**RULES.__dict__, "lease": dt.timedelta(seconds=3)})

    def slow_then_reaped(post):
        # The first call is slow; meanwhile the reaper takes back the other two (as it would
        # once their leases ran out) and the reconciler owns them.
        time.sleep(1.1)
        with factory.begin() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids[1:]))
                .values(status="unknown", lease_token=None, lease_expires_at=None)
            )
        return None

    network.publish_script.append(slow_then_reaped)
    with caplog.at_level(logging.WARNING):
        report = _dispatcher(factory, network, rules).dispatch()
    assert [call.delivery_id for call in network.publish_calls] == ids[:1]
    assert (report.counts["published"], report.counts["lease_lost"]) == (1, 2)
    assert caplog.text.count("was lost before the call; not calling") == 2
    assert [_delivery(factory, i).status for i in ids] == ["published", "unknown", "unknown"]


def test_housekeeping_cancels_stale_alerts_and_a_failure_there_never_stops_publishing(
    factory, network, monkeypatch, caplog
):
    import logging

    from campaign.services import alerts

    _, _, ids = _seed(factory, count=1)
    seen = []

    def stale(session, now):
        seen.append(now)
        return [41, 42]

    monkeypatch.setattr(alerts, "cancel_stale", stale)
    dispatcher = _dispatcher(factory, network)
    with caplog.at_level(logging.INFO):
        dispatcher.housekeeping(PassReport())
    assert len(seen) == 1 and seen[0].tzinfo is not None
    assert "cancelled 2 vacancy alerts" in caplog.text

    def broken(session, now):
        raise RuntimeError("a bug in alerts")

    monkeypatch.setattr(alerts, "cancel_stale", broken)
    report = PassReport()
    dispatcher.housekeeping(report)
    dispatcher.dispatch(report)
    assert report.counts["published"] == 1
    assert "cancelling the alerts of closed vacancies failed" in caplog.text
    assert _delivery(factory, ids[0]).status == "published"
