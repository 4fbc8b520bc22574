"""Settings → Tracked links: managers read the UTM choices, admins change them (audited)."""

from __future__ import annotations

from sqlalchemy import select

from campaign.models import AuditEvent
from campaign.services import links

FORM = {
    "enabled": "yes",
    "source_mode": "custom",
    "source_value": "careers-social",
    "medium_mode": "custom",
    "medium_value": "social",
    "campaign_mode": "off",
    "campaign_value": "",
    "content_mode": "variant",
    "content_value": "",
}


def test_a_manager_sees_the_choices_and_an_example_but_cannot_save(client, auth, world):
    auth.login(world.home.manager.email)
    body = client.get("/settings/links/").get_data(as_text=True)
    assert "utm_source=mastodon" in body and "utm_content=question-v34" in body
    assert "An admin can change these choices." in body
    response = client.post(
        "/settings/links/", data={"csrf_token": auth.csrf("/settings/links/"), **FORM}
    )
    assert response.status_code == 403


def test_an_admin_changes_them_for_their_organisation_only_and_it_is_audited(
    client, auth, world, db
):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/links/")
    response = client.post("/settings/links/", data={"csrf_token": token, **FORM})
    assert response.status_code == 302
    saved = links.utm_settings(db, world.home.org.id)
    assert (saved.source_mode, saved.source_value, saved.campaign_mode) == (
        "custom",
        "careers-social",
        "off",
    )
    assert links.utm_settings(db, world.other.org.id) == links.UtmSettings()
    body = client.get("/settings/links/").get_data(as_text=True)
    assert (
        "utm_source=careers-social" in body
        and "utm_campaign" not in body.split("would lead to")[1].split("</p>")[1]
    )
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "links.utm_settings")).one()
    assert event.detail["changes"]["source_mode"] == {"from": "network", "to": "custom"}


def test_a_bad_choice_is_refused_with_the_reason_and_nothing_is_saved(client, auth, world, db):
    auth.login(world.home.admin.email)
    token = auth.csrf("/settings/links/")
    bad = {**FORM, "source_value": "", "medium_mode": "sideways"}
    response = client.post("/settings/links/", data={"csrf_token": token, **bad})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "must be one of" in body
    assert links.utm_settings(db, world.home.org.id) == links.UtmSettings()
    empty = {**FORM, "source_value": "  "}
    body = client.post("/settings/links/", data={"csrf_token": token, **empty}).get_data(
        as_text=True
    )
    assert "is empty but its mode is custom" in body
