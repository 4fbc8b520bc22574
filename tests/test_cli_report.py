"""`campaign report EXPERIMENT_ID [--format text|json|csv] [--age 24h]` on each database."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from campaign import create_app
from campaign.cli import cli
from campaign.migrate import upgrade
from campaign.web.context import state
from tests import factories
from tests.conftest import settings_for
from tests.report_fixtures import DAY, HOUR, ArmSpec, PostSpec, Reading, make_experiment

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
DAY_STEP = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def app(db_kind, fresh_database_url, tmp_path_factory):
    url = fresh_database_url(db_kind)
    upgrade(url)
    application = create_app(settings_for(url, tmp_path_factory.mktemp("cli-report")))
    yield application
    state(application).engine.dispose()


@pytest.fixture(scope="module")
def experiment_id(app):
    with state(app).session_factory.begin() as session:
        org = factories.make_org(session, "cli-report", T0)
        channel = factories.make_channel(session, org, T0)
        readings = [Reading("24h", DAY, 1000), Reading("1h", HOUR, 100)]
        exp = make_experiment(
            session,
            org,
            channel,
            [
                ArmSpec("=Bare link", ["bare_link"], [PostSpec(T0, readings, [60] * 12)]),
                ArmSpec("Context", ["context"], [PostSpec(T0 + DAY_STEP, readings, [60] * 30)]),
            ],
            now=T0,
        )
        return exp.id


def invoke(app, *args):
    return app.test_cli_runner().invoke(cli, list(args))


def test_text_is_the_default(app, experiment_id):
    result = invoke(app, "report", str(experiment_id))
    assert result.exit_code == 0, result.output
    assert "Experiment" in result.output and "=Bare link (control): 12 clicks from 1,000" in (
        result.output
    )


def test_json_has_the_compare_contract_and_the_experiment(app, experiment_id):
    result = invoke(app, "report", str(experiment_id), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [a["name"] for a in data["arms"]] == ["=Bare link", "Context"]
    assert data["verdict"] in ("better", "not_enough_data", "no_clear_difference", "worse")
    assert data["experiment"]["id"] == experiment_id and data["age"] == "24h"


def test_csv_defuses_formulas(app, experiment_id):
    result = invoke(app, "report", str(experiment_id), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0][:3] == ["experiment_id", "experiment", "arm"]
    assert rows[1][2] == "'=Bare link"


def test_age_option_reads_other_snapshots(app, experiment_id):
    result = invoke(app, "report", str(experiment_id), "--format", "json", "--age", "1h")
    assert result.exit_code == 0, result.output
    assert [a["impressions"] for a in json.loads(result.output)["arms"]] == [100, 100]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999"], "there is no experiment 999999"),
        (["{id}", "--age", "soon"], "age 'soon' is not a whole number"),
    ],
)
def test_user_errors_exit_1_with_one_line(app, experiment_id, args, message):
    result = invoke(app, "report", *[a.format(id=experiment_id) for a in args])
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.count("\n") == 1


def test_bad_usage_exits_2(app):
    assert invoke(app, "report", "abc").exit_code == 2
    assert invoke(app, "report", "1", "--format", "xml").exit_code == 2
