"""The fake platform speaks each API closely enough for the real clients, and its faults work."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import tweepy
from atproto import Client as BlueskyClient
from atproto_client.exceptions import BadRequestError
from atproto_client.request import Request as BlueskyRequest
from atproto_server.auth.jwt import get_jwt_payload
from mastodon import Mastodon, MastodonRatelimitError
from requests.adapters import HTTPAdapter

from tests.fakeplatform import (
    BLUESKY_DID,
    POST_COLLECTION,
    X_DUPLICATE,
    FakePlatform,
    running_fake_platform,
)

PLATFORMS = ["x", "mastodon", "bluesky"]
AUTH = {"Authorization": "Bearer token"}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakePlatform]:
    with running_fake_platform(tmp_path) as platform:
        yield platform


def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    return http


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with session() as client:
        client.headers.update(AUTH)
        yield client


def create(
    http: requests.Session, fake: FakePlatform, platform: str, text: str = "Careers fair today"
) -> requests.Response:
    base = fake.base_url
    if platform == "x":
        return http.post(f"{base}/2/tweets", json={"text": text}, timeout=5)
    if platform == "mastodon":
        return http.post(f"{base}/api/v1/statuses", data={"status": text}, timeout=5)
    record = {"$type": POST_COLLECTION, "text": text, "createdAt": "2026-03-02T09:30:00Z"}
    body = {"repo": BLUESKY_DID, "collection": POST_COLLECTION, "record": record}
    return http.post(f"{base}/xrpc/com.atproto.repo.createRecord", json=body, timeout=5)


def external_id(platform: str, response: requests.Response) -> str:
    body = response.json()
    if platform == "x":
        return str(body["data"]["id"])
    return str(body["id"]) if platform == "mastodon" else str(body["uri"].rsplit("/", 1)[1])


def lookup(
    http: requests.Session, fake: FakePlatform, platform: str, post_id: str
) -> requests.Response:
    base = fake.base_url
    if platform == "x":
        return http.get(f"{base}/2/tweets/{post_id}", timeout=5)
    if platform == "mastodon":
        return http.get(f"{base}/api/v1/statuses/{post_id}", timeout=5)
    params = {"repo": BLUESKY_DID, "collection": POST_COLLECTION, "rkey": post_id}
    return http.get(f"{base}/xrpc/com.atproto.repo.getRecord", params=params, timeout=5)


def found(platform: str, response: requests.Response) -> bool:
    return response.status_code == 200 and (platform != "x" or "data" in response.json())


# --- uniqueness ----------------------------------------------------------------------------


def test_mastodon_repeated_idempotency_key_returns_the_original_status(fake, http):
    first = http.post(
        f"{fake.base_url}/api/v1/statuses", data={"status": "one"}, headers={"Idempotency-Key": "k"}
    )
    again = http.post(
        f"{fake.base_url}/api/v1/statuses", data={"status": "two"}, headers={"Idempotency-Key": "k"}
    )
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert [post["text"] for post in fake.posts()] == ["one"]


def test_concurrent_posts_with_one_idempotency_key_store_one_post(fake):
    barrier = threading.Barrier(20)

    def post(_: int) -> str:
        with session() as client:
            barrier.wait()
            response = client.post(
                f"{fake.base_url}/api/v1/statuses",
                data={"status": "Apply by Friday"},
                headers=AUTH | {"Idempotency-Key": "same-key"},
                timeout=30,
            )
            response.raise_for_status()
            return str(response.json()["id"])

    with ThreadPoolExecutor(20) as pool:
        ids = set(pool.map(post, range(20)))
    assert len(ids) == 1
    assert len(fake.posts()) == 1
    assert len(fake.calls("mastodon")) == 20


def test_x_refuses_the_same_text_with_its_duplicate_body(fake, http):
    create(http, fake, "x")
    again = create(http, fake, "x")
    assert (again.status_code, again.json()) == (403, X_DUPLICATE)
    assert len(fake.posts("x")) == 1


def test_mastodon_accepts_the_same_text_twice_without_a_key(fake, http):
    create(http, fake, "mastodon")
    create(http, fake, "mastodon")
    assert len(fake.posts("mastodon")) == 2


def test_bluesky_refuses_a_taken_rkey_with_a_500(fake, http):
    body = {"repo": BLUESKY_DID, "collection": POST_COLLECTION, "rkey": "3kabc"}
    body["record"] = {"text": "hi", "createdAt": "2026-03-02T09:30:00Z"}
    url = f"{fake.base_url}/xrpc/com.atproto.repo.createRecord"
    first, again = http.post(url, json=body), http.post(url, json=body)
    assert first.json()["uri"] == f"at://{BLUESKY_DID}/{POST_COLLECTION}/3kabc"
    assert (again.status_code, again.json()["error"]) == (500, "InternalServerError")
    assert len(fake.posts("bluesky")) == 1


# --- shapes and lookups --------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_created_post_is_found_by_lookup(fake, http, platform):
    post_id = external_id(platform, create(http, fake, platform))
    assert found(platform, lookup(http, fake, platform, post_id))


@pytest.mark.parametrize(
    ("platform", "status", "body_key"),
    [("x", 200, "errors"), ("mastodon", 404, "error"), ("bluesky", 400, "error")],
)
def test_a_missing_post_is_reported_as_each_platform_does(fake, http, platform, status, body_key):
    response = lookup(http, fake, platform, "1234")
    assert response.status_code == status
    assert body_key in response.json()
    assert "data" not in response.json()


def test_bluesky_missing_record_is_record_not_found(fake, http):
    assert lookup(http, fake, "bluesky", "nope").json()["error"] == "RecordNotFound"


def test_x_replaces_urls_with_tco_links_in_what_it_returns(fake, http):
    post_id = external_id("x", create(http, fake, "x", "Jobs https://example.com/jobs?a=1"))
    response = http.get(f"{fake.base_url}/2/tweets/{post_id}", params={"tweet.fields": "entities"})
    tweet = response.json()["data"]
    assert tweet["text"].startswith("Jobs https://t.co/")
    assert len(tweet["text"]) == len("Jobs https://t.co/") + 10
    assert tweet["entities"]["urls"][0]["expanded_url"] == "https://example.com/jobs?a=1"
    assert fake.posts("x")[0]["text"] == "Jobs https://example.com/jobs?a=1"


def test_x_user_timeline_is_newest_first_and_honours_start_time(fake, http):
    first = external_id("x", create(http, fake, "x", "first"))
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    second, third = (external_id("x", create(http, fake, "x", text)) for text in ("2nd", "3rd"))
    url = f"{fake.base_url}/2/users/42/tweets"
    body = http.get(url, params={"start_time": since}).json()
    assert [tweet["id"] for tweet in body["data"]] == [third, second]
    assert body["meta"]["result_count"] == 2
    assert [tweet["id"] for tweet in http.get(url).json()["data"]] == [third, second, first]


def test_x_user_timeline_pages_with_next_token(fake, http):
    ids = [external_id("x", create(http, fake, "x", f"post {n}")) for n in range(7)]
    url = f"{fake.base_url}/2/users/42/tweets"
    first_page = http.get(url, params={"max_results": 5}).json()
    token = first_page["meta"]["next_token"]
    rest = http.get(url, params={"max_results": 5, "pagination_token": token}).json()
    assert [t["id"] for t in first_page["data"] + rest["data"]] == ids[::-1]
    assert "next_token" not in rest["meta"]


def test_x_user_timeline_refuses_a_malformed_start_time(fake, http):
    response = http.get(f"{fake.base_url}/2/users/42/tweets", params={"start_time": "soon"})
    assert response.status_code == 400


def test_x_user_timeline_omits_data_when_empty(fake, http):
    assert http.get(f"{fake.base_url}/2/users/42/tweets").json() == {"meta": {"result_count": 0}}


def test_mastodon_account_statuses_are_newest_first_up_to_limit(fake, http):
    ids = [external_id("mastodon", create(http, fake, "mastodon", str(n))) for n in range(3)]
    url = f"{fake.base_url}/api/v1/accounts/1/statuses"
    statuses = http.get(url, params={"limit": 2}).json()
    assert [status["id"] for status in statuses] == ids[::-1][:2]


def test_mastodon_account_statuses_page_back_with_max_id(fake, http):
    ids = [external_id("mastodon", create(http, fake, "mastodon", str(n))) for n in range(3)]
    url = f"{fake.base_url}/api/v1/accounts/1/statuses"
    older = http.get(url, params={"max_id": ids[1]}).json()
    assert [status["id"] for status in older] == [ids[0]]


def test_mastodon_content_is_escaped_html_in_paragraphs(fake, http):
    create(http, fake, "mastodon", "Fish & <chips>\nhttps://example.com/a")
    content = http.get(f"{fake.base_url}/api/v1/accounts/1/statuses").json()[0]["content"]
    assert content.startswith('<p>Fish &amp; &lt;chips&gt;<br /><a href="https://example.com/a"')
    assert content.endswith("</a></p>")


@pytest.mark.parametrize(("count", "status"), [(300, 200), (301, 400)])
def test_bluesky_limits_text_to_300_graphemes(fake, http, count, status):
    # A thumbs-up with a skin tone is two code points but one grapheme.
    response = create(http, fake, "bluesky", "👍🏽" * count)
    assert response.status_code == status


@pytest.mark.parametrize(
    ("path", "body_key"),
    [
        ("/2/users/me", "detail"),
        ("/api/v1/accounts/verify_credentials", "error"),
        ("/xrpc/com.atproto.server.getSession", "message"),
    ],
)
def test_requests_without_authorization_get_401(fake, path, body_key):
    with session() as client:
        response = client.get(f"{fake.base_url}{path}")
    assert response.status_code == 401
    assert body_key in response.json()


def test_every_call_is_recorded_with_its_key_and_status(fake, http):
    fake.add_fault("status", status=503, times=1)
    headers = {"Idempotency-Key": "abc"}
    for _ in range(2):
        http.post(f"{fake.base_url}/api/v1/statuses", data={"status": "s"}, headers=headers)
    calls = fake.calls("mastodon")
    assert [(c["idempotency_key"], c["status"], c["fault"]) for c in calls] == [
        ("abc", 503, "status"),
        ("abc", 200, None),
    ]
    assert calls[0]["authorization"] == "Bearer token"


def test_bluesky_session_tokens_are_jwts_expiring_far_ahead(fake, http):
    url = f"{fake.base_url}/xrpc/com.atproto.server.createSession"
    session_body = http.post(url, json={"identifier": "careers", "password": "app-pass"}).json()
    assert "didDoc" not in session_body
    for token in ("accessJwt", "refreshJwt"):
        expires = get_jwt_payload(session_body[token]).exp
        assert expires is not None and expires > time.time() + 30 * 24 * 3600


def test_mastodon_instance_reports_character_limits(fake, http):
    statuses = http.get(f"{fake.base_url}/api/v2/instance").json()["configuration"]["statuses"]
    assert (statuses["max_characters"], statuses["characters_reserved_per_url"]) == (500, 23)


# --- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        ("x", {"title": "Service Unavailable", "type": "about:blank", "status": 503}),
        ("mastodon", {"error": "Service Unavailable"}),
        ("bluesky", {"error": "NotEnoughResources", "message": "Service Unavailable"}),
    ],
)
def test_status_fault_answers_the_platform_error_without_storing(fake, http, platform, expected):
    fake.add_fault("status", status=503)
    response = create(http, fake, platform)
    assert response.status_code == 503
    assert response.json().items() >= expected.items()
    assert fake.posts() == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_stored_status_fault_stores_the_post_then_answers_504(fake, http, platform):
    fake.add_fault("stored_status", platform=platform)
    assert create(http, fake, platform).status_code == 504
    assert len(fake.posts(platform)) == 1


@pytest.mark.parametrize(
    ("platform", "reset_header", "parse"),
    [
        ("x", "x-rate-limit-reset", int),
        ("mastodon", "X-RateLimit-Reset", dt.datetime.fromisoformat),
        ("bluesky", "RateLimit-Reset", int),
    ],
)
def test_rate_limit_fault_sends_retry_after_and_the_platform_reset(
    fake, http, platform, reset_header, parse
):
    fake.add_fault("rate_limit", retry_after=7)
    response = create(http, fake, platform)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    parse(response.headers[reset_header])
    assert fake.posts() == []


def test_mastodon_rate_limit_reset_is_iso_with_microseconds(fake, http):
    fake.add_fault("rate_limit", platform="mastodon")
    reset = create(http, fake, "mastodon").headers["X-RateLimit-Reset"]
    assert len(reset.split(".")[1]) == len("123456Z")


def test_duplicate_fault_answers_x_duplicate_body_without_storing(fake, http):
    fake.add_fault("duplicate")
    response = create(http, fake, "x")
    assert (response.status_code, response.json()) == (403, X_DUPLICATE)
    assert fake.posts() == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_accept_then_drop_stores_the_post_and_the_client_gets_no_response(fake, http, platform):
    fake.add_fault("accept_then_drop", platform=platform)
    with pytest.raises(requests.ConnectionError):
        create(http, fake, platform)
    assert len(fake.posts(platform)) == 1
    assert fake.calls(platform)[-1]["fault"] == "accept_then_drop"


def test_accept_then_drop_is_a_transport_error_for_httpx(fake):
    fake.add_fault("accept_then_drop")
    with httpx.Client(trust_env=False) as client, pytest.raises(httpx.TransportError):
        client.post(f"{fake.base_url}/2/tweets", json={"text": "hi"}, headers=AUTH)
    assert len(fake.posts()) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_success_not_stored_answers_a_fresh_id_but_stores_nothing(fake, http, platform):
    fake.add_fault("success_not_stored", times=1)
    ghost = external_id(platform, create(http, fake, platform))
    real = external_id(platform, create(http, fake, platform, "another"))
    assert ghost != real
    assert not found(platform, lookup(http, fake, platform, ghost))
    assert len(fake.posts(platform)) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_lookup_down_breaks_lookups_but_not_creates(fake, http, platform):
    fake.add_fault("lookup_down")
    post_id = external_id(platform, create(http, fake, platform))
    assert lookup(http, fake, platform, post_id).status_code == 503


def test_delay_fault_answers_late_but_normally(fake, http):
    fake.add_fault("delay", seconds=0.3)
    started = time.monotonic()
    response = create(http, fake, "x")
    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3


def test_fault_with_times_applies_to_that_many_requests_then_stops(fake, http):
    fake.add_fault("status", status=502, times=2)
    statuses = [create(http, fake, "mastodon", str(n)).status_code for n in range(3)]
    assert statuses == [502, 502, 200]


def test_fault_times_is_consumed_once_per_concurrent_request(fake):
    fake.add_fault("status", status=500, times=3)

    def post(n: int) -> int:
        with session() as client:
            client.headers.update(AUTH)
            return create(client, fake, "x", f"post {n}").status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(post, range(10)))
    assert sorted(statuses) == [201] * 7 + [500] * 3
    assert fake.faults()[0]["remaining"] == 0


def test_fault_limited_to_a_platform_spares_the_others(fake, http):
    fake.add_fault("status", platform="bluesky", status=500)
    assert create(http, fake, "x").status_code == 201
    assert create(http, fake, "bluesky").status_code == 500


def test_fault_limited_to_creates_spares_lookups(fake, http):
    post_id = external_id("mastodon", create(http, fake, "mastodon"))
    fake.add_fault("status", path="create", status=500)
    assert lookup(http, fake, "mastodon", post_id).status_code == 200
    assert create(http, fake, "mastodon", "again").status_code == 500


def test_status_fault_can_send_another_body_such_as_html(fake, http):
    fake.add_fault("status", status=502, body="<html>Bad Gateway</html>")
    response = create(http, fake, "x")
    assert (response.status_code, response.text) == (502, "<html>Bad Gateway</html>")


def test_clearing_faults_restores_normal_answers(fake, http):
    fake.set_faults({"kind": "status", "status": 503})
    fake.clear_faults()
    assert create(http, fake, "x").status_code == 201


def test_set_faults_replaces_the_earlier_ones(fake, http):
    fake.add_fault("status", status=503)
    fake.set_faults({"kind": "status", "status": 401})
    assert create(http, fake, "x").status_code == 401


def test_reset_forgets_posts_calls_and_faults(fake, http):
    create(http, fake, "x")
    fake.add_fault("status")
    fake.reset()
    assert (fake.posts(), fake.calls(), fake.faults()) == ([], [], [])


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "status", "status": 418},
        {"kind": "status", "times": 0},
        {"kind": "status", "path": "everything"},
        {"kind": "status", "platform": "myspace"},
        {"kind": "duplicate", "platform": "mastodon"},
    ],
)
def test_an_invalid_fault_is_refused(fake, spec):
    with pytest.raises(requests.HTTPError):
        fake.set_faults(spec)
    assert fake.faults() == []


# --- through the real client libraries -----------------------------------------------------


class ToFake(HTTPAdapter):
    """Send tweepy's hard-coded https://api.twitter.com requests to the fake instead."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def send(self, request: Any, **kwargs: Any) -> Any:
        request.url = self.base_url + request.url.removeprefix("https://api.twitter.com")
        return super().send(request, **(kwargs | {"proxies": {}}))


