"""Campaigns, messages, variants, framing tags and posts through /api/v1."""

from __future__ import annotations

import datetime as dt
import typing

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import func, select

from campaign.models import AUDIENCES, POST_STATUSES, Campaign, Channel, Delivery, Post, Role
from campaign.services import drafting
from campaign.services.tokens import create_token
from campaign.web.api import drafting_schemas
from campaign.web.api.drafting import token_role
from tests.conftest import NOW

LATER = "2026-03-10 09:00"  # a Tuesday; GMT in Europe/London


@pytest.fixture
def bearer(db, world):
    def make(*scopes, org=None):
        _token, plain = create_token(
            db, (org or world.home.org).id, "test", list(scopes), None, NOW
        )
        return {"Authorization": f"Bearer {plain}"}

    return make


@pytest.fixture
def writer(bearer):
    return bearer("read", "posts:write")


@pytest.fixture
def admin(bearer):
    return bearer("admin")


def error(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert set(response.json) == {"error"}
    return response.json["error"]


def post_body(world, **values):
    return {
        "text": "Mock interviews: book now",
        "channel_ids": [world.home.channel.id],
        "when": LATER,
        **values,
    }


def count_posts(db, world):
    return db.scalar(
        select(func.count()).select_from(Post).where(Post.organisation_id == world.home.org.id)
    )


# --- drafting -------------------------------------------------------------------------------


def test_a_campaign_with_a_message_and_two_framings_through_the_api(client, world, writer):
    created = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Graduate schemes",
            "goal": "200 finalists apply",
            "audience": "graduates",
            "starts_on": "2026-09-01",
            "ends_on": "2026-12-18",
            "owner_id": world.home.manager.id,
        },
        headers=writer,
    )
    assert created.status_code == 201, created.json
    campaign = created.json
    assert campaign["ends_on"] == "2026-12-18" and campaign["messages"] == []
    message = client.post(
        f"/api/v1/campaigns/{campaign['id']}/messages",
        json={
            "title": "Insight days",
            "link_url": "https://ac.uk/insight",
            "context": "Closes Fri",
        },
        headers=writer,
    )
    assert message.status_code == 201
    assert "add at least two framings" in message.json["warnings"][0]
    message_id = message.json["id"]
    for label, tags in (("Question", ["question"]), ("Statistic", ["statistic", "context"])):
        variant = client.post(
            f"/api/v1/messages/{message_id}/variants",
            json={
                "label": label,
                "text": f"{label} framing",
                "audience": "graduates",
                "framing_tags": tags,
            },
            headers=writer,
        )
        assert variant.status_code == 201
        assert variant.json["message_id"] == message_id
    detail = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=writer).json
    [shown] = detail["messages"]
    assert shown["warnings"] == []
    assert [v["framing_tags"] for v in shown["variants"]] == [
        ["question"],
        ["context", "statistic"],
    ]
    assert client.get(f"/api/v1/messages/{message_id}", headers=writer).json == shown
    listed = client.get("/api/v1/campaigns", headers=writer).json["items"]
    assert "Graduate schemes" in [c["name"] for c in listed]


