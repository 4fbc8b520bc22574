"""POST /api/v1/analysis/compare and `campaign analyse`: the same engine, the same answers."""

import json
import math

import pytest
from sqlalchemy import func, select

from campaign.cli import cli
from campaign.models import AuditEvent, Campaign
from campaign.services.tokens import create_token
from tests.analysis.reference import CONTRACT_ARM_KEYS, CONTRACT_COMPARISON_KEYS
from tests.conftest import NOW

URL = "/api/v1/analysis/compare"
GOOD = {
    "arms": [
        {"name": "bare link", "impressions": 3000, "clicks": 30},
        {"name": "context", "impressions": 3100, "clicks": 52},
    ]
}


def _arms(n):
    return [{"name": f"arm {i}", "impressions": 1000, "clicks": 10 + i} for i in range(n)]


# (body, the field the error must name)
BAD_INPUTS = [
    (
        {
            "arms": [
                {"name": "a", "impressions": 10, "clicks": 11},
                {"name": "b", "impressions": 10, "clicks": 1},
            ]
        },
        "arms[0].clicks",
    ),
    (
        {
            "arms": [
                {"name": "a", "impressions": 10, "clicks": -1},
                {"name": "b", "impressions": 10, "clicks": 1},
            ]
        },
        "arms[0].clicks",
    ),
    (
        {
            "arms": [
                {"name": "a", "impressions": 10, "clicks": 1},
                {"name": "b", "impressions": 10.5, "clicks": 1},
            ]
        },
        "arms[1].impressions",
    ),
    (
        {
            "arms": [
                {"name": "a", "impressions": "ten", "clicks": 1},
                {"name": "b", "impressions": 10, "clicks": 1},
            ]
        },
        "arms[0].impressions",
    ),
    (
        {
            "arms": [
                {"name": "a", "impressions": 10, "clicks": None},
                {"name": "b", "impressions": 10, "clicks": 1},
            ]
        },
        "arms[0].clicks",
    ),
    (
        {
            "arms": [
                {"name": "a", "impressions": 10, "clicks": True},
                {"name": "b", "impressions": 10, "clicks": 1},
            ]
        },
        "arms[0].clicks",
    ),
    ({"arms": _arms(1)}, "arms"),
    ({"arms": _arms(9)}, "arms"),
    ({"control_index": 2, "arms": _arms(2)}, "control_index"),
    ({"control_index": -1, "arms": _arms(2)}, "control_index"),
    ({"alpha": 0, "arms": _arms(2)}, "alpha"),
    ({"alpha": 0.6, "arms": _arms(2)}, "alpha"),
    ({"alpha": "0.05", "arms": _arms(2)}, "alpha"),
    (
        {
            "arms": [
                {"name": "a", "impressions": 10**13, "clicks": 1},
                {"name": "b", "impressions": 10, "clicks": 1},
            ]
        },
        "arms[0].impressions",
    ),
    ([1, 2, 3], "body"),
]
MALFORMED = ['{"arms": [', "not json at all", "", '{"arms": NaN}']


@pytest.fixture
def read_token(db, world):
    _token, plain = create_token(db, world.home.org.id, "calc", ["read"], None, NOW)
    return {"Authorization": f"Bearer {plain}"}


def test_compare_answers_with_the_contract_fields(client, read_token):
    response = client.post(URL, json=GOOD, headers=read_token)
    assert response.status_code == 200
    body = response.json
    assert [a["name"] for a in body["arms"]] == ["bare link", "context"]
    for arm in body["arms"]:
        assert set(arm) >= CONTRACT_ARM_KEYS
    (comparison,) = body["comparisons"]
    assert set(comparison) >= CONTRACT_COMPARISON_KEYS
    assert body["verdict"] in {"not_enough_data", "no_clear_difference", "better", "worse"}
    assert isinstance(body["required_impressions_per_arm"], int)
    assert body["summary"].endswith(".")
    assert math.isclose(body["arms"][1]["rate"], 52 / 3100)


def test_compare_needs_a_token_with_read_scope(client, db, world):
    assert client.post(URL, json=GOOD).status_code == 401
    _token, plain = create_token(db, world.home.org.id, "w", ["posts:write"], None, NOW)
    assert (
        client.post(URL, json=GOOD, headers={"Authorization": f"Bearer {plain}"}).status_code == 403
    )


def test_compare_stores_nothing(client, db, read_token):
    before = (
        db.scalar(select(func.count(AuditEvent.id))),
        db.scalar(select(func.count(Campaign.id))),
    )
    client.post(URL, json=GOOD, headers=read_token)
    after = (
        db.scalar(select(func.count(AuditEvent.id))),
        db.scalar(select(func.count(Campaign.id))),
    )
    assert before == after


@pytest.mark.parametrize(("body", "field"), BAD_INPUTS)
def test_bad_input_is_422_naming_the_field(client, read_token, body, field):
    response = client.post(URL, json=body, headers=read_token)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid_input"
    assert response.json["error"]["details"]["field"] == field
    assert field in response.json["error"]["message"]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_json_is_422(client, read_token, text):
    response = client.post(URL, data=text, content_type="application/json", headers=read_token)
    assert response.status_code == 422
    assert response.json["error"]["details"]["field"] == "body"


def test_zero_clicks_give_nulls_not_nan(client, read_token):
    body = {
        "arms": [
            {"name": "a", "impressions": 500, "clicks": 0},
            {"name": "b", "impressions": 500, "clicks": 0},
        ]
    }
    response = client.post(URL, json=body, headers=read_token)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "NaN" not in text and "Infinity" not in text
    assert response.json["comparisons"][0]["relative_lift_95"] is None


def _invoke(app, *args, stdin=None):
    return app.test_cli_runner().invoke(cli, list(args), input=stdin)


def test_analyse_prints_the_same_json_as_the_api(app, client, read_token, tmp_path):
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(GOOD))
    result = _invoke(app, "analyse", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == client.post(URL, json=GOOD, headers=read_token).json


def test_analyse_reads_stdin(app):
    result = _invoke(app, "analyse", "-", stdin=json.dumps(GOOD))
    assert result.exit_code == 0
    assert json.loads(result.output)["arms"][0]["name"] == "bare link"


@pytest.mark.parametrize(("body", "field"), BAD_INPUTS)
def test_analyse_bad_input_exits_1_with_one_line_naming_the_field(app, body, field):
    result = _invoke(app, "analyse", "-", stdin=json.dumps(body))
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert field in result.stderr


@pytest.mark.parametrize("text", MALFORMED)
def test_analyse_malformed_json_exits_1(app, text):
    result = _invoke(app, "analyse", "-", stdin=text)
    assert result.exit_code == 1
    assert "body" in result.stderr


def test_analyse_missing_file_is_bad_usage(app, tmp_path):
    assert _invoke(app, "analyse", str(tmp_path / "missing.json")).exit_code == 2
