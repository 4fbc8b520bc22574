"""Alert rules and their template variants: reading, checking, saving (managers), audited.

Staff may read rules; managers and admins change them. Every change is refused with every
reason in plain words (`Invalid`), and recorded in the audit trail.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from campaign.models import Channel, Role, VacancySource
from campaign.models.alerts import (
    ALERT_MODES,
    DEFAULT_REVIEW_FLAGS,
    AlertRule,
    AlertTemplate,
    VacancyAlert,
)
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services import alert_templates as templates_
from campaign.services.alerts import RuleFilters
from campaign.services.audit import Actor, record
from campaign.services.text_rules import normalised
from campaign.vacancies import records

# The flags a vacancy can carry (campaign.vacancies.records), offered for review and exclusion.
KNOWN_FLAGS = (
    records.FLAG_UNPAID,
    records.FLAG_COMMISSION,
    records.FLAG_SALARY_MISSING,
    records.FLAG_SALARY_AMBIGUOUS,
    records.FLAG_SALARY_PREDICTED,
    records.FLAG_INVALID_DATE,
    records.FLAG_INVALID_URL,
)
MAX_WORDS = 50  # keywords, employers or locations per rule
MAX_DIGEST = 25


class Invalid(ServiceError):
    """The input cannot be saved; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class RuleInput:
    name: str
    filters: RuleFilters
    channel_ids: tuple[int, ...]
    enabled: bool = True
    requires_approval: bool = False
    review_flags: tuple[str, ...] = DEFAULT_REVIEW_FLAGS
    mode: str = "single"
    digest_max: int = 5
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None


def parse_form(values: Mapping[str, str], lists: Mapping[str, Sequence[str]]) -> RuleInput:
    """A rule from a submitted form (text fields, and lists of ticked boxes); Invalid otherwise.

    Keywords, employers and locations are one per line (or comma-separated).
    """
    problems: list[str] = []

    def words(key: str, what: str) -> tuple[str, ...]:
        raw = values.get(key, "").replace(",", "\n")
        found = tuple(dict.fromkeys(w.strip() for w in raw.splitlines() if w.strip()))
        if len(found) > MAX_WORDS:
            problems.append(f"At most {MAX_WORDS} {what}.")
        if any(len(w) > 200 for w in found):
            problems.append(f"Each of the {what} must be at most 200 characters.")
        return found[:MAX_WORDS]

    def number(key: str, what: str, low: int, high: int) -> int | None:
        raw = values.get(key, "").strip().replace(",", "").lstrip("£")
        if not raw:
            return None
        if not raw.isdigit() or not low <= int(raw) <= high:
            problems.append(f"{what} must be a whole number from {low:,} to {high:,}.")
            return None
        return int(raw)

    def time_of(key: str, what: str) -> dt.time | None:
        raw = values.get(key, "").strip()
        if not raw:
            return None
        try:
            return dt.time.fromisoformat(raw).replace(second=0, microsecond=0)
        except ValueError:
            problems.append(f"{what} {raw!r} is not a time of day; write it like 21:30.")
            return None

    def ids(key: str, what: str) -> tuple[int, ...]:
        raw = [v for v in lists.get(key, ()) if v.strip()]
        bad = [v for v in raw if not v.strip().isdigit() or len(v.strip()) > 9]
        if bad:
            problems.append(f"{what} {bad[0]!r} is not a valid choice.")
        return tuple(dict.fromkeys(int(v) for v in raw if v not in bad))

    filters = RuleFilters(
        keywords=words("keywords", "keywords"),
        employers=words("employers", "employers"),
        locations=words("locations", "locations"),
        salary_floor=number("salary_floor", "The salary floor", 0, 1_000_000),
        unknown_salary_passes=values.get("unknown_salary") != "exclude",
        closing_within_days=number("closing_within_days", "Closing within", 1, 365),
        source_ids=ids("source_ids", "Source"),
        exclude_flags=tuple(dict.fromkeys(lists.get("exclude_flags", ()))),
    )
    digest_max = number("digest_max", "Vacancies per digest", 1, MAX_DIGEST)
    data = RuleInput(
        name=values.get("name", "").strip(),
        filters=filters,
        channel_ids=ids("channel_ids", "Channel"),
        enabled=values.get("enabled") == "yes",
        requires_approval=values.get("requires_approval") == "yes",
        review_flags=tuple(dict.fromkeys(lists.get("review_flags", ()))),
        mode=values.get("mode", "single"),
        digest_max=digest_max or 5,
        quiet_start=time_of("quiet_start", "Quiet hours start"),
        quiet_end=time_of("quiet_end", "Quiet hours end"),
    )
    if problems:
        raise Invalid(problems)
    return data


# --- reading --------------------------------------------------------------------------------