def test_patch_changes_only_the_fields_sent_and_null_clears(client, world, writer):
    campaign = world.home.campaign
    url = f"/api/v1/campaigns/{campaign.id}"
    changed = client.patch(
        url, json={"goal": "Fill the fair", "audience": "students"}, headers=writer
    )
    assert changed.status_code == 200, changed.json
    assert (changed.json["name"], changed.json["goal"]) == ("Exam season", "Fill the fair")
    cleared = client.patch(url, json={"audience": None}, headers=writer)
    assert cleared.json["audience"] is None and cleared.json["goal"] == "Fill the fair"
    refused = error(client.patch(url, json={"name": None}, headers=writer), 422)
    assert refused["message"].startswith("name")
    message = campaign.messages[0]
    moved = client.patch(
        f"/api/v1/messages/{message.id}", json={"link_url": None, "intent": "Go"}, headers=writer
    )
    assert (moved.json["link_url"], moved.json["intent"]) == (None, "Go")
    assert moved.json["title"] == "Outcomes"
    variant = message.variants[0]
    tagged = client.patch(
        f"/api/v1/variants/{variant.id}", json={"framing_tags": ["story"]}, headers=writer
    )
    assert tagged.json["framing_tags"] == ["story"] and tagged.json["label"] == "Bare"
    assert client.get(f"/api/v1/variants/{variant.id}", headers=writer).json == tagged.json


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        ("/api/v1/campaigns", {"name": "  "}, "name", "The name is required"),
        (
            "/api/v1/campaigns",
            {"name": "C", "starts_on": "2026-05-02", "ends_on": "2026-05-01"},
            "ends_on",
            "is before the start date",
        ),
        (
            "/api/v1/campaigns",
            {"name": "C", "owner_id": 2**31 - 1},
            "owner_id",
            "not a member of this organisation",
        ),
        (
            "messages",
            {"title": "M", "link_url": "javascript:alert(1)"},
            "link_url",
            "starting with https://",
        ),
        (
            "variants",
            {"label": "L", "text": "T", "audience": "students", "framing_tags": ["humour"]},
            "framing_tags",
            "Unknown framing tag 'humour'",
        ),
        (
            "variants",
            {"label": "L", "text": " \n ", "audience": "students"},
            "text",
            "The text is empty",
        ),
    ],
)
def test_service_refusals_are_422_naming_the_field(client, world, writer, path, body, field, words):
    campaign = world.home.campaign
    if path == "messages":
        path = f"/api/v1/campaigns/{campaign.id}/messages"
    elif path == "variants":
        path = f"/api/v1/messages/{campaign.messages[0].id}/variants"
    refused = error(client.post(path, json=body, headers=writer), 422)
    assert words in refused["message"]
    assert refused["details"]["field"] == field


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n" * 201},
        {"name": "nul\x00byte"},
        {"name": "broken \ud800"},
        {"name": "C", "audience": "alumni"},
        {"name": "C", "starts_on": "2026-02-30"},
        {"name": "C", "owner_id": 2**31},
        {"name": "C", "surprise": True},
        ["not", "an", "object"],
    ],
    ids=repr,
)
def test_malformed_bodies_are_422_not_500(client, db, world, writer, body):
    before = db.scalar(select(func.count()).select_from(Campaign))
    error(client.post("/api/v1/campaigns", json=body, headers=writer), 422)
    assert db.scalar(select(func.count()).select_from(Campaign)) == before


def test_a_body_that_is_not_json_is_422(client, world, writer):
    response = client.patch(
        f"/api/v1/campaigns/{world.home.campaign.id}",
        data="name=Renamed",
        content_type="application/x-www-form-urlencoded",
        headers=writer,
    )
    assert "JSON" in error(response, 422)["message"]
    assert world.home.campaign.name == "Exam season"


def test_an_archived_campaign_is_read_only(client, world, writer):
    campaign = world.home.campaign
    archived = client.post(f"/api/v1/campaigns/{campaign.id}/archive", headers=writer)
    assert archived.status_code == 200 and archived.json["archived"] is True
    assert client.get(f"/api/v1/campaigns/{campaign.id}", headers=writer).json["archived"]
    assert (
        "archived"
        in error(
            client.patch(f"/api/v1/campaigns/{campaign.id}", json={"name": "X"}, headers=writer),
            422,
        )["message"]
    )
    variant = campaign.messages[0].variants[0]
    assert (
        "archived"
        in error(client.delete(f"/api/v1/variants/{variant.id}", headers=writer), 422)["message"]
    )
    again = client.post(f"/api/v1/campaigns/{campaign.id}/archive", headers=writer)
    assert "already archived" in error(again, 422)["message"]
    restored = client.post(f"/api/v1/campaigns/{campaign.id}/restore", headers=writer)
    assert restored.status_code == 200 and restored.json["archived"] is False
    renamed = client.patch(f"/api/v1/campaigns/{campaign.id}", json={"name": "X"}, headers=writer)
    assert renamed.status_code == 200
    twice = client.post(f"/api/v1/campaigns/{campaign.id}/restore", headers=writer)
    assert "not archived" in error(twice, 422)["message"]
    elsewhere = world.other.campaign.id
    assert client.post(f"/api/v1/campaigns/{elsewhere}/restore", headers=writer).status_code == 404


