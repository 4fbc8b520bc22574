"""Experiments through the API: plan one, read it, re-draw, approve, conclude or abandon.

Reading needs `read`; planning and re-drawing need `posts:write`; approving, concluding and
abandoning need `admin` (such a token acts as a manager). Refusals are 422 with every reason in
details.problems; another organisation's ids are 404.
"""

from __future__ import annotations

from typing import Any

from flask import request

from campaign.models import Experiment
from campaign.services import experiments
from campaign.services.experiments import ExperimentInput
from campaign.web.api import bp, spec
from campaign.web.api.auth import token_required
from campaign.web.api.drafting import (
    _BEARER,
    _POSTED,
    _actor,
    _answering,
    _body,
    _commit,
    _org_id,
    _organisation,
    _responses,
)
from campaign.web.api.experiments_schemas import (
    AbandonIn,
    ConcludeIn,
    ExperimentDetail,
    ExperimentIn,
    ExperimentList,
    ExperimentQuery,
)
from campaign.web.api.idempotency import IdempotencyHeaders, idempotent
from campaign.web.api.resources import rfc3339
from campaign.web.context import get_session, now

_TAGS = ["experiments"]


def _summary(experiment: Experiment, with_progress: bool = True) -> dict[str, Any]:
    counts = (
        {p.arm.id: p for p in experiments.progress(get_session(), experiment)}
        if with_progress
        else {}
    )
    return {
        "id": experiment.id,
        "name": experiment.name,
        "status": experiment.status,
        "message_id": experiment.message_id,
        "hypothesis": experiment.hypothesis,
        "primary_metric": experiment.primary_metric,
        "report_age_seconds": experiment.report_age_seconds,
        "verdict_rule": experiment.verdict_rule,
        "alpha": experiment.alpha,
        "minimum_lift": experiment.minimum_lift,
        "baseline_rate": experiment.baseline_rate,
        "planned_posts_per_arm": experiment.planned_posts_per_arm,
        "planned_impressions_per_arm": experiment.planned_impressions_per_arm,
        "seed": experiment.seed,
        "decision": experiment.decision,
        "chosen_arm_id": experiment.chosen_arm_id,
        "learning": experiment.learning,
        "created_at": rfc3339(experiment.created_at),
        "approved_at": rfc3339(experiment.approved_at),
        "concluded_at": rfc3339(experiment.concluded_at),
        "arms": [
            {
                "id": a.id,
                "position": a.position,
                "name": a.name,
                "variant_id": a.variant_id,
                "published_posts": counts[a.id].published if a.id in counts else 0,
                "scheduled_posts": counts[a.id].scheduled if a.id in counts else 0,
            }
            for a in experiment.arms
        ],
    }


def _detail(experiment: Experiment) -> dict[str, Any]:
    return {
        **_summary(experiment),
        "plan": experiments.explain_plan(get_session(), experiment),
        "slots": [
            {
                "id": s.id,
                "channel_id": s.channel_id,
                "scheduled_at": rfc3339(s.scheduled_at),
                "position": s.position,
                "arm_id": s.arm_id,
                "post_id": s.post_id,
            }
            for s in sorted(experiment.slots, key=lambda s: (s.scheduled_at, s.channel_id))
        ],
    }


def _fresh(experiment_id: int) -> dict[str, Any]:
    db = get_session()
    db.expire_all()
    return _detail(experiments.get_experiment(db, _org_id(), experiment_id))


@bp.get("/experiments")
@spec.validate(
    query=ExperimentQuery, resp=_responses(200, ExperimentList, 422), tags=_TAGS, security=_BEARER
)
@token_required("read")
def list_experiments() -> Any:
    """The organisation's experiments, newest first, optionally of one status. Scope: read."""
    query = ExperimentQuery.model_validate(request.args.to_dict())
    found = experiments.list_experiments(get_session(), _org_id(), query.status)
    return {"items": [_summary(e) for e in found]}


