"""Writing, checking, submitting and approving posts in the browser's forms (no JavaScript)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from campaign.models import Channel, Post
from campaign.services import posts
from campaign.services.audit import Actor
from campaign.services.posts import PostInput

LATER = "2026-03-10T09:00"  # the browser's datetime-local format
XSS = '<script>alert("owned")</script>'


def form(client, auth, path, **fields):
    data = {"csrf_token": auth.csrf("/posts/new"), **fields}
    return client.post(path, data=data)


def channel(db, part, kind="outbox", name="Careers outbox", **values):
    found = Channel(
        organisation_id=part.org.id, kind=kind, display_name=name, audience="students",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), **values,
    )  # fmt: skip
    db.add(found)
    db.flush()
    return found


def staff_post(db, part, text="Book a mock interview", submit=False):
    data = PostInput(text=text, channel_ids=(part.channel.id,), when="2026-03-10 09:00")
    actor = Actor(part.org.id, part.staff.email, part.staff.id, "staff")
    from tests.conftest import NOW

    return posts.create_post(db, part.org, data, actor, NOW, submit=submit).post


def test_the_compose_page_lists_the_organisations_channels_only(client, auth, world):
    auth.login(world.home.staff.email)
    body = client.get("/posts/new").get_data(as_text=True)
    assert f'value="{world.home.channel.id}"' in body
    assert f'value="{world.other.channel.id}"' not in body
    assert "Europe/London" in body


def test_a_framing_prefills_the_compose_page_and_a_foreign_one_is_404(client, auth, world):
    auth.login(world.home.staff.email)
    variant = world.home.campaign.messages[0].variants[0]
    body = client.get(f"/posts/new?variant_id={variant.id}").get_data(as_text=True)
    assert "From the framing" in body and variant.text in body
    foreign = world.other.campaign.messages[0].variants[0]
    assert client.get(f"/posts/new?variant_id={foreign.id}").status_code == 404


def test_saving_a_draft_then_submitting_schedules_it(client, auth, world, db):
    auth.login(world.home.staff.email)
    response = form(
        client, auth, "/posts/new", text="Mock interviews this week", channel_ids=world.home.channel.id,
        schedule="time", when=LATER, action="draft",
    )  # fmt: skip
    assert response.status_code == 302
    post = db.scalars(select(Post).where(Post.text == "Mock interviews this week")).one()
    assert post.status == "draft"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved: the post is draft" in page and "Created" in page
    response = form(client, auth, f"/posts/{post.id}/submit")
    assert response.status_code == 302
    db.refresh(post)
    assert post.status == "approved"


def test_a_post_too_long_for_x_is_refused_with_the_reason_and_the_text_kept(
    client, auth, world, db
):
    x = channel(db, world.home, kind="x", name="Careers X")
    auth.login(world.home.staff.email)
    text = "a" * 300
    response = form(
        client, auth, "/posts/new", text=text, channel_ids=x.id, schedule="time", when=LATER,
        action="submit",
    )  # fmt: skip
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Too long for X: 300 of 280" in body
    assert text in body  # nothing the user typed is lost
    assert db.scalars(select(Post).where(Post.text == text)).all() == []


def test_the_preview_reports_each_network_and_the_x_price(client, auth, world, db):
    x = channel(db, world.home, kind="x", name="Careers X")
    auth.login(world.home.staff.email)
    response = form(
        client, auth, "/posts/preview", text="Fair today https://careers.ac.uk/fair",
        channel_ids=[x.id, world.home.channel.id], schedule="time", when=LATER,
    )  # fmt: skip
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Careers X" in body and "of 280" in body
    assert "$0.2" in body and "contains a link" in body
    assert "Tue 10 Mar 2026, 09:00 GMT" in body
    assert "Ready" in body


def test_the_preview_says_what_is_wrong_and_saves_nothing(client, auth, world, db):
    auth.login(world.home.staff.email)
    before = db.scalars(select(Post)).all()
    body = form(
        client, auth, "/posts/preview", text="", channel_ids=world.home.channel.id,
        schedule="time", when="2026-02-30T09:00",
    ).get_data(as_text=True)  # fmt: skip
    assert "The post is empty." in body
    assert "2026-02-30 is not a date" in body
    assert db.scalars(select(Post)).all() == before


def test_text_is_escaped_everywhere(client, auth, world, db):
    auth.login(world.home.staff.email)
    post = staff_post(db, world.home, text=XSS)
    for path in (f"/posts/{post.id}", f"/posts/{post.id}/edit", "/posts/drafts"):
        body = client.get(path).get_data(as_text=True)
        assert XSS not in body, path
    body = form(
        client, auth, "/posts/preview", text=XSS, channel_ids=world.home.channel.id,
        schedule="time", when=LATER,
    ).get_data(as_text=True)  # fmt: skip
    assert XSS not in body


def test_approval_flow_through_the_pages(client, auth, world, db):
    home = world.home
    home.channel.requires_approval = True
    post = staff_post(db, home, submit=True)
    assert post.status == "pending_approval"
    auth.login(home.staff.email)
    assert "Approve and schedule" not in client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert form(client, auth, f"/posts/{post.id}/approve").status_code == 403
    auth.logout()
    auth.login(home.manager.email)
    listing = client.get("/posts/drafts?view=pending").get_data(as_text=True)
    assert f"/posts/{post.id}/approve" in listing
    assert form(client, auth, f"/posts/{post.id}/reject", comment="").status_code == 302
    db.refresh(post)
    assert post.status == "pending_approval"  # a rejection needs a comment
    form(client, auth, f"/posts/{post.id}/approve", comment="Looks right", next="approvals")
    db.refresh(post)
    assert post.status == "approved"
    history = client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "Approved</strong> by " + home.manager.email in history and "Looks right" in history


def test_a_rejected_post_shows_the_comment_to_its_author(client, auth, world, db):
    home = world.home
    home.channel.requires_approval = True
    post = staff_post(db, home, submit=True)
    auth.login(home.manager.email)
    form(client, auth, f"/posts/{post.id}/reject", comment="Wrong date for results day")
    auth.logout()
    auth.login(home.staff.email)
    assert "Wrong date for results day" in client.get(f"/posts/{post.id}").get_data(as_text=True)
    assert "Wrong date" in client.get("/posts/drafts?view=rejected").get_data(as_text=True)


def test_editing_through_the_form(client, auth, world, db):
    home = world.home
    post = staff_post(db, home)
    auth.login(home.staff.email)
    response = form(
        client, auth, f"/posts/{post.id}/edit", text="Edited text", channel_ids=home.channel.id,
        schedule="time", when="2026-03-11T10:00", action="draft",
    )  # fmt: skip
    assert response.status_code == 302
    db.refresh(post)
    assert post.text == "Edited text"
    assert post.scheduled_for == dt.datetime(2026, 3, 11, 10, 0, tzinfo=dt.UTC)


def test_a_published_post_cannot_be_edited_and_the_page_says_why(client, auth, world, db):
    home = world.home
    post = staff_post(db, home, submit=True)
    post.deliveries[0].status = "published"
    db.flush()
    auth.login(home.staff.email)
    assert "can no longer be edited" in client.get(f"/posts/{post.id}").get_data(as_text=True)
    response = form(
        client, auth, f"/posts/{post.id}/edit", text="Too late", channel_ids=home.channel.id,
        schedule="time", when=LATER,
    )  # fmt: skip
    assert response.status_code == 422
    assert "already gone out" in response.get_data(as_text=True)


def test_cancel_from_the_post_page(client, auth, world, db):
    post = staff_post(db, world.home, submit=True)
    auth.login(world.home.staff.email)
    form(client, auth, f"/posts/{post.id}/cancel")
    db.refresh(post)
    assert post.status == "cancelled"
    assert [d.status for d in post.deliveries] == ["cancelled"]


@pytest.mark.parametrize(
    "path",
    ["/posts/{id}", "/posts/{id}/edit"],
)
def test_another_organisations_post_is_404(client, auth, world, db, path):
    post = staff_post(db, world.other)
    auth.login(world.home.manager.email)
    assert client.get(path.format(id=post.id)).status_code == 404
    for action in ("submit", "approve", "reject", "cancel"):
        assert form(client, auth, f"/posts/{post.id}/{action}", comment="x").status_code == 404


def test_forms_need_a_csrf_token(client, auth, world, db):
    post = staff_post(db, world.home)
    auth.login(world.home.staff.email)
    assert client.post(f"/posts/{post.id}/cancel").status_code == 400
    assert client.post("/posts/new", data={"text": "x"}).status_code == 400
    db.refresh(post)
    assert post.status == "draft"


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    for path in ("/posts/new", "/posts/drafts", "/posts/1"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