def test_deleting_a_variant_and_a_message(client, db, world, writer):
    message = world.home.campaign.messages[0]
    variant_id = message.variants[0].id
    gone = client.delete(f"/api/v1/variants/{variant_id}", headers=writer)
    assert gone.status_code == 204 and gone.get_data() == b""
    error(client.get(f"/api/v1/variants/{variant_id}", headers=writer), 404)
    assert client.delete(f"/api/v1/messages/{message.id}", headers=writer).status_code == 204
    error(client.get(f"/api/v1/messages/{message.id}", headers=writer), 404)


def test_a_variant_used_by_a_live_post_is_kept(client, world, writer):
    variant = world.home.campaign.messages[0].variants[0]
    made = client.post(
        "/api/v1/posts", json=post_body(world, variant_id=variant.id), headers=writer
    )
    assert made.status_code == 201, made.json
    assert made.json["post"]["variant_id"] == variant.id
    refused = error(client.delete(f"/api/v1/variants/{variant.id}", headers=writer), 422)
    assert "used by 1 post" in refused["message"]


def test_the_framing_vocabulary(client, world, writer, admin):
    listed = client.get("/api/v1/framing-tags", headers=writer).json["items"]
    assert [t["key"] for t in listed][:2] == ["bare_link", "context"]
    added = client.post(
        "/api/v1/framing-tags", json={"key": "peer_voice", "label": "Peer voice"}, headers=admin
    )
    assert added.status_code == 201 and added.json["archived"] is False
    tag_id = added.json["id"]
    duplicate = client.post(
        "/api/v1/framing-tags", json={"key": "peer_voice", "label": "Again"}, headers=admin
    )
    assert error(duplicate, 422)["details"]["field"] == "key"
    bad = client.post(
        "/api/v1/framing-tags", json={"key": "Peer Voice", "label": "P"}, headers=admin
    )
    assert "lowercase" in error(bad, 422)["message"]
    archived = client.patch(
        f"/api/v1/framing-tags/{tag_id}", json={"archived": True}, headers=admin
    )
    assert archived.json == {**added.json, "archived": True}
    keys = [t["key"] for t in client.get("/api/v1/framing-tags", headers=writer).json["items"]]
    assert "peer_voice" not in keys
    everything = client.get("/api/v1/framing-tags?include_archived=true", headers=writer)
    assert "peer_voice" in [t["key"] for t in everything.json["items"]]
    variant = world.home.campaign.messages[0].variants[0]
    refused = client.patch(
        f"/api/v1/variants/{variant.id}", json={"framing_tags": ["peer_voice"]}, headers=writer
    )
    assert "'peer_voice' is archived" in error(refused, 422)["message"]


# --- posts ----------------------------------------------------------------------------------