def list_rules(session: Session, organisation_id: int) -> list[AlertRule]:
    return list(
        session.scalars(
            select(AlertRule)
            .where(AlertRule.organisation_id == organisation_id)
            .options(selectinload(AlertRule.templates))
            .order_by(AlertRule.name, AlertRule.id)
        )
    )


def get_rule(session: Session, organisation_id: int, rule_id: int) -> AlertRule:
    found = session.scalar(
        select(AlertRule)
        .where(AlertRule.id == rule_id, AlertRule.organisation_id == organisation_id)
        .options(selectinload(AlertRule.templates))
    )
    if found is None:
        raise NotFound("no such alert rule")
    return found


def get_template(
    session: Session, organisation_id: int, rule_id: int, template_id: int
) -> AlertTemplate:
    rule = get_rule(session, organisation_id, rule_id)
    for template in rule.templates:
        if template.id == template_id:
            return template
    raise NotFound("no such template")


def channels_of(session: Session, organisation_id: int) -> list[Channel]:
    return list(
        session.scalars(
            select(Channel)
            .where(Channel.organisation_id == organisation_id)
            .order_by(Channel.display_name, Channel.id)
        )
    )


def sources_of(session: Session, organisation_id: int) -> list[VacancySource]:
    return list(
        session.scalars(
            select(VacancySource)
            .where(VacancySource.organisation_id == organisation_id)
            .order_by(VacancySource.name, VacancySource.id)
        )
    )


# --- changing rules -------------------------------------------------------------------------


def create_rule(
    session: Session,
    organisation_id: int,
    data: RuleInput,
    actor: Actor,
    now: dt.datetime,
    template_label: str = "",
    template_body: str = "",
) -> AlertRule:
    """A new rule, with its first template when one is given (a rule without one is saved
    disabled)."""
    _require_manager(actor)
    body = normalised(template_body).strip()
    problems = _problems(session, organisation_id, data, None, has_template=bool(body))
    if body:
        problems += _template_problems(template_label, body, data.mode == "digest")
    if problems:
        raise Invalid(problems)
    rule = AlertRule(organisation_id=organisation_id, created_at=now, created_by_id=actor.user_id)
    _apply(rule, data, now)
    if body:
        rule.templates.append(
            AlertTemplate(label=template_label.strip(), body=body, created_at=now)
        )
    session.add(rule)
    session.flush()
    _audit(session, actor, "alert_rule.created", rule, now, **_summary(rule),
           templates=[t.body for t in rule.templates])  # fmt: skip
    return rule


def update_rule(
    session: Session,
    organisation_id: int,
    rule_id: int,
    data: RuleInput,
    actor: Actor,
    now: dt.datetime,
) -> AlertRule:
    _require_manager(actor)
    rule = get_rule(session, organisation_id, rule_id)
    problems = _problems(session, organisation_id, data, rule, has_template=bool(rule.templates))
    if problems:
        raise Invalid(problems)
    before = _summary(rule)
    _apply(rule, data, now)
    session.flush()
    after = _summary(rule)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    _audit(session, actor, "alert_rule.edited", rule, now, changes=changes)
    return rule


def set_enabled(
    session: Session,
    organisation_id: int,
    rule_id: int,
    enabled: bool,
    actor: Actor,
    now: dt.datetime,
) -> AlertRule:
    _require_manager(actor)
    rule = get_rule(session, organisation_id, rule_id)
    if enabled and not rule.templates:
        raise ServiceError("Add a template first: a rule without one cannot make alerts.")
    rule.enabled, rule.updated_at = enabled, now
    session.flush()
    _audit(session, actor, "alert_rule.enabled" if enabled else "alert_rule.disabled", rule, now)
    return rule


def _problems(
    session: Session,
    organisation_id: int,
    data: RuleInput,
    rule: AlertRule | None,
    has_template: bool,
) -> list[str]:
    problems: list[str] = []
    if not data.name:
        problems.append("Give the rule a name.")
    elif len(data.name) > 200:
        problems.append("The name is too long: at most 200 characters.")
    if data.mode not in ALERT_MODES:
        problems.append("Choose single alerts, a digest or a thread.")
    if not 1 <= data.digest_max <= MAX_DIGEST:
        problems.append(f"A digest or thread holds 1 to {MAX_DIGEST} vacancies.")
    if (data.quiet_start is None) != (data.quiet_end is None):
        problems.append("Give both ends of the quiet hours, or neither.")
    elif data.quiet_start is not None and data.quiet_start == data.quiet_end:
        problems.append("The quiet hours start and end at the same time; leave both empty.")
    unknown = [f for f in (*data.review_flags, *data.filters.exclude_flags) if f not in KNOWN_FLAGS]
    if unknown:
        problems.append(f"Unknown flag {unknown[0]!r}; choose from {', '.join(KNOWN_FLAGS)}.")
    if not data.channel_ids:
        problems.append("Choose at least one channel.")
    found = {
        c.id: c
        for c in session.scalars(
            select(Channel).where(
                Channel.id.in_(data.channel_ids), Channel.organisation_id == organisation_id
            )
        )
    }
    problems += [f"Channel {i} does not exist." for i in data.channel_ids if i not in found]
    problems += [
        f"{c.display_name} is disabled; choose another channel."
        for c in found.values()
        if c.status == "disabled"
    ]
    if data.filters.source_ids:
        sources = set(
            session.scalars(
                select(VacancySource.id).where(
                    VacancySource.id.in_(data.filters.source_ids),
                    VacancySource.organisation_id == organisation_id,
                )
            )
        )
        problems += [
            f"Source {i} does not exist." for i in data.filters.source_ids if i not in sources
        ]
    if rule is not None and data.mode != rule.mode:
        for template in rule.templates:
            for problem in templates_.check_template(template.body, data.mode == "digest"):
                problems.append(f"Template “{template.label}” does not suit this mode: {problem}")
    if data.enabled and not has_template:
        problems.append("Give the rule a template before enabling it.")
    return problems


