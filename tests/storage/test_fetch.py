from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

from backend.http.errors import BadRequest
from backend.storage.fetch import SafeFetcher, blocked_reason

IMAGE = ("image/",)


async def refused(fetcher: SafeFetcher, url: str, *, max_bytes: int = 1000) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        await fetcher.fetch(url, field="sourceImage", max_bytes=max_bytes, content_types=IMAGE)
    assert caught.value.details["field"] == "sourceImage"
    assert caught.value.message.startswith("sourceImage: ")
    return caught.value


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.170.2", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.0.8", "reserved"),
        ("192.0.2.1", "private"),  # documentation
        ("198.18.0.1", "private"),  # benchmarking
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("fec0::1", "reserved"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::ffff:100.64.0.1", "carrier-grade NAT"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("::127.0.0.1", "reserved"),  # deprecated IPv4-compatible form
    ],
)
def test_internal_addresses_are_blocked(address: str, reason: str) -> None:
    assert blocked_reason(address) == reason


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(address) is None


@pytest.mark.parametrize(
    "host",
    # Names, and the odd numeric spellings libc still resolves to 127.0.0.1.
    ["localhost", "LocalHost", "127.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]"],
)
async def test_hostnames_resolving_to_loopback_are_blocked(
    fetcher: SafeFetcher, http_server: str, host: str
) -> None:
    port = http_server.rpartition(":")[2]
    error = await refused(fetcher, f"http://{host}:{port}/image.png")
    assert error.details["rule"] == "blocked_address"
    assert "loopback" in error.message


