"""The post lifecycle: draft-time checks, scheduling, approval, editing, cancelling, audit."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from campaign.db import database_now
from campaign.models import AuditEvent, Channel, Delivery, KeyDate, QueueSlot
from campaign.services import NotFound, PermissionDenied, ServiceError, posts, publishing
from campaign.services.audit import Actor
from campaign.services.posts import PostInput
from tests import factories
from tests.conftest import NOW
from tests.factories import ENGINE_RULES

LATER = "2026-03-10 09:00"  # a Tuesday, GMT in Europe/London


def actor(part, role="staff"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def add_channel(db, part, kind="outbox", name=None, **values):
    found = Channel(
        organisation_id=part.org.id,
        kind=kind,
        display_name=name or f"{kind} {values.get('audience', 'students')}",
        audience=values.pop("audience", "students"),
        created_at=NOW,
        **values,
    )
    db.add(found)
    db.flush()
    return found


def draft(db, part, text="Mock interviews this week: book now https://careers.ac.uk/mock",
          channels=None, when=LATER, role="staff", **extra):  # fmt: skip
    chosen = channels or [part.channel]
    submit = extra.pop("submit", False)
    data = PostInput(text=text, channel_ids=tuple(c.id for c in chosen), when=when, **extra)
    return posts.create_post(db, part.org, data, actor(part, role), NOW, submit=submit)


def actions(db, part, post_id):
    return [e.action for e in posts.history(db, part.org.id, post_id)]


# --- draft-time checks ----------------------------------------------------------------------


def test_a_draft_gets_one_scheduled_delivery_per_channel_and_an_audit_entry(db, world):
    home = world.home
    second = add_channel(db, home, name="Second outbox")
    saved = draft(db, home, channels=[home.channel, second])
    post = saved.post
    assert post.status == "draft"
    assert sorted(d.channel_id for d in post.deliveries) == sorted([home.channel.id, second.id])
    assert {d.status for d in post.deliveries} == {"scheduled"}
    assert {d.due_at for d in post.deliveries} == {dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)}
    assert post.scheduled_for == dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
    assert actions(db, home, post.id) == ["post.created"]


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("x" * 281, "x", "X: The post is 281 characters long; the limit is 280"),
        ("🎓" * 141, "x", "X:"),  # an emoji weighs 2 on X
        ("é" * 301, "bluesky", "Bluesky"),
        ("   ", "outbox", "The post is empty."),
    ],
)
def test_a_post_that_cannot_be_published_is_refused_at_draft_time(db, world, text, kind, expected):
    channel = add_channel(db, world.home, kind=kind, name=kind.title())
    with pytest.raises(ServiceError) as caught:
        draft(db, world.home, text=text, channels=[channel])
    assert expected.split(":")[0] in str(caught.value)
    assert db.scalars(select(Delivery).where(Delivery.channel_id == channel.id)).all() == []


def test_x_counts_a_link_as_23_and_cjk_as_two(db, world):
    channel = add_channel(db, world.home, kind="x", name="X")
    link = "https://careers.ac.uk/" + "a" * 200
    assert draft(db, world.home, text=f"{'x' * 256} {link}", channels=[channel]).post.id
    with pytest.raises(ServiceError, match="281"):
        draft(db, world.home, text="就" * 140 + "x", channels=[channel])


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-02-30 09:00", "2026-02-30 is not a date"),
        ("2026-03-10 25:00", "25:00 is not a time of day"),
        ("next tuesday", "is not a date and time"),
        ("2026-03-01 09:00", "is in the past"),
        ("", "Choose a date and time"),
    ],
)
def test_impossible_or_past_times_are_refused_with_the_reason(db, world, when, expected):
    with pytest.raises(ServiceError, match=expected):
        draft(db, world.home, when=when)


def test_channels_must_be_chosen_and_belong_to_the_organisation(db, world):
    with pytest.raises(ServiceError, match="Choose at least one channel"):
        posts.create_post(
            db, world.home.org, PostInput(text="Hi", channel_ids=(), when=LATER),
            actor(world.home), NOW,
        )  # fmt: skip
    with pytest.raises(ServiceError, match=f"Channel {world.other.channel.id} does not exist"):
        draft(db, world.home, channels=[world.other.channel])


def test_a_variant_of_another_organisation_is_not_found(db, world):
    foreign = world.other.campaign.messages[0].variants[0]
    with pytest.raises(NotFound):
        draft(db, world.home, variant_id=foreign.id)


def test_a_time_in_the_spring_gap_moves_forward_and_says_so(db, world):
    saved = draft(db, world.home, when="2026-03-29 01:30")
    # Moved forward by the hour the clocks skip: 02:30 BST.
    assert saved.post.scheduled_for == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    assert "does not exist" in saved.notes[0]
    assert saved.post.schedule_note == saved.notes[0]


def test_an_explicit_offset_is_kept_exactly(db, world):
    saved = draft(db, world.home, when="2026-03-10T09:00:00+05:30")
    assert saved.post.scheduled_for == dt.datetime(2026, 3, 10, 3, 30, tzinfo=dt.UTC)


# --- queue ----------------------------------------------------------------------------------


def test_add_to_queue_takes_each_channels_next_free_slot(db, world):
    home = world.home
    db.add_all(
        [
            QueueSlot(channel_id=home.channel.id, weekday=1, at=dt.time(9, 0), created_at=NOW),
            QueueSlot(channel_id=home.channel.id, weekday=3, at=dt.time(12, 30), created_at=NOW),
        ]
    )
    db.flush()
    first = draft(db, home, when=None, use_queue=True).post
    second = draft(db, home, text="Another one", when=None, use_queue=True).post
    # NOW is Monday 2 March 2026 09:30 UTC: Tuesday 09:00, then Thursday 12:30 (GMT).
    assert first.scheduled_for == dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)
    assert second.scheduled_for == dt.datetime(2026, 3, 5, 12, 30, tzinfo=dt.UTC)


def test_a_channel_without_slots_cannot_take_queued_posts(db, world):
    with pytest.raises(ServiceError, match="has no queue slots yet"):
        draft(db, world.home, when=None, use_queue=True)


# --- blackouts and duplicates ---------------------------------------------------------------


def _exams(db, part, effect="blackout"):
    db.add(
        KeyDate(
            organisation_id=part.org.id,
            title="Exam period",
            kind="exams",
            effect=effect,
            starts_on=dt.date(2026, 3, 9),
            ends_on=dt.date(2026, 3, 13),
            created_at=NOW,
        )
    )
    db.flush()


def test_a_blackout_needs_an_explicit_override_which_is_recorded(db, world):
    home = world.home
    _exams(db, home)
    with pytest.raises(ServiceError, match="inside the blackout “Exam period”"):
        draft(db, home)
    saved = draft(db, home, blackout_override="Results-day support line, agreed with exams team")
    assert saved.post.blackout_override.startswith("Results-day")
    assert "post.blackout_override" in actions(db, home, saved.post.id)
    assert any("blackout" in w for w in saved.warnings)


def test_a_boost_does_not_block(db, world):
    _exams(db, world.home, effect="boost")
    assert draft(db, world.home).post.id


def test_another_organisations_blackout_does_not_apply(db, world):
    _exams(db, world.other)
    assert draft(db, world.home).post.id


def test_identical_and_near_identical_text_on_the_same_channel_is_warned(db, world):
    home = world.home
    text = "Careers fair on Thursday: 60 employers, free entry. https://careers.ac.uk/fair"
    draft(db, home, text=text)
    same = draft(db, home, text=text, when="2026-03-11 09:00")
    near = draft(db, home, text=text.replace("60", "65"), when="2026-03-11 10:00")
    far = draft(db, home, text=text, when="2026-04-20 09:00")
    other = draft(db, home, text="Something else entirely, see you there", when="2026-03-11 11:00")
    assert any("The same text is already planned" in w for w in same.warnings)
    assert any("Nearly the same text" in w for w in near.warnings)
    assert far.warnings == []
    assert other.warnings == []


# --- approval -------------------------------------------------------------------------------


def test_without_approval_a_submitted_post_is_scheduled_at_once(db, world):
    post = draft(db, world.home, submit=True).post
    assert post.status == "approved"
    assert actions(db, world.home, post.id) == ["post.created", "post.submitted", "post.scheduled"]


def test_with_approval_staff_submit_and_a_manager_approves(db, world):
    home = world.home
    home.channel.requires_approval = True
    post = draft(db, home).post
    posts.submit_post(db, home.org, post.id, actor(home), NOW)
    assert post.status == "pending_approval"
    with pytest.raises(PermissionDenied):
        posts.approve_post(db, home.org, post.id, actor(home), NOW)
    posts.approve_post(db, home.org, post.id, actor(home, "manager"), NOW, comment="Good")
    assert post.status == "approved"
    assert post.approved_by_id == home.manager.id
    assert actions(db, home, post.id) == [
        "post.created", "post.submitted", "post.approved", "post.scheduled",
    ]  # fmt: skip
    events = posts.history(db, home.org.id, post.id)
    assert events[2].actor_user_id == home.manager.id and events[2].detail["comment"] == "Good"


def test_a_rejection_needs_a_comment_and_sends_the_post_back_to_its_author(db, world):
    home = world.home
    home.channel.requires_approval = True
    post = draft(db, home, submit=True).post
    with pytest.raises(ServiceError, match="Say why"):
        posts.reject_post(db, home.org, post.id, actor(home, "manager"), NOW, "  ")
    posts.reject_post(db, home.org, post.id, actor(home, "manager"), NOW, "Wrong date")
    assert (post.status, post.review_comment) == ("rejected", "Wrong date")
    posts.update_post(
        db, home.org, post.id, PostInput(text="Fixed", channel_ids=(home.channel.id,), when=LATER),
        actor(home), NOW,
    )  # fmt: skip
    assert post.status == "draft"
    posts.submit_post(db, home.org, post.id, actor(home), NOW)
    assert post.status == "pending_approval"


def test_a_manager_authors_post_on_an_approval_channel_is_approved_on_submission(db, world):
    home = world.home
    home.channel.requires_approval = True
    post = draft(db, home, role="manager", submit=True).post
    assert post.status == "approved"
    assert "post.approved" in actions(db, home, post.id)


def test_approving_is_refused_once_the_time_has_passed(db, world):
    home = world.home
    home.channel.requires_approval = True
    post = draft(db, home, submit=True).post
    later = dt.datetime(2026, 3, 10, 9, 1, tzinfo=dt.UTC)
    with pytest.raises(ServiceError, match="has passed"):
        posts.approve_post(db, home.org, post.id, actor(home, "manager"), later)


def test_staff_editing_approved_text_on_an_approval_channel_needs_approval_again(db, world):
    home = world.home
    home.channel.requires_approval = True
    post = draft(db, home, submit=True).post
    posts.approve_post(db, home.org, post.id, actor(home, "manager"), NOW)
    changed = PostInput(text="New words", channel_ids=(home.channel.id,), when=LATER)
    posts.update_post(db, home.org, post.id, changed, actor(home), NOW)
    assert post.status == "pending_approval"
    # Only the time changes: what was approved still stands.
    posts.approve_post(db, home.org, post.id, actor(home, "manager"), NOW)
    moved = PostInput(text="New words", channel_ids=(home.channel.id,), when="2026-03-11 09:00")
    posts.update_post(db, home.org, post.id, moved, actor(home), NOW)
    assert post.status == "approved"
    edits = [e for e in posts.history(db, home.org.id, post.id) if e.action == "post.edited"]
    assert "text" in edits[0].detail["changes"] and "times" in edits[1].detail["changes"]


def test_unapproved_posts_are_never_claimed_by_the_engine(db, world):
    home = world.home
    home.channel.requires_approval = True
    post = draft(db, home, submit=True).post
    due = post.deliveries[0].due_at + dt.timedelta(seconds=1)
    assert publishing.claim_due(db, due, "w", ENGINE_RULES) == []
    posts.approve_post(db, home.org, post.id, actor(home, "manager"), NOW)
    claims = publishing.claim_due(db, due, "w", ENGINE_RULES)
    assert [c.delivery_id for c in claims] == [post.deliveries[0].id]


def test_another_organisation_cannot_see_or_touch_the_post(db, world):
    post = draft(db, world.home).post
    for call in (
        lambda: posts.get_post(db, world.other.org.id, post.id),
        lambda: posts.submit_post(db, world.other.org, post.id, actor(world.other), NOW),
        lambda: posts.cancel_post(db, world.other.org, post.id, actor(world.other), NOW),
    ):
        with pytest.raises(NotFound):
            call()


# --- editing and cancelling -----------------------------------------------------------------


def test_editing_moves_adds_and_drops_channels(db, world):
    home = world.home
    second = add_channel(db, home, name="Second outbox")
    post = draft(db, home).post
    changed = PostInput(text="Moved", channel_ids=(second.id,), when="2026-03-12 15:00")
    posts.update_post(db, home.org, post.id, changed, actor(home), NOW)
    by_channel = {d.channel_id: d for d in post.deliveries}
    assert by_channel[home.channel.id].status == "cancelled"
    assert by_channel[second.id].status == "scheduled"
    assert by_channel[second.id].due_at == dt.datetime(2026, 3, 12, 15, 0, tzinfo=dt.UTC)
    # Choosing the first channel again brings its delivery (and its key) back.
    key = by_channel[home.channel.id].idempotency_key
    back = PostInput(text="Moved", channel_ids=(home.channel.id,), when="2026-03-12 15:00")
    posts.update_post(db, home.org, post.id, back, actor(home), NOW)
    assert by_channel[home.channel.id].status == "scheduled"
    assert by_channel[home.channel.id].idempotency_key == key


def test_a_post_already_published_cannot_be_edited_but_says_why(db, world):
    home = world.home
    post = draft(db, home, submit=True).post
    post.deliveries[0].status = "published"
    db.flush()
    changed = PostInput(text="Too late", channel_ids=(home.channel.id,), when=LATER)
    with pytest.raises(ServiceError, match="already gone out or been tried"):
        posts.update_post(db, home.org, post.id, changed, actor(home), NOW)


def test_a_draft_whose_time_passed_can_be_rescheduled(db, world):
    home = world.home
    post = draft(db, home).post
    post.deliveries[0].status = "missed"  # the engine's verdict on an unapproved, past post
    db.flush()
    later = dt.datetime(2026, 3, 11, tzinfo=dt.UTC)
    data = PostInput(text=post.text, channel_ids=(home.channel.id,), when="2026-03-12 09:00")
    posts.update_post(db, home.org, post.id, data, actor(home), later)
    assert post.deliveries[0].status == "scheduled"


def test_cancel_stops_every_unsent_delivery_and_keeps_sent_ones(db, world):
    home = world.home
    second = add_channel(db, home, name="Second outbox")
    post = draft(db, home, channels=[home.channel, second], submit=True).post
    post.deliveries[1].status = "published"
    db.flush()
    posts.cancel_post(db, home.org, post.id, actor(home), NOW)
    assert [d.status for d in post.deliveries] == ["cancelled", "published"]
    assert post.status == "cancelled"
    with pytest.raises(ServiceError, match="already cancelled"):
        posts.cancel_post(db, home.org, post.id, actor(home), NOW)
    with pytest.raises(ServiceError, match="cancelled, so it cannot be changed"):
        posts.update_post(
            db, home.org, post.id, PostInput(text="x", channel_ids=(second.id,), when=LATER),
            actor(home), NOW,
        )  # fmt: skip


def test_list_posts_filters_by_status_and_range(db, world):
    home = world.home
    a = draft(db, home).post
    b = draft(db, home, text="Later one", when="2026-04-01 09:00", submit=True).post
    ids = [p.id for p in posts.list_posts(db, home.org.id)]
    assert a.id in ids and b.id in ids
    drafts = [p.id for p in posts.list_posts(db, home.org.id, status="draft")]
    assert a.id in drafts and b.id not in drafts
    ranged = posts.list_posts(
        db, home.org.id, start=dt.datetime(2026, 3, 20, tzinfo=dt.UTC),
        end=dt.datetime(2026, 4, 2, tzinfo=dt.UTC),
    )  # fmt: skip
    assert [p.id for p in ranged] == [b.id]


def test_every_state_change_is_in_the_audit_trail_with_who_and_when(db, world):
    home = world.home
    home.channel.requires_approval = True
    post = draft(db, home).post
    posts.submit_post(db, home.org, post.id, actor(home), NOW)
    posts.approve_post(db, home.org, post.id, actor(home, "manager"), NOW)
    posts.cancel_post(db, home.org, post.id, actor(home, "manager"), NOW)
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.subject_type == "post", AuditEvent.subject_id == post.id)
        .order_by(AuditEvent.id)  # without an order PostgreSQL may return them in any order
    ).all()
    assert [e.action for e in events] == [
        "post.created", "post.submitted", "post.approved", "post.scheduled", "post.cancelled",
    ]  # fmt: skip
    assert all(e.created_at == NOW and e.actor_user_id for e in events)


# --- against a real claim -------------------------------------------------------------------


@pytest.fixture
def scheduled(factory):
    """An approved post on an outbox channel, due one second ago by the database clock."""
    with factory() as session:
        org = factories.make_org(session, f"race-{threading.get_ident()}-{id(session)}", NOW)
        channel = factories.make_channel(session, org, NOW)
        due = database_now(session) - dt.timedelta(seconds=1)
        post = factories.make_post(session, org, channel, due, NOW)
        session.commit()
        return org.id, post.id, channel.id


def test_an_edit_during_a_claim_waits_and_then_refuses(factory, scheduled):
    org_id, post_id, channel_id = scheduled
    outcome: list[str] = []

    def edit():
        with factory() as session:
            org = session.get(factories.Organisation, org_id)
            data = PostInput(text="Changed", channel_ids=(channel_id,), when="2099-01-01 09:00")
            try:
                posts.update_post(session, org, post_id, data, Actor(org_id, "s", None, "staff"),
                                  NOW)  # fmt: skip
                session.commit()
                outcome.append("edited")
            except ServiceError as exc:
                outcome.append(str(exc))

    with factory() as worker:
        claims = publishing.claim_due(worker, database_now(worker), "w1", ENGINE_RULES)
        assert len(claims) == 1
        thread = threading.Thread(target=edit)
        thread.start()
        worker.commit()
    thread.join(timeout=10)
    assert outcome and "being published" in outcome[0], outcome


def test_add_to_queue_passes_over_slots_inside_a_blackout(db, world):
    home = world.home
    db.add(QueueSlot(channel_id=home.channel.id, weekday=1, at=dt.time(9, 0), created_at=NOW))
    db.add(
        KeyDate(
            organisation_id=home.org.id, title="Reading week", kind="other", effect="blackout",
            starts_on=dt.date(2026, 3, 3), ends_on=dt.date(2026, 3, 3), created_at=NOW,
        )
    )  # fmt: skip
    db.flush()
    post = draft(db, home, when=None, use_queue=True).post
    assert post.scheduled_for == dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)  # a week later
    overridden = draft(db, home, text="Other", when=None, use_queue=True, blackout_override="ok")
    assert overridden.post.scheduled_for == dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("when", "expected"),
    [("9999-12-31 23:00", "more than five years ahead"), ("0001-01-01 00:30", "in the past")],
)
def test_far_off_years_are_refused_not_crashed(db, world, when, expected):
    with pytest.raises(ServiceError, match=expected):
        draft(db, world.home, when=when)


def test_control_characters_in_a_blackout_reason_are_refused(db, world):
    with pytest.raises(ServiceError, match="blackout reason contains an invisible control"):
        draft(db, world.home, blackout_override="ok\x00")
