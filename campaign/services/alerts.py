"""Vacancy alerts: which vacancies match a rule, planning their posts, cancelling stale ones.

`plan_alerts` turns, for each enabled rule, the open vacancies that match it and have no alert
for it yet into ordinary posts (soonest closing first), through `posts.create_post`, so alerts
go through approval, queue slots, blackouts, the publishing engine, its caps and tracked links
like any other post. A vacancy is alerted at most once per rule: its `VacancyAlert` row is
inserted (in a savepoint) before the post is made, and the unique (vacancy_id, rule_id) pair
makes a second planner racing for it give up on that vacancy.

Never after closing: a vacancy whose closing time falls before the slot its post would get is
not alerted; `cancel_stale` cancels alert posts not yet published whose vacancy expired, was
withdrawn, or closes before the post's time (call it just before claiming due deliveries).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from campaign.models import Channel, Delivery, Organisation, Post, Vacancy
from campaign.models.alerts import AlertRule, AlertTemplate, VacancyAlert
from campaign.services import ServiceError, posts, publishing, scheduling
from campaign.services import alert_templates as templates_
from campaign.services.alert_choice import TemplateResult, choose_template, template_results
from campaign.services.audit import Actor, record
from campaign.services.local_time import Resolved, as_zone
from campaign.services.text_rules import ChannelLimits

# How a stated pay period becomes a year, assuming full-time work (37.5 hours, 5 days a week).
ANNUAL_FACTORS: dict[str, Decimal] = {
    "year": Decimal(1),
    "month": Decimal(12),
    "week": Decimal(52),
    "day": Decimal(260),
    "hour": Decimal(1950),
}
MAX_CANDIDATES = 500  # vacancies read per rule and run
MAX_POSTS_PER_RUN = 10  # alert posts one rule makes per run (the rest wait for the next run)
MAX_PASSED_SLOTS = 200  # queue slots passed over for quiet hours or blackouts
# Alerts are not booked into slots further ahead than this: they wait for a later run, so a
# large feed cannot fill a channel's queue for months.
PLANNING_HORIZON = dt.timedelta(days=14)
_SALARY_DOUBT = frozenset({"salary_ambiguous", "salary_predicted"})
_OPEN_POSTS = ("draft", "pending_approval", "approved", "rejected")
# Deliveries not sent yet: scheduled, or a thread's later part waiting for the one before it.
_UNSENT = ("scheduled", "waiting")


# --- filters --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFilters:
    """What a vacancy must be to match a rule; empty lists match everything."""

    keywords: tuple[str, ...] = ()  # any of, as whole words, in the title or description
    employers: tuple[str, ...] = ()  # any of, within the employer's name
    locations: tuple[str, ...] = ()  # any of, within the location
    salary_floor: int | None = None  # annual GBP
    unknown_salary_passes: bool = True  # when the annual salary cannot be worked out
    closing_within_days: int | None = None  # only vacancies closing within this many days
    source_ids: tuple[int, ...] = ()
    exclude_flags: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> RuleFilters:
        """From stored JSON; anything of the wrong shape is dropped, never trusted."""

        def words(key: str) -> tuple[str, ...]:
            value = data.get(key) or ()
            if not isinstance(value, (list, tuple)):
                return ()
            return tuple(str(v).strip() for v in value if str(v).strip())

        def whole(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        sources = data.get("source_ids") or ()
        return cls(
            keywords=words("keywords"),
            employers=words("employers"),
            locations=words("locations"),
            salary_floor=whole("salary_floor"),
            unknown_salary_passes=bool(data.get("unknown_salary_passes", True)),
            closing_within_days=whole("closing_within_days"),
            source_ids=tuple(v for v in sources if isinstance(v, int) and not isinstance(v, bool))
            if isinstance(sources, (list, tuple))
            else (),
            exclude_flags=words("exclude_flags"),
        )

    @classmethod
    def of(cls, rule: AlertRule) -> RuleFilters:
        return cls.from_data(rule.filter_data)


@dataclass(frozen=True)
class Facts:
    """What matching needs to know about a vacancy (plain values)."""

    title: str
    description: str
    employer: str
    location: str
    source_id: int | None
    closes_at: dt.datetime | None
    salary_min: Decimal | None
    salary_max: Decimal | None
    salary_currency: str | None
    salary_period: str | None
    flags: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, vacancy: Vacancy) -> Facts:
        return cls(
            title=vacancy.title or "",
            description=vacancy.description_text or "",
            employer=vacancy.employer or "",
            location=vacancy.location or "",
            source_id=vacancy.source_id,
            closes_at=vacancy.closes_at,
            salary_min=vacancy.salary_min,
            salary_max=vacancy.salary_max,
            salary_currency=vacancy.salary_currency,
            salary_period=vacancy.salary_period,
            flags=frozenset(vacancy.flag_list),
        )


def annual_salary(facts: Facts) -> Decimal | None:
    """The best annual GBP figure (the maximum, else the minimum); None when not unambiguous."""
    if facts.flags & _SALARY_DOUBT:
        return None
    figure = facts.salary_max if facts.salary_max is not None else facts.salary_min
    if figure is None or (facts.salary_currency or "GBP").upper() != "GBP":
        return None
    factor = ANNUAL_FACTORS.get(facts.salary_period or "")
    if factor is None:
        return None
    try:
        return Decimal(figure) * factor
    except InvalidOperation:
        return None


def mismatch(filters: RuleFilters, facts: Facts, now: dt.datetime) -> str | None:
    """Why the vacancy does not match (one sentence), or None when it matches."""
    if filters.keywords:
        haystack = f"{facts.title}\n{facts.description}".casefold()
        if not any(_has_word(haystack, k) for k in filters.keywords):
            return "none of the keywords is in its title or description"
    if filters.employers and not _contains_any(facts.employer, filters.employers):
        return "its employer is not one of the rule's employers"
    if filters.locations and not _contains_any(facts.location, filters.locations):
        return "its location is not one of the rule's locations"
    if filters.salary_floor is not None:
        annual = annual_salary(facts)
        if annual is None and not filters.unknown_salary_passes:
            return "its annual salary is not known"
        if annual is not None and annual < filters.salary_floor:
            return f"its salary (about £{annual:,.0f} a year) is below the floor"
    if filters.closing_within_days is not None:
        if facts.closes_at is None:
            return "it has no closing date"
        if facts.closes_at > now + dt.timedelta(days=filters.closing_within_days):
            return f"it closes more than {filters.closing_within_days} days from now"
    if filters.source_ids and facts.source_id not in filters.source_ids:
        return "it comes from another source"
    excluded = sorted(facts.flags & set(filters.exclude_flags))
    if excluded:
        return f"it is flagged {', '.join(excluded)}"
    return None


def _has_word(haystack: str, word: str) -> bool:
    needle = word.casefold().strip()
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def _contains_any(value: str, wanted: Iterable[str]) -> bool:
    folded = value.casefold()
    return any(w.casefold() in folded for w in wanted if w.strip())


# --- quiet hours and times ------------------------------------------------------------------


def in_quiet_hours(local: dt.time, start: dt.time | None, end: dt.time | None) -> bool:
    """Whether a local wall time is inside [start, end); the span may cross midnight."""
    if start is None or end is None or start == end:
        return False
    local = local.replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


@dataclass(frozen=True)
class Slotting:
    """When the alert would go out on each channel, and whether queue order was bent for it."""

    times: dict[int, Resolved]
    queue_order: bool  # True: exactly what "add to queue" picks, so use_queue=True gives it

    @property
    def first(self) -> dt.datetime:
        return min(r.utc for r in self.times.values())

    @property
    def last(self) -> dt.datetime:
        return max(r.utc for r in self.times.values())


def slot_for(
    session: Session, organisation: Organisation, rule: AlertRule, channels: Sequence[Channel],
    now: dt.datetime,
) -> Slotting:  # fmt: skip
    """Each channel's next free queue slot outside the rule's quiet hours and blackouts, and
    within the channel's hourly and daily caps."""
    tz = as_zone(organisation.timezone)
    times: dict[int, Resolved] = {}
    queue_order = True
    for channel in channels:
        passed: set[dt.datetime] = set()
        for _ in range(MAX_PASSED_SLOTS):
            found = scheduling.next_queue_time(
                session, channel, organisation.timezone, now, also_taken=passed
            )
            if scheduling.blackouts_covering(
                session, organisation.id, organisation.timezone, [found.utc]
            ):
                passed.add(found.utc)  # "add to queue" passes over these too
                continue
            if in_quiet_hours(
                found.utc.astimezone(tz).time(), rule.quiet_start, rule.quiet_end
            ) or _over_cap(session, channel, found.utc):
                passed.add(found.utc)
                queue_order = False
                continue
            times[channel.id] = found
            break
        else:
            raise ServiceError(
                f"The next {MAX_PASSED_SLOTS} queue slots of {channel.display_name} all fall in "
                "quiet hours or blackouts, or would exceed its caps."
            )
    return Slotting(times, queue_order)


