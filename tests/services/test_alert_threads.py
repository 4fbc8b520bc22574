"""Vacancy alerts in thread mode: a first post, then one reply per vacancy, and expiry that
leaves out only the reply whose vacancy closed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from campaign.models import Channel
from campaign.models.alerts import VacancyAlert
from campaign.services import alerts
from tests.conftest import NOW
from tests.services.test_alerts import MON_10, SINGLE, alert_posts, rule, slots, source, vacancy


def _thread(db, world, count=3, **values):
    home = world.home
    slots(db, home.channel)
    src = source(db, home)
    made = [vacancy(db, src, f"Role {n}", NOW + dt.timedelta(days=10 - n)) for n in range(count)]
    found_rule = rule(db, home, body=SINGLE, mode="thread", **values)
    report = alerts.plan_alerts(db, NOW)
    assert report.problems == [] and report.refused == []
    [post] = alert_posts(db, found_rule)
    return made, found_rule, post


def _parts(post):
    return sorted(post.deliveries, key=lambda d: d.part)


def test_a_thread_is_a_first_post_and_one_reply_per_vacancy_soonest_closing_first(db, world):
    made, found_rule, post = _thread(db, world, count=3, digest_max=5)
    assert post.text == alerts.THREAD_INTRO
    assert post.link_url is None and post.scheduled_for == MON_10
    assert post.status == "approved"
    head, *replies = _parts(post)
    assert (head.part, head.status, head.text) == (0, "scheduled", None)
    assert [(d.part, d.status) for d in replies] == [(1, "waiting"), (2, "waiting"), (3, "waiting")]
    # Soonest closing first: Role 2 (closes in 8 days), Role 1, Role 0.
    assert [d.text for d in replies] == [
        f"Role {n} at Northwind Analytics, closes {closes} {made[n].url}"
        for n, closes in ((2, "Tue 10 Mar"), (1, "Wed 11 Mar"), (0, "Thu 12 Mar"))
    ]
    assert len({d.idempotency_key for d in post.deliveries}) == 4
    assert all(d.due_at == head.due_at for d in replies)
    rows = db.scalars(select(VacancyAlert).where(VacancyAlert.rule_id == found_rule.id))
    assert {a.vacancy_id: a.part for a in rows} == {made[2].id: 1, made[1].id: 2, made[0].id: 3}
    # While the thread waits for its slot, no second one is made.
    assert alerts.plan_alerts(db, NOW).posts == []


def test_a_thread_holds_at_most_the_rules_maximum(db, world):
    _made, found_rule, post = _thread(db, world, count=4, digest_max=2)
    assert len(_parts(post)) == 3
    waiting = alerts.candidates(db, found_rule, NOW)
    assert [v.title for v in waiting] == ["Role 1", "Role 0"]


def test_an_expired_vacancy_cancels_only_its_reply(db, world):
    made, _, post = _thread(db, world, count=3)
    made[1].status = "expired"  # the second reply's vacancy
    db.flush()
    assert alerts.cancel_stale(db, NOW) == []  # the post itself goes out
    db.refresh(post)
    head, first, second, third = _parts(post)
    assert post.status == "approved"
    assert [d.status for d in (head, first, second, third)] == [
        "scheduled", "waiting", "cancelled", "waiting",
    ]  # fmt: skip
    assert second.last_error == (
        "Not published: the vacancy “Role 1” is expired. The rest of the thread goes out."
    )


def test_a_reply_whose_vacancy_closes_after_the_first_post_went_out_is_cancelled(db, world):
    made, _, post = _thread(db, world, count=2)
    head = _parts(post)[0]
    head.status = "published"
    made[1].closes_at = head.due_at - dt.timedelta(minutes=1)  # the first reply's vacancy
    db.flush()
    assert alerts.cancel_stale(db, NOW) == []
    db.refresh(post)
    assert [d.status for d in _parts(post)] == ["published", "cancelled", "scheduled"]


def test_a_thread_whose_every_vacancy_closed_is_cancelled_whole(db, world):
    made, _, post = _thread(db, world, count=2)
    for role in made:
        role.status = "withdrawn"
    db.flush()
    assert alerts.cancel_stale(db, NOW) == [post.id]
    db.refresh(post)
    assert post.status == "cancelled"
    assert {d.status for d in post.deliveries} == {"cancelled"}


def test_a_reply_too_long_for_a_channel_is_refused_and_the_rest_go(db, world):
    home = world.home
    x = Channel(organisation_id=home.org.id, kind="x", display_name="X careers",
                audience="students", created_at=NOW)  # fmt: skip
    db.add(x)
    db.flush()
    slots(db, x)
    src = source(db, home)
    vacancy(db, src, "Short role", NOW + dt.timedelta(days=4))
    long_role = vacancy(db, src, "w" * 300, NOW + dt.timedelta(days=5))
    found_rule = rule(db, home, channels=[x], body=SINGLE, mode="thread")
    report = alerts.plan_alerts(db, NOW)
    assert [vacancy_id for vacancy_id, _ in report.refused] == [long_role.id]
    assert "X careers" in report.refused[0][1]
    [post] = alert_posts(db, found_rule)
    _head, reply = _parts(post)
    assert reply.text.startswith("Short role at")
