"""The vacancy alert pages: rules list, create/edit, templates with preview, roles, isolation."""

from __future__ import annotations

from sqlalchemy import select

from campaign.models import AuditEvent
from campaign.models.alerts import AlertRule
from campaign.services import alert_rules
from campaign.services.alert_rules import RuleInput
from campaign.services.alerts import RuleFilters
from campaign.services.audit import Actor
from tests.conftest import NOW


def make_rule(db, part, body="{{ title }} {{ url }}", **values):
    data = RuleInput(
        name=values.pop("name", "Graduate jobs"),
        filters=values.pop("filters", RuleFilters()),
        channel_ids=(part.channel.id,),
        **values,
    )
    actor = Actor(part.org.id, part.manager.email, part.manager.id, "manager")
    return alert_rules.create_rule(db, part.org.id, data, actor, NOW, "Plain", body)


def form(token, **values):
    base = {
        "csrf_token": token,
        "name": "Python roles",
        "keywords": "python\ndata",
        "salary_floor": "24,000",
        "mode": "single",
        "digest_max": "5",
        "enabled": "yes",
        "template_label": "Plain",
        "template_body": "{{ title }} {{ url }}",
    }
    base.update(values)
    return base


def test_staff_read_the_rules_with_their_counts_but_cannot_change_them(client, auth, world, db):
    rule = make_rule(db, world.home)
    auth.login(world.home.staff.email)
    page = client.get("/vacancies/alerts/").get_data(as_text=True)
    assert "Graduate jobs" in page and "Add a rule" not in page
    detail = client.get(f"/vacancies/alerts/{rule.id}").get_data(as_text=True)
    assert "Edit the rule" not in detail and "Graduate Data Analyst" in detail  # the preview
    token = auth.csrf("/vacancies/alerts/")
    assert client.get("/vacancies/alerts/new").status_code == 403
    assert client.post(f"/vacancies/alerts/{rule.id}/disable",
                       data={"csrf_token": token}).status_code == 403  # fmt: skip


def test_a_manager_creates_a_rule_from_the_form(client, auth, world, db):
    auth.login(world.home.manager.email)
    token = auth.csrf("/vacancies/alerts/new")
    data = form(token, channel_ids=[str(world.home.channel.id)], review_flags=["unpaid"],
                quiet_start="21:00", quiet_end="07:30")  # fmt: skip
    response = client.post("/vacancies/alerts/new", data=data)
    assert response.status_code == 302
    rule = db.scalar(select(AlertRule).where(AlertRule.organisation_id == world.home.org.id))
    assert rule.name == "Python roles" and rule.enabled
    assert RuleFilters.of(rule).keywords == ("python", "data")
    assert RuleFilters.of(rule).salary_floor == 24000
    assert rule.channel_id_list == [world.home.channel.id]
    assert rule.review_flag_list == ["unpaid"]
    assert rule.quiet_start.isoformat("minutes") == "21:00"
    assert [t.body for t in rule.templates] == ["{{ title }} {{ url }}"]
    assert response.headers["Location"].endswith(f"/vacancies/alerts/{rule.id}")


def test_bad_input_is_shown_with_every_reason_not_a_500(client, auth, world, db):
    auth.login(world.home.manager.email)
    token = auth.csrf("/vacancies/alerts/new")
    data = form(token, name="", salary_floor="lots", template_body="{{ title }}\n{{ wage }}",
                channel_ids=[str(world.other.channel.id)])  # fmt: skip
    response = client.post("/vacancies/alerts/new", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "The salary floor must be a whole number" in page
    data["salary_floor"] = ""
    page = client.post("/vacancies/alerts/new", data=data).get_data(as_text=True)
    assert "Give the rule a name." in page
    assert f"Channel {world.other.channel.id} does not exist." in page
    assert "Line 2: unknown field “wage”." in page
    assert db.scalar(select(AlertRule.id)) is None


def test_editing_a_rule_and_turning_it_off_and_on(client, auth, world, db):
    rule = make_rule(db, world.home)
    auth.login(world.home.manager.email)
    page = client.get(f"/vacancies/alerts/{rule.id}/edit").get_data(as_text=True)
    assert 'value="Graduate jobs"' in page
    token = auth.csrf(f"/vacancies/alerts/{rule.id}/edit")
    data = form(token, name="Renamed", mode="digest", digest_max="3",
                channel_ids=[str(world.home.channel.id)])  # fmt: skip
    assert client.post(f"/vacancies/alerts/{rule.id}/edit", data=data).status_code == 302
    db.refresh(rule)
    assert (rule.name, rule.mode, rule.digest_max) == ("Renamed", "digest", 3)
    client.post(f"/vacancies/alerts/{rule.id}/disable", data={"csrf_token": token})
    db.refresh(rule)
    assert not rule.enabled
    client.post(f"/vacancies/alerts/{rule.id}/enable", data={"csrf_token": token})
    db.refresh(rule)
    assert rule.enabled
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.subject_type == "alert_rule")
    ).all()
    assert actions == ["alert_rule.created", "alert_rule.edited", "alert_rule.disabled",
                       "alert_rule.enabled"]  # fmt: skip


