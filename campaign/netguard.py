"""Guarded outbound HTTP: every request the app makes goes through here (SSRF guard).

The check happens where the socket is opened, not on the URL text: the host is resolved once,
every answer is vetted, and the socket connects to a vetted address. That covers redirects
(each hop opens a new connection), DNS rebinding between a check and the connect, and odd
address spellings such as `127.1` or `0x7f.1`. TLS still verifies the URL's host name.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Timeout = float | tuple[float, float]
_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]

_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")
# Python 3.11 calls these global, but they lead to local or deprecated space.
_NOT_GLOBAL = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("fec0::/10"))
# IPv6 forms that carry an IPv4 address in their low 32 bits (IPv4-compatible, NAT64).
_EMBEDS_IPV4 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b::/96"))


class BlockedDestination(requests.exceptions.RequestException):
    """The URL's scheme or resolved address is not allowed; nothing was sent."""


class BlockedHttpxDestination(httpx.ConnectError):
    """The httpx twin of BlockedDestination (an httpx.ConnectError, so SDKs see a network error)."""


class ResponseTooLarge(requests.exceptions.RequestException):
    """The response body is larger than the caller's cap."""


@dataclass(frozen=True)
class AllowList:
    """Host names and networks that may be reached although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()


def parse_allow_list(entries: Sequence[str]) -> AllowList:
    """Parse host names and IP addresses or CIDRs; raise ValueError naming a bad entry."""
    hosts: set[str] = set()
    networks: list[Network] = []
    for entry in entries:
        text = entry.strip().lower().rstrip(".")
        try:
            networks.append(ipaddress.ip_network(text))
            continue
        except ValueError:
            pass
        # An all-numeric last label is an address spelling (127.1), never a real host name.
        if len(text) > 253 or not _HOST_NAME.fullmatch(text) or text.rsplit(".", 1)[-1].isdigit():
            raise ValueError(f"allow-list entry {entry!r} is not a host name, IP address or CIDR")
        hosts.add(text)
    return AllowList(frozenset(hosts), tuple(networks))


def _unwrap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        # `::` and `::1` sit inside ::/96 but are IPv6 addresses in their own right.
        if int(ip) > 1 and any(ip in net for net in _EMBEDS_IPV4):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public_address(ip: str, allow: AllowList) -> bool:
    """True if the address is allow-listed, or global and not multicast (IPv4 forms unwrapped)."""
    original = ipaddress.ip_address(ip.split("%", 1)[0])  # a zone id (fe80::1%eth0) is not an IP
    addr = _unwrap(original)
    if any(a in net for a in (original, addr) for net in allow.networks):
        return True
    return addr.is_global and not addr.is_multicast and not any(addr in n for n in _NOT_GLOBAL)


def _address_class(ip: str) -> str:
    addr = _unwrap(ipaddress.ip_address(ip.split("%", 1)[0]))
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(addr, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-public"


def _vetted(host: str, port: int, allow: AllowList) -> list[_AddrInfo]:
    """Resolve once; refuse if ANY answer is not allowed, so a mixed answer cannot slip by."""
    infos: list[_AddrInfo] = list(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
    if host.lower().rstrip(".") in allow.hosts:
        return infos
    for *_, sockaddr in infos:
        if not is_public_address(str(sockaddr[0]), allow):
            kind = _address_class(str(sockaddr[0]))
            raise BlockedDestination(f"URL not allowed: {host!r} resolves to a {kind} address")
    return infos


def _connect(infos: list[_AddrInfo], timeout: object, source: Any, options: Any) -> socket.socket:
    """Connect to the vetted socket addresses themselves; never resolve the name again."""
    error: OSError = OSError("name resolved to no addresses")
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            for option in options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, int | float):  # else urllib3's "default"
                sock.settimeout(timeout)
            if source:
                sock.bind(source)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


class _GuardedHTTPConnection(HTTPConnection):
    """urllib3 2.x hook: `_new_conn` opens the socket, for HTTPS too (TLS wraps it afterwards)."""

    allow = AllowList()  # each adapter uses a subclass carrying its own allow-list

    def _new_conn(self) -> socket.socket:
        # Map errors as urllib3 does, so requests still tells timeouts from refusals.
        try:
            infos = _vetted(self._dns_host, self.port, self.allow)
            return _connect(infos, self.timeout, self.source_address, self.socket_options)
        except BlockedDestination:
            raise
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            message = f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            raise ConnectTimeoutError(self, message) from exc
        except OSError as exc:
            message = f"Failed to establish a new connection: {exc}"
            raise NewConnectionError(self, message) from exc


class _GuardedHTTPSConnection(_GuardedHTTPConnection, HTTPSConnection):
    pass


def _pool_classes(allow: AllowList) -> dict[str, type[HTTPConnectionPool]]:
    class _HTTP(_GuardedHTTPConnection):
        pass

    class _HTTPS(_GuardedHTTPSConnection):
        pass

    # Assigned here because a class body cannot read the enclosing function's `allow`.
    _HTTP.allow = _HTTPS.allow = allow

    class _HTTPPool(HTTPConnectionPool):
        ConnectionCls = _HTTP

    class _HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = _HTTPS

    return {"http": _HTTPPool, "https": _HTTPSPool}


def _find_blocked(exc: BaseException) -> BlockedDestination | None:
    """urllib3 wraps our error (ProtocolError, MaxRetryError); dig it out of args and causes."""
    stack, seen = [exc], set()
    while stack:
        current = stack.pop()
        if isinstance(current, BlockedDestination):
            return current
        if id(current) in seen:
            continue
        seen.add(id(current))
        stack += [a for a in current.args if isinstance(a, BaseException)]
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return None


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter that vets addresses at connect time, refuses proxies, and has a timeout."""

    def __init__(self, *, allow: AllowList, timeout: Timeout = 10.0, **kwargs: Any) -> None:
        self.allow = allow  # before super(): HTTPAdapter.__init__ builds the pool manager
        self.default_timeout = timeout
        kwargs.setdefault("max_retries", 0)
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **kw: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **kw)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.allow)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through a proxy the vetted address would be the proxy's, not the destination's.
        raise BlockedDestination("URL not allowed: proxies are disabled for outbound requests")

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        # requests has no session-level timeout; a request without one would wait forever.
        timeout = self.default_timeout if timeout is None else timeout
        try:
            return super().send(request, stream, timeout, verify, cert, proxies)
        except requests.exceptions.RequestException as exc:
            blocked = _find_blocked(exc)
            if blocked is None:
                raise
            raise blocked from None


