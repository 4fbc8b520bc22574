"""GET /api/v1/experiments/<id>/report and /api/v1/reports/framing: scope, shape, isolation."""

from __future__ import annotations

import datetime as dt

import pytest

import campaign.web.api.experiment_reports  # noqa: F401 - registers the routes (see the report)
from campaign.analysis import to_json
from campaign.services.experiment_reports import experiment_report
from campaign.services.tokens import create_token
from tests.conftest import NOW
from tests.report_fixtures import DAY, HOUR, ArmSpec, PostSpec, Reading, make_experiment

T0 = dt.datetime(2026, 2, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def bearer(db, world):
    def make(scopes, org=None):
        _token, plain = create_token(db, (org or world.home.org).id, "test", scopes, None, NOW)
        return {"Authorization": f"Bearer {plain}"}

    return make


def _arms(n: int) -> list[ArmSpec]:
    readings = [Reading("24h", DAY, 2000), Reading("1h", HOUR, 300)]
    day = dt.timedelta(days=1)
    return [
        ArmSpec("Bare link", ["bare_link"], [PostSpec(T0, readings, [60] * 20)]),
        ArmSpec("Context", ["context"], [PostSpec(T0 + day, readings, [60] * n)]),
    ]


@pytest.fixture
def experiments(db, world):
    home = make_experiment(db, world.home.org, world.home.channel, _arms(40), now=NOW)
    theirs = make_experiment(db, world.other.org, world.other.channel, _arms(25), now=NOW)
    return home, theirs


def test_report_is_the_compare_contract_plus_the_experiment(client, db, world, bearer, experiments):
    home, _ = experiments
    response = client.get(f"/api/v1/experiments/{home.id}/report", headers=bearer(["read"]))
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    expected = experiment_report(db, home.id, world.home.org.id, NOW)
    contract = to_json(expected.comparison)
    assert data["comparisons"] == contract["comparisons"]
    assert [a["clicks"] for a in data["arms"]] == [20, 40]
    assert data["experiment"]["id"] == home.id and data["metric"] == "clicks_per_impression"
    assert data["verdict"] == expected.verdict and data["summary"] == expected.summary


def test_age_is_a_query_parameter(client, bearer, experiments):
    home, _ = experiments
    response = client.get(f"/api/v1/experiments/{home.id}/report?age=1h", headers=bearer(["read"]))
    assert [a["impressions"] for a in response.get_json()["arms"]] == [300, 300]
    bad = client.get(f"/api/v1/experiments/{home.id}/report?age=soon", headers=bearer(["read"]))
    assert bad.status_code == 422
    assert bad.get_json()["error"]["message"].startswith("age: age 'soon'")


def test_another_organisations_experiment_is_404(client, bearer, experiments):
    _, theirs = experiments
    response = client.get(f"/api/v1/experiments/{theirs.id}/report", headers=bearer(["read"]))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_token_and_scope_are_required(client, bearer, experiments):
    home, _ = experiments
    assert client.get(f"/api/v1/experiments/{home.id}/report").status_code == 401
    response = client.get(
        f"/api/v1/experiments/{home.id}/report", headers=bearer(["vacancies:write"])
    )
    assert response.status_code == 403


def test_framing_report(client, bearer, experiments):
    response = client.get("/api/v1/reports/framing", headers=bearer(["read"]))
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["reference"] == "bare_link"
    assert data["experiments"] == [f"Context or bare link (#{experiments[0].id})"]
    assert {row["tag"] for row in data["league"]} == {"bare_link", "context"}
    assert next(r for r in data["league"] if r["tag"] == "context")["label"] == "Context"
    bad = client.get("/api/v1/reports/framing?reference=story", headers=bearer(["read"]))
    assert bad.status_code == 422


def test_both_operations_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/experiments/{experiment_id}/report"]
    assert "get" in paths["/api/v1/reports/framing"]
