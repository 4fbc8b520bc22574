"""Builds the APScheduler that runs the worker's ticks."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from campaign.db import utcnow
from campaign.web.context import AppState
from campaign.worker import jobs

log = logging.getLogger(__name__)


def new_identity() -> jobs.WorkerIdentity:
    host = socket.gethostname()
    return jobs.WorkerIdentity(
        worker_id=f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        hostname=host,
        pid=os.getpid(),
        started_at=utcnow(),
    )


def build_scheduler(state: AppState, blocking: bool) -> Any:
    """A scheduler with the fixed ticks; jobs never overlap themselves and skip missed runs."""
    scheduler: Any = (
        BlockingScheduler(timezone="UTC") if blocking else BackgroundScheduler(timezone="UTC")
    )
    identity = new_identity()
    tick = state.settings.worker.tick_seconds
    defaults = {"max_instances": 1, "coalesce": True, "misfire_grace_time": max(1, int(tick))}
    scheduler.add_job(
        jobs.heartbeat,
        "interval",
        seconds=tick,
        args=(state.session_factory, identity),
        id="heartbeat",
        next_run_time=utcnow(),
        **defaults,
    )
    scheduler.add_job(
        jobs.prune_logins,
        "interval",
        minutes=10,
        args=(state.session_factory, state.throttle),
        id="prune_logins",
        **defaults,
    )
    log.info("worker %s ticking every %ss", identity.worker_id, tick)
    return scheduler
