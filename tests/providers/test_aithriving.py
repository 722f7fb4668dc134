"""AIThrivingProvider against the fake AIThriving server."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.errors import (
    ContentFiltered,
    InvalidProviderRequest,
    JobFailed,
    ProviderAuthError,
    ProviderCreditsError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from bot.models import Capability
from bot.providers import provider_class
from bot.providers.aithriving import AIThrivingProvider, classify
from tests.fakes.aithriving import FakeAIThriving
from tests.providers.helpers import (
    RecordingReporter,
    assert_hidden,
    build_provider,
    image_size,
    make_job,
    run_error,
)

KEY = "aith-secret-0123456789abcdef"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAIThriving]:
    async with FakeAIThriving(KEY) as server:
        yield server


def build(fake: FakeAIThriving, http: httpx.AsyncClient, **overrides: object) -> AIThrivingProvider:
    return build_provider(AIThrivingProvider, http, "aithriving", {
        "url": fake.base_url, "api_key": KEY, "retries": 2, **overrides})


def test_registered_with_documented_bounds() -> None:
    assert provider_class("aithriving") is AIThrivingProvider
    rules = AIThrivingProvider.size_rules
    assert (rules.multiple, rules.min_side, rules.max_side) == (64, 320, 1536)
    assert (rules.min_steps, rules.max_steps, rules.max_samples) == (10, 50, 1)
    assert "photographic" in AIThrivingProvider.styles
    assert AIThrivingProvider.CAPABILITIES & Capability.STRENGTH
    assert not AIThrivingProvider.CAPABILITIES & Capability.NEGATIVE_PROMPT


async def test_success_converts_strength_and_sends_multipart(
        fake: FakeAIThriving, http: httpx.AsyncClient) -> None:
    provider = build(fake, http, sampler="K_EULER")
    reporter = RecordingReporter()
    job = make_job(strength=0.7, width=640, height=384, steps=25, cfg=7.4, seed=1234,
                   style_preset="anime")
    result = await provider.generate(job, reporter)
    assert reporter.accepted
    assert result.seed == 1234
    [image] = result.images
    assert image.mime == "image/png"
    assert image_size(image.data) == (640, 384)
    [form] = fake.forms
    assert form == {"prompt": "an oil painting", "width": "640", "height": "384",
                    "image_strength": "0.300", "cfg_scale": "7", "steps": "25", "seed": "1234",
                    "style_preset": "anime", "sampler": "K_EULER"}
    [(filename, content_type, data)] = fake.images
    assert (filename, content_type, data) == ("input.png", "image/png", job.image.data)
    assert fake.headers_seen[0]["Authentication"] == KEY


async def test_random_seed_comes_back(fake: FakeAIThriving, http: httpx.AsyncClient) -> None:
    result = await build(fake, http).generate(make_job(seed=None), RecordingReporter())
    assert "seed" not in fake.forms[0]
    assert isinstance(result.seed, int) and result.seed > 0


async def test_auth_header_and_prefix_are_configurable(http: httpx.AsyncClient) -> None:
    async with FakeAIThriving(KEY, header="Authorization", prefix="Bearer ") as server:
        provider = build(server, http, auth_header="Authorization", auth_prefix="Bearer ")
        assert (await provider.generate(make_job(), RecordingReporter())).images
        assert "Authentication" not in server.headers_seen[0]  # a chosen header is the only one
        assert await provider.health() == ("ok (key accepted in the Authorization header; a "
                                           "request without an image got: init_image is "
                                           "required)")


# The document's header table names "Authentication"; its runnable example sends "Authorization".
@pytest.mark.parametrize("reading", ["Authorization", "Authentication"])
async def test_the_default_works_against_either_reading_of_the_docs(
        http: httpx.AsyncClient, reading: str) -> None:
    async with FakeAIThriving(KEY, header=reading) as server:
        provider = build(server, http)
        assert (await provider.generate(make_job(), RecordingReporter())).images
        seen = server.headers_seen[0]
        assert seen["Authorization"] == seen["Authentication"] == KEY
        status = await provider.health()
        assert status.startswith(f"ok (key accepted in the {reading} header;")
        assert len(server.images) == 1  # the dry runs sent no image, so nothing was charged


@pytest.mark.parametrize("reading", ["Authorization", "Authentication"])
async def test_a_wrong_key_fails_under_either_reading(http: httpx.AsyncClient,
                                                      reading: str) -> None:
    async with FakeAIThriving(KEY, header=reading) as server:
        provider = build(server, http, api_key="wrong-key-123456")
        assert isinstance(await run_error(provider), ProviderAuthError)
        with pytest.raises(ProviderAuthError):
            await provider.health()


@pytest.mark.parametrize("status", [200, 401])
async def test_bad_key(fake: FakeAIThriving, http: httpx.AsyncClient, status: int) -> None:
    fake.auth_status = status
    error = await run_error(build(fake, http, api_key="wrong-key-123456"))
    assert isinstance(error, ProviderAuthError)
    assert not error.accepted


@pytest.mark.parametrize(("outcome", "expected"), [
    ("credits", ProviderCreditsError),
    ("rate", RateLimited),
    ("nsfw", ContentFiltered),
    ("unknown", JobFailed),
])
async def test_code_minus_one_on_http_200(fake: FakeAIThriving, http: httpx.AsyncClient,
                                          outcome: str, expected: type[ProviderError]) -> None:
    fake.plan(outcome)
    error = await run_error(build(fake, http))
    assert type(error) is expected
    assert error.accepted is (expected in (ContentFiltered, JobFailed))  # a refusal is not
    assert len(fake.forms) == 1  # a failure in the envelope is not retried blindly


async def test_unknown_failure_quotes_the_message(fake: FakeAIThriving,
                                                  http: httpx.AsyncClient) -> None:
    fake.plan("unknown")
    error = await run_error(build(fake, http))
    assert "Worker exited unexpectedly" in error.user_message
    assert error.accepted


async def test_invalid_parameters_from_the_server(fake: FakeAIThriving,
                                                  http: httpx.AsyncClient) -> None:
    error = await run_error(build(fake, http), seed=2**40)
    assert isinstance(error, InvalidProviderRequest)
    assert "seed" in error.user_message


@pytest.mark.parametrize("params", [{"width": 4096}, {"height": 500},
                                    {"style_preset": "vaporwave"}])
async def test_out_of_bounds_is_refused_before_sending(
        fake: FakeAIThriving, http: httpx.AsyncClient, params: dict[str, object]) -> None:
    error = await run_error(build(fake, http), **params)
    assert isinstance(error, InvalidProviderRequest)
    assert fake.forms == []


async def test_steps_and_cfg_are_clamped(fake: FakeAIThriving, http: httpx.AsyncClient) -> None:
    await build(fake, http).generate(make_job(steps=120, cfg=50.0, strength=0.0),
                                     RecordingReporter())
    form = fake.forms[0]
    assert (form["steps"], form["cfg_scale"], form["image_strength"]) == ("50", "35", "1.000")


async def test_rate_limited_over_http(fake: FakeAIThriving, http: httpx.AsyncClient) -> None:
    fake.plan("rate_http", "rate_http")
    error = await run_error(build(fake, http))
    assert isinstance(error, RateLimited)
    assert error.retry_after == pytest.approx(0.05)


async def test_429_then_success_honours_retry_after(fake: FakeAIThriving,
                                                    http: httpx.AsyncClient) -> None:
    fake.retry_after = "0.3"
    fake.plan("rate_http")
    started = time.monotonic()
    result = await build(fake, http).generate(make_job(), RecordingReporter())
    assert time.monotonic() - started >= 0.3
    assert result.images and len(fake.forms) == 2


async def test_unavailable(fake: FakeAIThriving, http: httpx.AsyncClient) -> None:
    fake.plan("unavailable")
    assert isinstance(await run_error(build(fake, http, retries=1)), ProviderUnavailable)


async def test_slow_server_times_out(fake: FakeAIThriving, http: httpx.AsyncClient) -> None:
    fake.delay = 2.0
    assert isinstance(await run_error(build(fake, http), timeout=0.3), ProviderTimeout)


@pytest.mark.parametrize("outcome", ["garbage", "no_image"])
async def test_malformed_answer(fake: FakeAIThriving, http: httpx.AsyncClient,
                                outcome: str) -> None:
    fake.plan(outcome)
    error = await run_error(build(fake, http))
    assert isinstance(error, JobFailed)


async def test_key_never_logged_nor_in_errors(fake: FakeAIThriving, http: httpx.AsyncClient,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = build(fake, http)
    await provider.generate(make_job(), RecordingReporter())
    fake.plan("echo_key")
    with pytest.raises(JobFailed) as info:
        await provider.generate(make_job(), RecordingReporter())
    assert "***" in info.value.user_message
    with pytest.raises(ProviderAuthError) as auth:
        await build(fake, http, api_key="wrong-key-123456").generate(make_job(),
                                                                     RecordingReporter())
    assert_hidden([KEY], caplog, info.value, auth.value)


async def test_health_is_a_free_dry_run(fake: FakeAIThriving, http: httpx.AsyncClient) -> None:
    assert (await build(fake, http).health()).startswith("ok")
    assert fake.images == []
    with pytest.raises(ProviderAuthError):
        await build(fake, http, api_key="wrong-key-123456").health()


def test_message_classes() -> None:
    assert isinstance(classify("Invalid API key"), ProviderAuthError)
    assert isinstance(classify("Insufficient credits"), ProviderCreditsError)
    assert isinstance(classify("Rate limit"), RateLimited)
    assert isinstance(classify("NSFW content detected"), ContentFiltered)
    assert isinstance(classify("width must be a multiple of 64"), InvalidProviderRequest)
    assert classify("something odd") is None