def _template_problems(label: str, body: str, digest: bool) -> list[str]:
    problems = [] if label.strip() else ["Give the template a label."]
    if len(label.strip()) > 200:
        problems.append("The label is too long: at most 200 characters.")
    return problems + templates_.check_template(body, digest)


def _apply(rule: AlertRule, data: RuleInput, now: dt.datetime) -> None:
    rule.name = data.name
    rule.enabled = data.enabled
    rule.filters = data.filters.to_json()
    rule.channel_ids = json.dumps(list(data.channel_ids))
    rule.requires_approval = data.requires_approval
    rule.review_flags = ",".join(data.review_flags)
    rule.mode = data.mode
    rule.digest_max = data.digest_max
    rule.quiet_start, rule.quiet_end = data.quiet_start, data.quiet_end
    rule.updated_at = now


def _summary(rule: AlertRule) -> dict[str, object]:
    return {
        "name": rule.name,
        "enabled": rule.enabled,
        "filters": rule.filter_data,
        "channel_ids": rule.channel_id_list,
        "requires_approval": rule.requires_approval,
        "review_flags": rule.review_flag_list,
        "mode": rule.mode,
        "digest_max": rule.digest_max,
        "quiet": [
            rule.quiet_start.isoformat("minutes") if rule.quiet_start else None,
            rule.quiet_end.isoformat("minutes") if rule.quiet_end else None,
        ],
    }


# --- changing templates ---------------------------------------------------------------------


def save_template(
    session: Session,
    organisation_id: int,
    rule_id: int,
    label: str,
    body: str,
    actor: Actor,
    now: dt.datetime,
    template_id: int | None = None,
) -> AlertTemplate:
    """Add a variant (or change one); refused with each problem and its line. Alerts the rule
    refused before are forgotten, so the next run tries their vacancies again."""
    _require_manager(actor)
    rule = get_rule(session, organisation_id, rule_id)
    label, body = label.strip(), normalised(body).strip()
    problems = _template_problems(label, body, rule.mode == "digest")
    if problems:
        raise Invalid(problems)
    if template_id is None:
        template = AlertTemplate(rule_id=rule.id, label=label, body=body, created_at=now)
        rule.templates.append(template)
        action = "alert_template.created"
    else:
        template = get_template(session, organisation_id, rule_id, template_id)
        template.label, template.body = label, body
        action = "alert_template.edited"
    session.flush()
    session.execute(
        delete(VacancyAlert).where(
            VacancyAlert.rule_id == rule.id, VacancyAlert.status == "refused"
        )
    )
    _audit(session, actor, action, rule, now, template_id=template.id, label=label, body=body)
    return template


def delete_template(
    session: Session,
    organisation_id: int,
    rule_id: int,
    template_id: int,
    actor: Actor,
    now: dt.datetime,
) -> None:
    _require_manager(actor)
    rule = get_rule(session, organisation_id, rule_id)
    template = get_template(session, organisation_id, rule_id, template_id)
    if rule.enabled and len(rule.templates) == 1:
        raise ServiceError("This is the rule's only template: disable the rule first.")
    rule.templates.remove(template)
    session.flush()
    _audit(session, actor, "alert_template.deleted", rule, now, template_id=template_id,
           label=template.label)  # fmt: skip


# --- helpers --------------------------------------------------------------------------------


def _require_manager(actor: Actor) -> None:
    try:
        allowed = actor.role is not None and Role(actor.role).covers(Role.MANAGER)
    except ValueError:
        allowed = False
    if not allowed:
        raise PermissionDenied("Only a manager or an admin can change alert rules.")


def _audit(
    session: Session, actor: Actor, action: str, rule: AlertRule, now: dt.datetime, **detail: object
) -> None:
    record(session, actor, action, "alert_rule", rule.id, now,
           organisation_id=rule.organisation_id, **detail)  # fmt: skip