def test_templates_are_added_with_errors_named_and_previewed(client, auth, world, db):
    rule = make_rule(db, world.home)
    auth.login(world.home.manager.email)
    token = auth.csrf(f"/vacancies/alerts/{rule.id}")
    bad = {"csrf_token": token, "label": "Escape", "body": "Hi\n{{ title.__class__ }}"}
    response = client.post(f"/vacancies/alerts/{rule.id}/templates", data=bad)
    assert response.status_code == 422
    assert "Line 2: names starting with “_” are not allowed." in response.get_data(as_text=True)
    good = {"csrf_token": token, "label": "Deadline", "body": "Closes {{ closes_on }}: {{ title }}"}
    assert client.post(f"/vacancies/alerts/{rule.id}/templates", data=good).status_code == 302
    db.refresh(rule)
    assert [t.label for t in rule.templates] == ["Plain", "Deadline"]
    second = rule.templates[1]
    edit = {"csrf_token": token, "label": "Deadline-led", "body": "Apply by {{ closes_on }}"}
    url = f"/vacancies/alerts/{rule.id}/templates/{second.id}"
    assert client.post(url, data=edit).status_code == 302
    assert client.post(f"{url}/delete", data={"csrf_token": token}).status_code == 302
    db.refresh(rule)
    assert [t.label for t in rule.templates] == ["Plain"]


def test_preview_renders_the_sample_with_each_channels_count(client, auth, world, db):
    rule = make_rule(db, world.home)
    auth.login(world.home.staff.email)
    token = auth.csrf(f"/vacancies/alerts/{rule.id}")
    body = {"csrf_token": token, "body": "{{ title }} at {{ employer }}"}
    fragment = client.post(f"/vacancies/alerts/{rule.id}/preview", data=body,
                           headers={"HX-Request": "true"}).get_data(as_text=True)  # fmt: skip
    assert "Graduate Data Analyst at Northwind Analytics" in fragment
    assert "Outbox students: 44 of 5000 characters" in fragment
    assert "<html" not in fragment
    broken = {"csrf_token": token, "body": "{{ range(10**9) }}"}
    page = client.post(f"/vacancies/alerts/{rule.id}/preview", data=broken).get_data(as_text=True)
    assert "<html" in page and "calling functions or methods is not allowed" in page
    auth.logout()
    auth.login(world.home.manager.email)
    token = auth.csrf(f"/vacancies/alerts/{rule.id}")
    draft = {"csrf_token": token, "label": "New", "body": "Apply: {{ title|upper }}"}
    page = client.post(f"/vacancies/alerts/{rule.id}/preview", data=draft).get_data(as_text=True)
    assert "Apply: GRADUATE DATA ANALYST" in page
    assert 'value="New"' in page  # the draft is kept in the form


def test_other_organisations_rules_are_404(client, auth, world, db):
    theirs = make_rule(db, world.other)
    auth.login(world.home.admin.email)
    token = auth.csrf("/vacancies/alerts/")
    template_id = theirs.templates[0].id
    assert client.get(f"/vacancies/alerts/{theirs.id}").status_code == 404
    assert client.get(f"/vacancies/alerts/{theirs.id}/edit").status_code == 404
    for path in [
        f"/vacancies/alerts/{theirs.id}/edit",
        f"/vacancies/alerts/{theirs.id}/disable",
        f"/vacancies/alerts/{theirs.id}/preview",
        f"/vacancies/alerts/{theirs.id}/templates",
        f"/vacancies/alerts/{theirs.id}/templates/{template_id}",
        f"/vacancies/alerts/{theirs.id}/templates/{template_id}/delete",
    ]:
        response = client.post(path, data={"csrf_token": token, "label": "x", "body": "x"})
        assert response.status_code == 404, path
    assert "Graduate jobs" not in client.get("/vacancies/alerts/").get_data(as_text=True)


def test_posts_without_a_csrf_token_are_refused(client, auth, world, db, app):
    rule = make_rule(db, world.home)
    app.config["WTF_CSRF_ENABLED"] = True
    auth.login(world.home.manager.email)
    response = client.post(f"/vacancies/alerts/{rule.id}/disable")
    assert response.status_code == 400
    db.refresh(rule)
    assert rule.enabled
