"""The SSRF guard: every refused destination leaves the loopback canary untouched (S5)."""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from campaign.netguard import (
    AllowList,
    BlockedDestination,
    BlockedHttpxDestination,
    ResponseTooLarge,
    guarded_httpx_transport,
    guarded_session,
    is_public_address,
    parse_allow_list,
    read_capped,
)

NOTHING = AllowList()
LOOPBACK = parse_allow_list(["127.0.0.1"])
PUBLIC_IP = "8.8.8.8"  # only ever handed out by the fake resolver; never connected to


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")


# --- servers on loopback ------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: list[str] = []
        self.connections = 0

    def verify_request(self, request: object, client_address: object) -> bool:
        self.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        path, _, query = self.path.partition("?")
        if path == "/redirect":
            self._reply(302, b"", location=unquote(query))
        elif path == "/loop":
            self._reply(302, b"", location="/loop")
        elif path == "/slow":
            time.sleep(0.3)
            self._reply(200, b"slow")
        elif path.startswith("/bytes/"):
            self._reply(200, b"x" * int(path.rsplit("/", 1)[1]))
        elif path.startswith("/stream/"):  # no Content-Length: the body ends when we close
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"y" * int(path.rsplit("/", 1)[1]))
        else:
            self._reply(200, b"canary")

    def _reply(self, status: int, body: bytes, location: str | None = None) -> None:
        self.send_response(status)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Server:
    httpd: _Server
    scheme: str = "http"

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    @property
    def hits(self) -> list[str]:
        return self.httpd.hits

    @property
    def untouched(self) -> bool:
        return self.httpd.connections == 0 and not self.httpd.hits


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[tuple[_Server, threading.Thread]] = []

    def start(tls: ssl.SSLContext | None = None) -> Server:
        httpd = _Server()
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
        thread.start()
        started.append((httpd, thread))
        return Server(httpd, "https" if tls else "http")

    yield start
    for httpd, thread in started:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def canary(serve: Callable[..., Server]) -> Server:
    return serve()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel backlog does) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        # Should a timeout go missing, the reset from closing fails the test instead of hanging it.
        deadline = threading.Timer(2.0, listener.close)
        deadline.start()
        yield listener.getsockname()[1]
        deadline.cancel()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- a fake resolver ----------------------------------------------------------------------


