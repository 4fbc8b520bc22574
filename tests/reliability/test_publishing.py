"""Scenarios R1-R5, R7-R9, R12-R14, R16, R17, R21 and R22 of the reliability research, end to end.

Real `campaign worker` processes publish through the real client libraries to the fake platform
on loopback, on SQLite and on PostgreSQL. Each scenario checks what the platform received, from
the fake's own unique-indexed records.
"""

from __future__ import annotations

import datetime as dt
import os
import signal

import pytest
from sqlalchemy import select, update

from campaign.models import Channel, Delivery, DeliveryAttempt
from tests.fakeplatform import running_fake_platform
from tests.reliability.harness import Stack, clean_database, stack_factory

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def database(db_kind, fresh_database_url):
    from campaign.migrate import upgrade

    url = fresh_database_url(db_kind)
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def factory(database):
    yield from stack_factory(database)


@pytest.fixture
def stack(database, factory, tmp_path):
    clean_database(factory)
    with running_fake_platform(tmp_path) as fake:
        built = Stack(url=database, fake=fake, tmp_path=tmp_path, factory=factory)
        try:
            yield built
        finally:
            built.stop_all()


def _exactly_once(stack: Stack, platform: str, ids: list[int]) -> None:
    posts = stack.fake.posts(platform)
    assert set(stack.states(ids).values()) == {"published"}, stack.logs()
    assert len(posts) == len(ids), f"{len(posts)} posts on {platform} for {len(ids)} deliveries"
    with stack.factory.begin() as session:
        external = set(
            session.scalars(select(Delivery.external_id).where(Delivery.id.in_(ids))).all()
        )
    assert external == {p["external_id"] if platform != "bluesky" else p["uri"] for p in posts}


def test_r1_many_due_at_once_with_four_workers_are_each_published_once(stack):
    channel = stack.channel("mastodon")
    ids = stack.deliveries(channel, 120)
    for _ in range(4):
        stack.start_worker()
    stack.wait_for(stack.all_in(ids, "published"), "all published")
    _exactly_once(stack, "mastodon", ids)
    assert len(stack.creates("mastodon")) == len(ids), "no delivery was sent twice"


def test_r2_negative_control_a_naive_claim_is_caught_by_the_harness(stack, tmp_path):
    """Swap the lease claim for SELECT-then-UPDATE in two transactions: the harness must see it.

    The naive claim waits, between its SELECT and its UPDATE, until a second worker has selected
    the same rows (a file barrier), so the race it opens is taken every run rather than by luck.
    """
    barrier = tmp_path / "naive-barrier"
    barrier.mkdir()
    naive = (
        "import os, time\n"
        "from sqlalchemy import select, update\n"
        "from campaign.db import database_now\n"
        "from campaign.models import Delivery\n"
        "from campaign.services import publishing\n"
        "from campaign.worker.dispatch import Dispatcher\n"
        f"BARRIER = {str(barrier)!r}\n"
        "def naive(self):\n"
        "    with self.factory() as session:\n"
        "        ids = list(session.scalars(select(Delivery.id).where(\n"
        "            Delivery.status == 'scheduled', Delivery.due_at <= database_now(session))))\n"
        "    if not ids:\n"
        "        return []\n"
        "    open(os.path.join(BARRIER, str(os.getpid())), 'w').close()\n"
        "    deadline = time.monotonic() + 30\n"
        "    while len(os.listdir(BARRIER)) < 2 and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n"
        "    with self.factory.begin() as session:\n"
        "        session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(\n"
        "            status='publishing', lease_token='naive', attempts=Delivery.attempts + 1))\n"
        "        return publishing._load_claims(session, [('naive', i) for i in ids])\n"
        "Dispatcher.claim = naive\n"
        "from campaign.cli import main; main()"
    )
    channel = stack.channel("mastodon")
    for _ in range(4):
        stack.start_worker(code=naive)
    stack.wait_for(lambda: stack.heartbeats() >= 4, "four workers ticking")
    ids = stack.deliveries(channel, 40, due_in=dt.timedelta(seconds=1.5))
    stack.wait_for(lambda: "scheduled" not in stack.states(ids).values(), "all claimed")
    # The platform's idempotency key saved the public timeline, but the harness sees the calls.
    stack.wait_for(
        lambda: len(stack.creates("mastodon")) > len(ids), "the harness to see duplicate calls"
    )
    assert len(os.listdir(barrier)) >= 2, "two workers selected the same due rows"


