"""The guarded fetcher against real servers on 127.0.0.1 and a resolver the test controls."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence

import aiohttp
import httpx
import pytest
from aiohttp import web

from bot.errors import FetchError, FetchTooLarge, UnsafeURL
from bot.fetcher import GuardedFetcher, is_public, origin_of
from tests.fakes.server import FakeServer, InternalServer, png_bytes
from tests.texts import raises_message


class Hops(FakeServer):
    """``/n/K`` redirects to ``/n/K-1`` until ``/n/0``, which serves a PNG; keeps Host headers."""

    def __init__(self) -> None:
        super().__init__()
        self.hosts: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/n/{left}", self._hop)
        app.router.add_get("/declared", self._declared)

    async def _hop(self, request: web.Request) -> web.Response:
        self.hosts.append(request.headers.get("Host", ""))
        left = int(request.match_info["left"])
        if left:
            raise web.HTTPFound(f"/n/{left - 1}")
        return web.Response(body=png_bytes(), content_type="image/png")

    async def _declared(self, request: web.Request) -> web.Response:
        return web.Response(body=bytes(4096), content_type="image/png")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def hops() -> AsyncIterator[Hops]:
    async with Hops() as server:
        yield server


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1",
    "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe"])
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946",
                                     "::ffff:93.184.216.34"])
def test_ordinary_internet_addresses_are(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_an_origin_is_scheme_host_and_port() -> None:
    assert origin_of("http://127.0.0.1:7860/sdapi") == ("http", "127.0.0.1", 7860)
    assert origin_of("HTTPS://Example.COM/x") == ("https", "example.com", 443)
    assert origin_of("file:///etc/passwd") is None


async def test_a_configured_origin_is_fetched_and_other_ports_of_its_host_are_not(
        http: httpx.AsyncClient, hops: Hops) -> None:
    async with InternalServer() as internal:
        fetcher = GuardedFetcher(http, origins=[hops.base_url + "/api"])
        assert await fetcher.fetch(f"{hops.base_url}/n/0") == png_bytes()
        with raises_message(UnsafeURL, "error-url-private"):
            await fetcher.fetch(f"{internal.base_url}/secret.png")
        assert internal.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png",
                                 "gopher://127.0.0.1:70/", "http:///nohost"])
async def test_only_http_and_https(http: httpx.AsyncClient, url: str) -> None:
    with pytest.raises(UnsafeURL):
        await GuardedFetcher(http).fetch(url)


async def test_redirects_are_followed_three_times_at_most(
        http: httpx.AsyncClient, hops: Hops) -> None:
    fetcher = GuardedFetcher(http, origins=[hops.base_url])
    assert await fetcher.fetch(f"{hops.base_url}/n/3") == png_bytes()
    hops.requests.clear()
    with raises_message(UnsafeURL, "error-url-redirects", count=3):
        await fetcher.fetch(f"{hops.base_url}/n/4")
    assert len(hops.requests) == 4


async def test_each_hop_is_asked_whether_it_may_be_fetched(
        http: httpx.AsyncClient, hops: Hops) -> None:
    fetcher = GuardedFetcher(http, origins=[hops.base_url])
    with raises_message(UnsafeURL, "error-url-host"):
        await fetcher.fetch(f"{hops.base_url}/n/1", allow=lambda url: url.path != "/n/0")
    assert hops.requests == [("GET", "/n/1")]


async def test_the_connection_goes_to_the_checked_address(
        http: httpx.AsyncClient, hops: Hops) -> None:
    """A name only the fetcher's resolver knows: httpx never resolves it again (no rebinding)."""
    answers: list[str] = []

    async def resolver(host: str, port: int) -> Sequence[str]:
        answers.append(host)
        return ["127.0.0.1"]

    fetcher = GuardedFetcher(http, resolver=resolver, trusted_networks=["127.0.0.0/8"])
    url = f"http://images.rebind.invalid:{hops.port}/n/1"
    assert await fetcher.fetch(url) == png_bytes()
    assert answers == ["images.rebind.invalid"] * 2  # once per hop, each checked
    assert hops.hosts == [f"images.rebind.invalid:{hops.port}"] * 2


async def test_one_internal_answer_among_public_ones_refuses_the_name(
        http: httpx.AsyncClient) -> None:
    async def resolver(host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34", "::ffff:127.0.0.1"]

    with raises_message(UnsafeURL, "error-url-private"):
        await GuardedFetcher(http, resolver=resolver).fetch("http://mixed.example/a.png")


async def test_the_byte_cap_holds_for_declared_and_streamed_bodies(
        http: httpx.AsyncClient, hops: Hops) -> None:
    fetcher = GuardedFetcher(http, origins=[hops.base_url], max_bytes=1024)
    with pytest.raises(FetchTooLarge):
        await fetcher.fetch(f"{hops.base_url}/declared")
    with pytest.raises(FetchTooLarge):
        await fetcher.fetch(f"{hops.base_url}/n/0", max_bytes=10)


async def test_an_unknown_name_is_a_fetch_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(FetchError):
        await GuardedFetcher(http).fetch("http://no-such-host.invalid/a.png")


async def test_a_configured_file_server_is_fetched_over_aiohttp_without_redirects(
        hops: Hops) -> None:
    fetcher = GuardedFetcher(httpx.AsyncClient(), origins=[hops.base_url])
    async with aiohttp.ClientSession() as session:
        assert await fetcher.fetch_configured(session, f"{hops.base_url}/n/0") == png_bytes()
        with pytest.raises(FetchError) as refused:
            await fetcher.fetch_configured(session, f"{hops.base_url}/n/1")
        assert not isinstance(refused.value, UnsafeURL) and len(hops.hosts) == 2
        with pytest.raises(FetchTooLarge):
            await fetcher.fetch_configured(session, f"{hops.base_url}/declared", max_bytes=4095)
        async with InternalServer() as internal:
            with pytest.raises(UnsafeURL):
                await fetcher.fetch_configured(session, f"{internal.base_url}/secret.png")
            assert internal.requests == []