@pytest.mark.parametrize("host", ["metadata.google.internal", "Metadata.Google.Internal."])
async def test_metadata_hostname_is_blocked_without_resolving(
    fetcher: SafeFetcher, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    async def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("resolved a metadata hostname")

    monkeypatch.setattr(anyio, "getaddrinfo", no_dns)
    error = await refused(fetcher, f"http://{host}/computeMetadata/v1/")
    assert error.details["rule"] == "blocked_address"
    assert "cloud metadata" in error.message


async def test_a_name_with_any_internal_address_is_refused(
    fetcher: SafeFetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One public and one internal answer: refused outright, whichever would be tried first.
    async def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    error = await refused(fetcher, "http://mixed.example/image.png")
    assert error.details["rule"] == "blocked_address"
    assert "10.0.0.7" in error.message


async def test_connects_to_the_checked_address_and_keeps_the_host_header(
    http_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name resolves once, to the test server; the request still carries the name.
    port = int(http_server.rpartition(":")[2])
    lookups: list[str] = []

    async def resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    async with SafeFetcher(allowed_hosts={f"files.example:{port}"}) as fetcher:
        fetched = await fetcher.fetch(
            f"http://files.example:{port}/host", field="f", max_bytes=100, content_types=["text/"]
        )
    assert fetched.content == f"files.example:{port}".encode()
    assert lookups == ["files.example"]


async def test_fetches_bytes_type_and_final_url(fetcher: SafeFetcher, http_server: str) -> None:
    fetched = await fetcher.fetch(
        f"http://{http_server}/hops/2", field="sourceImage", max_bytes=10_000, content_types=IMAGE
    )
    assert fetched.content.startswith(b"\x89PNG")
    assert fetched.content_type == "image/png"
    assert fetched.url == f"http://{http_server}/hops/0"


async def test_allowlist_entry_without_port_covers_every_port(http_server: str) -> None:
    async with SafeFetcher(allowed_hosts={"127.0.0.1"}) as fetcher:
        fetched = await fetcher.fetch(
            f"http://{http_server}/image.png", field="f", max_bytes=10_000, content_types=IMAGE
        )
    assert fetched.content.startswith(b"\x89PNG")


async def test_without_allowlist_the_local_server_is_blocked(http_server: str) -> None:
    async with SafeFetcher() as fetcher:
        error = await refused(fetcher, f"http://{http_server}/image.png")
    assert error.details["rule"] == "blocked_address"


async def test_declared_length_over_limit_is_refused(
    fetcher: SafeFetcher, http_server: str
) -> None:
    error = await refused(fetcher, f"http://{http_server}/big")
    assert error.details == {
        "field": "sourceImage",
        "rule": "too_large",
        "limitBytes": 1000,
    }


async def test_streamed_body_over_limit_is_refused(fetcher: SafeFetcher, http_server: str) -> None:
    error = await refused(fetcher, f"http://{http_server}/big-chunked")
    assert error.details["rule"] == "too_large"


async def test_body_at_the_limit_is_accepted(fetcher: SafeFetcher, http_server: str) -> None:
    fetched = await fetcher.fetch(
        f"http://{http_server}/big-chunked", field="f", max_bytes=5000, content_types=IMAGE
    )
    assert len(fetched.content) == 5000


async def test_wrong_content_type_is_refused(fetcher: SafeFetcher, http_server: str) -> None:
    error = await refused(fetcher, f"http://{http_server}/html")
    assert error.details["rule"] == "content_type"
    assert error.details["contentType"] == "text/html"


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/image.png",  # the allowlisted server, by a name that is not
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.1.2.3/",
    ],
)
async def test_redirect_to_a_blocked_address_is_refused(
    fetcher: SafeFetcher, http_server: str, target: str
) -> None:
    port = http_server.rpartition(":")[2]
    url = f"http://{http_server}/redirect?to={target.format(port=port)}"
    error = await refused(fetcher, url)
    assert error.details["rule"] == "blocked_address"


@pytest.mark.parametrize("target", ["file:///etc/passwd", "http://a:x/", "http://a:70000/"])
async def test_redirect_to_an_unusable_url_is_refused(
    fetcher: SafeFetcher, http_server: str, target: str
) -> None:
    error = await refused(fetcher, f"http://{http_server}/redirect?to={target}")
    assert error.details["rule"] == "invalid_url"


async def test_five_redirects_are_followed(fetcher: SafeFetcher, http_server: str) -> None:
    fetched = await fetcher.fetch(
        f"http://{http_server}/hops/5", field="f", max_bytes=10_000, content_types=IMAGE
    )
    assert fetched.url.endswith("/hops/0")


async def test_a_sixth_redirect_is_refused(fetcher: SafeFetcher, http_server: str) -> None:
    error = await refused(fetcher, f"http://{http_server}/hops/6")
    assert error.details == {"field": "sourceImage", "rule": "redirects", "limit": 5}


async def test_http_error_status_is_refused(fetcher: SafeFetcher, http_server: str) -> None:
    error = await refused(fetcher, f"http://{http_server}/status/404")
    assert error.details["rule"] == "http_status"
    assert error.details["status"] == 404


async def test_slow_answer_times_out(fetcher: SafeFetcher, http_server: str) -> None:
    error = await refused(fetcher, f"http://{http_server}/slow")
    assert error.details["rule"] == "timeout"


async def test_trickling_body_hits_the_total_timeout(
    fetcher: SafeFetcher, http_server: str
) -> None:
    # Each byte arrives well within the read timeout; only the overall deadline stops it.
    error = await refused(fetcher, f"http://{http_server}/trickle")
    assert error.details["rule"] == "timeout"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "http:///nohost",
        "http://u:p@example.com/",
        "http://8.8.8.8:99999/",
        "http://8.8.8.8:0/",
        "http://example.com:x/",
        "not a url",
    ],
)
async def test_unsupported_urls_are_refused(fetcher: SafeFetcher, url: str) -> None:
    error = await refused(fetcher, url)
    assert error.details["rule"] == "invalid_url"


async def test_closed_port_is_unreachable(fetcher: SafeFetcher) -> None:
    async with SafeFetcher(allowed_hosts={"127.0.0.1"}) as local:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        error = await refused(local, f"http://127.0.0.1:{port}/")
    assert error.details["rule"] == "unreachable"