def test_r3_killed_after_the_platform_accepted_ends_published_once(stack):
    channel = stack.channel("mastodon")
    [delivery] = stack.deliveries(channel, 1)
    doomed = stack.start_worker(CAMPAIGN_TEST_KILL_AT="after_remote_accept")
    assert stack.wait_exit(doomed) == -signal.SIGKILL
    assert stack.states([delivery]) == {delivery: "publishing"}
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "published"), "reconciled")
    _exactly_once(stack, "mastodon", [delivery])
    assert stack.delivery(delivery).attempts <= 2


@pytest.mark.parametrize(
    ("point", "passes_unknown"), [("after_claim", False), ("after_attempt_record", True)]
)
def test_r4_killed_before_the_call_is_published_once(stack, point, passes_unknown):
    channel = stack.channel("x")
    [delivery] = stack.deliveries(channel, 1)
    doomed = stack.start_worker(CAMPAIGN_TEST_KILL_AT=point)
    assert stack.wait_exit(doomed) == -signal.SIGKILL
    assert stack.creates("x") == []
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "published"), "published after the kill")
    _exactly_once(stack, "x", [delivery])
    with stack.factory.begin() as session:
        outcomes = list(
            session.scalars(
                select(DeliveryAttempt.outcome)
                .where(DeliveryAttempt.delivery_id == delivery)
                .order_by(DeliveryAttempt.id)
            )
        )
    assert ("not_found" in outcomes) is passes_unknown, outcomes


def test_r5_accept_then_drop_without_keys_is_found_by_lookup_not_resent(stack):
    channel = stack.channel("x")
    [delivery] = stack.deliveries(channel, 1)
    stack.fake.add_fault("accept_then_drop", platform="x", times=1)
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "published"), "found by lookup")
    _exactly_once(stack, "x", [delivery])
    assert len(stack.creates("x")) == 1


def test_r5_accept_then_drop_with_lookups_down_goes_to_a_person(stack):
    channel = stack.channel("x")
    [delivery] = stack.deliveries(channel, 1)
    stack.fake.set_faults(
        {"kind": "accept_then_drop", "platform": "x", "times": 1},
        {"kind": "lookup_down", "platform": "x"},
    )
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "needs_review"), "needs review")
    found = stack.delivery(delivery)
    assert "could not confirm whether this post was published" in found.last_error
    assert len(stack.creates("x")) == 1
    assert len(stack.fake.posts("x")) == 1


def test_r7_rate_limit_waits_at_least_retry_after(stack):
    channel = stack.channel("mastodon")
    [delivery] = stack.deliveries(channel, 1)
    stack.fake.add_fault("rate_limit", platform="mastodon", path="create", times=1, retry_after=3)
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "published"), "published after the wait")
    calls = stack.creates("mastodon")
    assert len(calls) == 2
    gap = dt.datetime.fromisoformat(calls[1]["at"]) - dt.datetime.fromisoformat(calls[0]["at"])
    assert gap >= dt.timedelta(seconds=2.9), gap
    _exactly_once(stack, "mastodon", [delivery])


def test_r7_a_504_that_stored_the_post_is_looked_up_not_resent(stack):
    channel = stack.channel("x")
    [delivery] = stack.deliveries(channel, 1)
    stack.fake.add_fault("stored_status", platform="x", status=504, times=1)
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "published"), "published via lookup")
    assert len(stack.creates("x")) == 1
    _exactly_once(stack, "x", [delivery])


def test_r7_repeated_5xx_stop_at_the_attempt_cap_with_a_reason(stack):
    stack.settings["CAMPAIGN_PUBLISHING__MAX_ATTEMPTS"] = "3"
    channel = stack.channel("mastodon")
    [delivery] = stack.deliveries(channel, 1)
    stack.fake.add_fault("status", platform="mastodon", path="create", status=503)
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "failed"), "failed at the cap")
    assert len(stack.creates("mastodon")) == 3
    assert stack.fake.posts("mastodon") == []
    assert "after 3 attempts" in stack.delivery(delivery).last_error


