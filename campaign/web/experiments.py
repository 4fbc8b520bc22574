"""Experiments: the list, planning one (with its power calculation), its page, and the library."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from campaign.models import AUDIENCES, Experiment, Message, Organisation, Role
from campaign.models.experiment import EXPERIMENT_STATUSES
from campaign.services import (
    NotFound,
    PermissionDenied,
    ServiceError,
    campaigns,
    experiments,
    suggestions,
)
from campaign.services.audit import Actor
from campaign.services.experiments import DECISION_LABELS, METRIC_LABELS, ExperimentInput
from campaign.web.auth import member, role_required
from campaign.web.context import get_session, now

bp = Blueprint("experiments", __name__)

STATUS_LABELS = {
    "planned": "Planned",
    "running": "Running",
    "concluded": "Concluded",
    "abandoned": "Abandoned",
}
MAX_TEXT = 20_000
MAX_AGE_HOURS = 2160


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "experiment_states": STATUS_LABELS,
        "decision_labels": DECISION_LABELS,
        "metric_labels": METRIC_LABELS,
    }


def _organisation() -> Organisation:
    found: Organisation = member().membership.organisation
    return found


@bp.route("/experiments")
@role_required(Role.STAFF)
def index() -> str:
    found = experiments.list_experiments(get_session(), member().organisation_id)
    groups = {status: [e for e in found if e.status == status] for status in EXPERIMENT_STATUSES}
    return render_template("experiments/index.html", groups=groups)


@bp.route("/experiments/library")
@role_required(Role.STAFF)
def library() -> str:
    args = {k: request.args.get(k, "")[:200] for k in ("q", "tag", "audience")}
    found = experiments.library(
        get_session(), member().organisation_id, args["q"], args["tag"], args["audience"]
    )
    return render_template(
        "experiments/library.html",
        found=found,
        args=args,
        tags=[t for t in _organisation().framing_tags if not t.archived],
        audiences=AUDIENCES,
    )


# --- planning -------------------------------------------------------------------------------


def _number(name: str, cast: Callable[[str], Any], problems: list[str], label: str) -> Any:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = cast(raw[:40])
    except ValueError:
        problems.append(f"{label} must be a number; {raw[:40]!r} is not.")
        return None
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite
        problems.append(f"{label} must be a number; {raw[:40]!r} is not.")
        return None
    return value


def _ids(name: str) -> list[int]:
    return [int(v) for v in request.form.getlist(name) if v.isdigit() and len(v) < 10]


def _form_input(message: Message) -> tuple[ExperimentInput, list[str]]:
    form, problems = request.form, list[str]()
    control = form.get("control", "")
    others = [i for i in _ids("variant_ids") if str(i) != control]
    chosen = ([int(control)] if control.isdigit() and len(control) < 10 else []) + others
    age = _number("report_age_hours", float, problems, "The report age")
    if age is not None and not 1 <= age <= MAX_AGE_HOURS:
        problems.append(f"Compare posts at an age from 1 to {MAX_AGE_HOURS} hours (90 days).")
        age = None
    alpha = _number("alpha", float, problems, "Alpha")
    lift = _number("minimum_lift_percent", float, problems, "The smallest lift")
    baseline = _number("baseline_percent", float, problems, "The baseline rate")
    per_post = _number("impressions_per_post", int, problems, "Impressions per post")
    posts_per_arm = _number("posts_per_arm", int, problems, "Posts per arm")
    metric = form.get("primary_metric", "")
    times = form.get("times", "")[:MAX_TEXT].splitlines() if form.get("schedule") == "times" else []
    data = ExperimentInput(
        name=form.get("name", "")[:300],
        message_id=message.id,
        variant_ids=tuple(chosen),
        channel_ids=tuple(_ids("channel_ids")),
        hypothesis=form.get("hypothesis", "")[:MAX_TEXT],
        primary_metric=metric if metric else None,
        report_age_seconds=round((age if age is not None else 24) * 3600),
        verdict_rule=form.get("verdict_rule", "planned"),
        alpha=alpha if alpha is not None else 0.05,
        minimum_lift=(lift if lift is not None else 50) / 100,
        baseline_rate=baseline / 100 if baseline is not None else None,
        impressions_per_post=per_post,
        posts_per_arm=posts_per_arm,
        times=tuple(t for t in times if t.strip())
        or (("",) if form.get("schedule") == "times" else ()),
    )
    return data, problems


def _message(message_id: str) -> Message | None:
    if not message_id.isdigit() or len(message_id) >= 10:
        return None
    try:
        return experiments.get_message(get_session(), member().organisation_id, int(message_id))
    except NotFound:
        abort(404)


def _form(message: Message | None, draft: experiments.Draft | None, status: int) -> Any:
    db, org = get_session(), _organisation()
    suggestion = (
        suggestions.suggest_next(db, org.id, message.id, now()) if message is not None else None
    )
    body = render_template(
        "experiments/new.html",
        message=message,
        draft=draft,
        form=request.form,
        campaigns=campaigns.list_campaigns(db, org.id),
        channels=[c for c in campaigns.list_channels(db, org.id) if c.status != "disabled"],
        suggestion=suggestion,
    )
    return body, status


@bp.route("/experiments/new", methods=["GET", "POST"])
@role_required(Role.STAFF)
def new() -> Any:
    source = request.form if request.method == "POST" else request.args
    message = _message(source.get("message_id", ""))
    if request.method == "GET" or message is None:
        return _form(message, None, 200)
    db, org = get_session(), _organisation()
    data, problems = _form_input(message)
    if problems:
        return _form(message, experiments.Draft(problems=problems), 422)
    draft = experiments.check(db, org, data, now())
    creating = request.form.get("action") == "create"
    if not creating or draft.problems:
        return _form(message, draft, 422 if creating else 200)
    try:
        with db.begin_nested():  # a refusal undoes only what the service did
            created = experiments.create_experiment(db, org, data, member().actor(), now())
    except ServiceError as exc:
        return _form(message, experiments.Draft(problems=[str(exc)]), 422)
    db.commit()
    flash("Planned: check the assignment, then a manager approves it.", "success")
    return redirect(url_for("experiments.detail", experiment_id=created.id))


# --- one experiment -------------------------------------------------------------------------


def _get(experiment_id: int) -> Experiment:
    try:
        return experiments.get_experiment(get_session(), member().organisation_id, experiment_id)
    except NotFound:
        abort(404)


@bp.route("/experiments/<int:experiment_id>")
@role_required(Role.STAFF)
def detail(experiment_id: int) -> str:
    db, found = get_session(), _get(experiment_id)
    arms = {a.id: a for a in found.arms}
    return render_template(
        "experiments/detail.html",
        experiment=found,
        arms=arms,
        message=db.get(Message, found.message_id) if found.message_id else None,
        plan_words=experiments.explain_plan(db, found),
        slots=sorted(found.slots, key=lambda s: (s.scheduled_at, s.channel_id)),
        progress=experiments.progress(db, found) if found.status != "planned" else [],
        events=experiments.history(db, found.organisation_id, found.id),
        is_manager=member().role.covers(Role.MANAGER),
        report_url=_report_url(found),
    )


def _report_url(experiment: Experiment) -> str | None:
    """The experiment's report page, once it has posts (None before, or without reports)."""
    if experiment.status == "planned":
        return None
    try:
        return url_for("reports.experiment_report", experiment_id=experiment.id)
    except BuildError:
        return None


