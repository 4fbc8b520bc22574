"""Vacancy alerts: matching, planning alert posts, digests, review, and never after closing."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from campaign.models import AuditEvent, Channel, Delivery, Post, QueueSlot, Vacancy, VacancySource
from campaign.models.alerts import VacancyAlert
from campaign.services import alert_rules, alerts
from campaign.services.alert_rules import RuleInput
from campaign.services.alerts import Facts, RuleFilters, annual_salary, in_quiet_hours, mismatch
from campaign.services.audit import Actor
from tests import factories
from tests.conftest import NOW

# NOW is Monday 2 March 2026, 09:30 UTC; Europe/London is on GMT, so local time equals UTC.
MON_10 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
MON_14 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
MON_21 = dt.datetime(2026, 3, 2, 21, 0, tzinfo=dt.UTC)
TUE_10 = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)
SINGLE = (
    "{{ title }} at {{ employer }}{% if closes_on %}, closes {{ closes_on }}{% endif %} {{ url }}"
)
DIGEST = "{{ count }} new: {% for v in vacancies %}{{ v.title }} {{ v.url }}; {% endfor %}"


# --- matching (no database) -----------------------------------------------------------------


def facts(**values):
    base = {
        "title": "Graduate Software Engineer",
        "description": "Join our platform team in Leeds. Python and SQL.",
        "employer": "Northwind Analytics Ltd",
        "location": "Leeds, West Yorkshire",
        "source_id": 1,
        "closes_at": NOW + dt.timedelta(days=10),
        "salary_min": Decimal("27000"),
        "salary_max": Decimal("31000"),
        "salary_currency": "GBP",
        "salary_period": "year",
        "flags": frozenset(),
    }
    base.update(values)
    return Facts(**base)


MATCHING = [
    # (filters, facts, expected mismatch or None)
    (RuleFilters(), facts(), None),
    (RuleFilters(keywords=("python",)), facts(), None),
    (RuleFilters(keywords=("PYTHON", "java")), facts(), None),
    (RuleFilters(keywords=("engineer",)), facts(), None),
    (RuleFilters(keywords=("art",)), facts(description="Start in June"), "none of the keywords"),
    (RuleFilters(keywords=("art",)), facts(description="Art and design"), None),
    (RuleFilters(keywords=("data science",)), facts(description="Data Science team"), None),
    (RuleFilters(keywords=("c++",)), facts(description="C++ and Rust"), None),
    (RuleFilters(employers=("northwind",)), facts(), None),
    (RuleFilters(employers=("Contoso",)), facts(), "employer"),
    (RuleFilters(locations=("leeds", "york")), facts(location="York"), None),
    (RuleFilters(locations=("Manchester",)), facts(), "location"),
    (RuleFilters(salary_floor=30000), facts(), None),  # the maximum counts
    (RuleFilters(salary_floor=32000), facts(), "below the floor"),
    (RuleFilters(salary_floor=30000), facts(salary_max=None), "below the floor"),
    (
        RuleFilters(salary_floor=24000),
        facts(salary_min=Decimal("12.50"), salary_max=None, salary_period="hour"),
        None,
    ),  # 12.50 x 1950
    (
        RuleFilters(salary_floor=25000),
        facts(salary_min=Decimal("12.50"), salary_max=None, salary_period="hour"),
        "below the floor",
    ),
    (
        RuleFilters(salary_floor=25000),
        facts(salary_max=Decimal("2500"), salary_period="month"),
        None,
    ),
    (RuleFilters(salary_floor=25000), facts(salary_min=None, salary_max=None), None),
    (
        RuleFilters(salary_floor=25000, unknown_salary_passes=False),
        facts(salary_min=None, salary_max=None),
        "not known",
    ),
    (
        RuleFilters(salary_floor=25000, unknown_salary_passes=False),
        facts(flags=frozenset({"salary_ambiguous"})),
        "not known",
    ),
    (
        RuleFilters(salary_floor=25000, unknown_salary_passes=False),
        facts(salary_period=None),
        "not known",
    ),
    (
        RuleFilters(salary_floor=25000, unknown_salary_passes=False),
        facts(salary_currency="EUR"),
        "not known",
    ),
    (RuleFilters(closing_within_days=14), facts(), None),
    (RuleFilters(closing_within_days=7), facts(), "more than 7 days"),
    (RuleFilters(closing_within_days=7), facts(closes_at=None), "no closing date"),
    (RuleFilters(source_ids=(1, 2)), facts(), None),
    (RuleFilters(source_ids=(2,)), facts(), "another source"),
    (RuleFilters(exclude_flags=("unpaid",)), facts(flags=frozenset({"commission"})), None),
    (RuleFilters(exclude_flags=("unpaid",)), facts(flags=frozenset({"unpaid"})), "flagged unpaid"),
]


@pytest.mark.parametrize(("filters", "vacancy", "expected"), MATCHING)
def test_matching_filters(filters, vacancy, expected):
    found = mismatch(filters, vacancy, NOW)
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found


def test_filters_survive_json_and_bad_json_is_dropped():
    filters = RuleFilters(keywords=("python",), salary_floor=25000, source_ids=(3,))
    import json

    assert RuleFilters.from_data(json.loads(filters.to_json())) == filters
    junk = {"keywords": "python", "salary_floor": "lots", "source_ids": [True, "x", 4]}
    assert RuleFilters.from_data(junk) == RuleFilters(source_ids=(4,))


@pytest.mark.parametrize(
    ("period", "figure", "annual"),
    [("year", "30000", "30000"), ("month", "2000", "24000"), ("week", "500", "26000"),
     ("day", "100", "26000"), ("hour", "12.21", "23809.50"), (None, "30000", None)],
)  # fmt: skip
def test_annual_salary(period, figure, annual):
    found = annual_salary(facts(salary_min=Decimal(figure), salary_max=None, salary_period=period))
    assert found == (Decimal(annual) if annual else None)


@pytest.mark.parametrize(
    ("at", "start", "end", "quiet"),
    [("21:00", "20:00", "08:00", True), ("07:59", "20:00", "08:00", True),
     ("08:00", "20:00", "08:00", False), ("12:00", "20:00", "08:00", False),
     ("12:30", "12:00", "14:00", True), ("14:00", "12:00", "14:00", False),
     ("03:00", None, None, False)],
)  # fmt: skip
def test_quiet_hours(at, start, end, quiet):
    def t(v):
        return dt.time.fromisoformat(v) if v else None

    assert in_quiet_hours(t(at), t(start), t(end)) is quiet


def test_choose_template_takes_the_variant_with_fewest_alerts_ties_by_seeded_draw():
    class T:
        def __init__(self, id_):
            self.id = id_

    a, b, c = T(1), T(2), T(3)
    assert alerts.choose_template([a, b, c], {1: 4, 2: 1, 3: 2}, "s") is b
    draws = {alerts.choose_template([a, b, c], {}, f"seed{n}").id for n in range(30)}
    assert draws == {1, 2, 3}
    assert alerts.choose_template([a, b], {}, "x") is alerts.choose_template([b, a], {}, "x")


# --- planning -------------------------------------------------------------------------------


def manager(part):
    return Actor(part.org.id, part.manager.email, part.manager.id, "manager")


def slots(db, channel, times=((10, 0), (14, 0), (21, 0))):
    for weekday in range(7):
        for hour, minute in times:
            db.add(QueueSlot(channel_id=channel.id, weekday=weekday, at=dt.time(hour, minute),
                             created_at=NOW))  # fmt: skip
    db.flush()


def source(db, part, name="Example feed"):
    found = VacancySource(organisation_id=part.org.id, name=name, kind="push", created_at=NOW)
    db.add(found)
    db.flush()
    return found


def vacancy(db, src, title, closes_at=None, **values):
    digest = hashlib.sha256(title.encode()).hexdigest()
    found = Vacancy(
        organisation_id=src.organisation_id,
        source_id=src.id,
        title=title,
        employer=values.pop("employer", "Northwind Analytics"),
        url=values.pop("url", f"https://jobs.example.org/{digest[:8]}"),
        closes_at=closes_at,
        content_hash=digest,
        first_seen_at=NOW,
        last_seen_at=NOW,
        updated_at=NOW,
        **values,
    )  # fmt: skip
    db.add(found)
    db.flush()
    return found


def rule(db, part, channels=None, body=SINGLE, **values):
    filters = values.pop("filters", RuleFilters())
    data = RuleInput(
        name=values.pop("name", "All vacancies"),
        filters=filters,
        channel_ids=tuple(c.id for c in (channels or [part.channel])),
        **values,
    )
    return alert_rules.create_rule(db, part.org.id, data, manager(part), NOW, "Plain", body)


def alert_posts(db, found_rule):
    return list(
        db.scalars(
            select(Post)
            .join(VacancyAlert, VacancyAlert.post_id == Post.id)
            .where(VacancyAlert.rule_id == found_rule.id)
            .distinct()
            .order_by(Post.scheduled_for)
        )
    )


def test_each_matching_vacancy_gets_one_post_soonest_closing_first(db, world):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    later = vacancy(db, src, "Data Analyst", NOW + dt.timedelta(days=18))
    sooner = vacancy(db, src, "Marketing Intern", NOW + dt.timedelta(days=3))
    undated = vacancy(db, src, "Junior Developer")
    found_rule = rule(db, home)
    report = alerts.plan_alerts(db, NOW)
    assert report.problems == [] and report.refused == []
    made = alert_posts(db, found_rule)
    assert [p.scheduled_for for p in made] == [MON_10, MON_14, MON_21]
    assert [p.link_url for p in made] == [sooner.url, later.url, undated.url]
    assert made[0].text == f"Marketing Intern at Northwind Analytics, closes Thu 5 Mar {sooner.url}"
    assert {p.status for p in made} == {"approved"}  # submitted; the outbox needs no approval
    assert all(p.created_by_id == home.manager.id for p in made)  # as the rule's creator
    # Planning again makes nothing new: one alert per vacancy and rule.
    assert alerts.plan_alerts(db, NOW).posts == []
    assert db.scalar(select(func.count()).select_from(VacancyAlert)) == 3


def test_a_second_rule_alerts_the_same_vacancy_once_more(db, world):
    home = world.home
    slots(db, home.channel)
    vacancy(db, source(db, home), "Data Analyst", NOW + dt.timedelta(days=18))
    rule(db, home, name="One")
    rule(db, home, name="Two", body="New: {{ title }} {{ url }}")
    assert len(alerts.plan_alerts(db, NOW).posts) == 2
    assert alerts.plan_alerts(db, NOW).posts == []


def test_filters_disabled_rules_and_other_organisations(db, world):
    home, other = world.home, world.other
    slots(db, home.channel)
    src = source(db, home)
    vacancy(db, src, "Graduate Python Developer", NOW + dt.timedelta(days=5))
    vacancy(db, src, "Receptionist", NOW + dt.timedelta(days=5))
    vacancy(db, source(db, other), "Python Tutor", NOW + dt.timedelta(days=5))
    vacancy(db, src, "Expired Python job", NOW + dt.timedelta(days=5), status="expired")
    vacancy(db, src, "Python job that closed", NOW - dt.timedelta(hours=1))
    found_rule = rule(db, home, filters=RuleFilters(keywords=("python",)))
    off = rule(db, home, name="Off", enabled=False)
    alerts.plan_alerts(db, NOW)
    assert [p.text.split(" at ")[0] for p in alert_posts(db, found_rule)] == [
        "Graduate Python Developer"
    ]
    assert alert_posts(db, off) == []


def test_a_vacancy_closing_before_its_slot_is_not_alerted(db, world):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    vacancy(db, src, "Closes at quarter to ten", NOW + dt.timedelta(minutes=15))
    first = vacancy(db, src, "Closes at noon", NOW + dt.timedelta(hours=2, minutes=30))
    second = vacancy(db, src, "Also closes at noon", NOW + dt.timedelta(hours=2, minutes=30))
    found_rule = rule(db, home)
    report = alerts.plan_alerts(db, NOW)
    made = alert_posts(db, found_rule)
    # 10:00 is the only slot before noon: the first takes it; the others would go out too late.
    assert [(p.link_url, p.scheduled_for) for p in made] == [(first.url, MON_10)]
    assert len(report.skipped) == 2
    assert {reason for _, reason in report.skipped} == {"it closes before the next free slot"}
    assert second.id in {v for v, _ in report.skipped}


def test_quiet_hours_are_respected(db, world):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    for n in range(3):
        vacancy(db, src, f"Role {n}", NOW + dt.timedelta(days=10 + n))
    found_rule = rule(db, home, quiet_start=dt.time(20, 0), quiet_end=dt.time(8, 0))
    alerts.plan_alerts(db, NOW)
    # 21:00 is inside the quiet hours, so the third alert waits for Tuesday 10:00.
    assert [p.scheduled_for for p in alert_posts(db, found_rule)] == [MON_10, MON_14, TUE_10]


def test_quiet_hours_are_read_in_the_organisations_zone(db, world):
    home = world.home
    home.org.timezone = "America/New_York"  # 10:00 UTC is 05:00 in New York
    db.flush()
    slots(db, home.channel, times=((5, 0), (9, 0)))  # New York wall times
    vacancy(db, source(db, home), "Role", NOW + dt.timedelta(days=10))
    found_rule = rule(db, home, quiet_start=dt.time(22, 0), quiet_end=dt.time(7, 0))
    alerts.plan_alerts(db, NOW)
    [post] = alert_posts(db, found_rule)
    assert post.scheduled_for == dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)  # 09:00 EST


@pytest.mark.parametrize(
    ("flags", "salary", "note"),
    [
        ("unpaid", "Expenses only", "Held for review: unpaid: Expenses only."),
        ("commission", "OTE £40k", "Held for review: commission: OTE £40k."),
        ("salary_ambiguous", "£20-30", "Held for review: salary ambiguous: £20-30."),
    ],
)
def test_review_flags_send_the_alert_to_approval_with_the_reason(db, world, flags, salary, note):
    home = world.home
    slots(db, home.channel)
    vacancy(db, source(db, home), "Helper", NOW + dt.timedelta(days=5), flags=flags,
            salary_text=salary)  # fmt: skip
    found_rule = rule(db, home)
    report = alerts.plan_alerts(db, NOW)
    [post] = alert_posts(db, found_rule)
    assert post.status == "pending_approval"
    assert post.schedule_note == note
    assert report.review == [post.id]
    assert {d.status for d in post.deliveries} == {"scheduled"}  # held, not claimable


def test_review_flags_are_configurable(db, world):
    home = world.home
    slots(db, home.channel)
    vacancy(db, source(db, home), "Helper", NOW + dt.timedelta(days=5), flags="unpaid")
    found_rule = rule(db, home, review_flags=())
    [post] = (alerts.plan_alerts(db, NOW), alert_posts(db, found_rule))[1]
    assert post.status == "approved"


def test_rule_approval_and_channel_approval_hold_alerts_for_a_manager(db, world):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    vacancy(db, src, "Role", NOW + dt.timedelta(days=5))
    held = rule(db, home, requires_approval=True)
    strict = Channel(organisation_id=home.org.id, kind="outbox", display_name="Strict",
                     audience="students", requires_approval=True, created_at=NOW)  # fmt: skip
    db.add(strict)
    db.flush()
    slots(db, strict)
    on_strict = rule(db, home, channels=[strict], name="Strict channel")
    alerts.plan_alerts(db, NOW)
    [first] = alert_posts(db, held)
    assert first.status == "pending_approval"
    assert "wait for a manager" in (first.schedule_note or "")
    [second] = alert_posts(db, on_strict)
    assert second.status == "pending_approval"  # the rule's author is a manager, yet it waits


def test_a_template_error_refuses_that_alert_with_the_reason_and_saving_retries(db, world):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    dated = vacancy(db, src, "Dated", NOW + dt.timedelta(days=5))
    undated = vacancy(db, src, "Undated")
    found_rule = rule(db, home, body="{{ title }} closes in {{ closes_in_days + 0 }} days")
    report = alerts.plan_alerts(db, NOW)
    assert [p.link_url for p in alert_posts(db, found_rule)] == [dated.url]
    [(vacancy_id, reason)] = report.refused
    assert vacancy_id == undated.id and "could not be rendered" in reason
    row = db.scalar(select(VacancyAlert).where(VacancyAlert.vacancy_id == undated.id))
    assert row.status == "refused" and row.post_id is None and row.reason == reason
    assert alerts.plan_alerts(db, NOW).refused == []  # refused once, not every run
    alert_rules.save_template(db, home.org.id, found_rule.id, "Safe", "{{ title }} {{ url }}",
                              manager(home), NOW)  # fmt: skip
    report = alerts.plan_alerts(db, NOW)
    assert len(report.posts) + len(report.refused) == 1  # tried again (a variant is drawn)


def test_an_alert_too_long_for_a_channel_is_refused_naming_it(db, world):
    home = world.home
    x = Channel(organisation_id=home.org.id, kind="x", display_name="X careers",
                audience="students", created_at=NOW)  # fmt: skip
    db.add(x)
    db.flush()
    slots(db, x)
    vacancy(db, source(db, home), "Very long title " * 20, NOW + dt.timedelta(days=5))
    rule(db, home, channels=[x])
    [(_, reason)] = alerts.plan_alerts(db, NOW).refused
    assert reason.startswith("X careers: ")


def test_a_rule_without_channels_slots_says_why(db, world):
    home = world.home
    vacancy(db, source(db, home), "Role", NOW + dt.timedelta(days=5))
    rule(db, home)  # the home channel has no queue slots
    report = alerts.plan_alerts(db, NOW)
    assert report.posts == []
    assert "has no queue slots" in report.problems[0]


# --- digests --------------------------------------------------------------------------------


def test_digest_gathers_up_to_its_maximum_and_the_rest_wait_for_the_next(db, world):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    made = [vacancy(db, src, f"Role {n}", NOW + dt.timedelta(days=10 - n)) for n in range(4)]
    found_rule = rule(db, home, body=DIGEST, mode="digest", digest_max=3)
    alerts.plan_alerts(db, NOW)
    [post] = alert_posts(db, found_rule)
    # Soonest closing first: Role 3, Role 2, Role 1.
    assert post.text == (
        f"3 new: Role 3 {made[3].url}; Role 2 {made[2].url}; Role 1 {made[1].url};"
    )
    assert post.link_url is None and post.scheduled_for == MON_10
    # While that digest waits for its slot, no second one is made.
    assert alerts.plan_alerts(db, NOW).posts == []
    for delivery in post.deliveries:
        delivery.status = "published"
    db.flush()
    later = alerts.plan_alerts(db, NOW + dt.timedelta(hours=1))
    [second] = [db.get(Post, i) for i in later.posts]
    assert second.text == f"1 new: Role 0 {made[0].url};"
    assert second.scheduled_for == MON_14


def test_digest_drops_items_that_do_not_fit_the_channel(db, world):
    home = world.home
    x = Channel(organisation_id=home.org.id, kind="x", display_name="X careers",
                audience="students", created_at=NOW)  # fmt: skip
    db.add(x)
    db.flush()
    slots(db, x)
    src = source(db, home)
    # On X each link counts 23: an item is about 100 + 1 + 23 + 2 characters, so two fit.
    titles = [f"{n} " + "w" * 98 for n in range(4)]
    for n, title in enumerate(titles):
        vacancy(db, src, title, NOW + dt.timedelta(days=5 + n))
    found_rule = rule(db, home, channels=[x], body=DIGEST, mode="digest", digest_max=5)
    report = alerts.plan_alerts(db, NOW)
    assert report.refused == []
    [post] = alert_posts(db, found_rule)
    assert post.text.startswith("2 new: 0 ") and "1 www" in post.text
    waiting = alerts.candidates(db, found_rule, NOW)
    assert [v.title for v in waiting] == titles[2:]


def test_flagged_vacancies_in_a_digest_rule_go_to_review_on_their_own(db, world):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    vacancy(db, src, "Paid", NOW + dt.timedelta(days=5))
    vacancy(db, src, "Unpaid", NOW + dt.timedelta(days=6), flags="unpaid",
            salary_text="Unpaid")  # fmt: skip
    found_rule = rule(db, home, body=DIGEST, mode="digest")
    alerts.plan_alerts(db, NOW)
    made = {p.status: p for p in alert_posts(db, found_rule)}
    assert made["approved"].text.startswith("1 new: Paid ")
    assert made["pending_approval"].text.startswith("1 new: Unpaid ")
    assert made["pending_approval"].schedule_note == "Held for review: unpaid: Unpaid."


# --- never after closing --------------------------------------------------------------------


def _planned(db, world, count=1, **rule_values):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    made = [vacancy(db, src, f"Role {n}", NOW + dt.timedelta(days=5 + n)) for n in range(count)]
    found_rule = rule(db, home, **rule_values)
    alerts.plan_alerts(db, NOW)
    return made, alert_posts(db, found_rule)


@pytest.mark.parametrize("status", ["expired", "withdrawn"])
def test_alerts_of_an_expired_or_withdrawn_vacancy_are_cancelled(db, world, status):
    [role], [post] = _planned(db, world)
    assert alerts.cancel_stale(db, NOW) == []
    role.status = status
    db.flush()
    assert alerts.cancel_stale(db, NOW) == [post.id]
    db.refresh(post)
    assert post.status == "cancelled"
    assert {d.status for d in post.deliveries} == {"cancelled"}
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.subject_id == post.id,
                                 AuditEvent.action == "post.cancelled")
    )  # fmt: skip
    assert event is not None and status in event.actor_label
    assert alerts.cancel_stale(db, NOW) == []


def test_an_alert_whose_vacancy_now_closes_before_its_slot_is_cancelled(db, world):
    [role], [post] = _planned(db, world)
    role.closes_at = post.scheduled_for - dt.timedelta(minutes=1)  # the closing date moved
    db.flush()
    assert alerts.cancel_stale(db, NOW) == [post.id]


def test_published_or_cancelled_alerts_are_left_alone(db, world):
    roles, made = _planned(db, world, count=2)
    for delivery in made[0].deliveries:
        delivery.status = "published"
    made[1].status = "cancelled"
    for role in roles:
        role.status = "expired"
    db.flush()
    assert alerts.cancel_stale(db, NOW) == []


def test_a_cancelled_digest_releases_its_other_vacancies(db, world):
    roles, [post] = _planned(db, world, count=3, body=DIGEST, mode="digest")
    roles[0].status = "withdrawn"
    db.flush()
    assert alerts.cancel_stale(db, NOW) == [post.id]
    report = alerts.plan_alerts(db, NOW)
    [again] = [db.get(Post, i) for i in report.posts]
    assert again.text.startswith("2 new: Role 1 ")


# --- two planners at once -------------------------------------------------------------------


def test_two_planners_racing_make_one_alert_per_vacancy_and_rule(factory, hasher):
    with factory() as session:
        org = factories.make_org(session, f"alerts-race-{id(session)}", NOW)
        user = factories.make_user(session, org, factories.Role.MANAGER, hasher, NOW)
        channel = factories.make_channel(session, org, NOW)
        slots(session, channel)
        src = VacancySource(organisation_id=org.id, name="Feed", kind="push", created_at=NOW)
        session.add(src)
        session.flush()
        for n in range(5):
            vacancy(session, src, f"Race role {n}", NOW + dt.timedelta(days=3 + n))
        data = RuleInput(name="Race", filters=RuleFilters(), channel_ids=(channel.id,))
        actor = Actor(org.id, user.email, user.id, "manager")
        alert_rules.create_rule(session, org.id, data, actor, NOW, "Plain", SINGLE)
        session.commit()
        org_id = org.id
    barrier = threading.Barrier(2)
    errors, reports = [], []

    def plan():
        try:
            with factory() as session:
                barrier.wait(timeout=30)
                reports.append(alerts.plan_alerts(session, NOW, org_id))
                session.commit()
        except Exception as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=plan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with factory() as session:
        rows = session.scalars(
            select(VacancyAlert).join(Vacancy).where(Vacancy.organisation_id == org_id)
        ).all()
        assert len(rows) == 5 and len({r.vacancy_id for r in rows}) == 5
        post_ids = {r.post_id for r in rows}
        assert None not in post_ids and len(post_ids) == 5
        posts_made = session.scalar(
            select(func.count()).select_from(Post).where(Post.organisation_id == org_id)
        )
        assert posts_made == 5  # the loser made no orphan post
        times = session.scalars(
            select(Delivery.due_at).join(Post).where(Post.organisation_id == org_id)
        ).all()
        assert len(set(times)) == 5
    assert sum(len(r.posts) for r in reports) == 5


def test_the_worker_tick_cancels_stale_alerts_then_plans_new_ones(factory, hasher):
    from campaign.db import database_now
    from campaign.worker import jobs

    with factory() as session:
        now = database_now(session)
        org = factories.make_org(session, f"alerts-tick-{id(session)}", now)
        user = factories.make_user(session, org, factories.Role.MANAGER, hasher, now)
        channel = factories.make_channel(session, org, now)
        slots(session, channel)
        src = VacancySource(organisation_id=org.id, name="Feed", kind="push", created_at=now)
        session.add(src)
        session.flush()
        kept = vacancy(session, src, "Tick role", now + dt.timedelta(days=20))
        gone = vacancy(session, src, "Tick role withdrawn", now + dt.timedelta(days=21))
        data = RuleInput(name="Tick", filters=RuleFilters(), channel_ids=(channel.id,))
        actor = Actor(org.id, user.email, user.id, "manager")
        alert_rules.create_rule(session, org.id, data, actor, now, "Plain", SINGLE)
        session.commit()
        ids = (kept.id, gone.id)
    jobs.plan_alerts(factory)
    with factory() as session:
        session.get(Vacancy, ids[1]).status = "withdrawn"
        session.commit()
    jobs.plan_alerts(factory)
    with factory() as session:
        statuses = dict(
            session.execute(
                select(VacancyAlert.vacancy_id, Post.status)
                .join(Post, Post.id == VacancyAlert.post_id)
                .where(VacancyAlert.vacancy_id.in_(ids))
            ).all()
        )
    assert statuses == {ids[0]: "approved", ids[1]: "cancelled"}


def test_alerts_are_not_booked_further_ahead_than_the_horizon(db, world):
    home = world.home
    db.add(QueueSlot(channel_id=home.channel.id, weekday=0, at=dt.time(10, 0), created_at=NOW))
    db.flush()  # one slot a week: Mondays at 10:00
    src = source(db, home)
    for n in range(4):
        vacancy(db, src, f"Role {n}", NOW + dt.timedelta(days=40 + n))
    found_rule = rule(db, home)
    alerts.plan_alerts(db, NOW)
    # 2, 9 and 16 March are within 14 days of NOW... 16 March is 14 days and 30 minutes away.
    assert [p.scheduled_for.date() for p in alert_posts(db, found_rule)] == [
        dt.date(2026, 3, 2),
        dt.date(2026, 3, 9),
    ]
    assert len(alerts.candidates(db, found_rule, NOW)) == 2  # they wait for a later run
    later = alerts.plan_alerts(db, NOW + dt.timedelta(days=7))
    assert len(later.posts) == 1  # 16 March is now within the horizon


def test_slots_that_would_exceed_a_channels_daily_cap_are_passed_over(db, world):
    home = world.home
    home.channel.max_posts_per_day = 2  # the world already has a post at 11:30 today
    db.flush()
    slots(db, home.channel)
    src = source(db, home)
    for n in range(3):
        vacancy(db, src, f"Role {n}", NOW + dt.timedelta(days=10 + n))
    found_rule = rule(db, home)
    alerts.plan_alerts(db, NOW)
    times = [p.scheduled_for for p in alert_posts(db, found_rule)]
    # Monday 10:00 fits (with the post at 11:30 that makes 2 in a day); 14:00 and 21:00 would be
    # a third within 24 hours; Tuesday 10:00 and 14:00 have only one other post in the day before.
    assert times == [MON_10, TUE_10, TUE_10 + dt.timedelta(hours=4)]


def test_a_slot_is_passed_over_when_it_would_overfill_the_hour_after_it(db, world):
    home = world.home
    home.channel.max_posts_per_hour = 1  # the world's post is at 11:30
    db.flush()
    slots(db, home.channel, times=((11, 0), (12, 30)))
    vacancy(db, source(db, home), "Role", NOW + dt.timedelta(days=10))
    found_rule = rule(db, home)
    alerts.plan_alerts(db, NOW)
    [post] = alert_posts(db, found_rule)
    # 11:00 would make two posts within the hour up to 11:30; 12:30 is an hour after it.
    assert post.scheduled_for == dt.datetime(2026, 3, 2, 12, 30, tzinfo=dt.UTC)


def test_template_results_sum_clicks_and_impressions_of_published_measured_alerts(db, world):
    from campaign.models.engagement import LinkClick, TrackedLink
    from campaign.models.metrics import MetricSnapshot
    from campaign.services.alert_choice import TemplateResult, template_results

    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    for title in ("Data Analyst", "Marketing Intern", "Junior Developer"):
        vacancy(db, src, title, NOW + dt.timedelta(days=20))
    found_rule = rule(db, home)
    alert_rules.save_template(db, home.org.id, found_rule.id, "Short", "{{ title }} {{ url }}",
                              manager(home), NOW)  # fmt: skip
    alerts.plan_alerts(db, NOW)
    deliveries = db.scalars(
        select(Delivery)
        .join(VacancyAlert, VacancyAlert.post_id == Delivery.post_id)
        .where(VacancyAlert.rule_id == found_rule.id)
        .order_by(Delivery.id)
    ).all()
    assert len(deliveries) == 3
    measured, unmeasured, unpublished = deliveries
    for delivery in (measured, unmeasured):
        delivery.status, delivery.published_at = "published", NOW
    link = TrackedLink(code="abc123", delivery_id=measured.id, organisation_id=home.org.id,
                       target_url="https://jobs.example.org/x", target_sha256="0" * 64)  # fmt: skip
    db.add(link)
    db.flush()
    db.add_all(
        LinkClick(link_id=link.id, clicked_at=NOW, day=NOW.date(), is_first_today=True)
        for _ in range(3)
    )
    db.add(MetricSnapshot(delivery_id=measured.id, window="7d", window_seconds=604800,
                          age_seconds=604890, source="platform", collected_at=NOW,
                          impressions=400))  # fmt: skip
    db.flush()
    template_of = dict(
        db.execute(
            select(VacancyAlert.post_id, VacancyAlert.template_id).where(
                VacancyAlert.rule_id == found_rule.id
            )
        ).all()
    )
    results = template_results(db, found_rule.id)
    # Only the published alert with impressions counts; its three clicks are its template's.
    assert results == {template_of[measured.post_id]: TemplateResult(clicks=3, impressions=400)}
    assert unpublished.status == "scheduled"