def _over_cap(session: Session, channel: Channel, at: dt.datetime) -> bool:
    """Whether one more post at `at` would put more than the channel's hourly or daily cap of
    planned deliveries into some hour (day). The engine enforces the caps anyway; planning
    within them keeps alerts from piling up behind a cap and going out late."""
    for cap, window in (
        (channel.max_posts_per_hour, dt.timedelta(hours=1)),
        (channel.max_posts_per_day, dt.timedelta(days=1)),
    ):
        if cap is None:
            continue
        near = sorted(
            session.scalars(
                select(Delivery.due_at).where(
                    Delivery.channel_id == channel.id,
                    Delivery.status.not_in(("cancelled", "missed", "failed")),
                    Delivery.due_at > at - window,
                    Delivery.due_at < at + window,
                )
            )
        )
        # Every window (end - window, end] that would hold the new post: ending at it, or at
        # one of the planned posts after it.
        for end in [at, *(t for t in near if t >= at)]:
            if sum(1 for t in near if end - window < t <= end) + 1 > cap:
                return True
    return False


# --- choosing a template (campaign.services.alert_choice) ---------------------------------


def _template_counts(session: Session, rule_id: int) -> dict[int, int]:
    rows = session.execute(
        select(VacancyAlert.template_id, func.count())
        .where(
            VacancyAlert.rule_id == rule_id,
            VacancyAlert.template_id.is_not(None),
            VacancyAlert.status == "planned",
        )
        .group_by(VacancyAlert.template_id)
    )
    return {int(template_id): int(n) for template_id, n in rows if template_id is not None}


