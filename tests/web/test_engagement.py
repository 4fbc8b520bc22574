"""The engagement pages: manual entry on a post, CSV import (preview, confirm) and the exports."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re

import pytest
from flask import render_template_string
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from campaign.models import Delivery, Role
from campaign.models.metrics import MetricSnapshot
from campaign.web.engagement import pack, unpack
from tests.conftest import NOW
from tests.services.test_engagement_import import channel, publish

HEADER = "post_id,external_id,collected_at,impressions,clicks,likes"
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # the tests' clock (NOW) is 09:30


def file_of(*lines, header=HEADER):
    return ("\r\n".join([header, *lines]) + "\r\n").encode()


def count(db, source="csv"):
    return db.scalar(select(func.count(MetricSnapshot.id)).where(MetricSnapshot.source == source))


def multipart(values):
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def upload(client, auth, data, filename="figures.csv"):
    token = auth.csrf("/engagement/import")
    file = FileStorage(io.BytesIO(data), filename)
    return client.post("/engagement/import", **multipart({"csrf_token": token, "file": file}))


def carried(body):
    found = re.search(r'name="content" type="hidden" value="([^"]+)"', body)
    assert found, "no carried file on the preview"
    return found.group(1)


def confirm(client, auth, content, lines):
    token = auth.csrf("/engagement/import")
    return client.post(
        "/engagement/import/confirm",
        data={"csrf_token": token, "content": content, "line": [str(n) for n in lines]},
    )


def flashes(client):
    return html.unescape(client.get("/engagement/import").get_data(as_text=True))


@pytest.fixture
def published(db, world):
    """A post of the home organisation out on X and Mastodon, and one of the other's."""
    org = world.home.org
    x, mastodon = channel(db, org, "X"), channel(db, org, "Mastodon")
    post = publish(db, org, [x, mastodon], externals=["x-100", "m-100"], published_at=T0)
    theirs = publish(
        db, world.other.org, [channel(db, world.other.org, "Theirs")], externals=["t-1"]
    )
    return post, theirs


# --- CSV import ------------------------------------------------------------------------------


def test_the_upload_page_explains_the_columns_and_clicks(client, auth, world):
    auth.login(world.home.staff.email)
    body = html.unescape(client.get("/engagement/import").get_data(as_text=True))
    for name in ("post_id", "external_id", "collected_at", "clicks"):
        assert f"<code>{name}</code>" in body
    assert "The network's own count of clicks on the post's link" in body
    assert "1h, 24h, 7d" in body
    assert "/engagement/template.csv" in body and "/engagement/export.csv" in body


def test_preview_lists_every_bad_row_and_saves_nothing(client, auth, world, db, published):
    post, theirs = published
    auth.login(world.home.staff.email)
    data = file_of(
        f"{post.id},,2026-03-02T09:20:00+00:00,10,1,2",
        ",x-100,2026-03-02T09:20:00+00:00,10,1,2",
        f"{theirs.id},,2026-03-02T09:20:00+00:00,10,1,2",
        ",m-100,2026-03-02 09:20,10,1,2",
        '"=HYPERLINK(""http://evil.example"")",,2026-03-02T09:20:00+00:00,1,1,1',
    )
    response = upload(client, auth, data)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert f"post {post.id} went out on 2 channels (X, Mastodon); use the external_id" in body
    assert f"no post {theirs.id} in this organisation." in body
    assert "has no UTC offset" in body
    assert "is not a post number" in body
    assert 'id="line-2"' in body and 'id="line-4"' in body and 'id="line-5"' in body
    assert 'id="save-3"' in body and 'id="save-2"' not in body
    assert "Nothing has been saved yet" in body
    assert count(db) == 0


def test_confirm_saves_the_chosen_rows_and_says_so(client, auth, world, db, published):
    post, _ = published
    auth.login(world.home.staff.email)
    data = file_of(
        ",x-100,2026-03-02T09:20:00+00:00,10,1,2",
        ",m-100,2026-03-02T09:25:00+00:00,11,,3",
        f"{post.id},,2026-03-02T09:20:00+00:00,10,1,2",
    )
    content = carried(upload(client, auth, data).get_data(as_text=True))
    response = confirm(client, auth, content, [3, 4])
    assert response.status_code == 302
    assert count(db) == 1  # only "latest": the reading is younger than an hour
    snapshot = db.scalars(select(MetricSnapshot)).one()
    assert snapshot.delivery_id == post.deliveries[1].id
    assert (snapshot.impressions, snapshot.link_clicks, snapshot.likes) == (11, None, 3)
    said = flashes(client)
    assert "Saved 1 reading; 2 rows not saved." in said
    assert f"line 4, post_id: post {post.id} went out on 2 channels" in said


