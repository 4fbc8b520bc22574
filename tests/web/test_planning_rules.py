"""Settings → Planning rules: the duplicate guard's window and the framing vocabulary."""

from __future__ import annotations

from sqlalchemy import select

from campaign.models import AuditEvent, FramingTag


def _post(client, auth, path, **data):
    return client.post(path, data={"csrf_token": auth.csrf("/settings/planning/"), **data})


def test_an_admin_sets_the_duplicate_window_and_it_is_audited(client, auth, world, db):
    auth.login(world.home.admin.email)
    assert _post(client, auth, "/settings/planning/duplicate-window", hours="24").status_code == 302
    db.refresh(world.home.org)
    assert world.home.org.duplicate_window_hours == 24
    assert db.scalars(
        select(AuditEvent).where(AuditEvent.action == "organisation.duplicate_window")
    ).one().detail["changes"] == {"hours": {"from": 72, "to": 24}}
    page = client.get("/settings/planning/").get_data(as_text=True)
    assert 'value="24"' in page


def test_a_bad_window_is_refused_with_the_range(client, auth, world, db):
    auth.login(world.home.admin.email)
    response = _post(client, auth, "/settings/planning/duplicate-window", hours="-5")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "between 0 (off) and 1440 hours" in page
    db.refresh(world.home.org)
    assert world.home.org.duplicate_window_hours == 72


def test_admins_add_rename_and_archive_framing_tags(client, auth, world, db):
    auth.login(world.home.admin.email)
    _post(client, auth, "/settings/planning/framing-tags", key="peer_quote", label="Peer quote")
    tag = db.scalars(
        select(FramingTag).where(
            FramingTag.organisation_id == world.home.org.id, FramingTag.key == "peer_quote"
        )
    ).one()
    _post(client, auth, f"/settings/planning/framing-tags/{tag.id}", label="Student quote",
          archived="no")  # fmt: skip
    db.refresh(tag)
    assert (tag.label, tag.archived) == ("Student quote", False)
    _post(client, auth, f"/settings/planning/framing-tags/{tag.id}", label="Student quote",
          archived="yes")  # fmt: skip
    db.refresh(tag)
    assert tag.archived
    response = _post(client, auth, "/settings/planning/framing-tags", key="Bad Key", label="x")
    assert "Bad Key" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_managers_read_the_rules_but_cannot_change_them(client, auth, world):
    auth.login(world.home.manager.email)
    page = client.get("/settings/planning/").get_data(as_text=True)
    assert "72 hours" in page and "Add a tag" not in page
    assert _post(client, auth, "/settings/planning/duplicate-window", hours="1").status_code == 403