# --- planning -------------------------------------------------------------------------------


@dataclass
class PlanReport:
    """What one planning run did, for the worker's log and the tests."""

    posts: list[int] = field(default_factory=list)  # alert posts made
    review: list[int] = field(default_factory=list)  # of which pending approval
    refused: list[tuple[int, str]] = field(default_factory=list)  # (vacancy id, reason)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (vacancy id, reason)
    problems: list[str] = field(default_factory=list)  # a rule that could not plan at all

    def merge(self, other: PlanReport) -> None:
        self.posts += other.posts
        self.review += other.review
        self.refused += other.refused
        self.skipped += other.skipped
        self.problems += other.problems


def plan_alerts(
    session: Session, now: dt.datetime, organisation_id: int | None = None
) -> PlanReport:
    """Plan the alerts of every enabled rule (of one organisation, or all); flushes only."""
    query = select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)
    if organisation_id is not None:
        query = query.where(AlertRule.organisation_id == organisation_id)
    report = PlanReport()
    for rule in session.scalars(query.options(selectinload(AlertRule.templates))).all():
        report.merge(plan_rule(session, rule, now))
    return report


def candidates(session: Session, rule: AlertRule, now: dt.datetime) -> list[Vacancy]:
    """Open vacancies of the rule's organisation that match it and have no alert for it yet,
    soonest closing first (those without a closing date last)."""
    filters = RuleFilters.of(rule)
    already = exists().where(VacancyAlert.vacancy_id == Vacancy.id, VacancyAlert.rule_id == rule.id)
    query = (
        select(Vacancy)
        .where(
            Vacancy.organisation_id == rule.organisation_id,
            Vacancy.status == "open",
            (Vacancy.closes_at.is_(None)) | (Vacancy.closes_at > now),
            ~already,
        )
        .order_by(Vacancy.closes_at.is_(None), Vacancy.closes_at, Vacancy.id)
        .limit(MAX_CANDIDATES)
    )
    if filters.source_ids:
        query = query.where(Vacancy.source_id.in_(filters.source_ids))
    return [v for v in session.scalars(query) if mismatch(filters, Facts.of(v), now) is None]


