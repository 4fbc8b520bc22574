"""Drafting: campaigns, messages, variants and the framing vocabulary, checked and audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from campaign.models import AuditEvent, FramingTag, Message, Post, Variant
from campaign.services import NotFound, PermissionDenied, ServiceError, drafting, posts
from campaign.services.audit import Actor
from campaign.services.drafting import CampaignInput, FieldError, MessageInput, VariantInput
from campaign.services.posts import PostInput
from tests import factories
from tests.conftest import NOW


def actor(part, role="staff"):
    user = getattr(part, role)
    return Actor(part.org.id, user.email, user.id, role)


def events(db, part, subject_type, subject_id):
    return list(
        db.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.organisation_id == part.org.id,
                AuditEvent.subject_type == subject_type,
                AuditEvent.subject_id == subject_id,
            )
            .order_by(AuditEvent.id)
        )
    )


def new_campaign(db, part, **values):
    data = CampaignInput(**{"name": "Graduate schemes", **values})
    return drafting.create_campaign(db, part.org.id, data, actor(part), NOW)


def new_message(db, part, campaign=None, **values):
    data = MessageInput(**{"title": "Insight days", "link_url": "https://ac.uk/i", **values})
    target = campaign or new_campaign(db, part)
    return drafting.create_message(db, part.org.id, target.id, data, actor(part), NOW)


def new_variant(db, part, message=None, **values):
    fields = {"label": "Question", "text": "Unsure what to do?", "audience": "students", **values}
    target = message or new_message(db, part)
    return drafting.create_variant(
        db, part.org.id, target.id, VariantInput(**fields), actor(part), NOW
    )


def refused(field, call, *args, **kwargs):
    with pytest.raises(FieldError) as caught:
        call(*args, **kwargs)
    assert caught.value.field == field
    return str(caught.value)


# --- campaigns ------------------------------------------------------------------------------


def test_a_campaign_is_created_with_its_fields_and_audited(db, world):
    home = world.home
    campaign = new_campaign(
        db,
        home,
        name="  Graduate schemes  ",
        goal="200 finalists apply before Christmas",
        audience="graduates",
        starts_on=dt.date(2026, 9, 1),
        ends_on=dt.date(2026, 12, 18),
        owner_id=home.manager.id,
    )
    assert campaign.organisation_id == home.org.id
    assert campaign.name == "Graduate schemes"
    assert (campaign.audience, campaign.owner_id) == ("graduates", home.manager.id)
    assert campaign.created_by_id == home.staff.id
    [event] = events(db, home, "campaign", campaign.id)
    assert event.action == "campaign.created"
    assert event.actor_user_id == home.staff.id
    assert event.detail["ends_on"] == "2026-12-18"


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"name": "   "}, "name", "The name is required"),
        ({"name": "n" * 201}, "name", "The name is too long: 201 characters, at most 200"),
        ({"name": "Tab\tname"}, "name", "The name contains an invisible character (U+0009)"),
        ({"name": "Two\nlines"}, "name", "The name contains a line break"),
        ({"description": "nul\x00"}, "description", "U+0000"),
        ({"goal": "g" * 20_001}, "goal", "The goal is too long"),
        ({"audience": "alumni"}, "audience", "students, graduates, employers, parents"),
        (
            {"starts_on": dt.date(2026, 5, 1), "ends_on": dt.date(2026, 4, 30)},
            "ends_on",
            "The end date (2026-04-30) is before the start date (2026-05-01)",
        ),
        ({"owner_id": 999_999}, "owner_id", "is not a member of this organisation"),
    ],
)
def test_bad_campaign_input_is_refused_naming_the_field(db, world, values, field, words):
    before = db.scalar(select(func.count()).select_from(AuditEvent))
    assert words in refused(field, new_campaign, db, world.home, **values)
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_the_owner_must_be_an_active_member_of_this_organisation(db, world):
    assert "not a member" in refused(
        "owner_id", new_campaign, db, world.home, owner_id=world.other.staff.id
    )
    world.home.manager.is_active = False
    db.flush()
    assert "not a member" in refused(
        "owner_id", new_campaign, db, world.home, owner_id=world.home.manager.id
    )


def test_an_owner_who_left_does_not_block_other_edits(db, world):
    home = world.home
    campaign = new_campaign(db, home, owner_id=home.manager.id)
    home.manager.is_active = False
    db.flush()
    data = CampaignInput(name="Renamed", owner_id=home.manager.id)
    drafting.update_campaign(db, home.org.id, campaign.id, data, actor(home), NOW)
    assert campaign.name == "Renamed"
    data = CampaignInput(name="Renamed", owner_id=world.other.admin.id)
    with pytest.raises(FieldError, match="not a member"):
        drafting.update_campaign(db, home.org.id, campaign.id, data, actor(home), NOW)


def test_a_campaign_may_be_one_day_long_and_for_everyone(db, world):
    day = dt.date(2026, 3, 10)
    campaign = new_campaign(db, world.home, starts_on=day, ends_on=day, audience=None)
    assert (campaign.starts_on, campaign.ends_on, campaign.audience) == (day, day, None)


def test_an_edit_records_what_changed_and_a_no_op_records_nothing(db, world):
    home = world.home
    campaign = new_campaign(db, home, goal="old goal")
    data = CampaignInput(name="Graduate schemes", goal="new goal", audience="students")
    drafting.update_campaign(db, home.org.id, campaign.id, data, actor(home), NOW)
    assert (campaign.goal, campaign.audience) == ("new goal", "students")
    drafting.update_campaign(db, home.org.id, campaign.id, data, actor(home), NOW)
    audit = events(db, home, "campaign", campaign.id)
    assert [e.action for e in audit] == ["campaign.created", "campaign.edited"]
    assert audit[1].detail["changes"] == {
        "goal": {"from": "old goal", "to": "new goal"},
        "audience": {"from": None, "to": "students"},
    }


def test_an_archived_campaign_is_read_only(db, world):
    home = world.home
    campaign = new_campaign(db, home)
    message = new_message(db, home, campaign)
    variant = new_variant(db, home, message)
    drafting.archive_campaign(db, home.org.id, campaign.id, actor(home), NOW)
    assert campaign.archived
    assert "campaign.archived" in [e.action for e in events(db, home, "campaign", campaign.id)]
    org, who = home.org.id, actor(home)
    attempts = [
        lambda: drafting.update_campaign(db, org, campaign.id, CampaignInput("New"), who, NOW),
        lambda: drafting.archive_campaign(db, org, campaign.id, who, NOW),
        lambda: drafting.create_message(db, org, campaign.id, MessageInput("M"), who, NOW),
        lambda: drafting.update_message(db, org, message.id, MessageInput("M"), who, NOW),
        lambda: drafting.delete_message(db, org, message.id, who, NOW),
        lambda: drafting.create_variant(
            db, org, message.id, VariantInput("L", "T", "students"), who, NOW
        ),
        lambda: drafting.update_variant(
            db, org, variant.id, VariantInput("L", "T", "students"), who, NOW
        ),
        lambda: drafting.delete_variant(db, org, variant.id, who, NOW),
    ]
    for attempt in attempts:
        with pytest.raises(ServiceError, match="archived"):
            attempt()
    assert campaign.name == "Graduate schemes"
    assert [v.label for v in drafting.get_message(db, org, message.id).variants] == ["Question"]


# --- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"title": ""}, "title", "The title is required"),
        ({"title": "t" * 201}, "title", "at most 200"),
        ({"link_url": "javascript:alert(1)"}, "link_url", "starting with https://"),
        ({"link_url": "ftp://files.ac.uk/x"}, "link_url", "starting with https://"),
        ({"link_url": "https://"}, "link_url", "starting with https://"),
        ({"link_url": "https://ac.uk/a b"}, "link_url", "must not contain spaces"),
        ({"link_url": "https://ac.uk/" + "a" * 1987}, "link_url", "at most 2,000 characters"),
        ({"resource_name": "r" * 201}, "resource_name", "at most 200"),
        ({"intent": "i" * 501}, "intent", "at most 500"),
        ({"context": "c" * 20_001}, "context", "The context is too long"),
    ],
)
def test_bad_message_input_is_refused_naming_the_field(db, world, values, field, words):
    campaign = new_campaign(db, world.home)
    message = refused(field, new_message, db, world.home, campaign, **values)
    assert words in message
    assert campaign.messages == []


def test_a_message_keeps_its_link_intent_and_context(db, world):
    home = world.home
    link = "https://ac.uk/" + "a" * 1986  # exactly 2,000 characters
    message = new_message(
        db, home, link_url=f" {link} ", intent="Book a slot", context="Deadlines close Friday\r\n"
    )
    assert message.link_url == link
    assert (message.intent, message.context) == ("Book a slot", "Deadlines close Friday")
    assert [e.action for e in events(db, home, "message", message.id)] == ["message.created"]


def test_a_message_may_name_a_resource_instead_of_a_link(db, world):
    message = new_message(db, world.home, link_url=None, resource_name="CV guide (PDF)")
    assert (message.link_url, message.resource_name) == (None, "CV guide (PDF)")


def test_message_edit_and_delete_are_audited_and_delete_takes_the_variants(db, world):
    home = world.home
    message = new_message(db, home)
    variant = new_variant(db, home, message)
    data = MessageInput(title="Insight days 2026", link_url=None, intent="Apply")
    drafting.update_message(db, home.org.id, message.id, data, actor(home), NOW)
    assert (message.title, message.link_url, message.intent) == ("Insight days 2026", None, "Apply")
    message_id, variant_id = message.id, variant.id
    drafting.delete_message(db, home.org.id, message_id, actor(home), NOW)
    assert db.get(Message, message_id) is None
    assert db.get(Variant, variant_id) is None
    actions = [e.action for e in events(db, home, "message", message_id)]
    assert actions == ["message.created", "message.edited", "message.deleted"]


def test_message_warnings_ask_for_two_framings(db, world):
    home = world.home
    message = new_message(db, home)
    assert drafting.message_warnings(message) == [
        "No framings yet: add at least two framings to compare them."
    ]
    new_variant(db, home, message)
    assert "add at least two framings to compare them" in drafting.message_warnings(message)[0]
    new_variant(db, home, message, label="Statistic", text="9 in 10 found it useful")
    assert drafting.message_warnings(message) == []


def test_get_message_loads_variants_and_tags(db, world):
    home = world.home
    message = new_message(db, home)
    new_variant(db, home, message, framing_tags=("question", "context"))
    db.expunge_all()
    found = drafting.get_message(db, home.org.id, message.id)
    db.expunge_all()  # no lazy loading from here on
    assert [sorted(t.key for t in v.framing_tags) for v in found.variants] == [
        ["context", "question"]
    ]


# --- variants -------------------------------------------------------------------------------


def test_variant_text_is_normalised_and_tags_kept_once_in_vocabulary_order(db, world):
    home = world.home
    variant = new_variant(
        db,
        home,
        text="  Cafe\u0301 careers fair\r\nThursday  ",
        framing_tags=("statistic", "question", "statistic"),
    )
    assert variant.text == "Caf\u00e9 careers fair\nThursday"
    assert [t.key for t in variant.framing_tags] == ["question", "statistic"]
    [event] = events(db, home, "variant", variant.id)
    assert event.detail["framing_tags"] == ["question", "statistic"]


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"label": " "}, "label", "The label is required"),
        ({"label": "l" * 121}, "label", "at most 120"),
        ({"text": " \r\n "}, "text", "The text is empty"),
        ({"text": "bell\x07"}, "text", "U+0007"),
        ({"text": "t" * 20_001}, "text", "The text is too long"),
        ({"audience": ""}, "audience", "The audience must be one of"),
        ({"audience": "everyone"}, "audience", "The audience must be one of"),
        ({"framing_tags": ("question", "humour")}, "framing_tags", "Unknown framing tag 'humour'"),
    ],
)
def test_bad_variant_input_is_refused_naming_the_field(db, world, values, field, words):
    message = new_message(db, world.home)
    assert words in refused(field, new_variant, db, world.home, message, **values)
    assert message.variants == []


def test_an_archived_tag_is_refused_but_stays_on_variants_that_have_it(db, world):
    home = world.home
    variant = new_variant(db, home, framing_tags=("story",))
    story = db.scalar(
        select(FramingTag).where(
            FramingTag.organisation_id == home.org.id, FramingTag.key == "story"
        )
    )
    drafting.update_framing_tag(db, home.org.id, story.id, "Story", True, actor(home, "admin"), NOW)
    words = refused("framing_tags", new_variant, db, home, variant.message, framing_tags=("story",))
    assert "The framing tag 'story' is archived" in words
    data = VariantInput("Question, story", "New text", "graduates", ("story", "question"))
    drafting.update_variant(db, home.org.id, variant.id, data, actor(home), NOW)
    assert [t.key for t in variant.framing_tags] == ["question", "story"]
    [_created, edited] = events(db, home, "variant", variant.id)
    assert edited.detail["changes"]["framing_tags"] == {
        "from": ["story"],
        "to": ["question", "story"],
    }
    assert edited.detail["changes"]["audience"] == {"from": "students", "to": "graduates"}


def test_another_organisations_tag_key_is_unknown(db, world):
    other = world.other
    drafting.add_framing_tag(db, other.org.id, "humour", "Humour", actor(other, "admin"), NOW)
    words = refused("framing_tags", new_variant, db, world.home, framing_tags=("humour",))
    assert "Unknown framing tag 'humour'" in words


def _post_from(db, part, variant):
    data = PostInput(
        text=variant.text,
        channel_ids=(part.channel.id,),
        when="2026-03-10 09:00",
        variant_id=variant.id,
    )
    return posts.create_post(db, part.org, data, actor(part), NOW).post


def test_a_variant_used_by_a_live_post_cannot_be_deleted_until_it_is_cancelled(db, world):
    home = world.home
    variant = new_variant(db, home)
    post = _post_from(db, home, variant)
    with pytest.raises(ServiceError, match="used by 1 post that is not cancelled"):
        drafting.delete_variant(db, home.org.id, variant.id, actor(home), NOW)
    with pytest.raises(ServiceError, match="used by 1 post"):
        drafting.delete_message(db, home.org.id, variant.message_id, actor(home), NOW)
    posts.cancel_post(db, home.org, post.id, actor(home), NOW)
    variant_id = variant.id
    drafting.delete_variant(db, home.org.id, variant_id, actor(home), NOW)
    db.expire_all()
    assert db.get(Variant, variant_id) is None
    assert db.get(Post, post.id).variant_id is None
    assert [e.action for e in events(db, home, "variant", variant_id)][-1] == "variant.deleted"


# --- the framing vocabulary -----------------------------------------------------------------


def test_the_vocabulary_starts_with_the_defaults_in_order(db, world):
    keys = [t.key for t in drafting.framing_vocabulary(db, world.home.org.id)]
    assert keys[:3] == ["bare_link", "context", "question"]
    assert "deadline_urgency" in keys


def test_an_admin_adds_relabels_archives_and_restores_a_tag(db, world):
    home, admin = world.home, actor(world.home, "admin")
    tag = drafting.add_framing_tag(db, home.org.id, "peer_voice", "Peer voice", admin, NOW)
    assert tag.position > max(
        t.position for t in drafting.framing_vocabulary(db, home.org.id) if t.id != tag.id
    )
    drafting.update_framing_tag(db, home.org.id, tag.id, "Student voice", True, admin, NOW)
    assert tag.key not in [t.key for t in drafting.framing_vocabulary(db, home.org.id)]
    everything = drafting.framing_vocabulary(db, home.org.id, include_archived=True)
    assert tag.key in [t.key for t in everything]
    drafting.update_framing_tag(db, home.org.id, tag.id, "Student voice", False, admin, NOW)
    assert tag.label == "Student voice" and not tag.archived
    actions = [e.action for e in events(db, home, "framing_tag", tag.id)]
    assert actions == ["framing_tag.created", "framing_tag.edited", "framing_tag.edited"]
    assert tag.key not in [t.key for t in drafting.framing_vocabulary(db, world.other.org.id)]


@pytest.mark.parametrize("key", ["a", "A_b", "1abc", "_ab", "has-dash", "café", "x" * 41, " "])
def test_tag_keys_must_be_short_lowercase_identifiers(db, world, key):
    words = refused(
        "key",
        drafting.add_framing_tag,
        db,
        world.home.org.id,
        key,
        "Label",
        actor(world.home, "admin"),
        NOW,
    )
    assert "2 to 40 lowercase letters" in words


@pytest.mark.parametrize("key", ["ab", "a" + "b" * 39, "call_to_action_2"])
def test_tag_keys_at_the_bounds_are_accepted(db, world, key):
    assert (
        drafting.add_framing_tag(
            db, world.home.org.id, key, "Label", actor(world.home, "admin"), NOW
        ).key
        == key
    )


def test_a_duplicate_key_or_a_bad_label_is_refused(db, world):
    admin = actor(world.home, "admin")
    org = world.home.org.id
    assert "already has the key 'question'" in refused(
        "key", drafting.add_framing_tag, db, org, "question", "Q", admin, NOW
    )
    assert "The label is required" in refused(
        "label", drafting.add_framing_tag, db, org, "new_one", "  ", admin, NOW
    )
    assert "at most 80" in refused(
        "label", drafting.add_framing_tag, db, org, "new_one", "l" * 81, admin, NOW
    )


# --- roles and organisations ----------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "manager", "admin"])
def test_staff_and_above_write_campaigns_messages_and_variants(db, world, role):
    home = world.home
    who = actor(home, role)
    campaign = drafting.create_campaign(db, home.org.id, CampaignInput("C"), who, NOW)
    message = drafting.create_message(db, home.org.id, campaign.id, MessageInput("M"), who, NOW)
    variant = drafting.create_variant(
        db, home.org.id, message.id, VariantInput("L", "T", "students"), who, NOW
    )
    drafting.delete_variant(db, home.org.id, variant.id, who, NOW)
    drafting.archive_campaign(db, home.org.id, campaign.id, who, NOW)


@pytest.mark.parametrize("role", [None, "viewer"])
def test_an_actor_without_a_known_role_may_not_write(db, world, role):
    home = world.home
    who = Actor(home.org.id, "someone", None, role)
    with pytest.raises(PermissionDenied, match="Only a staff or above"):
        drafting.create_campaign(db, home.org.id, CampaignInput("C"), who, NOW)
    with pytest.raises(PermissionDenied):
        drafting.update_campaign(db, home.org.id, home.campaign.id, CampaignInput("C"), who, NOW)


@pytest.mark.parametrize("role", ["staff", "manager"])
def test_only_an_admin_changes_the_vocabulary(db, world, role):
    home = world.home
    who = actor(home, role)
    with pytest.raises(PermissionDenied, match="Only a admin or above"):
        drafting.add_framing_tag(db, home.org.id, "peer_voice", "Peer voice", who, NOW)
    tag = drafting.framing_vocabulary(db, home.org.id)[0]
    with pytest.raises(PermissionDenied):
        drafting.update_framing_tag(db, home.org.id, tag.id, "X", True, who, NOW)
    assert not tag.archived


def test_an_actor_of_another_organisation_is_refused(db, world):
    outsider = actor(world.other)
    with pytest.raises(PermissionDenied):
        drafting.create_campaign(db, world.home.org.id, CampaignInput("C"), outsider, NOW)


def test_another_organisations_ids_are_not_found_everywhere(db, world):
    home, other = world.home, world.other
    org, who, admin = home.org.id, actor(home), actor(home, "admin")
    campaign = other.campaign
    message = campaign.messages[0]
    variant = message.variants[0]
    tag = drafting.framing_vocabulary(db, other.org.id)[0]
    attempts = [
        lambda: drafting.update_campaign(db, org, campaign.id, CampaignInput("C"), who, NOW),
        lambda: drafting.archive_campaign(db, org, campaign.id, who, NOW),
        lambda: drafting.create_message(db, org, campaign.id, MessageInput("M"), who, NOW),
        lambda: drafting.get_message(db, org, message.id),
        lambda: drafting.update_message(db, org, message.id, MessageInput("M"), who, NOW),
        lambda: drafting.delete_message(db, org, message.id, who, NOW),
        lambda: drafting.create_variant(
            db, org, message.id, VariantInput("L", "T", "students"), who, NOW
        ),
        lambda: drafting.get_variant(db, org, variant.id),
        lambda: drafting.update_variant(
            db, org, variant.id, VariantInput("L", "T", "students"), who, NOW
        ),
        lambda: drafting.delete_variant(db, org, variant.id, who, NOW),
        lambda: drafting.update_framing_tag(db, org, tag.id, "X", True, admin, NOW),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            attempt()
    assert not campaign.archived and not tag.archived
    assert [v.id for v in message.variants] == [variant.id]


def test_a_new_organisation_gets_its_own_vocabulary(db, world):
    fresh = factories.make_org(db, "third-uni", NOW)
    mine = drafting.framing_vocabulary(db, fresh.id)
    theirs = drafting.framing_vocabulary(db, world.home.org.id)
    assert [t.key for t in mine] == [t.key for t in theirs]
    assert not {t.id for t in mine} & {t.id for t in theirs}


def test_a_restored_campaign_can_be_changed_again(db, world):
    home = world.home
    campaign = new_campaign(db, home)
    org, who = home.org.id, actor(home)
    with pytest.raises(ServiceError, match="is not archived"):
        drafting.restore_campaign(db, org, campaign.id, who, NOW)
    drafting.archive_campaign(db, org, campaign.id, who, NOW)
    drafting.restore_campaign(db, org, campaign.id, who, NOW)
    assert not campaign.archived
    assert "campaign.restored" in [e.action for e in events(db, home, "campaign", campaign.id)]
    drafting.update_campaign(db, org, campaign.id, CampaignInput("Renamed"), who, NOW)
    assert campaign.name == "Renamed"
    with pytest.raises(NotFound):
        drafting.restore_campaign(db, world.other.org.id, campaign.id, actor(world.other), NOW)