def test_a_post_is_created_with_warnings_and_notes_and_read_back(client, world, writer):
    body = post_body(world, when="2026-03-29 01:30")  # inside the spring-forward gap
    made = client.post("/api/v1/posts", json=body, headers=writer)
    assert made.status_code == 201, made.json
    post = made.json["post"]
    assert post["status"] == "draft"
    assert post["scheduled_for"] == "2026-03-29T01:30:00Z"
    assert post["scheduled_for_local"] == "Sun 29 Mar 2026, 02:30 BST"
    assert "does not exist" in made.json["notes"][0]
    assert [d["channel_id"] for d in post["deliveries"]] == [world.home.channel.id]
    again = client.post("/api/v1/posts", json=body, headers=writer)
    assert "The same text is already planned" in again.json["warnings"][0]
    detail = client.get(f"/api/v1/posts/{post['id']}", headers=writer).json
    assert [h["action"] for h in detail["history"]] == ["post.created"]
    assert detail["history"][0]["actor"].startswith("API token ")
    assert {k: v for k, v in detail.items() if k != "history"} == post


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"when": "2026-02-30 09:00"}, "2026-02-30 is not a date"),
        ({"when": "next tuesday"}, "is not a date and time"),
        ({"when": "2026-03-01 09:00"}, "is in the past"),
        ({"when": "0001-01-01 00:00+01:00"}, "year must be between"),
        ({"when": "9999-12-31 23:59-05:00"}, "year must be between"),
        ({"when": None}, "Choose a date and time"),
        ({"channel_ids": [999_999]}, "Channel 999999 does not exist"),
        ({"channel_ids": []}, "Choose at least one channel"),
        ({"channel_ids": [2**31]}, "channel_ids.0"),
        ({"text": "   "}, "The post is empty"),
        ({"text": "nul \x00"}, "cannot be stored"),
        ({"text": "x" * 20_001}, "text"),
        ({"link_url": "ftp://x.ac.uk"}, "starting with https://"),
        ({"link_url": "https://ac.uk/\ud800"}, "cannot be stored"),
        ({"blackout_override": "\x00"}, "cannot be stored"),
    ],
    ids=repr,
)
def test_bad_posts_are_422_with_the_reason_and_nothing_is_saved(
    client, db, world, writer, values, words
):
    before = count_posts(db, world)
    refused = error(
        client.post("/api/v1/posts", json=post_body(world, **values), headers=writer), 422
    )
    assert words in refused["message"]
    assert count_posts(db, world) == before


def test_oversize_text_and_another_organisations_channel_list_every_problem(
    client, db, world, writer
):
    x = Channel(
        organisation_id=world.home.org.id,
        kind="x",
        display_name="X careers",
        audience="students",
        created_at=NOW,
    )
    db.add(x)
    db.flush()
    body = post_body(world, text="y" * 281, channel_ids=[x.id, world.other.channel.id])
    refused = error(client.post("/api/v1/posts", json=body, headers=writer), 422)
    problems = refused["details"]["problems"]
    assert any(p.startswith("X careers: Too long for X: 281 of 280") for p in problems), problems
    assert f"Channel {world.other.channel.id} does not exist." in problems


def test_another_organisations_variant_is_422_naming_the_field(client, world, writer):
    foreign = world.other.campaign.messages[0].variants[0]
    body = post_body(world, variant_id=foreign.id)
    refused = error(client.post("/api/v1/posts", json=body, headers=writer), 422)
    assert refused["details"]["field"] == "variant_id"