def test_a_damaged_confirmation_saves_nothing(client, auth, world, db, published):
    auth.login(world.home.staff.email)
    response = confirm(client, auth, "not-base64!!", [2])
    assert response.status_code == 302 and count(db) == 0
    assert "did not come back from the preview intact" in flashes(client)


def test_the_carried_file_comes_back_byte_for_byte():
    data = file_of(",x-100,2026-03-02T09:20:00+00:00,10,1,2") * 3
    assert unpack(pack(data)) == data
    assert unpack(pack(data)[:-4]) is None
    assert unpack("") is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"post_id,collected_at,clicks,views\n1,2026-03-02T09:00:00Z,1,1\n", "Unknown column: “views”"),
        ("post_id,collected_at,clicks\n".encode("utf-16"), "UTF-16"),
        (b"post_id,collected_at,clicks\n1,2026-03-02T09:00:00Z,\xe9\n", "not UTF-8"),
    ],
)  # fmt: skip
def test_an_unusable_file_is_refused_with_the_reason(client, auth, world, db, data, expected):
    auth.login(world.home.staff.email)
    response = upload(client, auth, data)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200 and expected in body and "cannot be imported" in body
    assert count(db) == 0


def test_no_file_is_asked_for(client, auth, world):
    auth.login(world.home.staff.email)
    token = auth.csrf("/engagement/import")
    response = client.post("/engagement/import", data={"csrf_token": token})
    assert "Choose a CSV file" in response.get_data(as_text=True)


def test_csrf_is_enforced(client, auth, world, db, published, app):
    post, _ = published
    app.config["WTF_CSRF_ENABLED"] = True
    auth.login(world.home.staff.email)
    data = file_of(",x-100,2026-03-02T09:20:00+00:00,10,1,2")
    file = FileStorage(io.BytesIO(data), "f.csv")
    assert client.post("/engagement/import", **multipart({"file": file})).status_code == 400
    response = client.post("/engagement/import/confirm", data={"content": pack(data), "line": "2"})
    assert response.status_code == 400
    path = f"/posts/{post.id}/deliveries/{post.deliveries[0].id}/metrics"
    assert client.post(path, data={"likes": "3"}).status_code == 400
    assert count(db) == 0 and count(db, "manual") == 0