@dataclass
class FakeDNS:
    """Answers for made-up names, in turn (the last one repeats); real lookups for the rest."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS()
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # type: ignore[no-untyped-def]
        if host not in fake.answers:
            return real(host, port, family, type, proto, flags)
        fake.lookups.append(host)
        turns = fake.answers[host]
        ips = turns.pop(0) if len(turns) > 1 else turns[0]
        port = int(port or 0)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ips
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


def _get(allow: AllowList, url: str, **kwargs: object) -> requests.Response:
    with guarded_session(allow) as session:
        response = session.get(url, **kwargs)  # type: ignore[arg-type]
        response.close()
        return response


# --- parse_allow_list ---------------------------------------------------------------------


def test_allow_list_is_empty_by_default() -> None:
    assert parse_allow_list([]) == AllowList()


def test_allow_list_parses_names_addresses_and_networks() -> None:
    allow = parse_allow_list(["LocalHost", "mastodon.internal.", "127.0.0.1", "10.0.0.0/8", "::1"])
    assert allow.hosts == {"localhost", "mastodon.internal"}
    assert [str(net) for net in allow.networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "http://example.org",
        "10.0.0.0/33",
        "10.0.0.1/8",
        "*.example.org",
        "-bad.example",
        "under_score.example",
        "127.1",
        "0x7f.1",
        "a" * 64 + ".example",
        "host name",
    ],
)
def test_allow_list_rejects_a_bad_entry_by_name(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        parse_allow_list(["localhost", entry])


# --- is_public_address --------------------------------------------------------------------

NON_PUBLIC = [
    "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "203.0.113.80", "::1", "::",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "fe80::1%eth0", "fe80::1",
    "fc00::1", "ff02::1", "64:ff9b::a00:1", "64:ff9b:1::1", "2002:7f00:1::", "fec0::1",
]  # fmt: skip


@pytest.mark.parametrize("ip", NON_PUBLIC)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public_address(ip, NOTHING)


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"]
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert is_public_address(ip, NOTHING)


@pytest.mark.parametrize(
    ("entries", "ip"),
    [
        (["10.0.0.0/8"], "10.1.2.3"),
        (["127.0.0.1"], "::ffff:127.0.0.1"),
        (["::1"], "::1"),
        (["fe80::/10"], "fe80::1%eth0"),
        (["203.0.113.0/24"], "203.0.113.80"),
    ],
)
def test_allow_listed_networks_are_allowed(entries: list[str], ip: str) -> None:
    assert is_public_address(ip, parse_allow_list(entries))


def test_allow_listed_network_does_not_open_its_neighbours() -> None:
    assert not is_public_address("10.0.0.2", parse_allow_list(["10.0.0.1"]))


# --- the requests session: blocked destinations -------------------------------------------

LOOPBACK_SPELLINGS = [
    "127.0.0.1", "127.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "localhost",
    pytest.param("[::1]", marks=IPV6),
]  # fmt: skip


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_loopback_in_any_spelling_is_refused(canary: Server, host: str) -> None:
    with pytest.raises(BlockedDestination, match=r"URL not allowed: .* loopback address"):
        _get(NOTHING, f"http://{host}:{canary.port}/")
    assert canary.untouched


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("fd00::1", "private"),
    ],
)
def test_a_name_resolving_to_internal_space_is_refused_before_connecting(
    dns: FakeDNS, ip: str, kind: str
) -> None:
    # A connect attempt would raise pytest-socket's error instead, failing the test.
    dns.answers["public.example"] = [[ip]]
    with pytest.raises(BlockedDestination, match=f"URL not allowed: 'public.example' .* {kind} "):
        _get(NOTHING, "http://public.example/feed")


def test_one_internal_answer_among_public_ones_is_enough_to_refuse(dns: FakeDNS) -> None:
    dns.answers["mixed.example"] = [[PUBLIC_IP, "10.0.0.1"]]
    with pytest.raises(BlockedDestination):
        _get(NOTHING, "http://mixed.example/")


def test_refusal_is_not_a_connection_error_and_keeps_the_url_secret(dns: FakeDNS) -> None:
    dns.answers["public.example"] = [["10.0.0.1"]]
    with pytest.raises(BlockedDestination) as caught:
        _get(NOTHING, "http://user:hunter2@public.example/feed?token=s3cret")
    assert not isinstance(caught.value, requests.ConnectionError)
    assert "hunter2" not in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "10.0.0.1" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:{port}/_x", "ftp://127.0.0.1:{port}/"]
)
def test_other_schemes_are_refused(canary: Server, url: str) -> None:
    with pytest.raises(BlockedDestination, match="URL not allowed: scheme"):
        _get(LOOPBACK, url.format(port=canary.port))
    assert canary.untouched


def test_a_closed_port_is_a_connection_error_not_a_refusal(closed_port: int) -> None:
    with pytest.raises(requests.ConnectionError) as caught:
        _get(LOOPBACK, f"http://127.0.0.1:{closed_port}/")
    assert not isinstance(caught.value, BlockedDestination)


# --- redirects and rebinding --------------------------------------------------------------


def test_every_redirect_hop_is_checked_again(
    serve: Callable[..., Server], canary: Server, dns: FakeDNS
) -> None:
    # Only the redirector's name is allowed; its hop to the canary's bare address is not.
    redirector = serve()
    dns.answers["redirector.test"] = [["127.0.0.1"]]
    target = quote(canary.url, safe="")
    with pytest.raises(BlockedDestination):
        _get(
            parse_allow_list(["redirector.test"]),
            f"http://redirector.test:{redirector.port}/redirect?{target}",
        )
    assert redirector.hits == [f"/redirect?{target}"]
    assert canary.untouched


def test_a_redirect_to_another_scheme_is_refused(serve: Callable[..., Server]) -> None:
    redirector = serve()
    with pytest.raises(BlockedDestination, match="scheme 'file'"):
        _get(LOOPBACK, f"{redirector.url}redirect?file:///etc/passwd")
    assert len(redirector.hits) == 1


def test_rebinding_after_an_earlier_check_is_still_refused(canary: Server, dns: FakeDNS) -> None:
    dns.answers["rebind.example"] = [[PUBLIC_IP], ["127.0.0.1"]]
    # A URL-text validator would have looked first, and been satisfied.
    first = socket.getaddrinfo("rebind.example", canary.port)[0][4][0]
    assert is_public_address(str(first), NOTHING)
    with pytest.raises(BlockedDestination):
        _get(NOTHING, f"http://rebind.example:{canary.port}/")
    assert canary.untouched


def test_the_connection_goes_to_the_vetted_address_without_a_second_lookup(
    canary: Server, dns: FakeDNS
) -> None:
    # Were the name looked up again on connect, the second answer would be dialled (and
    # pytest-socket would stop it).
    dns.answers["rebind.example"] = [["127.0.0.1"], [PUBLIC_IP]]
    response = _get(LOOPBACK, f"http://rebind.example:{canary.port}/")
    assert response.status_code == 200
    assert dns.lookups == ["rebind.example"]
    assert canary.hits == ["/"]


def test_redirects_are_capped(serve: Callable[..., Server]) -> None:
    looper = serve()
    with (
        guarded_session(LOOPBACK, max_redirects=2) as session,
        pytest.raises(requests.TooManyRedirects),
    ):
        session.get(f"{looper.url}loop")
    assert looper.hits == ["/loop"] * 3


# --- allow-list ---------------------------------------------------------------------------


def test_an_allow_listed_address_is_reached_once(canary: Server) -> None:
    response = _get(LOOPBACK, canary.url)
    assert (response.status_code, response.content) == (200, b"canary")
    assert canary.hits == ["/"]


def test_an_allow_listed_name_is_reached_whatever_it_resolves_to(canary: Server) -> None:
    response = _get(parse_allow_list(["LOCALHOST"]), f"http://localhost:{canary.port}/")
    assert response.status_code == 200
    assert canary.hits == ["/"]


def test_an_allow_listed_name_does_not_allow_its_address(canary: Server) -> None:
    with pytest.raises(BlockedDestination):
        _get(parse_allow_list(["localhost"]), canary.url)
    assert canary.untouched


# --- proxies and timeouts -----------------------------------------------------------------


def test_proxy_environment_variables_are_ignored(
    serve: Callable[..., Server], canary: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = serve()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, canary.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert _get(LOOPBACK, target.url).status_code == 200
    assert target.hits == ["/"]
    assert canary.untouched


def test_an_explicit_proxy_is_refused(serve: Callable[..., Server], canary: Server) -> None:
    target = serve()
    with pytest.raises(BlockedDestination, match="proxies are disabled"):
        _get(LOOPBACK, target.url, proxies={"http": canary.url})
    assert target.untouched
    assert canary.untouched


def test_a_request_without_a_timeout_gets_the_default(silent_port: int) -> None:
    with guarded_session(LOOPBACK, timeout=0.1) as session, pytest.raises(requests.ReadTimeout):
        session.get(f"http://127.0.0.1:{silent_port}/")


def test_a_request_timeout_overrides_the_default(serve: Callable[..., Server]) -> None:
    slow = serve()  # answers after 0.3 s, past the session's 0.1 s default
    with guarded_session(LOOPBACK, timeout=0.1) as session:
        assert session.get(f"{slow.url}slow", timeout=5).status_code == 200


# --- read_capped --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["bytes", "stream"])
def test_read_capped_returns_a_body_within_the_cap(serve: Callable[..., Server], path: str) -> None:
    server = serve()
    with guarded_session(LOOPBACK) as session:
        body = read_capped(session.get(f"{server.url}{path}/100", stream=True), 100)
    assert body == (b"x" if path == "bytes" else b"y") * 100


@pytest.mark.parametrize("path", ["bytes", "stream"])
def test_read_capped_refuses_a_body_over_the_cap(serve: Callable[..., Server], path: str) -> None:
    server = serve()
    with guarded_session(LOOPBACK) as session:
        response = session.get(f"{server.url}{path}/200000", stream=True)
        with pytest.raises(ResponseTooLarge, match="cap of 100 bytes"):
            read_capped(response, 100)


class _UnreadableBody:
    closed = False

    def read(self, *args: object, **kwargs: object) -> bytes:
        raise AssertionError("the body was read")

    def stream(self, *args: object, **kwargs: object) -> Iterator[bytes]:
        raise AssertionError("the body was read")

    def close(self) -> None:
        self.closed = True


def test_read_capped_refuses_a_declared_length_over_the_cap_without_reading() -> None:
    response = requests.Response()
    response.headers["Content-Length"] = "101"
    response.raw = _UnreadableBody()
    with pytest.raises(ResponseTooLarge, match="cap of 100 bytes"):
        read_capped(response, 100)
    assert response.raw.closed


# --- TLS still checks the host name -------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A test CA and a certificate it signed for the name "localhost" only."""
    now = dt.datetime.now(dt.UTC)
    ca_key, leaf_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netguard test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tls")
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.key").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "ca.pem", folder / "leaf.pem", folder / "leaf.key"


