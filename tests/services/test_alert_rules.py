"""Alert rules and templates: roles, validation with every reason, audit, organisation isolation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from campaign.models import AuditEvent, Channel, VacancySource
from campaign.services import NotFound, PermissionDenied, ServiceError, alert_rules
from campaign.services.alert_rules import Invalid, RuleInput, parse_form
from campaign.services.alerts import RuleFilters
from campaign.services.audit import Actor
from tests.conftest import NOW


def actor(part, role="manager"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def data(part, **values):
    values.setdefault("channel_ids", (part.channel.id,))
    return RuleInput(name=values.pop("name", "Graduate jobs"),
                     filters=values.pop("filters", RuleFilters()), **values)  # fmt: skip


def create(db, part, body="{{ title }} {{ url }}", role="manager", **values):
    return alert_rules.create_rule(db, part.org.id, data(part, **values), actor(part, role), NOW,
                                   "Plain", body)  # fmt: skip


def events(db, rule_id):
    return [
        e.action
        for e in db.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject_type == "alert_rule", AuditEvent.subject_id == rule_id)
            .order_by(AuditEvent.id)
        )
    ]


def test_a_manager_creates_a_rule_with_its_first_template_audited(db, world):
    rule = create(db, world.home, filters=RuleFilters(keywords=("python",)))
    assert rule.enabled and rule.created_by_id == world.home.manager.id
    assert [t.label for t in rule.templates] == ["Plain"]
    assert rule.review_flag_list == ["unpaid", "salary_ambiguous", "commission"]
    assert RuleFilters.of(rule).keywords == ("python",)
    assert events(db, rule.id) == ["alert_rule.created"]


@pytest.mark.parametrize("role", ["staff"])
def test_staff_cannot_change_rules(db, world, role):
    with pytest.raises(PermissionDenied):
        create(db, world.home, role=role)
    rule = create(db, world.home)
    with pytest.raises(PermissionDenied):
        alert_rules.set_enabled(db, world.home.org.id, rule.id, False, actor(world.home, role), NOW)
    with pytest.raises(PermissionDenied):
        alert_rules.save_template(db, world.home.org.id, rule.id, "B", "{{ title }}",
                                  actor(world.home, role), NOW)  # fmt: skip
    # ...but they can read them.
    assert [r.id for r in alert_rules.list_rules(db, world.home.org.id)] == [rule.id]


def test_every_problem_is_named(db, world):
    other_channel = world.other.channel
    disabled = Channel(organisation_id=world.home.org.id, kind="outbox", display_name="Old",
                       audience="students", status="disabled", created_at=NOW)  # fmt: skip
    db.add(disabled)
    db.flush()
    bad = data(
        world.home,
        name="",
        channel_ids=(other_channel.id, disabled.id),
        mode="weekly",
        digest_max=40,
        quiet_start=dt.time(22, 0),
        review_flags=("unpaid", "dodgy"),
    )
    with pytest.raises(Invalid) as caught:
        alert_rules.create_rule(db, world.home.org.id, bad, actor(world.home), NOW, "L", "{{ x }}")
    assert caught.value.problems == [
        "Give the rule a name.",
        "Choose single alerts, a digest or a thread.",
        "A digest or thread holds 1 to 25 vacancies.",
        "Give both ends of the quiet hours, or neither.",
        "Unknown flag 'dodgy'; choose from unpaid, commission, salary_missing, "
        "salary_ambiguous, salary_predicted, invalid_date, invalid_url.",
        f"Channel {other_channel.id} does not exist.",
        "Old is disabled; choose another channel.",
        "Line 1: unknown field “x”.",
    ]


def test_an_enabled_rule_needs_a_template(db, world):
    with pytest.raises(Invalid, match="template before enabling"):
        create(db, world.home, body="")
    rule = create(db, world.home, body="", enabled=False)
    with pytest.raises(ServiceError, match="Add a template first"):
        alert_rules.set_enabled(db, world.home.org.id, rule.id, True, actor(world.home), NOW)


def test_sources_of_another_organisation_are_refused(db, world):
    theirs = VacancySource(organisation_id=world.other.org.id, name="Theirs", kind="push",
                           created_at=NOW)  # fmt: skip
    db.add(theirs)
    db.flush()
    with pytest.raises(Invalid, match=f"Source {theirs.id} does not exist"):
        create(db, world.home, filters=RuleFilters(source_ids=(theirs.id,)))


def test_templates_are_checked_on_save_and_changes_are_audited(db, world):
    home = world.home
    rule = create(db, home)
    with pytest.raises(Invalid) as caught:
        alert_rules.save_template(db, home.org.id, rule.id, "B", "{{ title }}\n{{ self }}",
                                  actor(home), NOW)  # fmt: skip
    assert caught.value.problems == ["Line 2: unknown field “self”."]
    second = alert_rules.save_template(db, home.org.id, rule.id, "Deadline-led",
                                       "Closes {{ closes_on }}: {{ title }}", actor(home), NOW)  # fmt: skip
    alert_rules.save_template(db, home.org.id, rule.id, "Deadline", "Closing {{ closes_on }}",
                              actor(home), NOW, template_id=second.id)  # fmt: skip
    alert_rules.set_enabled(db, home.org.id, rule.id, False, actor(home), NOW)
    alert_rules.delete_template(db, home.org.id, rule.id, second.id, actor(home), NOW)
    assert [t.label for t in rule.templates] == ["Plain"]
    assert events(db, rule.id) == [
        "alert_rule.created",
        "alert_template.created",
        "alert_template.edited",
        "alert_rule.disabled",
        "alert_template.deleted",
    ]


def test_the_only_template_of_an_enabled_rule_cannot_be_deleted(db, world):
    rule = create(db, world.home)
    with pytest.raises(ServiceError, match="only template"):
        alert_rules.delete_template(db, world.home.org.id, rule.id, rule.templates[0].id,
                                    actor(world.home), NOW)  # fmt: skip


def test_switching_to_digest_checks_the_templates_suit_it(db, world):
    home = world.home
    rule = create(db, home, mode="digest", body="{% for v in vacancies %}{{ v.title }}{% endfor %}")
    with pytest.raises(Invalid, match="does not suit this mode"):
        alert_rules.update_rule(db, home.org.id, rule.id, data(home, mode="single"), actor(home),
                                NOW)  # fmt: skip
    alert_rules.update_rule(db, home.org.id, rule.id, data(home, mode="digest", name="Renamed"),
                            actor(home), NOW)  # fmt: skip
    assert rule.name == "Renamed"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "alert_rule.edited")).one()
    assert event.detail["changes"] == {"name": {"from": "Graduate jobs", "to": "Renamed"}}


def test_other_organisations_rules_are_not_found(db, world):
    rule = create(db, world.other)
    with pytest.raises(NotFound):
        alert_rules.get_rule(db, world.home.org.id, rule.id)
    with pytest.raises(NotFound):
        alert_rules.update_rule(db, world.home.org.id, rule.id, data(world.home),
                                actor(world.home), NOW)  # fmt: skip
    with pytest.raises(NotFound):
        alert_rules.save_template(db, world.home.org.id, rule.id, "X", "{{ title }}",
                                  actor(world.home), NOW)  # fmt: skip
    assert alert_rules.list_rules(db, world.home.org.id) == []


def test_parse_form_reads_lists_and_names_bad_values():
    values = {
        "name": " Grad jobs ",
        "keywords": "python\ndata, SQL\n\npython",
        "salary_floor": "£25,000",
        "closing_within_days": "14",
        "unknown_salary": "exclude",
        "mode": "digest",
        "digest_max": "4",
        "quiet_start": "21:30",
        "quiet_end": "07:00",
        "requires_approval": "yes",
    }
    parsed = parse_form(values, {"channel_ids": ["3", "5"], "review_flags": ["unpaid"]})
    assert parsed.name == "Grad jobs"
    assert parsed.filters.keywords == ("python", "data", "SQL")
    assert parsed.filters.salary_floor == 25000 and not parsed.filters.unknown_salary_passes
    assert parsed.filters.closing_within_days == 14
    assert parsed.channel_ids == (3, 5) and parsed.review_flags == ("unpaid",)
    assert (parsed.quiet_start, parsed.quiet_end) == (dt.time(21, 30), dt.time(7, 0))
    assert parsed.requires_approval and parsed.mode == "digest" and parsed.digest_max == 4
    with pytest.raises(Invalid) as caught:
        parse_form({"salary_floor": "lots", "quiet_start": "25:00", "closing_within_days": "0"},
                   {"channel_ids": ["x"]})  # fmt: skip
    assert caught.value.problems == [
        "The salary floor must be a whole number from 0 to 1,000,000.",
        "Closing within must be a whole number from 1 to 365.",
        "Channel 'x' is not a valid choice.",
        "Quiet hours start '25:00' is not a time of day; write it like 21:30.",
    ]