def plan_rule(session: Session, rule: AlertRule, now: dt.datetime) -> PlanReport:
    report = PlanReport()
    organisation = session.get(Organisation, rule.organisation_id)
    if organisation is None:
        return report
    channels = _rule_channels(session, rule)
    if not channels:
        report.problems.append(f"Rule “{rule.name}” has no active channel.")
        return report
    if not rule.templates:
        report.problems.append(f"Rule “{rule.name}” has no template.")
        return report
    found = candidates(session, rule, now)
    if not found:
        return report
    try:
        if rule.mode in ("digest", "thread"):
            _plan_digest(session, organisation, rule, channels, found, now, report)
        else:
            _plan_singles(session, organisation, rule, channels, found, now, report)
    except ServiceError as exc:
        report.problems.append(f"Rule “{rule.name}”: {exc}")
    return report


def _rule_channels(session: Session, rule: AlertRule) -> list[Channel]:
    wanted = rule.channel_id_list
    if not wanted:
        return []
    rows = session.scalars(
        select(Channel).where(
            Channel.id.in_(wanted),
            Channel.organisation_id == rule.organisation_id,
            Channel.status != "disabled",
        )
    )
    by_id = {c.id: c for c in rows}
    return [by_id[i] for i in wanted if i in by_id]


def _flagged(rule: AlertRule, vacancy: Vacancy) -> list[str]:
    return [f for f in vacancy.flag_list if f in rule.review_flag_list]


def _review_reason(rule: AlertRule, vacancy: Vacancy) -> str | None:
    flagged = _flagged(rule, vacancy)
    if flagged:
        said = vacancy.salary_text.strip() or "no salary given"
        return "; ".join(f"{f.replace('_', ' ')}: {said}" for f in flagged)
    if rule.requires_approval:
        return "this rule's alerts wait for a manager"
    return None


def _actor(rule: AlertRule) -> Actor:
    # Staff, whoever wrote the rule: an alert's text was never seen by a manager, so channels
    # that require approval hold it for one.
    return Actor(
        organisation_id=rule.organisation_id,
        label=f"vacancy alert rule “{rule.name}”"[:200],
        user_id=rule.created_by_id,
        role="staff",
    )


@dataclass
class _Choice:
    """Choosing a rule's template within one planning run: alerts made so far per template,
    and the measured results (read once per rule and run)."""

    counts: dict[int, int]
    results: dict[int, TemplateResult]

    def pick(self, templates: Sequence[AlertTemplate], seed: str) -> AlertTemplate:
        return choose_template(templates, self.counts, seed, self.results)

    def made(self, template: AlertTemplate) -> None:
        self.counts[template.id] = self.counts.get(template.id, 0) + 1


def _render_one(
    template: AlertTemplate, vacancy: Vacancy, organisation: Organisation,
    limits: list[tuple[str, ChannelLimits]], now: dt.datetime,
) -> str:  # fmt: skip
    """One vacancy through the template, refused (TemplateRefused) if it fails to render or
    does not fit every channel."""
    source = vacancy.source.name if vacancy.source else ""
    fields = templates_.vacancy_fields(vacancy, organisation.timezone, now, source)
    text = templates_.render(template.body, fields)
    problems = templates_.length_problems(text, limits)
    if problems:
        raise templates_.TemplateRefused(" ".join(problems))
    return text


def _refuse(
    session: Session, rule: AlertRule, vacancy: Vacancy, template: AlertTemplate,
    exc: templates_.TemplateRefused, now: dt.datetime, report: PlanReport,
) -> None:  # fmt: skip
    if _claim(session, rule, [vacancy], template, "refused", str(exc), now):
        report.refused.append((vacancy.id, str(exc)))