def test_idempotency_key_replays_post_creation(client, db, world, writer):
    headers = {**writer, "Idempotency-Key": "plan-2026-03-10"}
    before = count_posts(db, world)
    first = client.post("/api/v1/posts", json=post_body(world), headers=headers)
    second = client.post("/api/v1/posts", json=post_body(world), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count_posts(db, world) == before + 1
    other = client.post("/api/v1/posts", json=post_body(world, text="Changed"), headers=headers)
    assert "different request" in error(other, 409)["message"]
    assert count_posts(db, world) == before + 1


def test_idempotency_key_replays_a_refusal_and_covers_every_post_route(client, db, world, writer):
    headers = {**writer, "Idempotency-Key": "bad-one"}
    body = post_body(world, when="2026-03-01 09:00")
    first = client.post("/api/v1/posts", json=body, headers=headers)
    second = client.post("/api/v1/posts", json=body, headers=headers)
    assert first.status_code == second.status_code == 422
    assert second.json == first.json and second.headers["Idempotent-Replayed"] == "true"
    campaign = client.post(
        "/api/v1/campaigns", json={"name": "Once"}, headers={**writer, "Idempotency-Key": "c1"}
    )
    replay = client.post(
        "/api/v1/campaigns", json={"name": "Once"}, headers={**writer, "Idempotency-Key": "c1"}
    )
    assert replay.json["id"] == campaign.json["id"]
    malformed = client.post(
        "/api/v1/campaigns",
        json={"name": "Twice"},
        headers={**writer, "Idempotency-Key": "caf\u00e9"},
    )
    assert error(malformed, 400)["details"] == {"header": "Idempotency-Key"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/campaigns", {"name": "Once"}),
        ("/api/v1/campaigns/{campaign}/archive", None),
        ("/api/v1/campaigns/{campaign}/messages", {"title": "Once"}),
        ("/api/v1/messages/{message}/variants", {"label": "L", "text": "T", "audience": "parents"}),
        ("/api/v1/framing-tags", {"key": "once_only", "label": "Once"}),
        ("/api/v1/posts", "post"),
        ("/api/v1/posts/{post}/submit", None),
        ("/api/v1/posts/{post}/approve", {"comment": "Fine"}),
        ("/api/v1/posts/{post}/reject", {"comment": "Not yet"}),
        ("/api/v1/posts/{post}/cancel", None),
    ],
)
def test_every_post_route_replays_under_an_idempotency_key(
    client, db, world, writer, admin, path, body
):
    ids = _ids(db, world.home)
    if path.endswith(("submit", "approve", "reject")):
        world.home.channel.requires_approval = True
        made = client.post("/api/v1/posts", json=post_body(world), headers=writer)
        ids["post"] = made.json["post"]["id"]
        if not path.endswith("submit"):
            client.post(f"/api/v1/posts/{ids['post']}/submit", headers=writer)
    if body == "post":
        body = post_body(world)
    headers = {**admin, "Idempotency-Key": f"once:{path}"}
    url = path.format(**ids)
    first = client.post(url, json=body, headers=headers)
    second = client.post(url, json=body, headers=headers)
    assert first.status_code in (200, 201), first.json
    assert second.status_code == first.status_code
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_data() == first.get_data()


def test_approval_flow_through_the_api(client, db, world, writer, admin):
    world.home.channel.requires_approval = True
    db.flush()
    made = client.post("/api/v1/posts", json=post_body(world, submit=True), headers=writer)
    assert made.status_code == 201, made.json
    post_id = made.json["post"]["id"]
    assert made.json["post"]["status"] == "pending_approval"
    # A posts:write token acts as staff: it may not review.
    for action in ("approve", "reject"):
        denied = client.post(
            f"/api/v1/posts/{post_id}/{action}", json={"comment": "x"}, headers=writer
        )
        assert "admin" in error(denied, 403)["message"]
    no_reason = client.post(f"/api/v1/posts/{post_id}/reject", json={}, headers=admin)
    assert error(no_reason, 422)["message"].startswith("comment")
    rejected = client.post(
        f"/api/v1/posts/{post_id}/reject", json={"comment": "Add the closing date"}, headers=admin
    )
    assert rejected.status_code == 200, rejected.json
    assert (rejected.json["status"], rejected.json["review_comment"]) == (
        "rejected",
        "Add the closing date",
    )
    edited = client.patch(
        f"/api/v1/posts/{post_id}",
        json={"text": "Mock interviews: book by Friday 6 March"},
        headers=writer,
    )
    assert edited.status_code == 200, edited.json
    assert edited.json["post"]["status"] == "draft"
    assert edited.json["post"]["scheduled_for"] == "2026-03-10T09:00:00Z"  # kept its time
    resubmitted = client.post(f"/api/v1/posts/{post_id}/submit", headers=writer)
    assert resubmitted.json["status"] == "pending_approval"
    approved = client.post(
        f"/api/v1/posts/{post_id}/approve", json={"comment": "Thanks"}, headers=admin
    )
    assert approved.status_code == 200 and approved.json["status"] == "approved"
    twice = client.post(f"/api/v1/posts/{post_id}/approve", json={}, headers=admin)
    assert "Only a post waiting for approval" in error(twice, 422)["message"]
    history = client.get(f"/api/v1/posts/{post_id}", headers=writer).json["history"]
    assert [h["action"] for h in history] == [
        "post.created",
        "post.submitted",
        "post.rejected",
        "post.edited",
        "post.submitted",
        "post.approved",
        "post.scheduled",
    ]
    assert history[2]["detail"]["comment"] == "Add the closing date"