@pytest.fixture
def tls_server(serve: Callable[..., Server], tls_files: tuple[Path, Path, Path]) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files[1], tls_files[2])
    return serve(tls=context)


TLS_ALLOW = parse_allow_list(["127.0.0.1", "::1"])


def test_https_reaches_a_vetted_host_with_a_valid_certificate(
    tls_server: Server, tls_files: tuple[Path, Path, Path]
) -> None:
    url = f"https://localhost:{tls_server.port}/"
    assert _get(TLS_ALLOW, url, verify=str(tls_files[0])).status_code == 200


def test_https_still_verifies_the_host_name(
    tls_server: Server, tls_files: tuple[Path, Path, Path]
) -> None:
    # Same server, same address; only the name in the URL differs from the certificate's.
    with pytest.raises(requests.exceptions.SSLError, match=r"match|mismatch"):
        _get(TLS_ALLOW, f"https://127.0.0.1:{tls_server.port}/", verify=str(tls_files[0]))
    assert tls_server.hits == []


# --- httpx --------------------------------------------------------------------------------


def _httpx_get(allow: AllowList, url: str, **client: object) -> httpx.Response:
    transport = guarded_httpx_transport(allow, timeout=client.pop("default_timeout", 10.0))  # type: ignore[arg-type]
    with httpx.Client(transport=transport, follow_redirects=True, **client) as session:  # type: ignore[arg-type]
        return session.get(url)