def _plan_singles(
    session: Session, organisation: Organisation, rule: AlertRule, channels: list[Channel],
    found: list[Vacancy], now: dt.datetime, report: PlanReport,
) -> None:  # fmt: skip
    choice = _Choice(_template_counts(session, rule.id), template_results(session, rule.id))
    limits = [(c.display_name, ChannelLimits.of(c)) for c in channels]
    made = 0
    for vacancy in found:
        if made >= MAX_POSTS_PER_RUN:
            break
        slotting = slot_for(session, organisation, rule, channels, now)
        if slotting.last > now + PLANNING_HORIZON:
            break  # the queue is full for now: the rest wait for a later run
        if vacancy.closes_at is not None and vacancy.closes_at <= slotting.last:
            report.skipped.append((vacancy.id, "it closes before the next free slot"))
            continue
        template = choice.pick(rule.templates, f"{rule.id}:{vacancy.id}")
        try:
            text = _render_one(template, vacancy, organisation, limits, now)
        except templates_.TemplateRefused as exc:
            _refuse(session, rule, vacancy, template, exc, now, report)
            continue
        alerts = _claim(session, rule, [vacancy], template, "planned", None, now)
        if not alerts:
            report.skipped.append((vacancy.id, "another planner alerted it"))
            continue
        choice.made(template)
        post = _make_post(
            session, organisation, rule, channels, slotting, text, vacancy.url or None,
            _review_reason(rule, vacancy), now, alerts, report,
        )  # fmt: skip
        if post is not None:
            made += 1


def _plan_digest(
    session: Session, organisation: Organisation, rule: AlertRule, channels: list[Channel],
    found: list[Vacancy], now: dt.datetime, report: PlanReport,
) -> None:  # fmt: skip
    """One post listing what matched since the last digest; flagged vacancies go to review
    one by one. A new digest is made only once the previous one has gone out."""
    choice = _Choice(_template_counts(session, rule.id), template_results(session, rule.id))
    limits = [(c.display_name, ChannelLimits.of(c)) for c in channels]
    flagged = [v for v in found if _flagged(rule, v)]
    plain = [v for v in found if not _flagged(rule, v)]
    for vacancy in flagged[:MAX_POSTS_PER_RUN]:
        _digest_post(
            session, organisation, rule, channels, limits, [vacancy], choice,
            _review_reason(rule, vacancy), now, report,
        )  # fmt: skip
    if plain and not _digest_waiting(session, rule.id):
        review = "this rule's alerts wait for a manager" if rule.requires_approval else None
        if rule.mode == "thread":
            _thread_post(
                session, organisation, rule, channels, limits, plain, choice, review, now, report
            )
        else:
            _digest_post(
                session, organisation, rule, channels, limits, plain, choice, review, now, report
            )


def _digest_post(
    session: Session, organisation: Organisation, rule: AlertRule, channels: list[Channel],
    limits: list[tuple[str, ChannelLimits]], found: list[Vacancy], choice: _Choice,
    review: str | None, now: dt.datetime, report: PlanReport,
) -> None:  # fmt: skip
    slotting = slot_for(session, organisation, rule, channels, now)
    if slotting.last > now + PLANNING_HORIZON:
        return  # the queue is full for now
    template = choice.pick(rule.templates, f"{rule.id}:digest:{found[0].id}")
    chosen: list[Vacancy] = []
    items: list[dict[str, Any]] = []
    text = ""
    for vacancy in found:
        if len(chosen) >= rule.digest_max:
            break
        if vacancy.closes_at is not None and vacancy.closes_at <= slotting.last:
            report.skipped.append((vacancy.id, "it closes before the next free slot"))
            continue
        source = vacancy.source.name if vacancy.source else ""
        item = templates_.vacancy_fields(vacancy, organisation.timezone, now, source)
        trial = [*items, item]
        try:
            attempt = templates_.render(
                template.body, {**trial[0], **templates_.digest_fields(trial)}, digest=True
            )
            problems = templates_.length_problems(attempt, limits)
            if problems:
                raise templates_.TemplateRefused(" ".join(problems))
        except templates_.TemplateRefused as exc:
            # It does not fit even on its own: refuse it; otherwise it waits for the next digest.
            if not items and _claim(session, rule, [vacancy], template, "refused", str(exc), now):
                report.refused.append((vacancy.id, str(exc)))
            continue
        chosen.append(vacancy)
        items = trial
        text = attempt
    if not chosen:
        return
    alerts = _claim(session, rule, chosen, template, "planned", None, now)
    if not alerts:
        report.skipped += [(v.id, "another planner alerted it") for v in chosen]
        return
    choice.made(template)
    link = (chosen[0].url or None) if len(chosen) == 1 else None
    _make_post(
        session, organisation, rule, channels, slotting, text, link, review, now, alerts, report
    )