def test_an_admin_token_acts_as_a_manager_when_submitting(client, db, world, admin):
    world.home.channel.requires_approval = True
    db.flush()
    made = client.post("/api/v1/posts", json=post_body(world, submit=True), headers=admin)
    assert made.json["post"]["status"] == "approved"


def test_cancelling_and_editing_while_publishing_is_a_conflict(client, db, world, writer):
    made = client.post("/api/v1/posts", json=post_body(world, submit=True), headers=writer)
    post_id = made.json["post"]["id"]
    delivery = db.scalar(select(Delivery).where(Delivery.post_id == post_id))
    delivery.status = "publishing"
    db.flush()
    busy = client.post(f"/api/v1/posts/{post_id}/cancel", headers=writer)
    assert "being published" in error(busy, 409)["message"]
    edit = client.patch(f"/api/v1/posts/{post_id}", json={"text": "Too late"}, headers=writer)
    error(edit, 409)
    delivery.status = "scheduled"
    db.flush()
    cancelled = client.post(f"/api/v1/posts/{post_id}/cancel", headers=writer)
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["deliveries"][0]["state"] == "cancelled"


def test_posts_are_listed_by_status_and_local_dates_and_paged(client, world, writer):
    ids = []
    for when in ("2026-03-10 09:00", "2026-03-11 00:30", "2026-03-12 23:30"):
        made = client.post(
            "/api/v1/posts", json=post_body(world, when=when, text=when), headers=writer
        )
        ids.append(made.json["post"]["id"])
    drafts = client.get("/api/v1/posts?status=draft", headers=writer).json
    assert [p["id"] for p in drafts["items"]] == ids and drafts["next_offset"] is None
    window = client.get("/api/v1/posts?from=2026-03-11&to=2026-03-12", headers=writer).json
    assert [p["id"] for p in window["items"]] == ids[1:]
    first = client.get("/api/v1/posts?status=draft&limit=2", headers=writer).json
    assert [p["id"] for p in first["items"]] == ids[:2] and first["next_offset"] == 2
    rest = client.get("/api/v1/posts?status=draft&limit=2&offset=2", headers=writer).json
    assert [p["id"] for p in rest["items"]] == ids[2:] and rest["next_offset"] is None
    approved = client.get("/api/v1/posts?status=approved", headers=writer).json["items"]
    assert [p["text"] for p in approved] == ["Hello"]  # the world's own post, not the other org's
    edges = client.get("/api/v1/posts?from=0001-01-01&to=9999-12-31", headers=writer).json
    assert len(edges["items"]) == 4


@pytest.mark.parametrize(
    "query",
    [
        "status=sent",
        "from=2026-02-30",
        "from=monday",
        "from=2026-03-12&to=2026-03-11",
        "limit=0",
        "limit=501",
        "offset=-1",
        "colour=red",
    ],
)
def test_bad_post_queries_are_422(client, world, writer, query):
    error(client.get(f"/api/v1/posts?{query}", headers=writer), 422)


# --- scopes, organisations, the document ----------------------------------------------------


