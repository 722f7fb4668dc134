"""The AI Horde backend against a fake AI Horde."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

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
from bot.providers.horde import HordeProvider
from tests.fakes.horde import FakeHorde
from tests.providers.helpers import (
    RecordingReporter,
    build_provider,
    image_size,
    job_error,
    make_job,
)
from tests.texts import en, head, raises_message


@pytest.fixture
async def fake() -> AsyncIterator[FakeHorde]:
    async with FakeHorde() as server:
        yield server


def build(fake: FakeHorde, http: httpx.AsyncClient, **settings: Any) -> HordeProvider:
    return build_provider(HordeProvider, http, "horde", {
        "url": fake.api_url, "poll_interval": 0.01, "retries": 1, "contact": "ops@example.org",
        **settings})


@pytest.fixture
def provider(fake: FakeHorde, http: httpx.AsyncClient) -> HordeProvider:
    return build(fake, http)


async def test_success_reports_queue_position_and_records_kudos(
        fake: FakeHorde, provider: HordeProvider) -> None:
    reporter = RecordingReporter()
    job = make_job(negative_prompt="blurry", seed=42, strength=0.55, cfg=7.125)

    result = await provider.generate(job, reporter)

    assert [image.mime for image in result.images] == ["image/webp"]
    assert image_size(result.images[0].data) == (512, 512)
    assert result.seed == 42 and not result.nsfw_filtered
    (request,) = fake.submitted.values()
    assert request.source_format == "WEBP"
    assert request.body["prompt"] == "an oil painting ### blurry"
    assert request.body["source_processing"] == "img2img"
    assert (request.body["nsfw"], request.body["censor_nsfw"]) == (False, True)
    assert request.body["params"]["denoising_strength"] == 0.55
    assert request.body["params"]["cfg_scale"] == 7.12
    assert request.body["params"]["seed"] == "42"
    assert set(fake.client_agents) == {"img2img-bot:0.1:ops@example.org"}
    assert all("apikey" not in {k.lower() for k in h} for h in fake.r2_headers)
    assert reporter.events[:3] == [
        (0.0, 35.0, "position 3 in the AI Horde queue"),
        (0.0, 15.0, "position 1 in the AI Horde queue"),
        (0.0, 5.0, "generating on an AI Horde worker"),
    ]
    assert reporter.events[-1][0] == 1.0
    assert reporter.accepted
    assert result.metadata["kudos"] == request.kudos
    assert result.metadata["horde_id"] == request.id
    assert result.metadata["worker"] == "fake-worker-1"


async def test_inline_base64_results_and_several_samples(fake: FakeHorde,
                                                         http: httpx.AsyncClient) -> None:
    provider = build(fake, http, r2=False, api_key="registered-key")
    result = await provider.generate(make_job(samples=2, seed=None, width=576, height=448),
                                     RecordingReporter())
    assert [image_size(image.data) for image in result.images] == [(576, 448)] * 2
    assert result.seed == 1_000_000
    assert fake.r2_headers == []


async def test_censored_result_is_content_filtered(fake: FakeHorde,
                                                   provider: HordeProvider) -> None:
    fake.censor = True
    with pytest.raises(ContentFiltered) as caught:
        await provider.generate(make_job(), RecordingReporter())
    assert caught.value.accepted
    assert caught.value.user_message == en("error-content-filtered")


async def test_kudos_upfront_is_a_credits_error(fake: FakeHorde,
                                                provider: HordeProvider) -> None:
    reporter = RecordingReporter()
    with pytest.raises(ProviderCreditsError) as caught:
        await provider.generate(make_job(width=1536, height=1024), reporter)
    assert caught.value.user_message == en("error-horde-kudos")
    assert not caught.value.accepted and not reporter.accepted
    assert fake.submitted == {}


async def test_cancel_sends_delete(fake: FakeHorde, provider: HordeProvider) -> None:
    fake.never_finish = True
    reporter = RecordingReporter()
    task = asyncio.create_task(provider.generate(make_job(timeout=10), reporter))
    await reporter.text_starting("position")

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert fake.deleted == [reporter.metadata["horde_id"]]
    assert ("DELETE", f"/api/v2/generate/status/{fake.deleted[0]}") in fake.requests


async def test_timeout_sends_delete(fake: FakeHorde, provider: HordeProvider) -> None:
    fake.never_finish = True
    with pytest.raises(ProviderTimeout) as caught:
        await provider.generate(make_job(timeout=0.3), RecordingReporter())
    assert caught.value.accepted
    assert fake.deleted == list(fake.submitted)


async def test_check_rate_limit_backs_off(fake: FakeHorde, provider: HordeProvider) -> None:
    fake.check_429 = 3
    result = await provider.generate(make_job(), RecordingReporter())
    assert len(result.images) == 1
    checks = [path for method, path in fake.requests if "/check/" in path]
    assert len(checks) == 3 + 4  # three refused, then queue, queue, processing, done


@pytest.mark.parametrize(("setup", "job", "settings", "error", "message"), [
    ({"max_active": 0}, {}, {}, RateLimited, en("error-horde-rate")),
    ({}, {"model": "no-such-model"}, {}, ProviderUnavailable, en("error-horde-no-workers")),
    ({"maintenance": 400}, {}, {}, ProviderUnavailable, en("error-horde-maintenance")),
    ({"maintenance": 503}, {}, {}, ProviderUnavailable, en("error-horde-maintenance")),
    ({}, {}, {"api_key": "wrong-key"}, ProviderAuthError, en("error-horde-key")),
    ({}, {"width": 500}, {}, InvalidProviderRequest, en(
        "error-horde-rejected",  # AI Horde's own words travel as the reason
        reason="Invalid size. The image dimensions have to be multiples of 64")),
    ({}, {}, {"sampler": "bogus"}, InvalidProviderRequest, head(
        "error-horde-rejected") + "params.sampler_name: 'bogus' is not one of"),
])
async def test_horde_errors_are_mapped(fake: FakeHorde, http: httpx.AsyncClient,
                                       setup: dict[str, Any], job: dict[str, Any],
                                       settings: dict[str, Any], error: type[ProviderError],
                                       message: str) -> None:
    for name, value in setup.items():
        setattr(fake, name, value)
    caught = await job_error(build(fake, http, **settings), **job)
    assert type(caught) is error
    assert caught.user_message.startswith(message)
    assert not caught.accepted


@pytest.mark.parametrize(("knob", "error", "message"), [
    ("fault", JobFailed, en("error-horde-faulted")),
    ("impossible", ProviderUnavailable, en("error-horde-no-workers")),
    ("broken_status", JobFailed, en("error-answer-malformed")),
])
async def test_failures_after_acceptance_delete_the_request(
        fake: FakeHorde, provider: HordeProvider, knob: str, error: type[ProviderError],
        message: str) -> None:
    setattr(fake, knob, True)
    caught = await job_error(provider)
    assert type(caught) is error
    assert caught.user_message.startswith(message)
    assert caught.accepted
    assert fake.deleted == list(fake.submitted)


async def test_health_and_models(fake: FakeHorde, http: httpx.AsyncClient,
                                 provider: HordeProvider) -> None:
    assert await provider.health() == "ok (AI Horde, anonymous: lowest queue priority)"
    assert await provider.list_models() == ["Deliberate", "stable_diffusion"]
    registered = build(fake, http, api_key="registered-key")
    assert await registered.health() == "ok (AI Horde as alice#4242, 5000 kudos)"
    with pytest.raises(ProviderAuthError):
        await build(fake, http, api_key="wrong-key").health()


async def test_a_failed_result_download_is_retried_as_the_api_is(
        fake: FakeHorde, http: httpx.AsyncClient) -> None:
    fake.r2_failures = 1
    result = await build(fake, http, retries=2).generate(make_job(), RecordingReporter())
    assert image_size(result.images[0].data) == (512, 512)
    assert len(fake.r2_headers) == 2
    fake.r2_failures = 1
    with raises_message(JobFailed, "error-result-download"):
        await build(fake, http, retries=1).generate(make_job(), RecordingReporter())
