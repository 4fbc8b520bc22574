"""Planning a campaign through the forms: campaign, message with context, framings with tags."""

from __future__ import annotations

from sqlalchemy import select

from campaign.models import Campaign, Channel, Message, Variant
from tests.conftest import NOW


def post(client, auth, path, **fields):
    return client.post(path, data={"csrf_token": auth.csrf("/plan"), **fields})


def test_a_campaign_a_message_and_two_framings_through_the_forms(client, auth, world, db):
    auth.login(world.home.staff.email)
    response = post(
        client, auth, "/plan/campaigns/new", name="Spring internships", goal="50 applications",
        audience="students", starts_on="2026-03-02", ends_on="2026-04-30",
        owner_id=world.home.manager.id,
    )  # fmt: skip
    assert response.status_code == 302
    campaign = db.scalars(select(Campaign).where(Campaign.name == "Spring internships")).one()
    assert (campaign.goal, campaign.audience, campaign.owner_id) == (
        "50 applications", "students", world.home.manager.id,
    )  # fmt: skip
    response = post(
        client, auth, f"/plan/campaigns/{campaign.id}/messages/new", title="Internship fair",
        link_url="https://careers.ac.uk/fair", intent="come to the fair",
        context="Applications for summer internships close in three weeks",
    )  # fmt: skip
    message = db.scalars(select(Message).where(Message.campaign_id == campaign.id)).one()
    assert response.headers["Location"].endswith(f"/plan/messages/{message.id}/variants/new")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Applications for summer internships close" in page
    assert "add at least two framings" in page.lower()
    for label, tags in (("Deadline", ["deadline_urgency"]), ("Question", ["question", "context"])):
        response = post(
            client, auth, f"/plan/messages/{message.id}/variants/new", label=label,
            text=f"{label}: internships fair https://careers.ac.uk/fair", audience="students",
            framing_tags=tags,
        )  # fmt: skip
        assert response.status_code == 302
    variants = db.scalars(select(Variant).where(Variant.message_id == message.id)).all()
    assert sorted(v.label for v in variants) == ["Deadline", "Question"]
    assert sorted(t.key for t in variants[1].framing_tags) in (
        ["context", "question"], ["deadline_urgency"],
    )  # fmt: skip
    page = client.get(f"/plan/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Schedule this framing" in page and "Add at least two framings" not in page


def test_a_refused_form_says_why_and_keeps_what_was_typed(client, auth, world):
    auth.login(world.home.staff.email)
    response = post(
        client, auth, "/plan/campaigns/new", name="Careers week", starts_on="2026-05-02",
        ends_on="2026-05-01", goal="Keep this goal",
    )  # fmt: skip
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Keep this goal" in body and "Careers week" in body
    assert "before" in body.lower()
    response = post(client, auth, "/plan/campaigns/new", name="X", starts_on="2026-02-30")
    assert response.status_code == 422
    assert "is not a date" in response.get_data(as_text=True)


def test_an_unknown_framing_tag_is_refused_by_name(client, auth, world):
    auth.login(world.home.staff.email)
    message = world.home.campaign.messages[0]
    response = post(
        client, auth, f"/plan/messages/{message.id}/variants/new", label="Odd", text="Hello",
        audience="students", framing_tags=["no_such_tag"],
    )  # fmt: skip
    assert response.status_code == 422
    assert "no_such_tag" in response.get_data(as_text=True)


def test_the_framing_check_reports_each_channel(client, auth, world, db):
    db.add(
        Channel(
            organisation_id=world.home.org.id, kind="bluesky", display_name="Careers Bluesky",
            audience="students", created_at=NOW,
        )
    )  # fmt: skip
    db.flush()
    auth.login(world.home.staff.email)
    body = post(client, auth, "/plan/variants/check", text="é" * 301).get_data(as_text=True)
    assert "Careers Bluesky: 301 of 300" in body and "cannot be published" in body


def test_editing_and_deleting_a_framing(client, auth, world, db):
    auth.login(world.home.staff.email)
    variant = world.home.campaign.messages[0].variants[0]
    page = client.get(f"/plan/variants/{variant.id}/edit").get_data(as_text=True)
    assert variant.text in page
    response = post(
        client, auth, f"/plan/variants/{variant.id}/edit", label="Renamed", text="New text",
        audience="graduates",
    )  # fmt: skip
    assert response.status_code == 302
    db.refresh(variant)
    assert (variant.label, variant.text, variant.audience) == ("Renamed", "New text", "graduates")
    assert post(client, auth, f"/plan/variants/{variant.id}/delete").status_code == 302
    assert db.get(Variant, variant.id) is None


def test_archiving_takes_a_campaign_off_the_plan(client, auth, world, db):
    auth.login(world.home.staff.email)
    campaign = world.home.campaign
    assert campaign.name in client.get("/plan").get_data(as_text=True)
    post(client, auth, f"/plan/campaigns/{campaign.id}/archive")
    db.refresh(campaign)
    assert campaign.archived
    assert campaign.name not in client.get("/plan").get_data(as_text=True)


def test_another_organisations_campaign_cannot_take_a_message(client, auth, world, db):
    auth.login(world.home.staff.email)
    before = db.scalars(select(Message)).all()
    response = post(
        client, auth, f"/plan/campaigns/{world.other.campaign.id}/messages/new", title="Sneaky"
    )
    assert response.status_code == 404
    assert db.scalars(select(Message)).all() == before


def test_an_archived_campaign_is_listed_apart_and_can_be_restored(client, auth, world, db):
    auth.login(world.home.staff.email)
    campaign = world.home.campaign
    post(client, auth, f"/plan/campaigns/{campaign.id}/archive")
    plan = client.get("/plan").get_data(as_text=True)
    assert "Archived campaigns (1)" in plan and campaign.name not in plan
    archived = client.get("/plan?archived=1").get_data(as_text=True)
    assert "<h1>Archived campaigns</h1>" in archived and campaign.name in archived
    page = client.get(f"/plan/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Restore the campaign" in page and "New message" not in page
    assert "Schedule this framing" not in page
    response = post(client, auth, f"/plan/campaigns/{campaign.id}/restore")
    assert response.status_code == 302
    db.refresh(campaign)
    assert not campaign.archived
    assert campaign.name in client.get("/plan").get_data(as_text=True)
    post(client, auth, f"/plan/campaigns/{campaign.id}/restore")
    again = client.get(f"/plan/campaigns/{campaign.id}").get_data(as_text=True)
    assert "is not archived" in again
    other = post(client, auth, f"/plan/campaigns/{world.other.campaign.id}/restore")
    assert other.status_code == 404