def test_anonymous_users_are_sent_to_sign_in(client, world):
    for path in ("/engagement/import", "/engagement/export.csv", "/engagement/template.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


# --- downloads -------------------------------------------------------------------------------


def test_export_downloads_the_organisations_engagement(client, auth, world, db, published):
    post, theirs = published
    post.deliveries[0].external_id = "=HYPERLINK(1)"
    db.flush()
    for target in (post, theirs):
        org = world.home if target is post else world.other
        auth.login(org.staff.email)
        delivery = target.deliveries[0]
        token = auth.csrf("/engagement/import")
        client.post(
            f"/posts/{target.id}/deliveries/{delivery.id}/metrics",
            data={"csrf_token": token, "likes": "4", "as_of": "2026-03-02 09:10"},
        )
        auth.logout()
    auth.login(world.home.staff.email)
    response = client.get("/engagement/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [(r["post_id"], r["source"], r["window"], r["likes"]) for r in rows] == [
        (str(post.id), "manual", "latest", "4")
    ]
    assert rows[0]["channel"] == "X" and rows[0]["collected_at"] == "2026-03-02T09:10:00+00:00"
    assert rows[0]["external_id"] == "'=HYPERLINK(1)"  # defused for spreadsheets


def test_the_template_reads_as_a_header_and_examples(client, auth, world):
    auth.login(world.home.staff.email)
    response = client.get("/engagement/template.csv")
    assert response.status_code == 200
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert lines[0][:3] == ["post_id", "external_id", "collected_at"] and len(lines) == 3


# --- manual entry ----------------------------------------------------------------------------


def enter(client, auth, post, delivery, **form):
    token = auth.csrf("/engagement/import")
    return client.post(
        f"/posts/{post.id}/deliveries/{delivery.id}/metrics", data={"csrf_token": token, **form}
    )


@pytest.mark.parametrize("role", list(Role))
def test_every_member_role_may_enter_figures_by_hand(client, auth, world, db, published, role):
    post, _ = published
    auth.login(getattr(world.home, role.value).email)
    response = enter(
        client, auth, post, post.deliveries[0],
        impressions="1,200", likes="7", link_clicks="", as_of="2026-03-02 09:25",
    )  # fmt: skip
    assert response.status_code == 302
    assert response.headers["Location"] == f"/posts/{post.id}"
    snapshot = db.scalars(select(MetricSnapshot).where(MetricSnapshot.source == "manual")).one()
    assert (snapshot.window, snapshot.impressions, snapshot.likes, snapshot.link_clicks) == (
        "latest",
        1200,
        7,
        None,
    )
    # Europe/London is UTC in March: the local time is the UTC time.
    assert snapshot.collected_at == dt.datetime(2026, 3, 2, 9, 25, tzinfo=dt.UTC)
    assert "Saved the figures for X" in flashes(client)


def test_an_empty_as_of_means_now(client, auth, world, db, published):
    post, _ = published
    auth.login(world.home.staff.email)
    enter(client, auth, post, post.deliveries[0], likes="2")
    snapshot = db.scalars(select(MetricSnapshot).where(MetricSnapshot.source == "manual")).one()
    assert snapshot.collected_at == NOW


@pytest.mark.parametrize(
    ("form", "said"),
    [
        ({"likes": "lots"}, "Likes: “lots” is not a whole number."),
        ({"likes": "-3"}, "is not a whole number"),
        ({"impressions": "99999999999"}, "Impressions: 99999999999 is too large to be a figure."),
        ({"likes": "2147483648"}, "Likes: 2147483648 is too large to be a figure."),
        ({"likes": ""}, "Enter at least one figure."),
        ({"likes": "1", "as_of": "tomorrow"}, "As of: 'tomorrow' is not a date and time"),
        ({"likes": "1", "as_of": "2026-03-02 08:00"}, "is before the post went out on X"),
        ({"likes": "1", "as_of": "2026-03-03 08:00"}, "is in the future"),
    ],
)
def test_bad_figures_are_explained_not_saved(client, auth, world, db, published, form, said):
    post, _ = published
    auth.login(world.home.staff.email)
    response = enter(client, auth, post, post.deliveries[0], **form)
    assert response.status_code == 302
    assert said in flashes(client)
    assert count(db, "manual") == 0


def test_an_unpublished_delivery_takes_no_figures(client, auth, world, db):
    auth.login(world.home.staff.email)
    delivery = db.scalars(
        select(Delivery).where(Delivery.channel_id == world.home.channel.id)
    ).one()
    response = enter(client, auth, delivery.post, delivery, likes="1")
    assert response.status_code == 302
    assert "has not gone out on Outbox students yet" in flashes(client)
    assert count(db, "manual") == 0


def test_another_organisations_post_is_404(client, auth, world, db, published):
    post, theirs = published
    auth.login(world.home.admin.email)
    assert enter(client, auth, theirs, theirs.deliveries[0], likes="1").status_code == 404
    # A delivery of another post, even our own organisation's, is not this post's.
    mine_other_post = publish(db, world.home.org, [channel(db, world.home.org, "Z")])
    assert enter(client, auth, post, mine_other_post.deliveries[0], likes="1").status_code == 404
    assert enter(client, auth, theirs, theirs.deliveries[0], likes="x").status_code == 404
    assert count(db, "manual") == 0


def test_the_partial_renders_a_form_per_delivery(client, auth, world, published):
    post, _ = published
    auth.login(world.home.staff.email)
    with client:
        client.get("/engagement/import")
        body = render_template_string(
            '{% with post_id=p, delivery_id=d, channel_name="X" %}'
            '{% include "engagement/_manual_form.html" %}{% endwith %}',
            p=post.id,
            d=post.deliveries[0].id,
        )
    assert f'action="/posts/{post.id}/deliveries/{post.deliveries[0].id}/metrics"' in body
    assert 'name="csrf_token"' in body
    assert 'name="as_of" value="2026-03-02T09:30"' in body
    for name in ("impressions", "likes", "link_clicks", "profile_clicks"):
        assert f'name="{name}"' in body