@pytest.fixture
def twitter(fake) -> Iterator[tweepy.Client]:
    client = tweepy.Client(
        consumer_key="ck", consumer_secret="cs", access_token="at", access_token_secret="ats"
    )
    client.session.mount("https://api.twitter.com/", ToFake(fake.base_url))
    yield client
    client.session.close()


@pytest.fixture
def mastodon(fake) -> Iterator[Mastodon]:
    with session() as client_session:
        yield Mastodon(
            api_base_url=fake.base_url,
            access_token="token",
            version_check_mode="none",
            ratelimit_method="throw",
            session=client_session,
        )


@pytest.fixture
def bluesky(fake) -> Iterator[BlueskyClient]:
    request = BlueskyRequest(trust_env=False)
    yield BlueskyClient(base_url=fake.base_url, request=request)
    request.close()


def test_mastodon_py_posting_twice_with_one_key_makes_one_post(fake, mastodon):
    first = mastodon.status_post("hi", idempotency_key="k")
    again = mastodon.status_post("hi", idempotency_key="k")
    assert first.id == again.id
    assert len(fake.posts()) == 1


def test_mastodon_py_reads_the_rate_limit_headers(mastodon):
    mastodon.status_post("hi")
    assert mastodon.ratelimit_remaining == 299
    assert mastodon.ratelimit_reset > time.time()