@pytest.mark.parametrize(
    ("platform", "status", "expected_channel", "message"),
    [
        ("mastodon", 401, "needs_reauth", "reconnect"),
        ("mastodon", 422, "active", "Validation failed"),
    ],
)
def test_r8_permanent_errors_fail_without_retry(stack, platform, status, expected_channel, message):
    channel = stack.channel(platform)
    other = stack.channel("x")
    [delivery] = stack.deliveries(channel, 1)
    [unaffected] = stack.deliveries(other, 1)
    stack.fake.add_fault("status", platform=platform, path="create", status=status)
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "failed"), "failed")
    stack.wait_for(stack.all_in([unaffected], "published"), "other channel unaffected")
    assert len(stack.creates(platform)) == 1
    assert message in stack.delivery(delivery).last_error
    with stack.factory.begin() as session:
        assert session.get(Channel, channel).status == expected_channel


def test_r8_duplicate_refusal_is_reconciled_not_retried(stack):
    channel = stack.channel("x")
    [delivery] = stack.deliveries(channel, 1)
    # X says "duplicate content" although it holds no such post: the engine looks it up first,
    # finds nothing, and only then sends it again.
    stack.fake.add_fault("duplicate", platform="x", times=1)
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "published"), "reconciled, then published")
    with stack.factory.begin() as session:
        outcomes = list(
            session.scalars(
                select(DeliveryAttempt.outcome)
                .where(DeliveryAttempt.delivery_id == delivery)
                .order_by(DeliveryAttempt.id)
            )
        )
    assert outcomes == ["duplicate", "not_found", "published"]
    _exactly_once(stack, "x", [delivery])


def test_r9_a_zombie_worker_cannot_complete_after_losing_its_lease(stack):
    stack.settings["CAMPAIGN_PUBLISHING__LEASE_SECONDS"] = "5"
    stack.settings["CAMPAIGN_PUBLISHING__REQUEST_TIMEOUT_SECONDS"] = "30"
    channel = stack.channel("mastodon")
    [delivery] = stack.deliveries(channel, 1)
    stack.fake.add_fault("delay", platform="mastodon", path="create", seconds=15, times=1)
    stack.start_worker()
    stack.start_worker()
    stack.wait_for(stack.all_in([delivery], "published"), "published")
    stack.wait_for(
        lambda: any(c["status"] for c in stack.creates("mastodon")[:1]), "slow call done", 60
    )
    # The slow worker's completion came after its lease was reaped: it changed nothing.
    stack.wait_for(lambda: "was lost before completion" in stack.logs(), "fenced completion")
    _exactly_once(stack, "mastodon", [delivery])
    with stack.factory.begin() as session:
        outcomes = set(
            session.scalars(
                select(DeliveryAttempt.outcome).where(DeliveryAttempt.delivery_id == delivery)
            )
        )
    assert "lease_expired" in outcomes, outcomes


def test_r12_after_an_outage_late_posts_are_missed_and_recent_ones_published(stack):
    channel = stack.channel("mastodon")
    late = stack.deliveries(channel, 2, due_in=dt.timedelta(minutes=-40))
    recent = stack.deliveries(channel, 2, due_in=dt.timedelta(minutes=-5))
    stack.start_worker()
    stack.wait_for(stack.all_in(recent, "published"), "recent published")
    stack.wait_for(stack.all_in(late, "missed"), "late missed")
    assert len(stack.fake.posts("mastodon")) == 2
    assert "grace window" in stack.delivery(late[0]).last_error


def test_r13_schedulers_everywhere_still_publish_each_post_once(stack):
    channel = stack.channel("x")
    ids = stack.deliveries(channel, 30)
    for _ in range(3):
        stack.start_worker(command="serve")
    for _ in range(2):
        stack.start_worker()
    stack.wait_for(stack.all_in(ids, "published"), "all published")
    _exactly_once(stack, "x", ids)
    assert len(stack.creates("x")) == len(ids)


