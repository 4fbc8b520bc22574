"""One dispatch pass and one reconciliation pass: short transactions around network calls.

The order inside a pass is the design's: claim (commit), write attempt records (commit), call
the platform outside any transaction, record the outcome fenced by the lease (commit). A
worker killed between any two steps leaves a state the reaper and the reconciler resolve
without a duplicate post. `fault` is a hook the reliability tests use to kill a worker at a
named step; in production it does nothing.

A channel whose posts are rows in the app's own database (the outbox) has no call outside the
database: its claims are published and completed in the claim transaction itself, which commits
the claim, the attempt records, the entries and the completions together or none of them
(completion.publish_in_database). A pass holds one pooled connection throughout.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import cast

from sqlalchemy import Engine
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
    TransactionalPublisher,
    UnknownOutcome,
)
from campaign.db import database_now
from campaign.services import alerts, completion, links, publishing
from campaign.services.publishing import ChannelSnapshot, Claim, EngineRules, Outcome
from campaign.services.text_rules import KNOWN_KINDS, ChannelLimits, check_text

log = logging.getLogger(__name__)

AdapterBuilder = Callable[[ChannelSnapshot], ChannelAdapter]
# Claims worked on together: one claim, or all of a batch's claims for a channel whose adapter
# publishes inside the engine's transaction (that adapter comes with them).
Unit = tuple[TransactionalPublisher | None, list[Claim]]


def _no_fault(_point: str) -> None:
    return None


class _InDatabaseFailed(Exception):
    """Publishing to a channel in this database failed inside the claim transaction."""


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


def _fits(claim: Claim, tracked_text: str) -> bool:
    """Whether the text with its tracked links still fits the network, as the text written did.

    Bluesky counts a link at its full length, so a short original link can become too long as
    <base_url>/l/<code>: that post then goes out with its links as written (untracked) rather
    than fail, and the log says so.
    """
    limits = ChannelLimits(kind=claim.channel.kind)
    if claim.channel.kind not in KNOWN_KINDS or check_text(tracked_text, limits).ok:
        return True
    if not check_text(claim.post.text, limits).ok:
        return True  # it did not fit before either: publishing decides, as it would have
    log.warning(
        "delivery %s: with its tracked links the text is too long for %s; publishing the links"
        " as written, so its clicks are not counted",
        claim.delivery_id,
        claim.channel.kind,
    )
    return False


def _without_urls(text: str) -> str:
    for url in links.urls_in(text):
        text = text.replace(url, "")
    return text


def _same_words(claim: Claim, tracked_text: str) -> bool:
    """Whether the tracked text is this thread part's own text with its links tracked (and not
    the post's, which a link store reading only posts would give): never publish other words.
    """
    if _without_urls(tracked_text) == _without_urls(claim.post.text):
        return True
    log.warning(
        "delivery %s: the tracked text is not this thread part's text; publishing its links as"
        " written, so its clicks are not counted",
        claim.delivery_id,
    )
    return False


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
        link_base_url: str | None = None,
    ) -> None:
        self.factory = factory
        # The app's public address: each URL in a post is published as its tracked link
        # <link_base_url>/l/<code>. None publishes the text as written (engine tests).
        self.link_base_url = link_base_url
        self.build_adapter = build_adapter
        self.worker_id = worker_id
        self.rules = rules
        self.fault = fault
        self.stop = stop or threading.Event()
        self.release_adapter = release_adapter
        # The connection a pass running in this thread holds (publish and reconcile ticks may
        # run at once in different threads of one worker).
        self._held = threading.local()
        # Channel kinds seen to publish in this database. Only their claims are published in
        # the claim transaction: building any other adapter (a first import of a network
        # library can take seconds) must not happen while the claim holds its locks.
        self._in_database_kinds: dict[str, bool] = {}

    @contextlib.contextmanager
    def _holding_connection(self) -> Iterator[None]:
        """Hold one pooled connection for a whole pass: one checkout (and pre-ping), not one
        per transaction. Each transaction still begins and commits on its own."""
        bind = self.factory.kw.get("bind")
        if not isinstance(bind, Engine) or getattr(self._held, "connection", None) is not None:
            yield
            return
        with bind.connect() as connection:
            self._held.connection = connection
            try:
                yield
            finally:
                self._held.connection = None

    @contextlib.contextmanager
    def _one_transaction(self) -> Iterator[bool]:
        """Make the pass's transactions inside this one transaction, committed at the end.

        It begins with the first of them (so a claim step that opens its own sessions, as the
        reliability tests' stand-in does, is not blocked by it) and rolls back on an error.
        Yields whether this is in effect: only while a pass holds its connection.
        """
        connection = getattr(self._held, "connection", None)
        if connection is None:
            yield False
            return
        self._held.one_transaction = True
        try:
            yield True
        except BaseException:
            if connection.in_transaction():
                connection.rollback()
            raise
        else:
            if connection.in_transaction():
                connection.commit()
        finally:
            self._held.one_transaction = False

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Session]:
        """A session in a new transaction, committed on exit (rolled back on an error); inside
        _one_transaction, a session in that transaction, which commits later."""
        connection = getattr(self._held, "connection", None)
        if connection is None:
            with self.factory.begin() as session:
                yield session
            return
        if getattr(self._held, "one_transaction", False):
            if not connection.in_transaction():
                connection.begin()
            with self.factory(bind=connection) as session:
                yield session
            return
        with self.factory(bind=connection) as session, session.begin():
            yield session

    def _adapter(self, claim: Claim, cache: dict[int, ChannelAdapter]) -> ChannelAdapter:
        if claim.channel.id not in cache:
            adapter = cache[claim.channel.id] = self.build_adapter(claim.channel)
            in_database = adapter.capabilities.publishes_in_app_database
            self._in_database_kinds[claim.channel.kind] = in_database
        return cache[claim.channel.id]

    def _release_all(self, adapters: dict[int, ChannelAdapter]) -> None:
        if self.release_adapter is not None:
            for adapter in adapters.values():
                self.release_adapter(adapter)
        adapters.clear()

    def housekeeping(self, report: PassReport) -> None:
        """Reap expired leases, mark deliveries past their grace window, and cancel vacancy
        alerts whose vacancy closed or went away (so none is claimed after its closing)."""
        with self._begin() as session:
            now = database_now(session)
            reaped = publishing.reap_expired_leases(session, now)
            missed = publishing.mark_missed(session, now, self.rules)
            # Missed parts stop their threads; published ones let the next part go.
            threads = publishing.advance_threads(session, now)
        try:
            with self._begin() as session:
                stale = alerts.cancel_stale(session, database_now(session))
        except Exception:
            # Publishing must go on; the alerts tick retries, and the log says why it failed.
            log.exception("cancelling the alerts of closed vacancies failed")
        else:
            if stale:
                log.info("cancelled %d vacancy alerts whose vacancy has closed", len(stale))
        report.add("reaped_to_scheduled", reaped["scheduled"])
        report.add("reaped_to_unknown", reaped["unknown"])
        report.add("missed", missed)
        report.add("thread_parts_scheduled", threads["scheduled"])
        report.add("thread_parts_cancelled", threads["cancelled"])

    def claim(self) -> list[Claim]:
        """Claim a batch of due deliveries under a fresh lease, in one short transaction."""
        with self._begin() as session:
            # The claim reads the database clock itself.
            claims = publishing.claim_due(session, None, self.worker_id, self.rules)
            return self._tracked(session, claims)

    def _tracked(self, session: Session, claims: list[Claim]) -> list[Claim]:
        """The claims with each URL in their text replaced by its tracked link, whose code is
        made (once per delivery and URL) in the caller's transaction, before any call."""
        if self.link_base_url is None:
            return claims
        linked = [c.delivery_id for c in claims if c.post.link_url or "://" in c.post.text]
        if not linked:
            return claims
        texts = links.ensure_links(session, linked, self.link_base_url)
        tracked = []
        for claim in claims:
            published = texts.get(claim.delivery_id)
            if published is not None and claim.post.part > 0:
                published = published if _same_words(claim, published.text) else None
            if published is not None and _fits(claim, published.text):
                post = replace(claim.post, text=published.text, link_url=published.link_url)
                claim = replace(claim, post=post)
            tracked.append(claim)
        return tracked

    def dispatch(self, report: PassReport | None = None) -> PassReport:
        """Claim one batch of due deliveries and publish each once."""
        report = report or PassReport()
        adapters: dict[int, ChannelAdapter] = {}
        with self._holding_connection():
            try:
                claimed_at = time.monotonic()
                units = self._claim_units(adapters, report)
                if not units:
                    return report
                self.fault("after_claim")
                # Claims to channels in this database record their attempts with their entries.
                calls = [claim for publisher, unit in units if publisher is None for claim in unit]
                if calls:
                    with self._begin() as session:
                        publishing.start_attempts(
                            session, calls, database_now(session), self.worker_id
                        )
                    self.fault("after_attempt_record")
                self._publish_units(units, adapters, report, claimed_at)
            finally:
                self._release_all(adapters)
        return report

    def _claim_units(self, adapters: dict[int, ChannelAdapter], report: PassReport) -> list[Unit]:
        """Claim a batch; what is left to publish after the claim transaction commits.

        Claims to a channel in this database are published in the claim transaction itself:
        one transaction claims, stores and completes them, so they are never seen claimed and
        never need a lease. (The first batch of a kind not seen before goes in a transaction of
        its own, after the claim.) If that fails it all rolls back, and a fresh claim is made in
        a transaction of its own, its claims then published one at a time, so that a poison
        delivery is bounded by the attempt cap instead of failing its batch on every pass.
        """
        done = PassReport()
        try:
            with self._one_transaction() as together:
                claims = self.claim()
                handled: set[int] = set()
                if together and not self.stop.is_set():
                    known = [c for c in claims if self._in_database_kinds.get(c.channel.kind)]
                    units = self._units(known, adapters)
                    handled = self._publish_in_claim_transaction(units, done)
        except _InDatabaseFailed:
            log.exception(
                "publishing to a channel in this database failed and was rolled back, claim"
                " included; claiming again and publishing one at a time"
            )
            claims = self.claim()
            report.add("claimed", len(claims))
            return [(None, [claim]) for claim in claims]
        report.add("claimed", len(claims))
        report.counts.update(done.counts)
        return self._units([c for c in claims if c.delivery_id not in handled], adapters)

    def _publish_in_claim_transaction(self, units: list[Unit], report: PassReport) -> set[int]:
        """Publish the in-database units inside the open claim transaction; their claim ids."""
        handled: set[int] = set()
        for publisher, unit in units:
            if publisher is None:
                continue
            try:
                with self._begin() as session:
                    states = completion.publish_in_database(
                        session, unit, publisher, self.worker_id
                    )
            except Exception as exc:
                raise _InDatabaseFailed from exc
            report.counts.update(states)
            handled.update(c.delivery_id for c in unit)
        return handled

    def _units(self, claims: list[Claim], adapters: dict[int, ChannelAdapter]) -> list[Unit]:
        """The batch in order; the claims of a channel in this database together, as one unit."""
        units: list[Unit] = []
        together: dict[tuple[int, str], list[Claim]] = {}
        for claim in claims:
            try:
                adapter = self._adapter(claim, adapters)
            except ChannelError:
                adapter = None  # publishing it alone meets the same error and records it
            if adapter is None or not adapter.capabilities.publishes_in_app_database:
                units.append((None, [claim]))
                continue
            key = (claim.channel.id, claim.lease_token)
            if key in together:
                together[key].append(claim)
            else:
                together[key] = [claim]
                units.append((cast(TransactionalPublisher, adapter), together[key]))
        return units

    def _publish_units(
        self,
        units: list[Unit],
        adapters: dict[int, ChannelAdapter],
        report: PassReport,
        renewed_at: float,
    ) -> None:
        """Publish the units in order, renewing the leases of those still waiting every third
        of a lease (counted from the claim) and never calling for a claim whose lease is lost."""
        lost: set[int] = set()
        for index, (publisher, unit) in enumerate(units):
            if self.stop.is_set():
                self._release([c for _, rest in units[index:] for c in rest], report)
                break
            if time.monotonic() - renewed_at > self.rules.lease.total_seconds() / 3:
                # A slow platform must not let the rest of the batch's leases run out unused.
                waiting = [c for _, rest in units[index:] for c in rest]
                with self._begin() as session:
                    held = publishing.extend_leases(
                        session, waiting, database_now(session), self.rules
                    )
                renewed_at = time.monotonic()
                lost.update(c.delivery_id for c in waiting if c.delivery_id not in held)
            if publisher is None:
                claim = unit[0]
                if claim.delivery_id in lost:
                    # Taken back by the reaper (the batch ran later than its lease): the
                    # reconciler owns it now, and a call from here could publish it twice.
                    log.warning(
                        "delivery %s: lease %s was lost before the call; not calling, leaving"
                        " it to the reconciler",
                        claim.delivery_id,
                        claim.lease_token[:8],
                    )
                    report.add("lease_lost")
                else:
                    self._publish_one(claim, adapters, report)
                continue
            left = self._publish_within(publisher, unit, report)
            if left:
                # The transaction failed and stored nothing: each goes the ordinary way now.
                with self._begin() as session:
                    publishing.start_attempts(session, left, database_now(session), self.worker_id)
                for claim in left:
                    self._publish_one(claim, adapters, report)

    def _publish_within(
        self, publisher: TransactionalPublisher, claims: list[Claim], report: PassReport
    ) -> list[Claim]:
        """Publish a channel's claims in one transaction; those left to publish one at a time.

        Nothing is left unless the transaction failed and rolled back, publishing nothing: then
        each claim goes the ordinary way, so that a poison delivery is bounded by the attempt
        cap on its own instead of failing its whole batch again on every pass.
        """
        try:
            with self._begin() as session:
                states = completion.publish_in_database(session, claims, publisher, self.worker_id)
        except Exception:
            log.exception(
                "channel %s: publishing %d deliveries in one transaction failed; nothing was"
                " stored, publishing them one at a time",
                claims[0].channel.id,
                len(claims),
            )
            return claims
        report.counts.update(states)
        return []

    def _publish_one(
        self, claim: Claim, adapters: dict[int, ChannelAdapter], report: PassReport
    ) -> None:
        """Call the platform outside any transaction, then record the outcome, fenced."""
        try:
            outcome = call_publish(self._adapter(claim, adapters), claim)
        except ReconnectNeeded as exc:
            outcome = Outcome("reconnect", exc.message)
        except ChannelError as exc:
            outcome = Outcome("retry", exc.message)
        if outcome.kind == "published":
            self.fault("after_remote_accept")
        with self._begin() as session:
            state = completion.complete_publish(
                session, claim, outcome, database_now(session), self.rules
            )
        report.add(state)
        if outcome.kind != "published":
            log.info("delivery %s: %s (%s)", claim.delivery_id, state, outcome.message)

    def _release(self, claims: list[Claim], report: PassReport) -> None:
        with self._begin() as session:
            now = database_now(session)
            for claim in claims:
                completion.release_claim(session, claim, now)
        report.add("released", len(claims))

    def reconcile(self, report: PassReport | None = None) -> PassReport:
        """Ask the platform about deliveries whose outcome is unknown, before any retry."""
        report = report or PassReport()
        with self._begin() as session:
            now = database_now(session)
            claims = self._tracked(
                session, completion.claim_unknown(session, now, self.worker_id, self.rules)
            )
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
        with self._begin() as session:
            return completion.complete_lookup(
                session,
                claim,
                found,
                database_now(session),
                self.rules,
                **kwargs,  # type: ignore[arg-type]
            )


__all__ = ["Dispatcher", "LookupUnavailable", "PassReport", "call_publish"]
