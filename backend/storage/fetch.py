"""Outbound HTTP that a user-supplied URL cannot turn against us (SSRF).

The address check lives in the network backend, the one place that opens sockets: it resolves
the host, refuses if *any* address is internal, and connects to the address it checked. There is
no second DNS lookup between check and connect for a rebinding attack to win, and since only the
TCP connect is pinned, the Host header, TLS SNI and certificate checks all still use the hostname.
Redirects are followed by hand so every hop goes through the same backend.

    fetch() errors -> BadRequest(details={"field", "rule", ...}), rule one of:
      invalid_url, blocked_address, unreachable, timeout, http_status, redirects,
      content_type, too_large
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

import anyio
import httpcore
import httpx

from backend import API_VERSION
from backend.closeable import AsyncCloseable
from backend.http.errors import BadRequest

# Named separately from the ranges below so the error says what was hit; the ranges cover them too.
METADATA_ADDRESSES = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
METADATA_HOSTNAMES = frozenset({"metadata.google.internal"})

_CARRIER_GRADE_NAT = ip_network("100.64.0.0/10")
# IETF protocol assignments: Python 3.11 counts only parts of it as private.
_IETF_PROTOCOL = ip_network("192.0.0.0/24")
_NAT64 = ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are an IPv4 address
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def blocked_reason(address: str | IPv4Address | IPv6Address) -> str | None:
    """Why this service must not connect to `address`, or None when it is a public address."""
    ip = ip_address(address) if isinstance(address, str) else address
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(ip, IPv6Address):
        # An IPv6 form that reaches an IPv4 address is judged by that address (the OS or a
        # NAT64/6to4 gateway would deliver it there).
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None:
            return blocked_reason(embedded)
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CARRIER_GRADE_NAT:  # an IPv6 address is never "in" an IPv4 network
        return "carrier-grade NAT"
    if ip.is_reserved or ip in _IETF_PROTOCOL or (isinstance(ip, IPv6Address) and ip.is_site_local):
        return "reserved"
    if ip.is_private:  # RFC 1918, IPv6 ULA, documentation, benchmarking, ...
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


class BlockedAddress(Exception):
    def __init__(self, host: str, address: str, reason: str) -> None:
        where = f"{host} is" if host == address else f"{host} resolves to {address},"
        super().__init__(f"{where} a {reason} address")
        self.host = host
        self.address = address
        self.reason = reason


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked one.

    `allowed_hosts` (``host`` or ``host:port``, IPv6 as ``[::1]:8080``) skip the check: for
    tests and for deliberately internal targets, never for user input.
    """

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self._allowed = frozenset(host.lower() for host in allowed_hosts)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last_error: httpcore.ConnectError | None = None
        # Tried in resolver order, as a browser without Happy Eyeballs would.
        for address in await self._resolve(host, port, timeout):
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress(path, path, "unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def _resolve(self, host: str, port: int, limit_s: float | None) -> list[str]:
        name = host.lower().rstrip(".")
        netloc = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
        allowed = name in self._allowed or netloc in self._allowed
        if not allowed and name in METADATA_HOSTNAMES:
            raise BlockedAddress(host, host, "cloud metadata")
        try:
            with anyio.fail_after(limit_s):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:  # socket.gaierror and IDNA failures
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not allowed:
            # All or nothing: a name that resolves to one public and one internal address is
            # refused, or an attacker could publish both and win whenever the internal one
            # comes first.
            for address in addresses:
                reason = blocked_reason(address.partition("%")[0])  # drop an IPv6 zone id
                if reason is not None:
                    raise BlockedAddress(host, address, reason)
        return addresses


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str  # media type only, lowercased, parameters dropped
    url: str  # after redirects


class SafeFetcher(AsyncCloseable):
    """GETs user-supplied URLs within limits; one per process, closed at shutdown."""

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str] = (),
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        total_timeout: float = 120.0,
        max_redirects: int = 5,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=PinnedNetworkBackend(allowed_hosts),
            keepalive_expiry=30.0,
            retries=0,
        )
        self._timeouts = {
            "connect": connect_timeout,
            "pool": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
        }
        # A read timeout bounds each read, not the whole body: a server trickling one byte a
        # second would otherwise hold a request open for as long as the size limit allows.
        self._total_timeout = total_timeout
        self._max_redirects = max_redirects
        self._user_agent = f"killa-tamata/{API_VERSION}".encode()

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def fetch(
        self, url: str, *, field: str, max_bytes: int, content_types: Sequence[str]
    ) -> Fetched:
        """GET `url`; `content_types` are prefixes (``"image/"``); errors name `field`."""
        try:
            async with asyncio.timeout(self._total_timeout):
                return await self._fetch(url, field, max_bytes, content_types)
        except BlockedAddress as exc:
            raise _refused(
                field, "blocked_address", f"{exc}, which this service does not fetch from."
            ) from exc
        except (TimeoutError, httpcore.TimeoutException) as exc:
            raise _refused(field, "timeout", "the server did not answer in time.") from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _refused(field, "unreachable", f"could not fetch the URL ({exc}).") from exc

    async def _fetch(
        self, url: str, field: str, max_bytes: int, content_types: Sequence[str]
    ) -> Fetched:
        current = _parse_url(url, field)
        for _hop in range(self._max_redirects + 1):
            request_url = httpcore.URL(
                scheme=current.raw_scheme,
                host=current.raw_host,
                port=current.port,
                target=current.raw_path,
            )
            headers = [
                # httpcore's own Host header would leave an IPv6 literal unbracketed.
                (b"Host", current.netloc),
                (b"User-Agent", self._user_agent),
                (b"Accept", b"*/*"),
                # Compressed bodies would get past the size limit; we never decode them.
                (b"Accept-Encoding", b"identity"),
            ]
            async with self._pool.stream(
                "GET", request_url, headers=headers, extensions={"timeout": self._timeouts}
            ) as response:
                if response.status in _REDIRECT_STATUSES:
                    location = _header(response, b"location")
                    if not location:
                        raise _refused(field, "redirects", "a redirect had no Location header.")
                    current = _parse_url(location, field, base=current)
                    continue
                if not 200 <= response.status < 300:
                    raise _refused(
                        field,
                        "http_status",
                        f"the server answered HTTP {response.status}.",
                        status=response.status,
                    )
                content_type = _header(response, b"content-type").partition(";")[0]
                content_type = content_type.strip().lower()
                if not content_type.startswith(tuple(content_types)):
                    raise _refused(
                        field,
                        "content_type",
                        f"the URL serves {content_type or 'no content type'}, "
                        f"expected {' or '.join(content_types)}.",
                        contentType=content_type,
                    )
                content = await _read_limited(response, field, max_bytes)
                return Fetched(content=content, content_type=content_type, url=str(current))
        raise _refused(
            field,
            "redirects",
            f"more than {self._max_redirects} redirects.",
            limit=self._max_redirects,
        )


