"""One function per job. Each opens its own transactions and is safe to re-run."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from campaign.config import Settings
from campaign.db import database_now, utcnow
from campaign.services import alerts as vacancy_alerts
from campaign.services import (
    idempotency,
    instance_limits,
    links,
    system,
    vacancies,
    vacancy_sources,
)
from campaign.services.accounts import ThrottlePolicy, prune_login_attempts
from campaign.worker.dispatch import Dispatcher, PassReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerIdentity:
    worker_id: str
    hostname: str
    pid: int
    started_at: dt.datetime


def heartbeat(factory: sessionmaker[Session], identity: WorkerIdentity) -> None:
    """Record that this worker ticked; /api/v1/health reports it."""
    with factory.begin() as session:
        system.record_heartbeat(
            session,
            identity.worker_id,
            identity.hostname,
            identity.pid,
            identity.started_at,
            utcnow(),
        )
    log.debug("heartbeat %s", identity.worker_id)


def prune_logins(factory: sessionmaker[Session], policy: ThrottlePolicy) -> None:
    """Forget failed sign-ins older than the throttle window."""
    with factory.begin() as session:
        removed = prune_login_attempts(session, policy, utcnow())
    if removed:
        log.info("pruned %d old login attempts", removed)


def prune_idempotency_keys(factory: sessionmaker[Session]) -> None:
    """Forget API idempotency keys older than 24 hours."""
    with factory.begin() as session:
        removed = idempotency.prune_keys(session, utcnow())
    if removed:
        log.info("pruned %d old idempotency keys", removed)


def prune_clicks(factory: sessionmaker[Session], settings: Settings) -> None:
    """Delete tracked-link clicks and bot hits past retention, and old daily salts and hashes."""
    with factory.begin() as session:
        pruned = links.prune(
            session,
            database_now(session),
            settings.links.click_retention_days,
            settings.links.bot_hit_retention_days,
        )
    if pruned.clicks or pruned.bot_hits or pruned.salts:
        log.info(
            "pruned %d clicks, %d bot hits and %d daily salts past retention",
            pruned.clicks,
            pruned.bot_hits,
            pruned.salts,
        )


def publish_due(dispatcher: Dispatcher) -> PassReport:
    """Reap, mark missed, then publish one batch of due deliveries."""
    report = PassReport()
    dispatcher.housekeeping(report)
    dispatcher.dispatch(report)
    _log_report("dispatch", report)
    return report


def reconcile_unknown(dispatcher: Dispatcher) -> PassReport:
    """Check deliveries with an unknown outcome against their platform."""
    report = dispatcher.reconcile()
    _log_report("reconcile", report)
    return report


def refresh_instance_limits(factory: sessionmaker[Session], settings: Settings) -> None:
    """Read Mastodon instances' character limits for channels not checked in the last day."""
    answered = instance_limits.refresh_mastodon_limits(factory, settings)
    if answered:
        log.info("read the character limits of %d Mastodon instance(s)", answered)


def poll_feeds(factory: sessionmaker[Session], settings: Settings) -> None:
    """Poll the vacancy feed sources that are due, then expire vacancies past closing."""
    now = utcnow()
    outcomes = vacancy_sources.poll_due(factory, settings, now)
    for outcome in outcomes:
        log.log(
            logging.WARNING if outcome.status == "error" else logging.INFO, "%s", outcome.line()
        )
    with factory.begin() as session:
        expired = vacancies.expire(session, utcnow())
    if expired:
        log.info("expired %d vacancies past their closing date", len(expired))


def plan_alerts(factory: sessionmaker[Session]) -> None:
    """Cancel alert posts whose vacancy closed or went, then plan new vacancy alerts."""
    with factory.begin() as session:
        now = database_now(session)
        cancelled = vacancy_alerts.cancel_stale(session, now)
        report = vacancy_alerts.plan_alerts(session, now)
    if cancelled:
        log.info("cancelled %d alert post(s) of closed or withdrawn vacancies", len(cancelled))
    if report.posts or report.refused:
        log.info(
            "planned %d alert post(s) (%d for review); %d alert(s) refused",
            len(report.posts),
            len(report.review),
            len(report.refused),
        )
    for problem in report.problems:
        log.warning("vacancy alerts: %s", problem)


def _log_report(name: str, report: PassReport) -> None:
    # Routine empty ticks stay at DEBUG so that a terminal running `make run` stays readable.
    level = logging.INFO if sum(report.counts.values()) else logging.DEBUG
    log.log(level, "%s: %s", name, report.summary())
