"""Experiments through the pages: plan with the power calculation, re-draw, approve, conclude."""

from __future__ import annotations

from sqlalchemy import select

from campaign.analysis.sample_size import required_impressions
from campaign.models import Experiment, Post, Variant
from tests.conftest import NOW

TIMES = "\n".join(
    f"2026-03-{day:02d} {hour}" for day in (10, 11, 12) for hour in ("09:00", "17:30")
)


def post(client, auth, path, **fields):
    return client.post(path, data={"csrf_token": auth.csrf("/experiments"), **fields})


def framings(db, part):
    message = part.campaign.messages[0]
    question = next(t for t in part.org.framing_tags if t.key == "question")
    message.variants.append(
        Variant(
            label="Question",
            text="Ready for results day? https://example.ac.uk/o",
            audience="graduates",
            created_at=NOW,
            framing_tags=[question],
        )
    )
    db.flush()
    return message


def plan_fields(message, part, **extra):
    fields = {
        "message_id": message.id,
        "name": "Question or bare link?",
        "hypothesis": "A question earns more clicks than a bare link.",
        "control": message.variants[0].id,
        "variant_ids": [v.id for v in message.variants],
        "channel_ids": [part.channel.id],
        "schedule": "times",
        "times": TIMES,
        "minimum_lift_percent": "100",
        "baseline_percent": "2",
        "impressions_per_post": "800",
        "alpha": "0.05",
        "report_age_hours": "24",
        "verdict_rule": "planned",
        "action": "create",
    }
    fields.update(extra)
    return fields


def test_the_create_page_shows_the_plan_in_words_before_saving(client, auth, world, db):
    message = framings(db, world.home)
    auth.login(world.home.staff.email)
    page = client.get(f"/experiments/new?message_id={message.id}").get_data(as_text=True)
    assert "What to try next" in page and "not a verdict" in page
    response = post(client, auth, "/experiments/new",
                    **plan_fields(message, world.home, action="preview"))  # fmt: skip
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert f"{required_impressions(0.02, 1.0, 0.05):,} impressions" in text
    assert "6 posts in all" in text
    assert db.scalar(select(Experiment.id)) is None


def test_planning_then_approving_through_the_pages(client, auth, world, db):
    home = world.home
    message = framings(db, home)
    auth.login(home.staff.email)
    response = post(client, auth, "/experiments/new", **plan_fields(message, home))
    assert response.status_code == 302
    experiment = db.scalars(select(Experiment)).one()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "A question earns more clicks" in page
    assert "Re-draw the assignment" in page
    assert "Approve and schedule" not in page  # staff cannot
    seed = experiment.seed
    assert post(client, auth, f"/experiments/{experiment.id}/redraw").status_code == 302
    db.refresh(experiment)
    assert experiment.seed != seed
    auth.logout()
    auth.login(home.manager.email)
    assert post(client, auth, f"/experiments/{experiment.id}/approve").status_code == 302
    db.refresh(experiment)
    assert experiment.status == "running"
    made = db.scalars(select(Post).where(Post.variant_id.in_([v.id for v in message.variants])))
    assert len(list(made)) == 6
    page = client.get(f"/experiments/{experiment.id}").get_data(as_text=True)
    assert "Progress" in page and "Conclude" in page
    response = post(client, auth, f"/experiments/{experiment.id}/conclude",
                    decision="inconclusive", learning="")  # fmt: skip
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Write what you learnt" in follow
    post(client, auth, f"/experiments/{experiment.id}/conclude", decision="adopt_variant",
         chosen_arm_id=experiment.arms[1].id, learning="Graduates answer questions.")  # fmt: skip
    db.refresh(experiment)
    assert (experiment.status, experiment.chosen_arm_id) == ("concluded", experiment.arms[1].id)
    library = client.get("/experiments/library?tag=question").get_data(as_text=True)
    assert "Graduates answer questions." in library
    assert "Graduates answer questions." not in client.get(
        "/experiments/library?audience=parents"
    ).get_data(as_text=True)


def test_bad_numbers_are_named_not_a_server_error(client, auth, world, db):
    message = framings(db, world.home)
    auth.login(world.home.staff.email)
    response = post(client, auth, "/experiments/new",
                    **plan_fields(message, world.home, alpha="nan", posts_per_arm="lots"))  # fmt: skip
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Alpha must be a number" in text
    assert "Posts per arm must be a number" in text


def test_a_refused_plan_lists_every_reason(client, auth, world, db):
    message = framings(db, world.home)
    auth.login(world.home.staff.email)
    response = post(client, auth, "/experiments/new",
                    **plan_fields(message, world.home, hypothesis="", channel_ids=[]))  # fmt: skip
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Write the hypothesis" in text and "Choose at least one channel." in text
    assert db.scalar(select(Experiment.id)) is None


def test_the_list_groups_experiments_by_state(client, auth, world, db):
    message = framings(db, world.home)
    auth.login(world.home.staff.email)
    post(client, auth, "/experiments/new", **plan_fields(message, world.home))
    page = client.get("/experiments").get_data(as_text=True)
    assert "Question or bare link?" in page
    assert page.index("Planned") < page.index("Question or bare link?") < page.index("Running")


def test_another_organisations_message_is_a_404_on_the_create_page(client, auth, world):
    auth.login(world.home.staff.email)
    foreign = world.other.campaign.messages[0].id
    assert client.get(f"/experiments/new?message_id={foreign}").status_code == 404