# The first post of a thread alert; each vacancy follows as a reply rendered by the template.
THREAD_INTRO = "New vacancies for you, one per reply below."


def _thread_post(
    session: Session, organisation: Organisation, rule: AlertRule, channels: list[Channel],
    limits: list[tuple[str, ChannelLimits]], found: list[Vacancy], choice: _Choice,
    review: str | None, now: dt.datetime, report: PlanReport,
) -> None:  # fmt: skip
    """A thread: a short first post (THREAD_INTRO), then one reply per vacancy, rendered with
    the rule's template as a single alert (so each reply fits each channel on its own), up to
    the rule's maximum. Each reply is a delivery of its own, published once the part before it
    is, with its own tracked link.
    """
    slotting = slot_for(session, organisation, rule, channels, now)
    if slotting.last > now + PLANNING_HORIZON:
        return  # the queue is full for now
    template = choice.pick(rule.templates, f"{rule.id}:thread:{found[0].id}")
    chosen: list[Vacancy] = []
    texts: list[str] = []
    for vacancy in found:
        if len(chosen) >= rule.digest_max:
            break
        if vacancy.closes_at is not None and vacancy.closes_at <= slotting.last:
            report.skipped.append((vacancy.id, "it closes before the next free slot"))
            continue
        try:
            texts.append(_render_one(template, vacancy, organisation, limits, now))
        except templates_.TemplateRefused as exc:
            _refuse(session, rule, vacancy, template, exc, now, report)
            continue
        chosen.append(vacancy)
    if not chosen:
        return
    alerts = _claim(session, rule, chosen, template, "planned", None, now)
    if not alerts:
        report.skipped += [(v.id, "another planner alerted it") for v in chosen]
        return
    choice.made(template)
    for number, alert in enumerate(alerts, start=1):
        alert.part = number
    post = _make_post(
        session, organisation, rule, channels, slotting, THREAD_INTRO, None, review, now, alerts,
        report,
    )  # fmt: skip
    if post is not None:
        posts.add_thread_parts(session, post, texts, _actor(rule), now)


def _digest_waiting(session: Session, rule_id: int) -> bool:
    """Whether an approved digest of the rule has not gone out yet."""
    return (
        session.scalar(
            select(func.count())
            .select_from(VacancyAlert)
            .join(Post, Post.id == VacancyAlert.post_id)
            .join(Delivery, Delivery.post_id == Post.id)
            .where(
                VacancyAlert.rule_id == rule_id,
                Post.status == "approved",
                Delivery.status.in_(_UNSENT),
            )
        )
        or 0
    ) > 0


def _claim(
    session: Session, rule: AlertRule, vacancies: Sequence[Vacancy], template: AlertTemplate,
    status: str, reason: str | None, now: dt.datetime,
) -> list[VacancyAlert]:  # fmt: skip
    """Insert the alert rows in a savepoint; [] when another planner got there first."""
    rows = [
        VacancyAlert(
            vacancy_id=v.id, rule_id=rule.id, template_id=template.id, status=status,
            reason=reason[:2000] if reason else None, created_at=now,
        )
        for v in vacancies
    ]  # fmt: skip
    try:
        with session.begin_nested():
            session.add_all(rows)
            session.flush()
    except IntegrityError:
        return []
    return rows


