"""Every route: role checks, organisation isolation and CSRF, enumerated from the URL map."""

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import object_session

from campaign.models import Delivery, Role
from campaign.web.context import state
from tests.conftest import NOW

# Routes anyone may use, and the role each guarded route needs.
PUBLIC = {
    "static", "auth.login", "auth.logout", "healthz", "api.health", "api.openapi",
    "calendar.feed",  # the private iCal feed: its unguessable secret is the credential
    "links.follow",  # the click redirector: the unguessable code is the credential
}  # fmt: skip
EXPECTED_ROLE = {
    "main.dashboard": Role.STAFF,
    "main.plan": Role.STAFF,
    "main.campaign_detail": Role.STAFF,
    "publishing.posts": Role.STAFF,
    "publishing.delivery": Role.STAFF,
    "publishing.cancel": Role.STAFF,
    "publishing.mark_posted": Role.STAFF,
    "publishing.publish_again": Role.MANAGER,
    "publishing.timeline": Role.STAFF,
    "publishing.channels": Role.MANAGER,
    "publishing.resume_channel": Role.ADMIN,
    "publishing.pause_channel": Role.MANAGER,
    "connect.index": Role.ADMIN,
    "connect.mastodon": Role.ADMIN,
    "connect.mastodon_callback": Role.ADMIN,
    "connect.x": Role.ADMIN,
    "connect.x_callback": Role.ADMIN,
    "connect.bluesky": Role.ADMIN,
    "connect.reconnect": Role.ADMIN,
    "vacancies.index": Role.STAFF,
    "vacancies.detail": Role.STAFF,
    "vacancies.sources": Role.STAFF,
    "vacancies.new_source": Role.MANAGER,
    "vacancies.edit_source": Role.MANAGER,
    "vacancies.disable_source": Role.MANAGER,
    "vacancies.enable_source": Role.MANAGER,
    "vacancies.poll_source": Role.MANAGER,
    "vacancies.upload": Role.MANAGER,
    "main.reports": Role.STAFF,
    "reports.calculator": Role.STAFF,
    "reports.experiment_report": Role.STAFF,
    "reports.framing": Role.STAFF,
    "account.account": Role.STAFF,
    "settings.index": Role.MANAGER,
    "settings.audit_log": Role.MANAGER,
    "settings.users": Role.ADMIN,
    "settings.change_role": Role.ADMIN,
    "settings.deactivate": Role.ADMIN,
    "settings.reactivate": Role.ADMIN,
    "settings.reset_password": Role.ADMIN,
    "settings.api_tokens": Role.ADMIN,
    "settings.revoke_token": Role.ADMIN,
    "planning.new_post": Role.STAFF,
    "planning.edit_post": Role.STAFF,
    "planning.preview": Role.STAFF,
    "planning.post_detail": Role.STAFF,
    "planning.submit": Role.STAFF,
    "planning.approve": Role.MANAGER,
    "planning.reject": Role.MANAGER,
    "planning.cancel": Role.STAFF,
    "planning.drafts": Role.STAFF,
    "account.switch_organisation": Role.STAFF,
    "drafting.new_campaign": Role.STAFF,
    "drafting.edit_campaign": Role.STAFF,
    "drafting.archive_campaign": Role.STAFF,
    "drafting.restore_campaign": Role.STAFF,
    "drafting.new_message": Role.STAFF,
    "drafting.edit_message": Role.STAFF,
    "drafting.delete_message": Role.STAFF,
    "drafting.new_variant": Role.STAFF,
    "drafting.edit_variant": Role.STAFF,
    "drafting.delete_variant": Role.STAFF,
    "drafting.check_variant": Role.STAFF,
    "post_csv.import_posts": Role.STAFF,
    "post_csv.confirm": Role.STAFF,
    "post_csv.template_csv": Role.STAFF,
    "post_csv.export_csv": Role.STAFF,
    "engagement.enter_metrics": Role.STAFF,
    "engagement.import_figures": Role.STAFF,
    "engagement.confirm": Role.STAFF,
    "engagement.template_csv": Role.STAFF,
    "engagement.export_csv": Role.STAFF,
    "link_settings.index": Role.MANAGER,
    "link_settings.save": Role.ADMIN,
    "planning_settings.key_date_list": Role.STAFF,
    "planning_settings.add_key_date": Role.ADMIN,
    "planning_settings.import_key_dates": Role.ADMIN,
    "planning_settings.edit_key_date": Role.ADMIN,
    "planning_settings.delete_key_date": Role.ADMIN,
    "planning_settings.queue": Role.MANAGER,
    "planning_settings.add_slot": Role.MANAGER,
    "planning_settings.remove_slot": Role.MANAGER,
    "planning_rules.index": Role.MANAGER,
    "planning_rules.duplicate_window": Role.ADMIN,
    "planning_rules.add_tag": Role.ADMIN,
    "planning_rules.edit_tag": Role.ADMIN,
    "calendar.index": Role.STAFF,
    "calendar.feed_settings": Role.ADMIN,
    "calendar.regenerate_feed": Role.ADMIN,
    "calendar.turn_off_feed": Role.ADMIN,
    "alerts.index": Role.STAFF,
    "alerts.new_rule": Role.MANAGER,
    "alerts.rule_detail": Role.STAFF,
    "alerts.edit_rule": Role.MANAGER,
    "alerts.enable": Role.MANAGER,
    "alerts.disable": Role.MANAGER,
    "alerts.add_template": Role.MANAGER,
    "alerts.edit_template": Role.MANAGER,
    "alerts.delete_template": Role.MANAGER,
    "alerts.preview": Role.STAFF,
    "dashboard.index": Role.STAFF,
    "dashboard.export_csv": Role.STAFF,
    "experiments.index": Role.STAFF,
    "experiments.library": Role.STAFF,
    "experiments.new": Role.STAFF,
    "experiments.detail": Role.STAFF,
    "experiments.edit": Role.STAFF,
    "experiments.redraw": Role.STAFF,
    "experiments.approve": Role.MANAGER,
    "experiments.conclude": Role.MANAGER,
    "experiments.abandon": Role.MANAGER,
}


