"""One dispatch pass and one reconciliation pass: short transactions around network calls.

The order inside a pass is the design's: claim (commit), write attempt records (commit), call
the platform outside any transaction, record the outcome fenced by the lease (commit). A
worker killed between any two steps leaves a state the reaper and the reconciler resolve
without a duplicate post. `fault` is a hook the reliability tests use to kill a worker at a
named step; in production it does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from campaign.channels.base import (
    ChannelAdapter,
    ChannelError,
    DuplicateRejected,
    LookupUnavailable,
    PermanentError,
    PublishedPost,
    ReconnectNeeded,
    RetryableError,
    UnknownOutcome,
)
from campaign.db import database_now
from campaign.services import completion, publishing
from campaign.services.publishing import ChannelSnapshot, Claim, EngineRules, Outcome

log = logging.getLogger(__name__)

AdapterBuilder = Callable[[ChannelSnapshot], ChannelAdapter]


def _no_fault(_point: str) -> None:
    return None


@dataclass
class PassReport:
    """What one pass did, counted by resulting state."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, key: str, n: int = 1) -> None:
        if n:
            self.counts[key] += n

    def summary(self) -> str:
        keys = ("claimed", "published", "scheduled", "failed", "unknown", "needs_review")
        extra = [k for k in sorted(self.counts) if k not in keys]
        return ", ".join(f"{k} {self.counts.get(k, 0)}" for k in (*keys, *extra))


def call_publish(adapter: ChannelAdapter, claim: Claim) -> Outcome:
    """Call the platform once and classify what happened; never raises."""
    try:
        published = adapter.publish(claim.post)
    except RetryableError as exc:
        return Outcome("retry", exc.message, exc.status, exc.retry_after)
    except ReconnectNeeded as exc:
        return Outcome("reconnect", exc.message, exc.status)
    except PermanentError as exc:
        return Outcome("failed", exc.message, exc.status)
    except DuplicateRejected as exc:
        return Outcome("duplicate", f"The platform reports a duplicate: {exc.message}", exc.status)
    except UnknownOutcome as exc:
        return Outcome("unknown", exc.message, exc.status)
    except ChannelError as exc:
        return Outcome("unknown", exc.message, exc.status)
    except Exception as exc:
        # An adapter bug may have struck before or after sending: look before any retry.
        log.exception("delivery %s: adapter raised unexpectedly", claim.delivery_id)
        return Outcome("unknown", f"Unexpected error in the {claim.channel.kind} adapter: {exc!r}")
    return Outcome("published", published=published)