def _make_post(
    session: Session, organisation: Organisation, rule: AlertRule, channels: list[Channel],
    slotting: Slotting, text: str, link: str | None, review: str | None, now: dt.datetime,
    alerts: list[VacancyAlert], report: PlanReport,
) -> Post | None:  # fmt: skip
    actor = _actor(rule)
    data = posts.PostInput(
        text=text,
        channel_ids=tuple(c.id for c in channels),
        use_queue=slotting.queue_order,
        when=None if slotting.queue_order else slotting.last.isoformat(),
        link_url=link,
    )
    try:
        saved = posts.create_post(session, organisation, data, actor, now, submit=review is None)
    except ServiceError as exc:
        problems = exc.problems if isinstance(exc, posts.Refused) else [str(exc)]
        for alert in alerts:
            alert.status, alert.reason = "refused", " ".join(problems)[:2000]
            report.refused.append((alert.vacancy_id, alert.reason))
        session.flush()
        return None
    post = saved.post
    if review is not None:
        post.status = "pending_approval"
        post.submitted_by_id, post.submitted_at = actor.user_id, now
        note = f"Held for review: {review}."
        post.schedule_note = f"{note} {post.schedule_note}" if post.schedule_note else note
        record(session, actor, "post.submitted", "post", post.id, now,
               organisation_id=organisation.id, review=review)  # fmt: skip
        report.review.append(post.id)
    for alert in alerts:
        alert.post_id = post.id
        alert.reason = review
    session.flush()
    report.posts.append(post.id)
    return post


# --- never after closing --------------------------------------------------------------------


def cancel_stale(session: Session, now: dt.datetime) -> list[int]:
    """Cancel every alert post not yet published whose vacancy expired or was withdrawn, or
    closes before the post's time; returns the cancelled post ids. A cancelled digest's other
    (still open) vacancies are released, so the next digest takes them.

    In a thread, a stale vacancy cancels only its own reply (on every channel), and the rest
    of the thread goes out, each reply answering the one before it; once no reply is left to
    send and the first post has not gone out, the whole post is cancelled.
    """
    rows = session.execute(
        select(VacancyAlert, Vacancy, Post)
        .join(Vacancy, Vacancy.id == VacancyAlert.vacancy_id)
        .join(Post, Post.id == VacancyAlert.post_id)
        .where(
            Post.status.in_(_OPEN_POSTS),
            (Vacancy.status != "open") | Vacancy.closes_at.is_not(None),
            exists().where(Delivery.post_id == Post.id, Delivery.status.in_(_UNSENT)),
        )
        .order_by(Post.id)
    ).all()
    stale: dict[int, tuple[Post, str]] = {}
    for alert, vacancy, post in rows:
        part = alert.part or 0
        unsent = [d for d in post.deliveries if d.part == part and d.status in _UNSENT]
        due = [d.due_at for d in unsent]
        if not due or post.id in stale:
            continue
        why = None
        if vacancy.status != "open":
            why = f"the vacancy “{vacancy.title}” is {vacancy.status}"
        elif vacancy.closes_at is not None and vacancy.closes_at <= min(due):
            why = f"the vacancy “{vacancy.title}” closes before it goes out"
        if why is None:
            continue
        if part == 0:
            stale[post.id] = (post, why)
            continue
        for delivery in unsent:
            if delivery.status in _UNSENT:
                delivery.status, delivery.updated_at = "cancelled", now
                delivery.last_error = f"Not published: {why}. The rest of the thread goes out."
        session.flush()
        if _thread_empty(post):
            stale[post.id] = (post, "every vacancy of the thread closed before it went out")
    cancelled = []
    for post, why in stale.values():
        organisation = session.get(Organisation, post.organisation_id)
        if organisation is None:
            continue
        actor = Actor(post.organisation_id, f"vacancy alerts: {why}"[:200], None, "staff")
        try:
            with session.begin_nested():
                posts.cancel_post(session, organisation, post.id, actor, now)
        except ServiceError:
            continue  # being published right now: the engine decides
        cancelled.append(post.id)
        _release_others(session, post.id)
    session.flush()
    publishing.advance_threads(session, now)  # a reply passed over lets the next one go
    return cancelled


def _thread_empty(post: Post) -> bool:
    """Whether a thread has no reply left to send and its first post has not gone out."""
    heads_unsent = all(d.status in _UNSENT for d in post.heads)
    replies = [d for d in post.deliveries if d.part > 0]
    return heads_unsent and bool(replies) and all(d.status == "cancelled" for d in replies)


