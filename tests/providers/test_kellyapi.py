"""KellyAPIProvider against the fake KellyAPI server."""

from __future__ import annotations

import base64
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
from bot.providers.kellyapi import KellyAPIProvider, detail_text, model_names
from tests.fakes.kellyapi import FakeKellyAPI
from tests.providers.helpers import (
    RecordingReporter,
    assert_hidden,
    build_provider,
    dead_url,
    image_size,
    make_job,
    run_error,
)

KEY = "kelly-secret-0123456789abcdef"


@pytest.fixture
async def fake() -> AsyncIterator[FakeKellyAPI]:
    async with FakeKellyAPI(KEY) as server:
        yield server


def build(fake: FakeKellyAPI, http: httpx.AsyncClient, **overrides: object) -> KellyAPIProvider:
    return build_provider(KellyAPIProvider, http, "kelly", {
        "url": fake.base_url + "/", "api_key": KEY, "retries": 2, **overrides})


def test_registered_and_declares_no_strength_or_seed() -> None:
    assert provider_class("kellyapi") is KellyAPIProvider
    assert not KellyAPIProvider.CAPABILITIES & (Capability.STRENGTH | Capability.SEED)
    assert KellyAPIProvider.CAPABILITIES & Capability.NEGATIVE_PROMPT
    assert KellyAPIProvider.size_rules.max_samples == 1


async def test_success_sends_the_documented_body(fake: FakeKellyAPI,
                                                 http: httpx.AsyncClient) -> None:
    provider = build(fake, http)
    reporter = RecordingReporter()
    job = make_job(width=768, height=512, negative_prompt="blurry")
    result = await provider.generate(job, reporter)
    assert reporter.accepted
    assert result.seed is None
    [image] = result.images
    assert image.mime == "image/png"
    assert image_size(image.data) == (768, 512)
    [body] = fake.edits
    assert body["prompt"] == "an oil painting"
    assert body["negative_prompt"] == "blurry"
    assert base64.b64decode(body["image_data"]) == job.image.data
    assert (body["width"], body["height"]) == (768, 512)
    assert body["responseType"] == "base64data"
    assert "strength" not in body and "seed" not in body
    assert fake.edit_headers[0]["Authorization"] == f"Bearer {KEY}"


async def test_default_negative_prompt(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    provider = build(fake, http, default_negative_prompt="lowres, watermark")
    await provider.generate(make_job(), RecordingReporter())
    assert fake.edits[0]["negative_prompt"] == "lowres, watermark"


async def test_old_server_header_is_configurable(http: httpx.AsyncClient) -> None:
    async with FakeKellyAPI(KEY, header="Kelly-API-KEY", prefix="") as old:
        provider = build(old, http, auth_header="Kelly-API-KEY", auth_prefix="")
        result = await provider.generate(make_job(), RecordingReporter())
        assert result.images


async def test_bad_key(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    provider = build(fake, http, api_key="wrong-key-123456")
    error = await run_error(provider)
    assert isinstance(error, ProviderAuthError)
    assert not error.accepted


async def test_out_of_credits(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    fake.plan("credits")
    assert isinstance(await run_error(build(fake, http)), ProviderCreditsError)


async def test_rate_limited_after_retries(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    fake.plan("rate", "rate")
    error = await run_error(build(fake, http))
    assert isinstance(error, RateLimited)
    assert error.retry_after == pytest.approx(0.05)
    assert len(fake.edits) == 2


async def test_429_then_success_honours_retry_after(fake: FakeKellyAPI,
                                                    http: httpx.AsyncClient) -> None:
    fake.retry_after = "0.3"
    fake.plan("rate")
    started = time.monotonic()
    result = await build(fake, http).generate(make_job(), RecordingReporter())
    assert time.monotonic() - started >= 0.3
    assert result.images
    assert len(fake.edits) == 2


async def test_validation_error_names_the_field(fake: FakeKellyAPI,
                                                http: httpx.AsyncClient) -> None:
    error = await run_error(build(fake, http), width=4096)
    assert isinstance(error, InvalidProviderRequest)
    assert "width" in error.user_message
    assert not error.accepted


async def test_nsfw_is_content_filtered(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    fake.plan("nsfw")
    assert isinstance(await run_error(build(fake, http)), ContentFiltered)


async def test_bad_gateway_is_unavailable_and_not_repeated(fake: FakeKellyAPI,
                                                           http: httpx.AsyncClient) -> None:
    fake.plan("bad_gateway")
    error = await run_error(build(fake, http))
    assert isinstance(error, ProviderUnavailable)
    assert len(fake.edits) == 1  # a 502 may hide a started generation: no second charge


async def test_unreachable_is_unavailable_and_not_accepted(http: httpx.AsyncClient) -> None:
    provider = build_provider(KellyAPIProvider, http, "kelly",
                              {"url": dead_url(), "api_key": KEY, "retries": 1})
    reporter = RecordingReporter()
    with pytest.raises(ProviderUnavailable) as info:
        await provider.generate(make_job(), reporter)
    assert not info.value.accepted and not reporter.accepted


async def test_slow_server_times_out(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    fake.delay = 2.0
    error = await run_error(build(fake, http), timeout=0.3)
    assert isinstance(error, ProviderTimeout)


@pytest.mark.parametrize("outcome", ["garbage", "bad_image"])
async def test_malformed_answer_fails_clearly(fake: FakeKellyAPI, http: httpx.AsyncClient,
                                              outcome: str) -> None:
    fake.plan(outcome)
    error = await run_error(build(fake, http))
    assert isinstance(error, JobFailed)
    assert error.accepted


async def test_detail_on_200_is_a_failed_job(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    fake.plan("detail")
    error = await run_error(build(fake, http))
    assert isinstance(error, JobFailed)
    assert "GPU worker" in error.user_message


async def test_key_never_logged_nor_in_errors(fake: FakeKellyAPI, http: httpx.AsyncClient,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = build(fake, http)
    await provider.generate(make_job(), RecordingReporter())
    fake.plan("echo_key", "rate", "rate")
    errors = []
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            await provider.generate(make_job(), RecordingReporter())
        errors.append(info.value)
    with pytest.raises(ProviderError):
        await build(fake, http, api_key="wrong-key-123456").generate(make_job(),
                                                                     RecordingReporter())
    assert "***" in str(errors[0])
    assert_hidden([KEY], caplog, *errors)


async def test_models_and_health(fake: FakeKellyAPI, http: httpx.AsyncClient) -> None:
    provider = build(fake, http)
    assert await provider.list_models() == [
        "PhotoPerfect", "DreamShaper", "RealisticVision", "SDXL-Base"]
    assert (await provider.health()).startswith("ok")
    assert ("POST", "/image/edit") not in fake.requests
    with pytest.raises(ProviderAuthError):
        await build(fake, http, api_key="wrong-key-123456").health()


def test_list_and_detail_shapes() -> None:
    assert model_names({"models": [{"name": "A"}, {"id": "B"}, "C", 3]}) == ["A", "B", "C"]
    assert detail_text([{"loc": ["body", "width"], "msg": "too big"}]) == "width: too big"
    assert detail_text("plain") == "plain"