def _ui_rules(app):
    return [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint not in PUBLIC and not r.endpoint.startswith("api.")
    ]


def _key_date_id(db, org_id):
    """The organisation's key date, made on first use (the matrix may delete it)."""
    import datetime as dt

    from campaign.models import KeyDate

    found = db.scalar(select(KeyDate.id).where(KeyDate.organisation_id == org_id).limit(1))
    if found is None:
        key_date = KeyDate(
            organisation_id=org_id, title="Exams", kind="exams", effect="blackout",
            starts_on=dt.date(2026, 5, 1), ends_on=dt.date(2026, 5, 20), created_at=NOW,
        )  # fmt: skip
        db.add(key_date)
        db.flush()
        found = key_date.id
    return found


def _vacancy_ids(db, org_id):
    """The organisation's CSV vacancy source and one vacancy of it, made on first use."""
    from campaign.models import Vacancy, VacancySource

    source = db.scalar(
        select(VacancySource).where(VacancySource.organisation_id == org_id).limit(1)
    )
    if source is None:
        source = VacancySource(organisation_id=org_id, name="Jobs", kind="csv", created_at=NOW)
        db.add(source)
        db.flush()
        vacancy = Vacancy(
            organisation_id=org_id, source_id=source.id, title="Analyst", content_hash="h",
            first_seen_at=NOW, last_seen_at=NOW, updated_at=NOW,
        )  # fmt: skip
        db.add(vacancy)
        db.flush()
    vacancy_id = db.scalar(select(Vacancy.id).where(Vacancy.source_id == source.id).limit(1))
    return {"source_id": source.id, "vacancy_id": vacancy_id}


def _alert_ids(db, org_id):
    """The organisation's alert rule and one template of it, made on first use."""
    from campaign.models.alerts import AlertRule, AlertTemplate

    rule = db.scalar(select(AlertRule).where(AlertRule.organisation_id == org_id).limit(1))
    if rule is None:
        rule = AlertRule(organisation_id=org_id, name="Jobs", created_at=NOW)
        db.add(rule)
        db.flush()
    template_id = db.scalar(select(AlertTemplate.id).where(AlertTemplate.rule_id == rule.id))
    if template_id is None:
        template = AlertTemplate(rule_id=rule.id, label="Plain", body="{{ title }}", created_at=NOW)
        db.add(template)
        db.flush()
        template_id = template.id
    return {"rule_id": rule.id, "template_id": template_id}


def _experiment_id(db, world_part):
    """The organisation's experiment (two arms, no posts yet), made on first use."""
    from campaign.models import Experiment, ExperimentArm

    found = db.scalar(
        select(Experiment.id).where(Experiment.organisation_id == world_part.org.id).limit(1)
    )
    if found is None:
        variant = world_part.campaign.messages[0].variants[0]
        experiment = Experiment(
            organisation_id=world_part.org.id, name="Framing test", planned_posts_per_arm=2,
            seed=1, created_at=NOW,
        )  # fmt: skip
        experiment.arms = [
            ExperimentArm(variant_id=variant.id, name="Control", position=0),
            ExperimentArm(variant_id=None, name="Other", position=1),
        ]
        db.add(experiment)
        db.flush()
        found = experiment.id
    return found


def _ids(world_part):
    channel = world_part.channel
    return {
        "experiment_id": _experiment_id(object_session(channel), world_part),
        **_vacancy_ids(object_session(channel), world_part.org.id),
        **_alert_ids(object_session(channel), world_part.org.id),
        "tag_id": world_part.org.framing_tags[0].id,
        "key_date_id": _key_date_id(object_session(channel), world_part.org.id),
        "campaign_id": world_part.campaign.id,
        "user_id": world_part.staff.id,
        "token_id": world_part.token_id,
        "channel_id": channel.id,
        "delivery_id": object_session(channel).scalar(
            select(Delivery.id).where(Delivery.channel_id == channel.id)
        ),
        "message_id": world_part.campaign.messages[0].id,
        "variant_id": world_part.campaign.messages[0].variants[0].id,
        "post_id": object_session(channel).scalar(
            select(Delivery.post_id).where(Delivery.channel_id == channel.id)
        ),
    }