def test_token_roles():
    assert token_role(["admin"]) == Role.ADMIN
    assert token_role(["read", "posts:write"]) == Role.STAFF
    assert token_role(["read"]) == Role.STAFF


def test_the_schemas_literals_match_the_models():
    assert set(typing.get_args(drafting_schemas.Audience)) == set(AUDIENCES)
    assert set(typing.get_args(drafting_schemas.PostStatus)) == set(POST_STATUSES)


WRITES = [
    ("post", "/api/v1/campaigns", {"name": "C"}),
    ("patch", "/api/v1/campaigns/{campaign}", {"name": "C"}),
    ("post", "/api/v1/campaigns/{campaign}/archive", None),
    ("post", "/api/v1/campaigns/{campaign}/messages", {"title": "M"}),
    ("patch", "/api/v1/messages/{message}", {"title": "M"}),
    ("delete", "/api/v1/messages/{message}", None),
    (
        "post",
        "/api/v1/messages/{message}/variants",
        {"label": "L", "text": "T", "audience": "students"},
    ),
    ("patch", "/api/v1/variants/{variant}", {"label": "L"}),
    ("delete", "/api/v1/variants/{variant}", None),
    ("post", "/api/v1/posts", {"text": "T", "channel_ids": [1], "when": LATER}),
    ("patch", "/api/v1/posts/{post}", {"text": "T"}),
    ("post", "/api/v1/posts/{post}/submit", None),
    ("post", "/api/v1/posts/{post}/cancel", None),
]
ADMIN_WRITES = [
    ("post", "/api/v1/posts/{post}/approve", {"comment": ""}),
    ("post", "/api/v1/posts/{post}/reject", {"comment": "No"}),
    ("post", "/api/v1/framing-tags", {"key": "new_key", "label": "New"}),
    ("patch", "/api/v1/framing-tags/{tag}", {"label": "L"}),
]
READS = [
    "/api/v1/campaigns/{campaign}",
    "/api/v1/messages/{message}",
    "/api/v1/variants/{variant}",
    "/api/v1/framing-tags",
    "/api/v1/posts",
    "/api/v1/posts/{post}",
]


def _ids(db, part):
    campaign = part.campaign
    message = campaign.messages[0]
    post = db.scalar(select(Post).where(Post.organisation_id == part.org.id))
    return {
        "campaign": campaign.id,
        "message": message.id,
        "variant": message.variants[0].id,
        "post": post.id,
        "tag": drafting.framing_vocabulary(db, part.org.id)[0].id,
    }


def _call(client, method, path, body, headers):
    return getattr(client, method)(path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), WRITES + ADMIN_WRITES)
def test_a_read_token_cannot_write(client, db, world, bearer, method, path, body):
    url = path.format(**_ids(db, world.home))
    refused = error(_call(client, method, url, body, bearer("read")), 403)
    assert "scope" in refused["message"]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_WRITES)
def test_review_and_vocabulary_need_the_admin_scope(client, db, world, writer, method, path, body):
    url = path.format(**_ids(db, world.home))
    assert "'admin' scope" in error(_call(client, method, url, body, writer), 403)["message"]


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_with_read(client, db, world, bearer, path):
    url = path.format(**_ids(db, world.home))
    error(client.get(url), 401)
    error(client.get(url, headers=bearer("metrics:write")), 403)
    assert client.get(url, headers=bearer("read")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [(m, p, b) for m, p, b in WRITES + ADMIN_WRITES if "{" in p]
    + [("get", p, None) for p in READS if "{" in p],
)
def test_another_organisations_ids_are_404_on_every_endpoint(
    client, db, world, admin, method, path, body
):
    url = path.format(**_ids(db, world.other))
    refused = error(_call(client, method, url, body, admin), 404)
    assert refused["message"].startswith("no such")
    assert not world.other.campaign.archived