class Dispatcher:
    """Runs passes for one worker; safe to run in any number of processes at once."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        build_adapter: AdapterBuilder,
        worker_id: str,
        rules: EngineRules,
        fault: Callable[[str], None] = _no_fault,
        stop: threading.Event | None = None,
        release_adapter: Callable[[ChannelAdapter], None] | None = None,
    ) -> None:
        self.factory = factory
        self.build_adapter = build_adapter
        self.worker_id = worker_id
        self.rules = rules
        self.fault = fault
        self.stop = stop or threading.Event()
        self.release_adapter = release_adapter

    def _adapter(self, claim: Claim, cache: dict[int, ChannelAdapter]) -> ChannelAdapter:
        if claim.channel.id not in cache:
            cache[claim.channel.id] = self.build_adapter(claim.channel)
        return cache[claim.channel.id]

    def _release_all(self, adapters: dict[int, ChannelAdapter]) -> None:
        if self.release_adapter is not None:
            for adapter in adapters.values():
                self.release_adapter(adapter)
        adapters.clear()

    def housekeeping(self, report: PassReport) -> None:
        """Reap expired leases and mark deliveries that are past their grace window."""
        with self.factory.begin() as session:
            now = database_now(session)
            reaped = publishing.reap_expired_leases(session, now)
            missed = publishing.mark_missed(session, now, self.rules)
        report.add("reaped_to_scheduled", reaped["scheduled"])
        report.add("reaped_to_unknown", reaped["unknown"])
        report.add("missed", missed)

    def claim(self) -> list[Claim]:
        """Claim a batch of due deliveries under a fresh lease, in one short transaction."""
        with self.factory.begin() as session:
            return publishing.claim_due(session, database_now(session), self.worker_id, self.rules)

    def dispatch(self, report: PassReport | None = None) -> PassReport:
        """Claim one batch of due deliveries and publish each once."""
        report = report or PassReport()
        claims = self.claim()
        report.add("claimed", len(claims))
        if not claims:
            return report
        self.fault("after_claim")
        with self.factory.begin() as session:
            publishing.start_attempts(session, claims, database_now(session), self.worker_id)
        self.fault("after_attempt_record")
        adapters: dict[int, ChannelAdapter] = {}
        try:
            self._publish_claims(claims, adapters, report)
        finally:
            self._release_all(adapters)
        return report

    def _publish_claims(
        self, claims: list[Claim], adapters: dict[int, ChannelAdapter], report: PassReport
    ) -> None:
        renewed_at = time.monotonic()
        for index, claim in enumerate(claims):
            if self.stop.is_set():
                self._release(claims[index:], report)
                break
            if time.monotonic() - renewed_at > self.rules.lease.total_seconds() / 3:
                # A slow platform must not let the rest of the batch's leases run out unused.
                with self.factory.begin() as session:
                    publishing.extend_leases(
                        session, claims[index:], database_now(session), self.rules
                    )
                renewed_at = time.monotonic()
            try:
                outcome = call_publish(self._adapter(claim, adapters), claim)
            except ReconnectNeeded as exc:
                outcome = Outcome("reconnect", exc.message)
            except ChannelError as exc:
                outcome = Outcome("retry", exc.message)
            if outcome.kind == "published":
                self.fault("after_remote_accept")
            with self.factory.begin() as session:
                state = completion.complete_publish(
                    session, claim, outcome, database_now(session), self.rules
                )
            report.add(state)
            if outcome.kind != "published":
                log.info("delivery %s: %s (%s)", claim.delivery_id, state, outcome.message)

    def _release(self, claims: list[Claim], report: PassReport) -> None:
        with self.factory.begin() as session:
            now = database_now(session)
            for claim in claims:
                completion.release_claim(session, claim, now)
        report.add("released", len(claims))

    def reconcile(self, report: PassReport | None = None) -> PassReport:
        """Ask the platform about deliveries whose outcome is unknown, before any retry."""
        report = report or PassReport()
        with self.factory.begin() as session:
            now = database_now(session)
            claims = completion.claim_unknown(session, now, self.worker_id, self.rules)
            if claims:
                publishing.start_attempts(session, claims, now, self.worker_id, kind="lookup")
        adapters: dict[int, ChannelAdapter] = {}
        try:
            for claim in claims:
                if self.stop.is_set():
                    break
                report.add(self._reconcile_one(claim, adapters, now))
        finally:
            self._release_all(adapters)
        return report

    def _reconcile_one(
        self, claim: Claim, adapters: dict[int, ChannelAdapter], now: dt.datetime
    ) -> str:
        found: PublishedPost | None = None
        kwargs: dict[str, object] = {}
        try:
            adapter = self._adapter(claim, adapters)
            window = adapter.capabilities.idempotency_window
            first = claim.post.first_attempt_at
            # Keep a margin: the platform's window is its promise, not ours to use to the end.
            kwargs["retry_safe"] = bool(window and first and now - first < window * 0.9)
            if not adapter.capabilities.supports_lookup:
                kwargs.update(
                    unavailable="this channel cannot be checked automatically",
                    lookup_possible=False,
                )
            else:
                found = adapter.lookup(claim.post)
        except ReconnectNeeded as exc:
            kwargs["reconnect"] = exc.message
        except ChannelError as exc:
            kwargs["unavailable"] = exc.message
            kwargs["lookup_possible"] = not isinstance(exc, PermanentError)
        except Exception as exc:
            log.exception("delivery %s: lookup raised unexpectedly", claim.delivery_id)
            kwargs["unavailable"] = f"unexpected error while checking: {exc!r}"
        with self.factory.begin() as session:
            return completion.complete_lookup(
                session,
                claim,
                found,
                database_now(session),
                self.rules,
                **kwargs,  # type: ignore[arg-type]
            )


__all__ = ["Dispatcher", "LookupUnavailable", "PassReport", "call_publish"]