def _path(rule, ids):
    missing = set(rule.arguments) - set(ids)
    assert not missing, f"{rule.endpoint}: teach this test the argument(s) {missing}"
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule.rule)


def _method(rule):
    return "GET" if "GET" in rule.methods else "POST"


def test_every_ui_route_declares_its_role(app):
    for rule in _ui_rules(app):
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "required_role", None) is not None, (
            f"{rule.endpoint} has no role check"
        )
        assert view.required_role == EXPECTED_ROLE[rule.endpoint], rule.endpoint


def test_every_api_route_but_health_needs_a_token_scope(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint not in PUBLIC:
            assert getattr(app.view_functions[rule.endpoint], "required_scope", None), rule.endpoint


def test_anonymous_users_are_sent_to_sign_in(client, world, app):
    for rule in _ui_rules(app):
        path = _path(rule, _ids(world.home))
        response = client.open(path, method=_method(rule), data={})
        # GETs redirect to sign-in; POSTs without a session fail CSRF before anything else.
        assert response.status_code in (302, 400), rule.endpoint
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login"), rule.endpoint


def _spare(db, world_part):
    """A message and framing the matrix may delete without breaking the routes after it."""
    from campaign.models import Message, Variant

    message = Message(campaign_id=world_part.campaign.id, title="Spare", created_at=NOW)
    message.variants.append(Variant(label="Spare", text="Spare", audience="students"))
    other = Message(campaign_id=world_part.campaign.id, title="Spare 2", created_at=NOW)
    db.add_all([message, other])
    db.flush()
    return {"message_id": other.id, "variant_id": message.variants[0].id}


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(client, auth, world, app, role, db):
    auth.login(getattr(world.home, role.value).email)
    token = auth.csrf("/")
    spare = _spare(db, world.home)
    for rule in _ui_rules(app):
        needed = EXPECTED_ROLE[rule.endpoint]
        path = _path(rule, _ids(world.home))
        if rule.endpoint in {"drafting.delete_message", "drafting.delete_variant"}:
            path = _path(rule, {**_ids(world.home), **spare})
        data = {"csrf_token": token, "role": "staff", "organisation_id": world.home.org.id}
        if rule.endpoint in {"settings.deactivate", "settings.change_role"}:
            # Act on the manager: never lock ourselves out mid-matrix.
            path = _path(rule, {**_ids(world.home), "user_id": world.home.manager.id})
            data["role"] = "manager"
        if rule.endpoint in {"alerts.add_template", "alerts.edit_template"}:
            data.update(label="Matrix", body="{{ title }}")
        response = client.open(path, method=_method(rule), data=data)
        if role.covers(needed):
            assert response.status_code in (200, 302), (
                f"{role} on {rule.endpoint}: {response.status_code}"
            )
        else:
            assert response.status_code == 403, f"{role} on {rule.endpoint}: {response.status_code}"


def test_other_organisations_objects_are_404_on_every_route(client, auth, world, app):
    auth.login(world.home.admin.email)
    token = auth.csrf("/")
    with_ids = [r for r in _ui_rules(app) if r.arguments]
    assert with_ids, "expected routes that take object ids"
    for rule in with_ids:
        path = _path(rule, _ids(world.other))
        response = client.open(
            path, method=_method(rule), data={"csrf_token": token, "role": "staff"}
        )
        assert response.status_code == 404, f"{rule.endpoint}: {response.status_code}"


def test_own_organisations_objects_are_reachable(client, auth, world):
    auth.login(world.home.admin.email)
    assert client.get(f"/plan/campaigns/{world.home.campaign.id}").status_code == 200


def test_lists_show_only_the_members_organisation(client, auth, world, db):
    world.other.campaign.name = "Other university secret campaign"
    db.flush()
    auth.login(world.home.admin.email)
    for path in [
        "/",
        "/plan",
        "/posts",
        "/timeline",
        "/settings/channels",
        "/settings/users",
        "/settings/tokens",
        "/settings/",
    ]:
        body = client.get(path).get_data(as_text=True)
        assert "other-uni" not in body, path
        assert "Other university secret campaign" not in body, path


def test_posts_without_a_csrf_token_are_rejected_everywhere(client, auth, world, app):
    app.config["WTF_CSRF_ENABLED"] = True
    auth.login(world.home.admin.email)
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint.startswith("api."):
            continue
        path = _path(rule, _ids(world.home))
        response = client.post(path, data={"role": "staff", "email": "x@y.z", "password": "p" * 20})
        assert response.status_code == 400, f"{rule.endpoint}: {response.status_code}"


def test_csrf_token_is_accepted_from_the_htmx_header(client, auth, world):
    auth.login(world.home.admin.email)
    token = auth.csrf("/")
    response = client.post(
        f"/settings/tokens/{world.home.token_id}/revoke", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 302
    assert state(client.application).session_override is not None
