"""Vacancies → Alerts: rules, their template variants with a live preview, enable/disable.

Staff read; managers and admins change. Another organisation's ids are 404 everywhere (the
services raise NotFound). Add the blueprint with `register(app)`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from campaign.models import Organisation, Role
from campaign.models.alerts import DEFAULT_REVIEW_FLAGS, AlertRule
from campaign.services import NotFound, PermissionDenied, ServiceError, alert_rules, alerts
from campaign.services import alert_templates as templates_
from campaign.services.alert_rules import KNOWN_FLAGS, Invalid
from campaign.services.alerts import RuleFilters
from campaign.services.text_rules import ChannelLimits
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

bp = Blueprint("alerts", __name__, url_prefix="/vacancies/alerts")

LIST_FIELDS = ("channel_ids", "source_ids", "review_flags", "exclude_flags")
FLAG_WORDS = {
    "unpaid": "Unpaid or expenses only",
    "commission": "Commission or OTE",
    "salary_missing": "No salary given",
    "salary_ambiguous": "Salary unclear",
    "salary_predicted": "Salary estimated by the site",
    "invalid_date": "Impossible closing date",
    "invalid_url": "Bad link",
}
EXAMPLE_SINGLE = (
    "New vacancy: {{ title }}{% if employer %} at {{ employer }}{% endif %}"
    "{% if closes_on %}. Closes {{ closes_on }}{% endif %}. {{ url }}"
)
EXAMPLE_DIGEST = (
    "{{ count }} new vacancies:\n{% for v in vacancies %}• {{ v.title|truncate(60) }}"
    "{% if v.closes_on %} (closes {{ v.closes_on }}){% endif %} {{ v.url }}\n{% endfor %}"
)


@bp.route("/")
@role_required(Role.STAFF)
def index() -> str:
    db, me = get_session(), member()
    rules = alert_rules.list_rules(db, me.organisation_id)
    channels = {c.id: c for c in alert_rules.channels_of(db, me.organisation_id)}
    return render_template(
        "alerts/index.html",
        rules=rules,
        counts=alerts.rule_counts(db, [r.id for r in rules]),
        channels=channels,
        can_manage=me.role.covers(Role.MANAGER),
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MANAGER)
def new_rule() -> Any:
    db, me = get_session(), member()
    if request.method == "GET":
        values = {"enabled": "yes", "mode": "single", "digest_max": "5",
                  "template_label": "Plain", "template_body": EXAMPLE_SINGLE}  # fmt: skip
        lists = {"review_flags": list(DEFAULT_REVIEW_FLAGS)}
        return _form(None, values, lists, [], 200)
    values, lists = _submitted()
    try:
        data = alert_rules.parse_form(values, lists)
        rule = alert_rules.create_rule(
            db, me.organisation_id, data, me.actor(), now(),
            values.get("template_label", ""), values.get("template_body", ""),
        )  # fmt: skip
    except PermissionDenied:
        abort(403)
    except Invalid as exc:
        db.rollback()
        return _form(None, values, lists, exc.problems, 422)
    db.commit()
    flash(f"The rule “{rule.name}” was saved.", "success")
    return redirect(url_for("alerts.rule_detail", rule_id=rule.id))


@bp.route("/<int:rule_id>")
@role_required(Role.STAFF)
def rule_detail(rule_id: int) -> Any:
    return _detail(rule_id, None, None, None)


@bp.route("/<int:rule_id>/edit", methods=["GET", "POST"])
@role_required(Role.MANAGER)
def edit_rule(rule_id: int) -> Any:
    db, me = get_session(), member()
    rule = _rule(rule_id)
    if request.method == "GET":
        values, lists = _values_of(rule)
        return _form(rule, values, lists, [], 200)
    values, lists = _submitted()
    try:
        data = alert_rules.parse_form(values, lists)
        alert_rules.update_rule(db, me.organisation_id, rule_id, data, me.actor(), now())
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except Invalid as exc:
        db.rollback()
        return _form(_rule(rule_id), values, lists, exc.problems, 422)
    db.commit()
    flash("The rule was saved.", "success")
    return redirect(url_for("alerts.rule_detail", rule_id=rule_id))


@bp.route("/<int:rule_id>/enable", methods=["POST"])
@role_required(Role.MANAGER)
def enable(rule_id: int) -> Response:
    return _apply(rule_id, True)


@bp.route("/<int:rule_id>/disable", methods=["POST"])
@role_required(Role.MANAGER)
def disable(rule_id: int) -> Response:
    return _apply(rule_id, False)


def _apply(rule_id: int, enabled: bool) -> Response:
    db, me = get_session(), member()
    try:
        alert_rules.set_enabled(db, me.organisation_id, rule_id, enabled, me.actor(), now())
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        db.rollback()
        flash(str(exc), "error")
    else:
        db.commit()
        flash("The rule is on." if enabled else "The rule is off: it makes no new alerts.",
              "success")  # fmt: skip
    return redirect(url_for("alerts.rule_detail", rule_id=rule_id))


@bp.route("/<int:rule_id>/templates", methods=["POST"])
@role_required(Role.MANAGER)
def add_template(rule_id: int) -> Any:
    return _save_template(rule_id, None)


@bp.route("/<int:rule_id>/templates/<int:template_id>", methods=["POST"])
@role_required(Role.MANAGER)
def edit_template(rule_id: int, template_id: int) -> Any:
    return _save_template(rule_id, template_id)


def _save_template(rule_id: int, template_id: int | None) -> Any:
    db, me = get_session(), member()
    label, body = request.form.get("label", ""), request.form.get("body", "")
    try:
        alert_rules.save_template(db, me.organisation_id, rule_id, label, body, me.actor(), now(),
                                  template_id=template_id)  # fmt: skip
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except Invalid as exc:
        db.rollback()
        draft = {"template_id": template_id, "label": label, "body": body}
        return _detail(rule_id, draft, exc.problems, None, 422)
    db.commit()
    flash("The template was saved.", "success")
    return redirect(url_for("alerts.rule_detail", rule_id=rule_id))


@bp.route("/<int:rule_id>/templates/<int:template_id>/delete", methods=["POST"])
@role_required(Role.MANAGER)
def delete_template(rule_id: int, template_id: int) -> Response:
    db, me = get_session(), member()
    try:
        alert_rules.delete_template(db, me.organisation_id, rule_id, template_id, me.actor(),
                                    now())  # fmt: skip
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except ServiceError as exc:
        db.rollback()
        flash(str(exc), "error")
    else:
        db.commit()
        flash("The template was deleted.", "success")
    return redirect(url_for("alerts.rule_detail", rule_id=rule_id))


@bp.route("/<int:rule_id>/preview", methods=["POST"])
@role_required(Role.STAFF)
def preview(rule_id: int) -> Any:
    """The template rendered for a sample vacancy, with each channel's count; nothing saved.
    htmx gets the fragment; a plain "Preview" submit gets the whole page."""
    rule = _rule(rule_id)
    body = request.form.get("body", "")
    shown = _preview(rule, body)
    if request.headers.get("HX-Request"):
        return render_template("alerts/_preview.html", shown=shown)
    draft = {
        "template_id": _int(request.form.get("template_id", "")),
        "label": request.form.get("label", ""),
        "body": body,
    }
    return _detail(rule_id, draft, None, shown)


# --- helpers --------------------------------------------------------------------------------


def _organisation() -> Organisation:
    organisation: Organisation = member().membership.organisation
    return organisation


def _rule(rule_id: int) -> AlertRule:
    try:
        return alert_rules.get_rule(get_session(), member().organisation_id, rule_id)
    except NotFound:
        abort(404)


def _int(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _preview(rule: AlertRule, body: str) -> templates_.Preview:
    db = get_session()
    wanted = set(rule.channel_id_list)
    channels = [c for c in alert_rules.channels_of(db, rule.organisation_id) if c.id in wanted]
    limits = [(c.display_name, ChannelLimits.of(c)) for c in channels]
    return templates_.preview(
        body, limits, _organisation().timezone, now(), digest=rule.mode == "digest"
    )


def _detail(
    rule_id: int,
    draft: dict[str, Any] | None,
    problems: list[str] | None,
    shown: templates_.Preview | None,
    status: int = 200,
) -> Any:
    db, me = get_session(), member()
    rule = _rule(rule_id)
    channels = {c.id: c for c in alert_rules.channels_of(db, me.organisation_id)}
    sources = {s.id: s for s in alert_rules.sources_of(db, me.organisation_id)}
    page = render_template(
        "alerts/detail.html",
        rule=rule,
        filters=RuleFilters.of(rule),
        channels=channels,
        sources=sources,
        counts=alerts.rule_counts(db, [rule.id])[rule.id],
        previews={t.id: _preview(rule, t.body) for t in rule.templates},
        recent=alerts.recent_alerts(db, me.organisation_id, rule.id),
        draft=draft,
        problems=problems or [],
        shown=shown,
        fields=templates_.FIELDS,
        digest_fields=templates_.DIGEST_FIELDS,
        filters_list=sorted(templates_.FILTERS),
        example=EXAMPLE_DIGEST if rule.mode == "digest" else EXAMPLE_SINGLE,
        flag_words=FLAG_WORDS,
        can_manage=me.role.covers(Role.MANAGER),
    )
    return page if status == 200 else (page, status)


def _submitted() -> tuple[dict[str, str], dict[str, list[str]]]:
    values = {k: v for k, v in request.form.items() if k not in LIST_FIELDS}
    lists = {k: request.form.getlist(k) for k in LIST_FIELDS}
    return values, lists


def _values_of(rule: AlertRule) -> tuple[dict[str, str], dict[str, list[str]]]:
    filters = RuleFilters.of(rule)
    values = {
        "name": rule.name,
        "enabled": "yes" if rule.enabled else "no",
        "keywords": "\n".join(filters.keywords),
        "employers": "\n".join(filters.employers),
        "locations": "\n".join(filters.locations),
        "salary_floor": "" if filters.salary_floor is None else str(filters.salary_floor),
        "unknown_salary": "include" if filters.unknown_salary_passes else "exclude",
        "closing_within_days": ""
        if filters.closing_within_days is None
        else str(filters.closing_within_days),
        "requires_approval": "yes" if rule.requires_approval else "",
        "mode": rule.mode,
        "digest_max": str(rule.digest_max),
        "quiet_start": rule.quiet_start.isoformat("minutes") if rule.quiet_start else "",
        "quiet_end": rule.quiet_end.isoformat("minutes") if rule.quiet_end else "",
    }
    lists = {
        "channel_ids": [str(i) for i in rule.channel_id_list],
        "source_ids": [str(i) for i in filters.source_ids],
        "review_flags": rule.review_flag_list,
        "exclude_flags": list(filters.exclude_flags),
    }
    return values, lists


def _form(
    rule: AlertRule | None,
    values: dict[str, str],
    lists: dict[str, list[str]],
    errors: list[str],
    status: int,
) -> Any:
    db, me = get_session(), member()
    page = render_template(
        "alerts/form.html",
        rule=rule,
        values=values,
        lists=lists,
        errors=errors,
        channels=alert_rules.channels_of(db, me.organisation_id),
        sources=alert_rules.sources_of(db, me.organisation_id),
        flags=KNOWN_FLAGS,
        flag_words=FLAG_WORDS,
    )
    return page if status == 200 else (page, status)