def _act(experiment_id: int, change: Callable[[Session, Organisation, Actor], object]) -> Response:
    db = get_session()
    _get(experiment_id)  # another organisation's experiment is a 404, whatever the action
    try:
        with db.begin_nested():  # a refusal undoes only what the service did
            change(db, _organisation(), member().actor())
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)
    except experiments.Refused as exc:
        for problem in exc.problems[:10]:
            flash(problem, "error")
        if len(exc.problems) > 10:
            flash(f"… and {len(exc.problems) - 10} more.", "error")
        return redirect(url_for("experiments.detail", experiment_id=experiment_id))
    except ServiceError as exc:
        flash(str(exc), "error")
        return redirect(url_for("experiments.detail", experiment_id=experiment_id))
    db.commit()
    flash(_DONE[request.endpoint or ""], "success")
    return redirect(url_for("experiments.detail", experiment_id=experiment_id))


_DONE = {
    "experiments.edit": "Saved.",
    "experiments.redraw": "Re-drawn with a new seed: the new assignment is below.",
    "experiments.approve": "Approved: one post per slot is scheduled. The plan is now fixed.",
    "experiments.conclude": "Concluded: it is in the learning library.",
    "experiments.abandon": "Abandoned: its posts not yet sent are cancelled, and the reason is "
    "in the learning library.",
}


@bp.route("/experiments/<int:experiment_id>/edit", methods=["POST"])
@role_required(Role.STAFF)
def edit(experiment_id: int) -> Response:
    name = request.form.get("name", "")[:300]
    hypothesis = request.form.get("hypothesis", "")[:MAX_TEXT]
    return _act(
        experiment_id,
        lambda db, org, actor: experiments.update_experiment(
            db, org, experiment_id, name, hypothesis, actor, now()
        ),
    )


@bp.route("/experiments/<int:experiment_id>/redraw", methods=["POST"])
@role_required(Role.STAFF)
def redraw(experiment_id: int) -> Response:
    return _act(
        experiment_id,
        lambda db, org, actor: experiments.redraw(db, org, experiment_id, actor, now()),
    )


@bp.route("/experiments/<int:experiment_id>/approve", methods=["POST"])
@role_required(Role.MANAGER)
def approve(experiment_id: int) -> Response:
    return _act(
        experiment_id,
        lambda db, org, actor: experiments.approve(db, org, experiment_id, actor, now()),
    )


@bp.route("/experiments/<int:experiment_id>/conclude", methods=["POST"])
@role_required(Role.MANAGER)
def conclude(experiment_id: int) -> Response:
    decision = request.form.get("decision", "")
    arm = request.form.get("chosen_arm_id", "")
    chosen = int(arm) if arm.isdigit() and len(arm) < 10 else None
    learning = request.form.get("learning", "")[:MAX_TEXT]
    return _act(
        experiment_id,
        lambda db, org, actor: experiments.conclude(
            db, org, experiment_id, decision, chosen, learning, actor, now()
        ),
    )


@bp.route("/experiments/<int:experiment_id>/abandon", methods=["POST"])
@role_required(Role.MANAGER)
def abandon(experiment_id: int) -> Response:
    reason = request.form.get("reason", "")[:MAX_TEXT]
    return _act(
        experiment_id,
        lambda db, org, actor: experiments.abandon(db, org, experiment_id, reason, actor, now()),
    )