def test_httpx_refuses_loopback(canary: Server) -> None:
    with pytest.raises(BlockedHttpxDestination, match=r"URL not allowed: .* loopback") as caught:
        _httpx_get(NOTHING, canary.url)
    assert isinstance(caught.value, httpx.ConnectError)  # what the atproto SDK catches
    assert canary.untouched


def test_httpx_reaches_an_allow_listed_address_once(canary: Server) -> None:
    response = _httpx_get(LOOPBACK, canary.url)
    assert (response.status_code, response.content) == (200, b"canary")
    assert canary.hits == ["/"]


def test_httpx_refuses_a_name_resolving_to_internal_space(dns: FakeDNS) -> None:
    dns.answers["public.example"] = [["169.254.169.254"]]
    with pytest.raises(BlockedHttpxDestination, match="link-local"):
        _httpx_get(NOTHING, "https://public.example/xrpc/")


def test_httpx_checks_every_redirect_hop(
    serve: Callable[..., Server], canary: Server, dns: FakeDNS
) -> None:
    redirector = serve()
    dns.answers["redirector.test"] = [["127.0.0.1"]]
    target = quote(canary.url, safe="")
    with pytest.raises(BlockedHttpxDestination):
        _httpx_get(
            parse_allow_list(["redirector.test"]),
            f"http://redirector.test:{redirector.port}/redirect?{target}",
        )
    assert len(redirector.hits) == 1
    assert canary.untouched


def test_httpx_connects_to_the_vetted_address_without_a_second_lookup(
    canary: Server, dns: FakeDNS
) -> None:
    dns.answers["rebind.example"] = [["127.0.0.1"], [PUBLIC_IP]]
    assert _httpx_get(LOOPBACK, f"http://rebind.example:{canary.port}/").status_code == 200
    assert dns.lookups == ["rebind.example"]


def test_httpx_ignores_proxy_environment_variables(
    serve: Callable[..., Server], canary: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = serve()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, canary.url)
    assert _httpx_get(LOOPBACK, target.url).status_code == 200
    assert canary.untouched


def test_httpx_applies_the_default_timeout_when_the_client_sets_none(silent_port: int) -> None:
    with pytest.raises(httpx.ReadTimeout):
        _httpx_get(LOOPBACK, f"http://127.0.0.1:{silent_port}/", timeout=None, default_timeout=0.1)


def test_httpx_keeps_a_timeout_the_client_sets(serve: Callable[..., Server]) -> None:
    slow = serve()
    response = _httpx_get(LOOPBACK, f"{slow.url}slow", timeout=5.0, default_timeout=0.1)
    assert response.status_code == 200