def _release_others(session: Session, post_id: int) -> None:
    """Forget the alerts of a cancelled digest's vacancies that are still open and in time."""
    alerts = session.scalars(select(VacancyAlert).where(VacancyAlert.post_id == post_id)).all()
    if len(alerts) < 2:
        return
    for alert in alerts:
        vacancy = session.get(Vacancy, alert.vacancy_id)
        if vacancy is not None and vacancy.status == "open":
            session.delete(alert)


# --- counts for the rules page --------------------------------------------------------------


@dataclass(frozen=True)
class RuleCounts:
    made: int
    pending_review: int
    published: int
    refused: int


def rule_counts(session: Session, rule_ids: Sequence[int]) -> dict[int, RuleCounts]:
    """Per rule: alerts made, posts pending review, published alert posts, refused alerts."""
    result: dict[int, RuleCounts] = {}
    if not rule_ids:
        return result
    made = dict(
        session.execute(
            select(VacancyAlert.rule_id, func.count())
            .where(VacancyAlert.rule_id.in_(rule_ids), VacancyAlert.status == "planned")
            .group_by(VacancyAlert.rule_id)
        ).all()
    )
    refused = dict(
        session.execute(
            select(VacancyAlert.rule_id, func.count())
            .where(VacancyAlert.rule_id.in_(rule_ids), VacancyAlert.status == "refused")
            .group_by(VacancyAlert.rule_id)
        ).all()
    )
    pending = dict(
        session.execute(
            select(VacancyAlert.rule_id, func.count(func.distinct(Post.id)))
            .join(Post, Post.id == VacancyAlert.post_id)
            .where(VacancyAlert.rule_id.in_(rule_ids), Post.status == "pending_approval")
            .group_by(VacancyAlert.rule_id)
        ).all()
    )
    published = dict(
        session.execute(
            select(VacancyAlert.rule_id, func.count(func.distinct(Post.id)))
            .join(Post, Post.id == VacancyAlert.post_id)
            .join(Delivery, Delivery.post_id == Post.id)
            .where(VacancyAlert.rule_id.in_(rule_ids), Delivery.status == "published")
            .group_by(VacancyAlert.rule_id)
        ).all()
    )
    for rule_id in rule_ids:
        result[rule_id] = RuleCounts(
            made=int(made.get(rule_id, 0)),
            pending_review=int(pending.get(rule_id, 0)),
            published=int(published.get(rule_id, 0)),
            refused=int(refused.get(rule_id, 0)),
        )
    return result


@dataclass(frozen=True)
class AlertRow:
    """One alert of a rule, as the rule page lists it."""

    vacancy_id: int
    vacancy_title: str
    closes_at: dt.datetime | None
    status: str  # planned | refused
    reason: str | None
    post_id: int | None
    post_status: str | None
    template_label: str | None
    created_at: dt.datetime


def recent_alerts(
    session: Session, organisation_id: int, rule_id: int, limit: int = 50
) -> list[AlertRow]:
    """The rule's latest alerts, newest first (the rule must be the organisation's)."""
    rows = session.execute(
        select(VacancyAlert, Vacancy.title, Vacancy.closes_at, Post.status, AlertTemplate.label)
        .join(AlertRule, AlertRule.id == VacancyAlert.rule_id)
        .join(Vacancy, Vacancy.id == VacancyAlert.vacancy_id)
        .outerjoin(Post, Post.id == VacancyAlert.post_id)
        .outerjoin(AlertTemplate, AlertTemplate.id == VacancyAlert.template_id)
        .where(AlertRule.id == rule_id, AlertRule.organisation_id == organisation_id)
        .order_by(VacancyAlert.created_at.desc(), VacancyAlert.id.desc())
        .limit(limit)
    ).all()
    return [
        AlertRow(
            vacancy_id=alert.vacancy_id,
            vacancy_title=title,
            closes_at=closes_at,
            status=alert.status,
            reason=alert.reason,
            post_id=alert.post_id,
            post_status=post_status,
            template_label=label,
            created_at=alert.created_at,
        )
        for alert, title, closes_at, post_status, label in rows
    ]
