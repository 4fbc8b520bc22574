"""The experiment report page and the framing report page: content, chart and table, isolation."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from tests.conftest import NOW
from tests.report_fixtures import DAY, HOUR, ArmSpec, PostSpec, Reading, make_experiment

T0 = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)


def _arms(extra: int, tags: tuple[str, str] = ("bare_link", "context")) -> list[ArmSpec]:
    readings = [Reading("24h", DAY, 2000), Reading("1h", HOUR, 300)]
    day = dt.timedelta(days=1)
    return [
        ArmSpec("Bare link", [tags[0]], [PostSpec(T0, readings, [60] * 20)]),
        ArmSpec("With context", [tags[1]], [PostSpec(T0 + day, readings, [60] * extra)]),
    ]


@pytest.fixture
def experiments(db, world):
    home = make_experiment(
        db, world.home.org, world.home.channel, _arms(45), status="concluded", now=NOW
    )
    home.learning = "Context works for finalists"
    home.decision = "adopt_variant"
    db.flush()
    theirs = make_experiment(db, world.other.org, world.other.channel, _arms(25), now=NOW)
    return home, theirs


def _chart(body: str, name: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{name}">(.*?)</script>', body, re.S)
    assert found, body
    return json.loads(found.group(1))


def test_experiment_report_page(client, auth, world, experiments):
    home, _ = experiments
    auth.login(world.home.staff.email)
    response = client.get(f"/experiments/{home.id}/report")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Report: Context or bare link" in body
    assert 'class="card verdict verdict-' in body
    assert "Context works for finalists" in body
    # The chart's figures are also in the table: the interval bars and their table rows.
    chart = _chart(body, "report-data")
    assert chart["labels"] == ["Bare link", "With context"]
    assert len(chart["series"][0]["values"]) == 2
    assert "Chance of being best" in body and "Against the control" in body
    assert "2,000" in body


def test_a_bad_age_is_named_on_the_page(client, auth, world, experiments):
    home, _ = experiments
    auth.login(world.home.staff.email)
    response = client.get(f"/experiments/{home.id}/report?age=soon")
    assert response.status_code == 200
    assert "age &#39;soon&#39; is not a whole number" in response.get_data(as_text=True)
    at_1h = client.get(f"/experiments/{home.id}/report?age=1h").get_data(as_text=True)
    assert "<td>300</td>" in at_1h


def test_another_organisations_report_is_404(client, auth, world, experiments):
    _, theirs = experiments
    auth.login(world.home.admin.email)
    assert client.get(f"/experiments/{theirs.id}/report").status_code == 404


def test_framing_report_page(client, auth, world, experiments, db):
    make_experiment(
        db, world.home.org, world.home.channel, _arms(30, ("bare_link", "question")),
        name="Questions", now=NOW,
    )  # fmt: skip
    auth.login(world.home.staff.email)
    body = client.get("/reports/framing").get_data(as_text=True)
    assert "Framing report" in body
    chart = _chart(body, "framing-data")
    assert set(chart["labels"]) == {"Bare link", "Context", "Question"}
    assert "Context or bare link (#" in body and "Questions (#" in body
    # Only the member's organisation's experiments are pooled.
    assert body.count("<li>") >= 2 and "other-uni" not in body
    bad = client.get("/reports/framing?reference=story")
    assert bad.status_code == 200
    assert "no running or concluded experiment has an arm tagged" in bad.get_data(as_text=True)


def test_framing_report_without_experiments(client, auth, world):
    auth.login(world.home.staff.email)
    body = client.get("/reports/framing").get_data(as_text=True)
    assert "No running or concluded experiment compares framings" in body