def test_mastodon_py_raises_its_rate_limit_error_on_429(fake, mastodon):
    fake.add_fault("rate_limit", retry_after=3)
    with pytest.raises(MastodonRatelimitError):
        mastodon.status_post("hi")


def test_mastodon_py_reads_the_instance_limits(mastodon):
    assert mastodon.instance_v2().configuration.statuses.max_characters == 500


def test_tweepy_creates_a_tweet_and_gets_forbidden_for_the_same_text(fake, twitter):
    created = twitter.create_tweet(text="Careers fair https://example.com/fair")
    with pytest.raises(tweepy.Forbidden):
        twitter.create_tweet(text="Careers fair https://example.com/fair")
    assert fake.posts()[0]["external_id"] == created.data["id"]


def test_tweepy_lookup_of_a_missing_tweet_has_errors_and_no_data(twitter):
    response = twitter.get_tweet("1", user_auth=True)
    assert response.data is None
    assert response.errors[0]["title"] == "Not Found Error"


def test_tweepy_too_many_requests_carries_the_reset_time(fake, twitter):
    fake.add_fault("rate_limit", retry_after=60)
    with pytest.raises(tweepy.TooManyRequests) as caught:
        twitter.create_tweet(text="hi")
    assert caught.value.reset_time >= int(time.time()) + 59


def test_atproto_logs_in_and_sends_a_post(fake, bluesky):
    bluesky.login("careers.fake.test", "abcd-efgh-ijkl-mnop")
    sent = bluesky.send_post("Graduate scheme open")
    assert sent.uri.startswith(f"at://{BLUESKY_DID}/{POST_COLLECTION}/")
    assert [post["text"] for post in fake.posts("bluesky")] == ["Graduate scheme open"]


def test_atproto_reports_an_over_long_post_as_bad_request(bluesky):
    bluesky.login("careers.fake.test", "abcd-efgh-ijkl-mnop", fetch_bsky_profile=False)
    with pytest.raises(BadRequestError):
        bluesky.send_post("a" * 301, profile_identify=BLUESKY_DID)


# --- as its own process --------------------------------------------------------------------


def test_runs_as_a_module_and_prints_its_url(tmp_path):
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "tests.fakeplatform", "--db", str(tmp_path / "f.sqlite3")]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            with session() as client:
                assert client.get(f"{base_url}/_fake/posts", timeout=5).json() == []
        finally:
            process.terminate()