def _parse_url(url: str, field: str, *, base: httpx.URL | None = None) -> httpx.URL:
    try:
        parsed = base.join(url) if base is not None else httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _refused(field, "invalid_url", f"not a valid URL ({exc}).") from exc
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise _refused(field, "invalid_url", "only http and https URLs with a host are fetched.")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        # httpx accepts any number here; the socket layer then fails in unhelpful ways.
        raise _refused(field, "invalid_url", f"port {parsed.port} is out of range.")
    if parsed.userinfo:
        raise _refused(field, "invalid_url", "URLs with credentials are not fetched.")
    return parsed


async def _read_limited(response: httpcore.Response, field: str, max_bytes: int) -> bytes:
    declared = _header(response, b"content-length")
    # Refuse early on the declared length (the digit cap keeps int() cheap on a hostile header).
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > max_bytes)
    ):
        raise _too_large(field, max_bytes)
    body = bytearray()
    async for chunk in response.aiter_stream():
        body += chunk
        # Checked while streaming too: the length header may be absent (chunked) or a lie.
        if len(body) > max_bytes:
            raise _too_large(field, max_bytes)
    return bytes(body)


def _header(response: httpcore.Response, name: bytes) -> str:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _too_large(field: str, max_bytes: int) -> BadRequest:
    return _refused(
        field, "too_large", f"the file is over {max_bytes} bytes.", limitBytes=max_bytes
    )


def _refused(field: str, rule: str, message: str, **details: object) -> BadRequest:
    return BadRequest(f"{field}: {message}", details={"field": field, "rule": rule, **details})