def test_the_openapi_document_lists_every_operation_with_models(client):
    document = client.get("/api/v1/openapi.json").json
    paths = document["paths"]
    expected = {
        "/api/v1/campaigns": {"get", "post"},
        "/api/v1/campaigns/{campaign_id}": {"get", "patch"},
        "/api/v1/campaigns/{campaign_id}/archive": {"post"},
        "/api/v1/campaigns/{campaign_id}/messages": {"post"},
        "/api/v1/messages/{message_id}": {"get", "patch", "delete"},
        "/api/v1/messages/{message_id}/variants": {"post"},
        "/api/v1/variants/{variant_id}": {"get", "patch", "delete"},
        "/api/v1/framing-tags": {"get", "post"},
        "/api/v1/framing-tags/{tag_id}": {"patch"},
        "/api/v1/posts": {"get", "post"},
        "/api/v1/posts/{post_id}": {"get", "patch"},
        "/api/v1/posts/{post_id}/submit": {"post"},
        "/api/v1/posts/{post_id}/approve": {"post"},
        "/api/v1/posts/{post_id}/reject": {"post"},
        "/api/v1/posts/{post_id}/cancel": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths.get(path, {})), path
        for method in methods:
            operation = paths[path][method]
            assert operation["security"] == [{"bearer": []}]
            if (path, method) == ("/api/v1/campaigns", "get"):
                continue  # the list from resources.py
            assert "Scope" in operation["description"] + operation["summary"], (path, method)
            assert {"401", "403"} <= set(operation["responses"])
            if method == "post":
                names = [p["name"] for p in operation.get("parameters", [])]
                assert "Idempotency-Key" in names, path
                assert {"400", "409", "422"} <= set(operation["responses"])
            if method in ("post", "patch") and not path.endswith(("submit", "cancel", "archive")):
                assert "requestBody" in operation, (path, method)
    posts_post = paths["/api/v1/posts"]["post"]
    assert "201" in posts_post["responses"]
    assert "admin" in paths["/api/v1/posts/{post_id}/approve"]["post"]["summary"]


def test_post_dates_are_rfc3339_and_times_local(client, world, writer):
    made = client.post(
        "/api/v1/posts", json=post_body(world, when="2026-07-01 09:00"), headers=writer
    ).json["post"]
    assert made["scheduled_for"] == "2026-07-01T08:00:00Z"
    assert made["scheduled_for_local"] == "Wed 1 Jul 2026, 09:00 BST"
    assert dt.datetime.fromisoformat(made["created_at"]) == NOW


# --- fuzzing on real objects ----------------------------------------------------------------

_PATH_IDS = {
    "campaign_id": "campaign",
    "message_id": "message",
    "variant_id": "variant",
    "post_id": "post",
    "tag_id": "tag",
}


def _fuzz(operation, path_parameters, headers):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case):
        if path_parameters:
            case.path_parameters = dict(path_parameters)
        # Documented status codes and bodies, and never a 5xx, for any input.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()


def test_generated_requests_on_real_objects_never_fail_the_schema_or_500(app, db, world, admin):
    """The shared schema test mostly meets 404s; here every id names a real object."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    ids = _ids(db, world.home)
    lists = ("/api/v1/posts", "/api/v1/framing-tags", "/api/v1/campaigns")
    operations = [result.ok() for result in schema.get_all_operations()]
    # Archiving, cancelling and deleting last, so that the other operations meet live objects.
    operations.sort(
        key=lambda op: (op.method.upper() == "DELETE", op.path.endswith(("archive", "cancel")))
    )
    checked = []
    for operation in operations:
        words = set(operation.path.replace("{", "/").replace("}", "/").split("/"))
        names = set(_PATH_IDS) & words
        if names or operation.path in lists:
            _fuzz(operation, {name: ids[_PATH_IDS[name]] for name in names}, admin)
            checked.append(operation.label)
    assert len(checked) >= 20, checked
