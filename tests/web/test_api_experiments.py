"""Experiments through /api/v1: plan, read, re-draw, approve, conclude, abandon."""

from __future__ import annotations

import typing

import pytest
from sqlalchemy import select

from campaign.analysis.sample_size import required_impressions
from campaign.models import Post, Variant
from campaign.models.experiment import (
    DECISIONS,
    EXPERIMENT_STATUSES,
    PRIMARY_METRICS,
    VERDICT_RULES,
)
from campaign.services.tokens import create_token
from campaign.web.api import experiments_schemas
from tests.conftest import NOW

TIMES = [f"2026-03-{day:02d} {hour}" for day in (10, 11, 12) for hour in ("09:00", "17:30")]


@pytest.fixture
def bearer(db, world):
    def make(*scopes, org=None):
        _token, plain = create_token(
            db, (org or world.home.org).id, "test", list(scopes), None, NOW
        )
        return {"Authorization": f"Bearer {plain}"}

    return make


def framings(db, part):
    message = part.campaign.messages[0]
    message.variants.append(
        Variant(
            label="Question",
            text="Ready? https://example.ac.uk/o",
            audience="students",
            created_at=NOW,
        )
    )
    db.flush()
    return message


def body_for(message, part, **values):
    return {
        "name": "Question or bare link?",
        "message_id": message.id,
        "variant_ids": [v.id for v in message.variants],
        "channel_ids": [part.channel.id],
        "hypothesis": "A question earns more clicks.",
        "baseline_rate": 0.02,
        "minimum_lift": 1.0,
        "impressions_per_post": 800,
        "times": TIMES,
        **values,
    }


def test_the_literals_match_the_model():
    assert typing.get_args(experiments_schemas.ExperimentStatus) == EXPERIMENT_STATUSES
    assert typing.get_args(experiments_schemas.PrimaryMetric) == PRIMARY_METRICS
    assert typing.get_args(experiments_schemas.VerdictRule) == VERDICT_RULES
    assert typing.get_args(experiments_schemas.Decision) == DECISIONS


def test_plan_approve_and_conclude_through_the_api(client, db, world, bearer):
    message = framings(db, world.home)
    writer, admin = bearer("read", "posts:write"), bearer("admin")
    created = client.post("/api/v1/experiments", json=body_for(message, world.home),
                          headers=writer)  # fmt: skip
    assert created.status_code == 201, created.get_data(as_text=True)
    found = created.json
    assert found["status"] == "planned"
    assert found["planned_impressions_per_arm"] == required_impressions(0.02, 1.0, 0.05)
    assert len(found["slots"]) == 6 and found["plan"]
    assert [a["position"] for a in found["arms"]] == [0, 1]
    url = f"/api/v1/experiments/{found['id']}"
    redrawn = client.post(f"{url}/redraw", headers=writer)
    assert redrawn.status_code == 200 and redrawn.json["seed"] != found["seed"]
    assert client.post(f"{url}/approve", headers=writer).status_code == 403
    approved = client.post(f"{url}/approve", headers=admin)
    assert approved.status_code == 200, approved.get_data(as_text=True)
    assert approved.json["status"] == "running"
    assert all(s["post_id"] for s in approved.json["slots"])
    assert sum(a["scheduled_posts"] for a in approved.json["arms"]) == 6
    refused = client.post(f"{url}/redraw", headers=writer)
    assert refused.status_code == 422
    assert "cannot be re-drawn" in refused.json["error"]["message"]
    concluded = client.post(
        f"{url}/conclude",
        json={"decision": "keep_control", "learning": "Bare links do fine."},
        headers=admin,
    )
    assert concluded.status_code == 200, concluded.get_data(as_text=True)
    assert concluded.json["chosen_arm_id"] == found["arms"][0]["id"]
    assert {db.get(Post, s["post_id"]).status for s in approved.json["slots"]} == {"cancelled"}
    listed = client.get("/api/v1/experiments?status=concluded", headers=writer)
    assert [e["id"] for e in listed.json["items"]] == [found["id"]]


def test_a_refused_plan_is_a_422_with_every_reason(client, db, world, bearer):
    message = framings(db, world.home)
    response = client.post(
        "/api/v1/experiments",
        json=body_for(message, world.home, hypothesis=" ", times=["2020-01-01 09:00"]),
        headers=bearer("posts:write"),
    )
    assert response.status_code == 422
    problems = response.json["error"]["details"]["problems"]
    assert any("hypothesis" in p for p in problems)


def test_a_conclusion_without_a_note_is_refused_by_the_schema(client, db, world, bearer):
    message = framings(db, world.home)
    created = client.post("/api/v1/experiments", json=body_for(message, world.home),
                          headers=bearer("posts:write"))  # fmt: skip
    response = client.post(
        f"/api/v1/experiments/{created.json['id']}/conclude",
        json={"decision": "inconclusive", "learning": ""},
        headers=bearer("admin"),
    )
    assert response.status_code == 422


def test_another_organisations_experiment_or_message(client, db, world, bearer):
    message = framings(db, world.other)
    theirs = bearer("posts:write", "read", org=world.other.org)
    created = client.post("/api/v1/experiments", json=body_for(message, world.other),
                          headers=theirs)  # fmt: skip
    assert created.status_code == 201
    ours = bearer("read", "posts:write", "admin")
    assert client.get(f"/api/v1/experiments/{created.json['id']}", headers=ours).status_code == 404
    for action in ("redraw", "approve"):
        url = f"/api/v1/experiments/{created.json['id']}/{action}"
        assert client.post(url, headers=ours).status_code == 404
    response = client.post("/api/v1/experiments", json=body_for(message, world.home), headers=ours)
    assert response.status_code == 422
    assert client.get("/api/v1/experiments", headers=ours).json["items"] == []


def test_the_operations_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/experiments"])
    assert "get" in paths["/api/v1/experiments/{experiment_id}"]
    for action in ("redraw", "approve", "conclude", "abandon"):
        assert "post" in paths[f"/api/v1/experiments/{{experiment_id}}/{action}"]


def test_posts_made_by_approval_carry_the_arms_variants(client, db, world, bearer):
    message = framings(db, world.home)
    created = client.post("/api/v1/experiments", json=body_for(message, world.home),
                          headers=bearer("posts:write"))  # fmt: skip
    approved = client.post(f"/api/v1/experiments/{created.json['id']}/approve",
                           headers=bearer("admin"))  # fmt: skip
    arms = {a["id"]: a["variant_id"] for a in approved.json["arms"]}
    for slot in approved.json["slots"]:
        post = db.scalar(select(Post).where(Post.id == slot["post_id"]))
        assert post.variant_id == arms[slot["arm_id"]]
        assert post.status == "approved"
