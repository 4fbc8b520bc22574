"""Engagement figures by CSV and by hand: matched in the organisation only, stored by age window."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from campaign.models import AuditEvent, Channel, Delivery, Post
from campaign.models.engagement import LinkClick, TrackedLink
from campaign.models.metrics import MetricSnapshot
from campaign.services import NotFound, PermissionDenied, ServiceError
from campaign.services.audit import Actor
from campaign.services.engagement_export import export
from campaign.services.engagement_import import (
    DEFAULT_WINDOWS,
    commit,
    preview,
    save_manual,
    window_for,
)
from campaign.services.metric_windows import Window
from tests import factories

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=10)


def channel(db, org, name, kind="outbox"):
    made = Channel(
        organisation_id=org.id, kind=kind, display_name=name, audience="students", created_at=T0
    )
    db.add(made)
    db.flush()
    return made


def publish(db, org, channels, externals=None, published_at=T0, status="published"):
    """A post published on each channel (external ids as given, else made up)."""
    post = Post(organisation_id=org.id, text="Fair", status="approved", created_at=T0)
    for n, on in enumerate(channels):
        external = externals[n] if externals is not None else f"ext-{uuid.uuid4().hex[:10]}"
        post.deliveries.append(
            Delivery(
                channel=on,
                status=status,
                due_at=published_at,
                published_at=published_at if status == "published" else None,
                external_id=external if status == "published" else None,
                idempotency_key=uuid.uuid4().hex,
                updated_at=T0,
            )
        )
    db.add(post)
    db.flush()
    return post


@pytest.fixture
def orgs(db):
    home = factories.make_org(db, f"home-{uuid.uuid4().hex[:6]}", T0)
    other = factories.make_org(db, f"other-{uuid.uuid4().hex[:6]}", T0)
    return home, other


def actor(org, role="staff"):
    return Actor(organisation_id=org.id, label="staff@example", role=role)


def csv_of(*rows):
    return ("\n".join(rows) + "\n").encode()


def snapshots(db, delivery_id, source="csv"):
    found = db.scalars(
        select(MetricSnapshot)
        .where(MetricSnapshot.delivery_id == delivery_id, MetricSnapshot.source == source)
        .order_by(MetricSnapshot.window)
    )
    return {s.window: s for s in found}


def at(hours=0, days=0, minutes=0):
    return (T0 + dt.timedelta(hours=hours, days=days, minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("age", "window"),
    [(0, None), (3599, None), (3600, "1h"), (5 * 3600, "1h"), (24 * 3600, "24h"),
     (30 * 3600, "24h"), (7 * 86400, "7d"), (60 * 86400, "7d")],
)  # fmt: skip
def test_a_reading_falls_in_the_largest_window_it_is_old_enough_for(age, window):
    found = window_for(age, DEFAULT_WINDOWS)
    assert (found.label if found else None) == window


def test_good_rows_are_saved_by_window_and_as_latest_with_clicks_as_link_clicks(db, orgs):
    home, _ = orgs
    x = channel(db, home, "X")
    post = publish(db, home, [x], externals=["1861"])
    data = csv_of(
        "post_id,collected_at,impressions,clicks,likes",
        f"{post.id},{at(hours=30)},1500,37,",
        f"{post.id},{at(hours=1, minutes=5)},200,3,1",
    )
    report = commit(db, actor(home), home, data, NOW)
    assert [r.line for r in report.saved] == [2, 3] and report.refused == []
    stored = snapshots(db, post.deliveries[0].id)
    assert set(stored) == {"1h", "24h", "latest"}
    assert (stored["24h"].impressions, stored["24h"].link_clicks, stored["24h"].likes) == (
        1500,
        37,
        None,  # empty: not reported, never 0
    )
    assert stored["24h"].age_seconds == 30 * 3600 and stored["24h"].window_seconds == 86400
    assert stored["1h"].link_clicks == 3
    assert stored["latest"].collected_at == T0 + dt.timedelta(hours=30)
    assert stored["latest"].link_clicks == 37
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "engagement.imported")).one()
    assert event.organisation_id == home.id and event.detail["saved"] == 2


def test_a_young_reading_only_updates_latest(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")])
    commit(
        db,
        actor(home),
        home,
        csv_of("post_id,collected_at,likes", f"{post.id},{at(minutes=20)},4"),
        NOW,
    )
    assert set(snapshots(db, post.deliveries[0].id)) == {"latest"}


def test_the_configured_windows_are_used(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")])
    windows = (Window("30m", 1800), Window("3d", 3 * 86400))
    data = csv_of("post_id,collected_at,likes", f"{post.id},{at(hours=40)},4")
    commit(db, actor(home), home, data, NOW, windows=windows)
    assert set(snapshots(db, post.deliveries[0].id)) == {"30m", "latest"}


def test_external_id_names_the_delivery_and_disambiguates_a_multi_channel_post(db, orgs):
    home, _ = orgs
    x, mastodon = channel(db, home, "X"), channel(db, home, "Mastodon")
    post = publish(db, home, [x, mastodon], externals=["x-1", "m-1"])
    data = csv_of(
        "post_id,external_id,collected_at,likes",
        f"{post.id},,{at(hours=2)},1",
        f",m-1,{at(hours=2)},2",
        f"{post.id},x-1,{at(hours=2)},3",
    )
    result = preview(db, home, data, NOW)
    assert [str(p) for p in result.problems] == [
        f"line 2, post_id: post {post.id} went out on 2 channels (X, Mastodon); use the "
        "external_id column to say which."
    ]
    assert [(r.line, r.channel) for r in result.readings] == [(3, "Mastodon"), (4, "X")]
    assert db.scalar(select(func.count(MetricSnapshot.id))) == 0  # the preview saves nothing


def test_another_organisations_posts_are_not_found(db, orgs):
    home, other = orgs
    theirs = publish(db, other, [channel(db, other, "Their X")], externals=["theirs-1"])
    mine = publish(db, home, [channel(db, home, "X")], externals=["mine-1"])
    data = csv_of(
        "post_id,external_id,collected_at,likes",
        f"{theirs.id},,{at(hours=2)},1",
        f",theirs-1,{at(hours=2)},1",
        f"99999999,,{at(hours=2)},1",
        f"{mine.id},theirs-1,{at(hours=2)},1",
    )
    report = commit(db, actor(home), home, data, NOW)
    assert report.saved == []
    assert [str(p) for p in report.refused] == [
        f"line 2, post_id: no post {theirs.id} in this organisation.",
        "line 3, external_id: no published post with external_id “theirs-1” in this organisation.",
        "line 4, post_id: no post 99999999 in this organisation.",
        "line 5, external_id: no published post with external_id “theirs-1” in this organisation.",
    ]
    assert db.scalar(select(func.count(MetricSnapshot.id))) == 0


def test_disagreeing_post_and_external_ids_are_refused(db, orgs):
    home, _ = orgs
    x = channel(db, home, "X")
    first = publish(db, home, [x], externals=["a-1"])
    second = publish(db, home, [channel(db, home, "Y")], externals=["b-1"])
    result = preview(
        db,
        home,
        csv_of("post_id,external_id,collected_at,likes", f"{first.id},b-1,{at(hours=2)},1"),
        NOW,
    )
    [problem] = result.problems
    assert problem.column == "external_id"
    assert f"is post {second.id}, not post {first.id}" in problem.message


def test_unpublished_posts_and_impossible_times_are_refused(db, orgs):
    home, _ = orgs
    x = channel(db, home, "X")
    draft = publish(db, home, [x], status="scheduled")
    post = publish(db, home, [channel(db, home, "Y")])
    soon = (NOW + dt.timedelta(minutes=4)).isoformat()
    later = (NOW + dt.timedelta(minutes=6)).isoformat()
    result = preview(
        db,
        home,
        csv_of(
            "post_id,collected_at,likes",
            f"{draft.id},{at(hours=2)},1",
            f"{post.id},{at(hours=-1)},1",
            f"{post.id},{later},1",
            f"{post.id},{soon},1",
        ),
        NOW,
    )
    said = [str(p) for p in result.problems]
    assert said[0] == f"line 2, post_id: post {draft.id} has not been published on any channel yet."
    assert said[1].startswith("line 3, collected_at: 2026-03-02T08:00:00+00:00 is before the post")
    assert said[2] == "line 4, collected_at: 2026-03-12T09:06:00+00:00 is in the future."
    assert [r.line for r in result.readings] == [5]


def test_a_reading_repeated_with_other_figures_is_refused_naming_the_first(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")], externals=["e-1"])
    result = preview(
        db,
        home,
        csv_of(
            "post_id,external_id,collected_at,likes",
            f"{post.id},,{at(hours=2)},1",
            f",e-1,{at(hours=2)},2",
            f",e-1,{at(hours=2)},1",
        ),
        NOW,
    )
    assert [str(p) for p in result.problems] == [
        "line 3: gives other figures than line 2 for the same post, channel and collected_at; "
        "keep one of them."
    ]
    assert [r.line for r in result.readings] == [2, 4]  # the same figures again are harmless


def test_bad_rows_of_every_kind_are_listed_with_the_good_ones_kept(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")])
    result = preview(
        db,
        home,
        csv_of(
            "post_id,collected_at,clicks",
            f"{post.id},{at(hours=2)},5",
            f"{post.id},yesterday,5",
            f"{post.id},{at(hours=3)},=1+1",
            f"abc,{at(hours=3)},1",
        ),
        NOW,
    )
    assert result.bad_lines == [3, 4, 5]
    assert [r.line for r in result.readings] == [2]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"post_id,collected_at,clicks,views\n1,2026-03-02T10:00:00Z,1,2\n", "Unknown column"),
        ("post_id,collected_at,clicks\n".encode("utf-16"), "UTF-16"),
        (b"post_id,collected_at,clicks\n1,2026-03-02T10:00:00Z,\xff\n", "not UTF-8"),
        (b"", "empty"),
    ],
)
def test_an_unusable_file_is_refused_whole(db, orgs, data, message):
    home, _ = orgs
    result = preview(db, home, data, NOW)
    assert result.readings == [] and any(message in e for e in result.errors)
    report = commit(db, actor(home), home, data, NOW)
    assert report.saved == [] and any(message in e for e in report.errors)


def test_a_formula_cell_is_an_id_that_matches_nothing(db, orgs):
    home, _ = orgs
    publish(db, home, [channel(db, home, "X")])
    data = csv_of(
        "external_id,collected_at,clicks",
        f'"=HYPERLINK(""http://evil.example"",""x"")",{at(hours=2)},1',
    )
    [problem] = preview(db, home, data, NOW).problems
    assert problem.message.startswith("no published post with external_id “=HYPERLINK(")


def test_reimporting_the_same_file_changes_nothing_and_a_correction_replaces(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")])
    delivery_id = post.deliveries[0].id
    first = csv_of("post_id,collected_at,likes,clicks", f"{post.id},{at(hours=26)},10,4")
    commit(db, actor(home), home, first, NOW)
    before = {w: (s.id, s.likes, s.link_clicks) for w, s in snapshots(db, delivery_id).items()}
    commit(db, actor(home), home, first, NOW)
    db.expire_all()
    again = {w: (s.id, s.likes, s.link_clicks) for w, s in snapshots(db, delivery_id).items()}
    assert (
        again
        == before
        == {"24h": (before["24h"][0], 10, 4), "latest": (before["latest"][0], 10, 4)}
    )
    corrected = csv_of("post_id,collected_at,likes,clicks", f"{post.id},{at(hours=26)},12,")
    commit(db, actor(home), home, corrected, NOW)
    db.expire_all()
    fixed = snapshots(db, delivery_id)
    assert (fixed["24h"].likes, fixed["24h"].link_clicks) == (12, None)
    assert (fixed["latest"].likes, fixed["latest"].link_clicks) == (12, None)
    assert db.scalar(select(func.count(MetricSnapshot.id))) == 2


def test_a_window_keeps_the_reading_nearest_its_age_and_latest_the_newest(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")])
    commit(
        db,
        actor(home),
        home,
        csv_of("post_id,collected_at,likes", f"{post.id},{at(hours=30)},9"),
        NOW,
    )
    commit(
        db,
        actor(home),
        home,
        csv_of("post_id,collected_at,likes", f"{post.id},{at(hours=25)},7"),
        NOW,
    )
    commit(
        db,
        actor(home),
        home,
        csv_of("post_id,collected_at,likes", f"{post.id},{at(hours=40)},11"),
        NOW,
    )
    db.expire_all()
    stored = snapshots(db, post.deliveries[0].id)
    assert (stored["24h"].likes, stored["24h"].age_seconds) == (7, 25 * 3600)
    assert stored["latest"].likes == 11


def test_several_readings_of_one_window_in_one_file_keep_the_earliest(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")])
    data = csv_of(
        "post_id,collected_at,likes",
        f"{post.id},{at(hours=30)},9",
        f"{post.id},{at(hours=25)},7",
        f"{post.id},{at(hours=28)},8",
    )
    assert len(commit(db, actor(home), home, data, NOW).saved) == 3
    stored = snapshots(db, post.deliveries[0].id)
    assert (stored["24h"].likes, stored["latest"].likes) == (7, 9)


def test_commit_saves_only_the_chosen_lines(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "X")])
    data = csv_of(
        "post_id,collected_at,likes",
        f"{post.id},{at(hours=2)},1",
        f"{post.id},{at(hours=30)},2",
    )
    report = commit(db, actor(home), home, data, NOW, lines={3})
    assert [r.line for r in report.saved] == [3] and report.not_chosen == [2]
    assert set(snapshots(db, post.deliveries[0].id)) == {"24h", "latest"}


def test_only_staff_of_the_organisation_may_import(db, orgs):
    home, other = orgs
    data = csv_of("post_id,collected_at,likes", f"1,{at(hours=2)},1")
    with pytest.raises(PermissionDenied):
        commit(db, actor(home, role=None), home, data, NOW)
    with pytest.raises(PermissionDenied):
        commit(db, actor(other), home, data, NOW)


def test_manual_entry_saves_a_manual_snapshot(db, orgs):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, "LinkedIn", kind="manual")], externals=[None])
    delivery = post.deliveries[0]
    reading = save_manual(
        db, actor(home), home, post.id, delivery.id,
        {"impressions": 800, "likes": 12, "link_clicks": None},
        T0 + dt.timedelta(days=8), NOW,
    )  # fmt: skip
    assert reading.window is not None and reading.window.label == "7d"
    stored = snapshots(db, delivery.id, source="manual")
    assert set(stored) == {"7d", "latest"}
    assert (stored["7d"].impressions, stored["7d"].likes, stored["7d"].link_clicks) == (
        800,
        12,
        None,
    )


def test_manual_entry_refusals(db, orgs):
    home, other = orgs
    post = publish(db, home, [channel(db, home, "X")])
    draft = publish(db, home, [channel(db, home, "Y")], status="scheduled")
    theirs = publish(db, other, [channel(db, other, "Z")])
    when = T0 + dt.timedelta(hours=3)

    def enter(post_id, delivery_id, figures=None, collected_at=when, who=None):
        return save_manual(
            db, who or actor(home), home, post_id, delivery_id,
            figures if figures is not None else {"likes": 1}, collected_at, NOW,
        )  # fmt: skip

    with pytest.raises(NotFound):
        enter(theirs.id, theirs.deliveries[0].id)
    with pytest.raises(NotFound):
        enter(post.id, draft.deliveries[0].id)  # the delivery of another post
    with pytest.raises(ServiceError, match="has not gone out on Y yet"):
        enter(draft.id, draft.deliveries[0].id)
    with pytest.raises(ServiceError, match="at least one figure"):
        enter(post.id, post.deliveries[0].id, {"likes": None})
    with pytest.raises(ServiceError, match="is before the post went out"):
        enter(post.id, post.deliveries[0].id, collected_at=T0 - dt.timedelta(minutes=1))
    with pytest.raises(ServiceError, match="in the future"):
        enter(post.id, post.deliveries[0].id, collected_at=NOW + dt.timedelta(hours=1))
    with pytest.raises(ServiceError, match="from 0 to 2,147,483,647"):
        enter(post.id, post.deliveries[0].id, {"likes": -1})
    with pytest.raises(PermissionDenied):
        enter(post.id, post.deliveries[0].id, who=actor(home, role=None))
    assert db.scalar(select(func.count(MetricSnapshot.id))) == 0


def rows_of(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_export_lists_every_snapshot_and_tracked_clicks_and_reads_back(db, orgs):
    home, other = orgs
    x = channel(db, home, "=X channel")
    post = publish(db, home, [x], externals=['=HYPERLINK("http://evil.example")'])
    delivery = post.deliveries[0]
    theirs = publish(db, other, [channel(db, other, "Z")])
    for who, p in ((home, post), (other, theirs)):
        commit(
            db,
            actor(who),
            who,
            csv_of("post_id,collected_at,likes,clicks", f"{p.id},{at(hours=2)},5,3"),
            NOW,
        )
    link = TrackedLink(
        code="abc123", delivery_id=delivery.id, organisation_id=home.id,
        target_url="https://example.ac.uk/fair", target_sha256="0" * 64, created_at=T0,
    )  # fmt: skip
    db.add(link)
    db.flush()
    for n, first in enumerate([True, False, True]):
        db.add(
            LinkClick(
                link_id=link.id,
                clicked_at=T0 + dt.timedelta(hours=n),
                day=T0.date(),
                visitor_hash=f"v{n}",
                is_first_today=first,
            )
        )
    db.flush()
    text = export(db, home.id, NOW)
    lines = rows_of(text)
    assert [(r["window"], r["source"]) for r in lines] == [
        ("1h", "csv"),
        ("latest", "csv"),
        ("", "tracked link"),
    ]
    assert all(r["post_id"] == str(post.id) for r in lines)  # nothing of the other organisation
    assert lines[0]["clicks"] == "3" and lines[0]["likes"] == "5" and lines[0]["impressions"] == ""
    assert lines[0]["collected_at"] == "2026-03-02T11:00:00+00:00"
    tracked = lines[2]
    assert (tracked["clicks"], tracked["unique_clicks"], tracked["likes"]) == ("3", "2", "")
    assert tracked["collected_at"] == NOW.isoformat(timespec="seconds")
    # Formula cells are defused for spreadsheets.
    assert lines[0]["external_id"] == '\'=HYPERLINK("http://evil.example")'
    assert lines[0]["channel"] == "'=X channel"
    # Imported again: the tracked-link line is skipped, the snapshots are read back unchanged.
    again = preview(db, home, text.encode(), NOW)
    assert again.problems == [] and again.skipped == [4]
    assert [(r.line, r.delivery_id, r.figures.link_clicks) for r in again.readings] == [
        (2, delivery.id, 3),
        (3, delivery.id, 3),
    ]


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    hours=st.lists(st.integers(0, 24 * 10), min_size=1, max_size=6, unique=True),
    order=st.randoms(use_true_random=False),
    batches=st.integers(1, 3),
)
def test_any_order_of_imports_keeps_the_nearest_reading_per_window_and_the_newest(
    db, orgs, hours, order, batches
):
    home, _ = orgs
    post = publish(db, home, [channel(db, home, f"C{uuid.uuid4().hex[:6]}")])
    delivery_id = post.deliveries[0].id
    lines = [f"{post.id},{at(hours=h)},{h}" for h in hours]
    order.shuffle(lines)
    for n in range(batches):
        part = lines[n::batches]
        if part:
            commit(db, actor(home), home, csv_of("post_id,collected_at,likes", *part), NOW)
    db.expire_all()
    stored = {w: s.likes for w, s in snapshots(db, delivery_id).items()}
    expected: dict[str, int] = {"latest": max(hours)}
    for h in sorted(hours, reverse=True):
        window = window_for(h * 3600, DEFAULT_WINDOWS)
        if window is not None:
            expected[window.label] = h  # the smallest age in the window wins
    assert stored == expected