@bp.get("/experiments/<int:experiment_id>")
@spec.validate(resp=_responses(200, ExperimentDetail, 404), tags=_TAGS, security=_BEARER)
@token_required("read")
def get_experiment(experiment_id: int) -> Any:
    """One experiment: its plan in words, arms with progress, slots and assignment. Scope: read."""
    with _answering():
        found = experiments.get_experiment(get_session(), _org_id(), experiment_id)
    return _detail(found)


@bp.post("/experiments")
@spec.validate(
    json=ExperimentIn,
    headers=IdempotencyHeaders,
    resp=_responses(201, ExperimentDetail, *_POSTED),
    tags=_TAGS,
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def create_experiment() -> Any:
    """Plan an experiment: arms, metric, rule, the power calculation, seeded slots.

    Scope: posts:write. The first variant is the control. Without `times`, each channel's next
    free queue slots are used, as many as the planned sample needs. Every refusal is a 422 with
    the reasons in details.problems; a message of another organisation is a 422 naming
    message_id.
    """
    body = _body(ExperimentIn)
    data = ExperimentInput(**{**body.model_dump(), "variant_ids": tuple(body.variant_ids),
                              "channel_ids": tuple(body.channel_ids),
                              "times": tuple(body.times)})  # fmt: skip
    with _answering(not_found=422, field="message_id"):
        created = experiments.create_experiment(
            get_session(), _organisation(), data, _actor(), now()
        )
    answer = _detail(created)
    _commit()
    return answer, 201


def _action(experiment_id: int, action: str) -> Any:
    db, organisation, actor = get_session(), _organisation(), _actor()
    with _answering():
        experiments.get_experiment(db, organisation.id, experiment_id)
        if action == "redraw":
            experiments.redraw(db, organisation, experiment_id, actor, now())
        elif action == "approve":
            experiments.approve(db, organisation, experiment_id, actor, now())
        elif action == "conclude":
            body = _body(ConcludeIn)
            experiments.conclude(db, organisation, experiment_id, body.decision,
                                 body.chosen_arm_id, body.learning, actor, now())  # fmt: skip
        else:
            reason = _body(AbandonIn).reason
            experiments.abandon(db, organisation, experiment_id, reason, actor, now())
    answer = _fresh(experiment_id)
    _commit()
    return answer


@bp.post("/experiments/<int:experiment_id>/redraw")
@spec.validate(
    headers=IdempotencyHeaders,
    resp=_responses(200, ExperimentDetail, 404, *_POSTED),
    tags=_TAGS,
    security=_BEARER,
)
@token_required("posts:write")
@idempotent
def redraw_experiment(experiment_id: int) -> Any:
    """Draw the assignment again with a new seed; only while planned. Scope: posts:write."""
    return _action(experiment_id, "redraw")


@bp.post("/experiments/<int:experiment_id>/approve")
@spec.validate(
    headers=IdempotencyHeaders,
    resp=_responses(200, ExperimentDetail, 404, *_POSTED),
    tags=_TAGS,
    security=_BEARER,
)
@token_required("admin")
@idempotent
def approve_experiment(experiment_id: int) -> Any:
    """Freeze the plan and schedule one approved post per slot. Scope: admin."""
    return _action(experiment_id, "approve")


@bp.post("/experiments/<int:experiment_id>/conclude")
@spec.validate(
    json=ConcludeIn,
    headers=IdempotencyHeaders,
    resp=_responses(200, ExperimentDetail, 404, *_POSTED),
    tags=_TAGS,
    security=_BEARER,
)
@token_required("admin")
@idempotent
def conclude_experiment(experiment_id: int) -> Any:
    """Record the decision and what was learnt; unsent posts are cancelled. Scope: admin."""
    return _action(experiment_id, "conclude")


@bp.post("/experiments/<int:experiment_id>/abandon")
@spec.validate(
    json=AbandonIn,
    headers=IdempotencyHeaders,
    resp=_responses(200, ExperimentDetail, 404, *_POSTED),
    tags=_TAGS,
    security=_BEARER,
)
@token_required("admin")
@idempotent
def abandon_experiment(experiment_id: int) -> Any:
    """Stop a planned or running experiment with a reason. Scope: admin."""
    return _action(experiment_id, "abandon")