def test_r14_a_worker_whose_clock_runs_fast_publishes_nothing_early(stack):
    fast = (
        "import datetime as dt, time_machine\n"
        "traveller = time_machine.travel(dt.timedelta(minutes=10), tick=True)\n"
        "traveller.start()\n"
        "from campaign.cli import main; main()"
    )
    channel = stack.channel("mastodon")
    [future] = stack.deliveries(channel, 1, due_in=dt.timedelta(minutes=5))
    [due] = stack.deliveries(channel, 1)
    stack.start_worker(code=fast)
    stack.wait_for(stack.all_in([due], "published"), "the due one published")
    assert stack.states([future]) == {future: "scheduled"}
    assert len(stack.fake.posts("mastodon")) == 1


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Etc/UTC"])
def test_r16_process_time_zone_never_shifts_what_is_published_when(stack, zone):
    channel = stack.channel("mastodon")
    now = stack.now()
    due = (now - dt.timedelta(seconds=2)).astimezone(dt.timezone(dt.timedelta(hours=2)))
    [delivery] = stack.deliveries(channel, 1, due_at=due)
    stack.start_worker(TZ=zone)
    stack.wait_for(stack.all_in([delivery], "published"), "published")
    found = stack.delivery(delivery)
    assert found.due_at == due
    assert found.first_attempt_at - due < dt.timedelta(seconds=30)


def test_r17_cancel_before_the_claim_wins_and_cancel_during_publishing_is_refused(stack):
    channel = stack.channel("mastodon")
    [cancelled, in_flight] = stack.deliveries(channel, 2)
    with stack.factory.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == cancelled, Delivery.status == "scheduled")
            .values(status="cancelled")
        )
    stack.fake.add_fault("delay", platform="mastodon", path="create", seconds=3, times=1)
    stack.start_worker()
    stack.wait_for(stack.all_in([in_flight], "publishing"), "publishing")
    with stack.factory.begin() as session:
        refused = session.execute(
            update(Delivery)
            .where(Delivery.id == in_flight, Delivery.status == "scheduled")
            .values(status="cancelled")
        ).rowcount
    assert refused == 0
    stack.wait_for(stack.all_in([in_flight], "published"), "published")
    assert stack.states([cancelled]) == {cancelled: "cancelled"}
    assert len(stack.fake.posts("mastodon")) == 1


def test_r21_a_poison_delivery_is_bounded_and_others_keep_flowing(stack):
    stack.settings["CAMPAIGN_PUBLISHING__MAX_ATTEMPTS"] = "3"
    poison_channel = stack.channel("mastodon")
    healthy_channel = stack.channel("x")
    [poison] = stack.deliveries(poison_channel, 1)
    healthy = stack.deliveries(healthy_channel, 3)
    stack.fake.add_fault("status", platform="mastodon", path="create", status=500)
    for _ in range(3):
        worker = stack.start_worker()
        stack.wait_for(lambda: stack.delivery(poison).attempts >= 1, "poison tried")
        worker.send_signal(signal.SIGTERM)
        stack.wait_exit(worker)
    stack.start_worker()
    stack.wait_for(stack.all_in([poison], "failed"), "poison failed")
    stack.wait_for(stack.all_in(healthy, "published"), "healthy published")
    assert len(stack.creates("mastodon")) == 3


def test_r22_sigterm_mid_publish_finishes_the_call_and_exits(stack):
    channel = stack.channel("mastodon")
    ids = stack.deliveries(channel, 3)
    stack.fake.add_fault("delay", platform="mastodon", path="create", seconds=1.0)
    worker = stack.start_worker()
    # Wait for the call itself, not the claim: a SIGTERM between claim and call rightly gives
    # every claim back unsent, and then there would be no call in flight to finish.
    stack.wait_for(lambda: bool(stack.creates("mastodon")), "a create call in flight")
    os.kill(worker.pid, signal.SIGTERM)
    assert stack.wait_exit(worker, timeout=20) == 0
    states = stack.states(ids)
    assert "publishing" not in states.values(), states
    assert "published" in states.values()
    assert len(stack.fake.posts("mastodon")) == list(states.values()).count("published")
