import re

import pytest

from campaign.services.tokens import create_token
from tests.conftest import NOW


@pytest.fixture
def bearer(db, world):
    def make(scopes, org=None):
        _token, plain = create_token(db, (org or world.home.org).id, "test", scopes, None, NOW)
        return {"Authorization": f"Bearer {plain}"}

    return make


def _assert_error_shape(response, status, code):
    assert response.status_code == status
    assert set(response.json) == {"error"}
    assert response.json["error"]["code"] == code
    assert isinstance(response.json["error"]["message"], str) and response.json["error"]["message"]
    assert isinstance(response.json["error"]["details"], dict)


def test_health_needs_no_token_and_reports_no_worker_yet(client):
    response = client.get("/api/v1/health")
    assert response.json == {"status": "ok", "database": "ok", "worker": {"last_tick": None}}


def test_healthz_is_a_plain_liveness_check(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_missing_token_is_401_in_the_error_shape(client):
    response = client.get("/api/v1/campaigns")
    _assert_error_shape(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer cmp_deadbeef_wrong", "Basic abc", "Bearer "]
)
def test_bad_tokens_are_401(client, world, header):
    _assert_error_shape(
        client.get("/api/v1/campaigns", headers={"Authorization": header}), 401, "unauthorized"
    )


def test_read_scope_lists_only_the_tokens_organisation(client, world, bearer):
    response = client.get("/api/v1/campaigns", headers=bearer(["read"]))
    assert response.status_code == 200
    names = [c["name"] for c in response.json["items"]]
    assert names == [world.home.campaign.name]
    variant = response.json["items"][0]["messages"][0]["variants"][0]
    assert variant["audience"] == "students"


def test_token_without_the_scope_is_403(client, world, bearer):
    _assert_error_shape(
        client.get("/api/v1/campaigns", headers=bearer(["posts:write"])), 403, "forbidden"
    )
    _assert_error_shape(client.get("/api/v1/tokens", headers=bearer(["read"])), 403, "forbidden")


def test_admin_scope_covers_the_others(client, world, bearer):
    headers = bearer(["admin"])
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 200
    listed = client.get("/api/v1/tokens", headers=headers).json["items"]
    assert all("hash" not in key for item in listed for key in item)
    assert {item["prefix"] for item in listed}


def test_unknown_api_path_is_404_in_the_error_shape(client):
    _assert_error_shape(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_in_the_error_shape(client):
    _assert_error_shape(client.post("/api/v1/health"), 405, "method_not_allowed")


def test_openapi_document_lists_every_api_operation(client, app):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.1")
    documented = {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi":
            continue
        # Flask's converters ("<int:id>") appear as plain parameters ("{id}") in the document.
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_api_does_not_need_csrf(client, world, bearer):
    # Bearer tokens are not sent by browsers on their own, so CSRF does not apply to the API.
    assert client.get("/api/v1/campaigns", headers=bearer(["read"])).status_code == 200