class _GuardedSession(requests.Session):
    def get_adapter(self, url: str) -> BaseAdapter:
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("http", "https"):
            shown = repr(scheme) if re.fullmatch(r"[a-z][a-z0-9+.-]{0,15}", scheme) else "other"
            raise BlockedDestination(f"URL not allowed: scheme {shown}; only http and https")
        return super().get_adapter(url)


def guarded_session(
    allow: AllowList, *, max_redirects: int = 5, timeout: Timeout = 10.0
) -> requests.Session:
    """A requests session whose every connection, redirect hop included, passes the guard."""
    session = _GuardedSession()
    session.trust_env = False  # no proxies, .netrc or CA bundles from the environment
    session.max_redirects = max_redirects
    adapter = GuardedAdapter(allow=allow, timeout=timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def read_capped(response: requests.Response, max_bytes: int) -> bytes:
    """The (decoded) body of a streamed response, or ResponseTooLarge past max_bytes."""
    too_large = ResponseTooLarge(f"response body exceeds the cap of {max_bytes} bytes")
    with response:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise too_large
        body = bytearray()
        for chunk in response.iter_content(chunk_size=65536):
            body += chunk
            if len(body) > max_bytes:
                raise too_large
        return bytes(body)


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = _vetted(host, port, self._allow)
        except BlockedDestination as exc:
            raise BlockedHttpxDestination(str(exc)) from None
        except socket.gaierror as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        error = httpcore.ConnectError("name resolved to no addresses")
        for *_, sockaddr in infos:
            try:  # an IP literal: SyncBackend's own lookup of it involves no DNS
                ip = str(sockaddr[0])
                return self._inner.connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error

    def connect_unix_socket(self, path: str, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise BlockedHttpxDestination("URL not allowed: unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedHTTPTransport(httpx.HTTPTransport):
    def __init__(self, allow: AllowList, timeout: float) -> None:
        super().__init__(retries=0)
        self._default_timeout = timeout
        # httpx offers no public way to pass a network backend, so replace the pool it built
        # with one made through httpcore's public constructor, and fail closed (never silently
        # unguarded) if httpx ever stops keeping its pool in `_pool`.
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("httpx.HTTPTransport changed shape; cannot install the guard")
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        given = request.extensions.get("timeout", {})
        request.extensions["timeout"] = {
            key: self._default_timeout if given.get(key) is None else given[key]
            for key in ("connect", "read", "write", "pool")
        }
        return super().handle_request(request)


def guarded_httpx_transport(allow: AllowList, *, timeout: float = 10.0) -> httpx.HTTPTransport:
    """An httpx transport with the same connect-time check and a default for unset timeouts."""
    return _GuardedHTTPTransport(allow, timeout)
