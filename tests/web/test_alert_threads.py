"""Thread mode on the alert rule pages, and a thread's parts on the post page."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from campaign.models import Delivery, Post
from campaign.models.alerts import AlertRule
from campaign.services import posts
from campaign.services.audit import Actor
from tests.conftest import NOW
from tests.web.test_alerts import form, make_rule


def test_the_form_offers_thread_mode_with_a_sentence_explaining_it(client, auth, world):
    auth.login(world.home.manager.email)
    page = client.get("/vacancies/alerts/new").get_data(as_text=True)
    assert 'id="mode-thread" name="mode" value="thread"' in page
    assert "each vacancy is its own reply" in page


def test_a_manager_makes_a_thread_rule(client, auth, world, db):
    auth.login(world.home.manager.email)
    token = auth.csrf("/vacancies/alerts/new")
    data = form(token, mode="thread", digest_max="4", channel_ids=[str(world.home.channel.id)])
    assert client.post("/vacancies/alerts/new", data=data).status_code == 302
    rule = db.scalar(select(AlertRule).where(AlertRule.organisation_id == world.home.org.id))
    assert (rule.mode, rule.digest_max) == ("thread", 4)
    detail = client.get(f"/vacancies/alerts/{rule.id}").get_data(as_text=True)
    assert "one reply per vacancy (up to 4)" in detail
    listing = client.get("/vacancies/alerts/").get_data(as_text=True)
    assert "Thread of up to 4 replies" in listing


def test_an_unknown_mode_is_refused_with_a_reason(client, auth, world, db):
    auth.login(world.home.manager.email)
    token = auth.csrf("/vacancies/alerts/new")
    data = form(token, mode="carousel", channel_ids=[str(world.home.channel.id)])
    response = client.post("/vacancies/alerts/new", data=data)
    assert response.status_code == 422
    assert "Choose single alerts, a digest or a thread." in response.get_data(as_text=True)


def test_a_digest_template_does_not_suit_a_thread(client, auth, world, db):
    rule = make_rule(db, world.home, body="{% for v in vacancies %}{{ v.title }}{% endfor %}",
                     mode="digest")  # fmt: skip
    auth.login(world.home.manager.email)
    token = auth.csrf(f"/vacancies/alerts/{rule.id}/edit")
    data = form(token, mode="thread", channel_ids=[str(world.home.channel.id)])
    response = client.post(f"/vacancies/alerts/{rule.id}/edit", data=data)
    assert response.status_code == 422
    assert "does not suit this mode" in response.get_data(as_text=True)


def test_the_post_page_lists_each_part_in_order_with_its_state(client, auth, world, db):
    home = world.home
    post = Post(organisation_id=home.org.id, text="New vacancies", status="approved",
                created_at=NOW)  # fmt: skip
    post.deliveries.append(
        Delivery(channel=home.channel, due_at=NOW, idempotency_key=uuid.uuid4().hex, updated_at=NOW)
    )
    db.add(post)
    db.flush()
    actor = Actor(home.org.id, "test", home.manager.id, "manager")
    first, _second = posts.add_thread_parts(db, post, ["Role A apply", "Role B apply"], actor, NOW)
    first.status, first.last_error = "cancelled", "Not published: the vacancy “Role A” is expired."
    db.flush()
    auth.login(home.staff.email)
    page = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert page.index("First post") < page.index("Reply 1") < page.index("Reply 2")
    assert page.index("Role A apply") < page.index("Role B apply")
    assert "Waiting for the part before it" in page
    assert "Not published: the vacancy “Role A” is expired." in page
    assert "A thread: on each channel the first post goes out" in page
