"""Builds the APScheduler that runs the worker's ticks, and the dispatcher they drive."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from campaign.db import utcnow
from campaign.services.channel_runtime import AdapterFactory
from campaign.services.metric_adapters import MetricsAdapters
from campaign.services.metric_windows import MetricsRules
from campaign.services.metrics import ChannelReport, CollectReport, collect_now
from campaign.services.publishing import EngineRules
from campaign.state import AppState
from campaign.worker import jobs
from campaign.worker.dispatch import Dispatcher

log = logging.getLogger(__name__)

# Reliability tests name a step at which the worker kills itself (testing mode only).
FAULT_ENV = "CAMPAIGN_TEST_KILL_AT"


def new_identity() -> jobs.WorkerIdentity:
    host = socket.gethostname()
    return jobs.WorkerIdentity(
        worker_id=f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        hostname=host,
        pid=os.getpid(),
        started_at=utcnow(),
    )


def _fault_hook(state: AppState) -> Any:
    point = os.environ.get(FAULT_ENV, "")
    if state.settings.app.env != "testing" or not point:
        return lambda _name: None

    def fault(name: str) -> None:
        if name == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return fault


def build_dispatcher(
    state: AppState, worker_id: str, stop: threading.Event | None = None
) -> Dispatcher:
    """A dispatcher wired to this app's database, settings and channel adapters."""
    adapters = AdapterFactory(state.settings, state.credentials, state.session_factory)
    return Dispatcher(
        state.session_factory,
        adapters.build,
        worker_id,
        EngineRules.from_settings(state.settings.publishing),
        fault=_fault_hook(state),
        stop=stop,
        release_adapter=adapters.release,
        link_base_url=state.settings.app.base_url,
    )


def build_metrics_collector(state: AppState) -> Callable[..., CollectReport]:
    """A callable running one metrics pass at the database clock (optionally with progress)."""
    adapters = MetricsAdapters(
        AdapterFactory(state.settings, state.credentials, state.session_factory)
    )
    rules = MetricsRules.from_settings(state.settings.metrics)

    def collect(progress: Callable[[ChannelReport], None] | None = None) -> CollectReport:
        return collect_now(state.session_factory, adapters.build, rules, progress, adapters.release)

    return collect


def collect_metrics(collect: Callable[..., CollectReport]) -> CollectReport:
    """Read platform figures for the deliveries due at a post age (the metrics tick)."""
    report = collect()
    level = logging.INFO if report.channels else logging.DEBUG
    log.log(level, "metrics: %s", report.summary())
    return report


def build_scheduler(state: AppState, blocking: bool, stop: threading.Event | None = None) -> Any:
    """A scheduler with the fixed ticks; jobs never overlap themselves and skip missed runs."""
    scheduler: Any = (
        BlockingScheduler(timezone="UTC") if blocking else BackgroundScheduler(timezone="UTC")
    )
    identity = new_identity()
    dispatcher = build_dispatcher(state, identity.worker_id, stop)
    tick = state.settings.worker.tick_seconds
    defaults = {"max_instances": 1, "coalesce": True, "misfire_grace_time": max(1, int(tick))}
    ticks = (
        ("heartbeat", jobs.heartbeat, (state.session_factory, identity), tick),
        ("publish_due", jobs.publish_due, (dispatcher,), tick),
        ("reconcile_unknown", jobs.reconcile_unknown, (dispatcher,), tick),
        ("prune_logins", jobs.prune_logins, (state.session_factory, state.throttle), 600.0),
        ("prune_idempotency_keys", jobs.prune_idempotency_keys, (state.session_factory,), 3600.0),
        ("prune_clicks", jobs.prune_clicks, (state.session_factory, state.settings), 3600.0),
        (
            "instance_limits",
            jobs.refresh_instance_limits,
            (state.session_factory, state.settings),
            300.0,
        ),
        ("poll_feeds", jobs.poll_feeds, (state.session_factory, state.settings), 60.0),
        ("plan_alerts", jobs.plan_alerts, (state.session_factory,), 300.0),
        (
            "collect_metrics",
            collect_metrics,
            (build_metrics_collector(state),),
            float(state.settings.metrics.collect_every_seconds),
        ),
    )
    for job_id, func, args, seconds in ticks:
        # The frequent ticks start at once; the others wait for their first interval.
        start = {"next_run_time": utcnow()} if seconds == tick else {}
        scheduler.add_job(
            func, "interval", seconds=seconds, args=args, id=job_id, **defaults, **start
        )
    log.info("worker %s ticking every %ss", identity.worker_id, tick)
    return scheduler
