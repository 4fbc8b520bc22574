"""The CSV import pages (upload, preview, confirm), the template and the export, as people use them."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from campaign.models import Post, Role
from campaign.services import post_csv
from campaign.web.post_csv import MAX_CARRIED, pack, unpack

HEADER = "text,channels,when,link_url,variant_id,blackout_override,submit"
GOOD = "Mock interviews next week: book now,Outbox students,2026-03-10 09:00,,,,no"
XSS = '<script>alert("owned")</script>'


def file_of(*lines, header=HEADER):
    return ("\r\n".join([header, *lines]) + "\r\n").encode()


def count_posts(db, part):
    return db.scalar(select(func.count(Post.id)).where(Post.organisation_id == part.org.id))


def multipart(values):
    # Encoded here, in memory: the test client spools a large body to a file it never closes.
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def upload(client, auth, data, filename="posts.csv"):
    token = auth.csrf("/posts/import")
    file = FileStorage(io.BytesIO(data), filename)
    return client.post("/posts/import", **multipart({"csrf_token": token, "file": file}))


def carried(body):
    found = re.search(r'name="content" type="hidden" value="([^"]+)"', body)
    assert found, "no carried file on the preview"
    return found.group(1)


def confirm(client, auth, content, lines):
    token = auth.csrf("/posts/import")
    return client.post(
        "/posts/import/confirm",
        data={"csrf_token": token, "content": content, "line": [str(n) for n in lines]},
    )


def test_the_upload_page_describes_the_columns_and_offers_the_template(client, auth, world):
    auth.login(world.home.staff.email)
    body = client.get("/posts/import").get_data(as_text=True)
    for name in post_csv.COLUMNS:
        assert f"<code>{name}</code>" in body
    assert 'enctype="multipart/form-data"' in body
    assert 'href="/posts/import/template.csv"' in body
    template = client.get("/posts/import/template.csv")
    assert template.status_code == 200
    assert template.mimetype == "text/csv"
    text = template.get_data(as_text=True)
    assert text.startswith("\ufeff" + HEADER + "\r\n")
    assert "Outbox students" in text


def test_preview_shows_each_line_with_its_errors_and_saves_nothing(client, auth, world, db):
    before = count_posts(db, world.home)
    auth.login(world.home.staff.email)
    data = file_of(
        GOOD,
        f"{XSS},Outbox students,2026-02-30 09:00,,,,",
        "Hi,Nowhere,2026-03-11 09:00,,,,",
    )
    response = upload(client, auth, data)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "posts.csv: 3 rows; 1 can be saved" in body and "2 have errors" in body
    assert "Nothing has been saved yet." in body
    assert re.search(r'<tr id="line-3">.*?2026-02-30 is not a date', body, re.S)
    assert re.search(r'<tr id="line-4">.*?unknown channel “Nowhere”', body, re.S)
    assert "Tue 10 Mar 2026, 09:00 GMT" in body
    assert XSS not in body and "&lt;script&gt;" in body
    assert re.findall(r'name="line" value="(\d+)"[^>]*checked', body) == ["2"]
    assert count_posts(db, world.home) == before


def test_confirm_saves_the_chosen_rows_and_says_how_many(client, auth, world, db):
    before = count_posts(db, world.home)
    auth.login(world.home.staff.email)
    data = file_of(
        GOOD,
        "Chosen too,Outbox students,2026-03-11 09:00,,,,yes",
        "Left out,Outbox students,2026-03-12 09:00,,,,",
        "Bad,Outbox students,2026-02-30 09:00,,,,",
    )
    content = carried(upload(client, auth, data).get_data(as_text=True))
    response = confirm(client, auth, content, [2, 3, 5])
    assert response.status_code == 302
    assert response.headers["Location"] == "/posts"
    body = client.get("/posts").get_data(as_text=True)
    assert "Saved 2 posts; 2 rows not saved." in body
    assert "Line 5 not saved: when: 2026-02-30 is not a date" in body
    saved = db.scalars(
        select(Post).where(Post.organisation_id == world.home.org.id).order_by(Post.id)
    ).all()
    assert count_posts(db, world.home) == before + 2
    assert [(p.text, p.status) for p in saved[-2:]] == [
        ("Mock interviews next week: book now", "draft"),
        ("Chosen too", "approved"),
    ]


def test_a_damaged_confirmation_saves_nothing_and_asks_for_the_file_again(client, auth, world, db):
    before = count_posts(db, world.home)
    auth.login(world.home.staff.email)
    for content in [
        "",
        "not base64!",
        pack(b"x" * (post_csv.MAX_BYTES + 1)),
        "A" * (MAX_CARRIED + 1),
    ]:
        response = confirm(client, auth, content, [2])
        assert response.headers["Location"] == "/posts/import"
        body = client.get("/posts/import").get_data(as_text=True)
        assert "did not come back from the preview intact" in body
    assert count_posts(db, world.home) == before


def test_the_carried_file_comes_back_byte_for_byte():
    data = '\ufeffé,\r\n"a\rb"\x00'.encode() * 1000
    assert unpack(pack(data)) == data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Café,Outbox students".encode("cp1252"), "The file is not UTF-8 text"),
        (file_of(GOOD + ",1", header=HEADER + ",colour"), "Unknown column: “colour”"),
        (file_of("Hi", header="text"), "Missing column: “channels”"),
        (file_of(GOOD) + b" " * post_csv.MAX_BYTES, "at most 1 MB can be imported"),
    ],
)
def test_an_unusable_file_is_refused_with_the_reason(client, auth, world, db, data, expected):
    auth.login(world.home.staff.email)
    response = upload(client, auth, data, "term.csv")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "term.csv cannot be imported" in body
    assert expected in body
    assert 'name="content"' not in body


def test_no_file_is_asked_for(client, auth, world):
    auth.login(world.home.staff.email)
    token = auth.csrf("/posts/import")
    response = client.post("/posts/import", data={"csrf_token": token})
    assert response.status_code == 200
    assert "Choose a CSV file to upload." in response.get_data(as_text=True)


def test_csrf_is_enforced_on_upload_and_confirm(client, auth, world, db):
    before = count_posts(db, world.home)
    auth.login(world.home.staff.email)
    file = FileStorage(io.BytesIO(file_of(GOOD)), "posts.csv")
    response = client.post("/posts/import", **multipart({"file": file}))
    assert response.status_code == 400
    response = client.post(
        "/posts/import/confirm", data={"content": pack(file_of(GOOD)), "line": "2"}
    )
    assert response.status_code == 400
    assert count_posts(db, world.home) == before


def test_anonymous_users_are_sent_to_sign_in(client, world):
    for path in ["/posts/import", "/posts/import/template.csv", "/posts/export.csv"]:
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", list(Role))
def test_every_member_role_can_import_and_export(client, auth, world, db, role):
    auth.login(getattr(world.home, role.value).email)
    assert client.get("/posts/import").status_code == 200
    assert client.get("/posts/export.csv").status_code == 200
    content = carried(upload(client, auth, file_of(GOOD)).get_data(as_text=True))
    assert confirm(client, auth, content, [2]).status_code == 302
    assert db.scalar(select(Post).where(Post.text == GOOD.split(",")[0])) is not None


def test_another_organisations_channels_are_unknown(client, auth, world, db):
    world.other.channel.display_name = "Other University Careers"
    db.flush()
    auth.login(world.home.staff.email)
    data = file_of(
        "Hi,Other University Careers,2026-03-10 09:00,,,,",
        f"Hi,{world.other.channel.id},2026-03-10 09:00,,,,",
    )
    body = upload(client, auth, data).get_data(as_text=True)
    assert "unknown channel “Other University Careers”" in body
    assert f"unknown channel “{world.other.channel.id}”" in body
    content = carried(body)
    before = count_posts(db, world.other)
    confirm(client, auth, content, [2, 3])
    assert count_posts(db, world.other) == before
    assert "Saved 0 posts; 2 rows not saved." in client.get("/posts").get_data(as_text=True)


def test_export_downloads_the_organisations_posts_as_csv(client, auth, world, db):
    world.other.channel.display_name = "Secret other channel"
    db.flush()
    auth.login(world.home.staff.email)
    response = client.get("/posts/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="posts-home-uni-2026-03-02.csv"'
    )
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeffpost_id,status,text,")
    assert "Outbox students" in text and "Secret other channel" not in text


def test_export_takes_a_date_range(client, auth, world):
    auth.login(world.home.staff.email)
    response = client.get("/posts/export.csv?from=2026-03-03&to=2026-03-31")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="posts-home-uni-2026-03-03-2026-03-31.csv"'
    )
    assert response.get_data(as_text=True).count("\n") == 1  # the world's post is on 2 March
    response = client.get("/posts/export.csv?from=2026-03-02&to=2026-03-02")
    assert response.get_data(as_text=True).count("\n") == 2


def test_a_bad_export_date_is_explained(client, auth, world):
    auth.login(world.home.staff.email)
    response = client.get("/posts/export.csv?from=2026-02-30")
    assert response.status_code == 302 and response.headers["Location"] == "/posts/import"
    assert "from: “2026-02-30” is not a date" in client.get("/posts/import").get_data(as_text=True)
