"""The metrics collector on SQLite and PostgreSQL, against the fake network (and the outbox)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from campaign.channels.base import (
    ChannelContext,
    PlatformMetrics,
    ReconnectNeeded,
    RetryableError,
)
from campaign.channels.fake import FakeAdapter, FakeNetwork
from campaign.config import load_settings
from campaign.crypto import CredentialBox, generate_key
from campaign.models import Channel, Delivery, Post
from campaign.models.metrics import (
    MetricChannelState,
    MetricCollectionState,
    MetricSnapshot,
)
from campaign.services import metric_reads
from campaign.services.channel_runtime import AdapterFactory, SqlOutboxStore
from campaign.services.metric_adapters import MetricsAdapters, hide_outbox_entry, set_outbox_metrics
from campaign.services.metric_windows import MetricsRules, Window
from campaign.services.metrics import SnapshotValues, collect_metrics, store_snapshots
from campaign.services.organisations import create_organisation

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
RULES = MetricsRules(
    windows=(Window("1h", 3600), Window("24h", 86400), Window("7d", 7 * 86400)),
    latest_every=dt.timedelta(minutes=60),
    latest_margin=dt.timedelta(hours=48),
    batch_size=100,
    backoff_base=300.0,
    backoff_max=3600.0,
    claim=dt.timedelta(minutes=10),
)


def _clear(factory):
    with factory.begin() as session:
        session.execute(text("DELETE FROM organisations"))


@pytest.fixture(autouse=True)
def _empty(factory):
    _clear(factory)


def _seed(factory, network, count=1, kind="mastodon", published_at=T0, name="c"):
    """A channel of `kind` with `count` deliveries published at `published_at` on the fake."""
    with factory.begin() as session:
        org = create_organisation(session, f"o{uuid.uuid4().hex[:8]}", "Org", "Europe/London", T0)
        channel = Channel(
            organisation_id=org.id, kind=kind, display_name=name, audience="students", created_at=T0
        )
        session.add(channel)
        ids = []
        for n in range(count):
            external_id = f"ext-{uuid.uuid4().hex[:10]}"
            post = Post(organisation_id=org.id, text=f"post {n}", status="approved", created_at=T0)
            post.deliveries.append(
                Delivery(
                    channel=channel,
                    status="published",
                    due_at=published_at,
                    published_at=published_at,
                    external_id=external_id,
                    idempotency_key=uuid.uuid4().hex,
                    updated_at=T0,
                )
            )
            session.add(post)
            session.flush()
            network.metrics[external_id] = PlatformMetrics(likes=n, impressions=None)
            ids.append(post.deliveries[0].id)
        return channel.id, ids


def _builder(networks):
    """Adapters on a fake network per channel id (one shared network when given one)."""

    def build(channel):
        network = networks if isinstance(networks, FakeNetwork) else networks[channel.id]
        context = ChannelContext(
            kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
        )
        return FakeAdapter(context)

    return build


def _collect(factory, network, now, rules=RULES):
    return collect_metrics(factory, _builder(network), rules, now)


def _snapshots(factory, delivery_id=None):
    with factory.begin() as session:
        query = select(MetricSnapshot).order_by(MetricSnapshot.delivery_id, MetricSnapshot.id)
        if delivery_id is not None:
            query = query.where(MetricSnapshot.delivery_id == delivery_id)
        return list(session.scalars(query))


def _windows(factory, delivery_id):
    return {s.window: s for s in _snapshots(factory, delivery_id)}


def _state(factory, delivery_id):
    with factory.begin() as session:
        return session.get(MetricCollectionState, delivery_id)


# Windows by age


def test_a_young_post_gets_only_a_latest_snapshot(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    report = _collect(factory, network, T0 + dt.timedelta(minutes=5))
    assert report.total("collected") == 1
    snapshot = _windows(factory, delivery_id)
    assert set(snapshot) == {"latest"}
    assert snapshot["latest"].age_seconds == 300
    assert snapshot["latest"].collected_at == T0 + dt.timedelta(minutes=5)
    assert snapshot["latest"].source == "platform"


def test_each_window_is_filled_once_when_the_post_reaches_its_age(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    for minutes in (5, 61, 62, 61 + 24 * 60, 8 * 24 * 60):
        _collect(factory, network, T0 + dt.timedelta(minutes=minutes))
    windows = _windows(factory, delivery_id)
    assert set(windows) == {"1h", "24h", "7d", "latest"}
    assert windows["1h"].age_seconds == 61 * 60 and windows["1h"].window_seconds == 3600
    assert windows["24h"].age_seconds == (61 + 24 * 60) * 60
    assert windows["7d"].age_seconds == 8 * 24 * 3600
    assert windows["latest"].window_seconds is None


def test_a_rerun_at_the_same_time_reads_and_writes_nothing(factory):
    network = FakeNetwork()
    _seed(factory, network)
    now = T0 + dt.timedelta(minutes=61)
    _collect(factory, network, now)
    before = [(s.window, s.collected_at) for s in _snapshots(factory)]
    calls = len(network.metrics_calls)
    report = _collect(factory, network, now)
    assert report.channels == []
    assert len(network.metrics_calls) == calls
    assert [(s.window, s.collected_at) for s in _snapshots(factory)] == before


def test_latest_is_refreshed_at_most_every_interval(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    _collect(factory, network, T0 + dt.timedelta(minutes=61))
    network.metrics[next(iter(network.metrics))] = PlatformMetrics(likes=40)
    _collect(factory, network, T0 + dt.timedelta(minutes=90))
    assert _windows(factory, delivery_id)["latest"].likes == 0
    _collect(factory, network, T0 + dt.timedelta(minutes=122))
    windows = _windows(factory, delivery_id)
    assert windows["latest"].likes == 40
    assert windows["1h"].likes == 0


def test_a_late_reading_fills_every_passed_window_with_its_real_age(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    _collect(factory, network, T0 + dt.timedelta(hours=30))
    windows = _windows(factory, delivery_id)
    assert set(windows) == {"1h", "24h", "latest"}
    assert windows["1h"].age_seconds == windows["24h"].age_seconds == 30 * 3600
    assert (windows["1h"].window_seconds, windows["24h"].window_seconds) == (3600, 86400)


def test_polling_stops_after_the_largest_age_plus_the_margin(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    _collect(factory, network, T0 + dt.timedelta(days=7, minutes=1))
    assert _state(factory, delivery_id).next_collect_at == T0 + dt.timedelta(days=7, minutes=61)
    calls = len(network.metrics_calls)
    _collect(factory, network, T0 + dt.timedelta(days=10))
    assert len(network.metrics_calls) == calls
    assert set(_windows(factory, delivery_id)) == {"1h", "24h", "7d", "latest"}


def test_only_published_deliveries_on_reporting_channels_are_read(factory):
    network = FakeNetwork()
    _seed(factory, network, kind="manual")
    _, [scheduled] = _seed(factory, network)
    with factory.begin() as session:
        session.get(Delivery, scheduled).status = "failed"
    report = _collect(factory, network, T0 + 2 * HOUR)
    assert report.channels == [] and network.metrics_calls == []


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.integers(min_value=0, max_value=11 * 24 * 60), min_size=1, max_size=8).map(sorted)
)
def test_property_each_window_is_filled_once_at_the_first_pass_past_its_age(factory, minutes):
    _clear(factory)
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    for minute in minutes:
        _collect(factory, network, T0 + dt.timedelta(minutes=minute))
    rows = _snapshots(factory, delivery_id)
    assert len(rows) == len({row.window for row in rows})
    windows = {row.window: row for row in rows}
    horizon = RULES.horizon.total_seconds() / 60
    for window in RULES.windows:
        passes = [m for m in minutes if window.seconds / 60 <= m <= horizon]
        if passes:
            assert windows[window.label].age_seconds == passes[0] * 60
        else:
            assert window.label not in windows


# Not found, rate limits, failures


def test_a_post_missing_on_the_platform_is_flagged_and_no_longer_read(factory):
    network = FakeNetwork()
    _, [kept, gone] = _seed(factory, network, count=2)
    _collect(factory, network, T0 + dt.timedelta(minutes=61))
    with factory.begin() as session:
        network.deleted.add(session.get(Delivery, gone).external_id)
    report = _collect(factory, network, T0 + dt.timedelta(hours=25))
    assert report.total("not_found") == 1 and report.total("collected") == 1
    state = _state(factory, gone)
    assert state.not_found_at == T0 + dt.timedelta(hours=25)
    assert state.next_collect_at is None and "no such post" in state.last_error
    assert set(_windows(factory, gone)) == {"1h", "latest"}
    assert set(_windows(factory, kept)) == {"1h", "24h", "latest"}
    _collect(factory, network, T0 + dt.timedelta(days=8))
    assert all(gone_ref.delivery_id != gone for gone_ref in network.metrics_calls[-1])


def test_a_rate_limited_channel_backs_off_while_others_carry_on(factory):
    limited, other = FakeNetwork(), FakeNetwork()
    limited_channel, [slow] = _seed(factory, limited, name="limited")
    other_channel, [fine] = _seed(factory, other, name="other")
    limited.metrics_script.append(RetryableError("slow down", retry_after=600, status=429))
    networks = {limited_channel: limited, other_channel: other}
    now = T0 + dt.timedelta(minutes=61)
    report = collect_metrics(factory, _builder(networks), RULES, now)
    by_name = {c.name: c for c in report.channels}
    assert (by_name["limited"].rate_limited, by_name["limited"].collected) == (1, 0)
    assert by_name["other"].collected == 1
    assert _windows(factory, slow) == {}
    with factory.begin() as session:
        channel_state = session.get(MetricChannelState, limited_channel)
        assert channel_state.next_collect_at == now + dt.timedelta(seconds=600)
        assert channel_state.failures == 1 and channel_state.last_error == "slow down"
    calls = len(limited.metrics_calls)
    collect_metrics(factory, _builder(networks), RULES, now + dt.timedelta(minutes=5))
    assert len(limited.metrics_calls) == calls
    collect_metrics(factory, _builder(networks), RULES, now + dt.timedelta(minutes=11))
    assert set(_windows(factory, slow)) == {"1h", "latest"}
    assert set(_windows(factory, fine)) == {"1h", "latest"}
    with factory.begin() as session:
        recovered = session.get(MetricChannelState, limited_channel)
        assert (recovered.failures, recovered.next_collect_at) == (0, None)


def test_a_rate_limit_mid_channel_keeps_the_batches_already_read(factory):
    network = FakeNetwork()
    _, ids = _seed(factory, network, count=3)

    class LimitAfterFirstBatch(FakeAdapter):
        def fetch_metrics(self, posts):
            if self.network.metrics_calls:
                self.network.metrics_script.append(RetryableError("429", status=429))
            return super().fetch_metrics(posts)

    def build(channel):
        context = ChannelContext(
            kind="fake", base_url="", credentials={}, http=None, extra={"network": network}
        )
        return LimitAfterFirstBatch(context)

    report = collect_metrics(factory, build, RULES, T0 + 2 * HOUR)
    assert report.total("collected") == 2 and report.total("rate_limited") == 1
    assert len([i for i in ids if _windows(factory, i)]) == 2


@pytest.mark.parametrize(
    "error",
    [RuntimeError("adapter bug"), ReconnectNeeded("reconnect the account")],
    ids=["unexpected", "reconnect"],
)
def test_a_failing_channel_is_recorded_never_raised(factory, error):
    network = FakeNetwork()
    channel_id, [delivery_id] = _seed(factory, network)
    network.metrics_script.append(error)
    report = _collect(factory, network, T0 + 2 * HOUR)
    assert report.total("failed") == 1
    assert str(error) in report.channels[0].error
    with factory.begin() as session:
        state = session.get(MetricChannelState, channel_id)
        assert state.next_collect_at == T0 + 2 * HOUR + dt.timedelta(seconds=300)
    assert _state(factory, delivery_id).next_collect_at == state.next_collect_at


def test_a_channel_whose_adapter_cannot_be_built_is_recorded(factory):
    network = FakeNetwork()
    _seed(factory, network)

    def build(channel):
        raise ReconnectNeeded("The stored credentials cannot be decrypted")

    report = collect_metrics(factory, build, RULES, T0 + 2 * HOUR)
    assert report.total("failed") == 1
    assert report.channels[0].error.startswith("reconnect needed")


def test_a_post_left_out_of_the_answer_is_retried_later(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)

    class Forgetful(FakeAdapter):
        def fetch_metrics(self, posts):
            return {}

    def build(channel):
        return Forgetful(
            ChannelContext(
                kind="f", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    now = T0 + 2 * HOUR
    report = collect_metrics(factory, build, RULES, now)
    assert report.total("failed") == 1
    state = _state(factory, delivery_id)
    assert (state.attempts, state.next_collect_at) == (1, now + dt.timedelta(seconds=300))


# Upserts


def _values(delivery_id, window, age, likes, collected_at=T0):
    seconds = None if window == "latest" else 3600
    return SnapshotValues(
        delivery_id, window, seconds, "platform", collected_at, age, PlatformMetrics(likes=likes)
    )


def test_storing_the_same_snapshot_twice_keeps_one_row(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    for _ in range(2):
        with factory.begin() as session:
            store_snapshots(session, [_values(delivery_id, "1h", 3700, 5)])
    [row] = _snapshots(factory, delivery_id)
    assert (row.window, row.likes, row.age_seconds) == ("1h", 5, 3700)


def test_a_window_keeps_the_reading_closest_to_its_age(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    with factory.begin() as session:
        store_snapshots(session, [_values(delivery_id, "1h", 3700, 5)])
        store_snapshots(session, [_values(delivery_id, "1h", 3650, 4)])
        store_snapshots(session, [_values(delivery_id, "1h", 9000, 50)])
    [row] = _snapshots(factory, delivery_id)
    assert (row.likes, row.age_seconds) == (4, 3650)


def test_latest_never_moves_backwards(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    with factory.begin() as session:
        store_snapshots(session, [_values(delivery_id, "latest", 100, 5, T0 + HOUR)])
        store_snapshots(session, [_values(delivery_id, "latest", 50, 2, T0)])
    [row] = _snapshots(factory, delivery_id)
    assert (row.likes, row.collected_at) == (5, T0 + HOUR)
    with factory.begin() as session:
        store_snapshots(session, [_values(delivery_id, "latest", 200, 9, T0 + 2 * HOUR)])
    [row] = _snapshots(factory, delivery_id)
    assert (row.likes, row.collected_at) == (9, T0 + 2 * HOUR)


def test_two_concurrent_upserts_of_one_snapshot_leave_one_row(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    barrier = threading.Barrier(2)
    errors = []

    def write(likes):
        try:
            session = factory()
            try:
                barrier.wait(timeout=30)
                store_snapshots(session, [_values(delivery_id, "1h", 3700, likes)])
                session.commit()
            finally:
                session.close()
        except Exception as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(_snapshots(factory, delivery_id)) == 1


def test_two_concurrent_collectors_read_and_store_each_delivery_once(factory):
    network = FakeNetwork()
    _, ids = _seed(factory, network, count=6)
    barrier = threading.Barrier(2)
    errors, reports = [], []
    lock = threading.Lock()

    class Synchronised(FakeAdapter):
        def fetch_metrics(self, posts):
            with lock:
                return super().fetch_metrics(posts)

    def build(channel):
        return Synchronised(
            ChannelContext(
                kind="f", base_url="", credentials={}, http=None, extra={"network": network}
            )
        )

    def run():
        try:
            barrier.wait(timeout=30)
            reports.append(collect_metrics(factory, build, RULES, T0 + 2 * HOUR))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(report.total("collected") for report in reports) == 6
    read = [ref.delivery_id for call in network.metrics_calls for ref in call]
    assert sorted(read) == sorted(ids)
    with factory.begin() as session:
        counts = session.execute(
            select(MetricSnapshot.delivery_id, MetricSnapshot.window, func.count()).group_by(
                MetricSnapshot.delivery_id, MetricSnapshot.window
            )
        ).all()
    assert {(d, w) for d, w, _ in counts} == {(d, w) for d in ids for w in ("1h", "latest")}
    assert all(n == 1 for _, _, n in counts)


def test_an_abandoned_claim_is_taken_again_after_it_expires(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    now = T0 + 2 * HOUR
    with factory.begin() as session:
        session.add(MetricCollectionState(delivery_id=delivery_id, next_collect_at=now + HOUR))
    assert _collect(factory, network, now).channels == []
    assert _collect(factory, network, now + HOUR).total("collected") == 1


# The outbox, read like a platform


def test_outbox_figures_are_read_and_a_hidden_entry_is_not_found(factory, tmp_path):
    settings = load_settings(
        {"app": {"instance_path": str(tmp_path)}, "database": {"url": "sqlite://"}},
        use_file=False,
    )
    adapters = MetricsAdapters(AdapterFactory(settings, CredentialBox([generate_key()]), factory))
    store = SqlOutboxStore(factory)
    with factory.begin() as session:
        org = create_organisation(session, "outbox-org", "Org", "Europe/London", T0)
        channel = Channel(
            organisation_id=org.id,
            kind="outbox",
            display_name="o",
            audience="students",
            created_at=T0,
        )
        session.add(channel)
        session.flush()
        channel_id = channel.id
    deliveries = []
    for key in ("first", "second"):
        entry_id, _at = store.insert(channel_id, key, f"text {key}", None)
        with factory.begin() as session:
            post = Post(organisation_id=org.id, text=key, status="approved", created_at=T0)
            post.deliveries.append(
                Delivery(
                    channel_id=channel_id,
                    status="published",
                    due_at=T0,
                    published_at=T0,
                    external_id=f"outbox-{entry_id}",
                    idempotency_key=key,
                    updated_at=T0,
                )
            )
            session.add(post)
            session.flush()
            deliveries.append((post.deliveries[0].id, entry_id))
    (shown, shown_entry), (hidden, hidden_entry) = deliveries
    with factory.begin() as session:
        set_outbox_metrics(session, shown_entry, PlatformMetrics(impressions=120, likes=7), T0)
        hide_outbox_entry(session, hidden_entry, T0)
    report = collect_metrics(
        factory, adapters.build, RULES, T0 + 2 * HOUR, release=adapters.release
    )
    assert (report.total("collected"), report.total("not_found")) == (1, 1)
    latest = _windows(factory, shown)["latest"]
    assert (latest.impressions, latest.likes, latest.replies) == (120, 7, None)
    assert _state(factory, hidden).not_found_at == T0 + 2 * HOUR


# Reading snapshots back


def test_post_snapshots_list_windows_by_age_with_latest_last(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    for minutes in (61, 25 * 60):
        _collect(factory, network, T0 + dt.timedelta(minutes=minutes))
    with factory.begin() as session:
        post_id = session.get(Delivery, delivery_id).post_id
        rows = metric_reads.post_snapshots(session, post_id)[delivery_id]
    assert [(r.window, r.source) for r in rows] == [
        ("1h", "platform"),
        ("24h", "platform"),
        ("latest", "platform"),
    ]
    assert rows[0].collected_at == T0 + dt.timedelta(minutes=61)
    assert rows[0].figures == PlatformMetrics(likes=0)


@pytest.mark.parametrize(
    ("age", "window"),
    # A reading a little past the age (up to a tenth of it, at least 15 minutes) counts as the
    # reading at that age, as the collector's readings are always a little late.
    [(2000, None), (3599, "1h"), (75000, "1h"), (80000, "24h"), (10**6, "latest")],
)
def test_snapshot_at_age_is_the_latest_reading_not_beyond_it(factory, age, window):
    network = FakeNetwork()
    _, [delivery_id, other] = _seed(factory, network, count=2)
    with factory.begin() as session:
        store_snapshots(
            session,
            [
                _values(delivery_id, "1h", 3700, 1),
                _values(delivery_id, "24h", 86500, 2),
                _values(delivery_id, "latest", 90000, 3),
                _values(other, "1h", 3600, 9),
            ],
        )
        found = metric_reads.snapshots_at_age(session, [delivery_id], age)
    assert (found[delivery_id].window if found else None) == window


def test_collection_status_carries_the_not_found_flag(factory):
    network = FakeNetwork()
    _, [delivery_id] = _seed(factory, network)
    network.deleted.update(network.metrics)
    _collect(factory, network, T0 + HOUR)
    with factory.begin() as session:
        status = metric_reads.collection_status(session, [delivery_id])[delivery_id]
    assert status.not_found_at == T0 + HOUR and status.next_collect_at is None
