"""The Scenario backend against its fake server."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bot.config import build_config
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
from bot.providers.scenario import ScenarioProvider, ScenarioSettings
from bot.redact import redact
from tests.fakes.scenario import FakeScenario
from tests.providers.helpers import (
    RecordingReporter,
    assert_hidden,
    assert_no_chat_data,
    build_provider,
    make_job,
    run_error,
)
from tests.texts import en

KEY = "sc-key-0123456789"
SECRET = "sc-secret-9876543210"
BASIC = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()


@pytest.fixture
async def fake() -> AsyncIterator[FakeScenario]:
    async with FakeScenario(KEY, SECRET) as server:
        yield server


def build(fake: FakeScenario, http: httpx.AsyncClient, **overrides: Any) -> ScenarioProvider:
    return build_provider(ScenarioProvider, http, "scenario", {
        "url": f"{fake.base_url}/v1", "api_key": KEY, "api_secret": SECRET,
        "poll_interval": 0.02, "retries": 1, **overrides})


def only_job(fake: FakeScenario) -> str:
    (job_id,) = fake.jobs
    return job_id


async def test_success_with_an_uploaded_asset(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    reporter = RecordingReporter()
    result = await build(fake, http).generate(make_job(seed=42), reporter)

    job = fake.jobs[only_job(fake)]
    assert [image.data for image in result.images] == [fake.blobs[a] for a in job.asset_ids]
    assert result.seed == 42 and result.images[0].mime == "image/png"
    body = fake.generations[0]
    assert body["image"].startswith("asset_") and body["image"] in fake.assets
    assert body["numSamples"] == 1 and body["seed"] == "42" and body["modelId"] == "flux.1-dev"
    assert body["strength"] == 0.6 and body["numInferenceSteps"] == 20 and body["guidance"] == 7
    assert reporter.accepted and reporter.metadata["scenario_job_id"] == job.id
    assert reporter.metadata["creative_units"] == 5
    paths = [path for _, path in fake.requests]
    assert paths[:2] == ["/v1/assets", "/v1/generate/img2img"]
    assert any(path.startswith("/cdn/") for path in paths)


async def test_data_url_input_skips_the_upload(fake: FakeScenario,
                                               http: httpx.AsyncClient) -> None:
    provider = build(fake, http, image_input="data_url", model_id="model_GTrL3mq4SXWyMxkOHRxlpw")
    result = await provider.generate(make_job(samples=3, negative_prompt="blurry"),
                                     RecordingReporter())
    assert len(result.images) == 3
    body = fake.generations[0]
    assert body["image"].startswith("data:image/png;base64,") and body["numSamples"] == 3
    assert body["modelId"] == "model_GTrL3mq4SXWyMxkOHRxlpw"
    assert body["negativePrompt"] == "blurry"
    assert ("POST", "/v1/assets") not in fake.requests


async def test_progress_follows_the_job(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    fake.polls_to_finish = 3
    reporter = RecordingReporter()
    await build(fake, http).generate(make_job(), reporter)
    texts = [text for _, _, text in reporter.events]
    assert texts == ["Queued at Scenario", "Warming up the model", "Generating", "Downloading"]
    fractions = [fraction for fraction, _, _ in reporter.events]
    assert fractions[0] == 0.0 and fractions[2] == pytest.approx(2 / 3) and fractions[-1] == 1.0


async def test_job_id_spelled_id_and_random_seed(fake: FakeScenario,
                                                 http: httpx.AsyncClient) -> None:
    fake.job_key = "id"
    result = await build(fake, http).generate(make_job(seed=None), RecordingReporter())
    assert "seed" not in fake.generations[0]
    job = fake.jobs[only_job(fake)]
    assert result.seed == int(fake.assets[job.asset_ids[0]]["metadata"]["seed"])


async def test_project_id_travels_as_a_query(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    await build(fake, http, project_id="proj_123").generate(make_job(), RecordingReporter())
    api_urls = [seen.url for seen in fake.seen if "/v1/" in seen.url]
    assert api_urls and all("projectId=proj_123" in url for url in api_urls)


@pytest.mark.parametrize("status", [402, 403])
async def test_out_of_creative_units(fake: FakeScenario, http: httpx.AsyncClient,
                                     status: int) -> None:
    fake.units, fake.units_status = 0, status
    caught = await run_error(build(fake, http))
    assert isinstance(caught, ProviderCreditsError)
    assert not caught.accepted and caught.user_message == en("error-provider-credits")


async def test_bad_credentials(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    caught = await run_error(build(fake, http, api_secret="wrong-secret-123"))
    assert isinstance(caught, ProviderAuthError) and not caught.accepted and not fake.generations


def api_error(code: str, message: str) -> dict[str, Any]:
    return {"apiError": code, "error": message, "id": "err_1", "infos": {}}


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, api_error("bad_request", "strength must be within [0.01, 1]"), InvalidProviderRequest),
    (422, api_error("unprocessable", "modelId is unknown"), InvalidProviderRequest),
    (429, api_error("too_many_requests", "Rate limit exceeded"), RateLimited),
    (500, api_error("internal_error", "Internal server error"), ProviderUnavailable),
    (503, api_error("service_unavailable", "Service unavailable"), ProviderUnavailable),
])
async def test_documented_errors(fake: FakeScenario, http: httpx.AsyncClient, status: int,
                                 body: dict[str, Any], error: type[ProviderError]) -> None:
    fake.script = [(status, body, {"Retry-After": "7"} if status == 429 else {})]
    caught = await run_error(build(fake, http))
    assert isinstance(caught, error) and not caught.accepted
    if isinstance(caught, RateLimited):
        assert caught.retry_after == 7
    if error is InvalidProviderRequest:
        assert body["error"] in caught.user_message


async def test_failed_job(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    fake.final_status = "failure"
    caught = await run_error(build(fake, http))
    assert isinstance(caught, JobFailed) and caught.accepted
    assert "(The model could not process this image)" in caught.user_message


async def test_failed_job_for_nsfw_is_content_filtered(fake: FakeScenario,
                                                       http: httpx.AsyncClient) -> None:
    fake.final_status, fake.failure_error = "failure", "NSFW content detected in the output"
    assert isinstance(await run_error(build(fake, http)), ContentFiltered)


async def test_job_cancelled_at_the_service(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    fake.final_status = "canceled"
    caught = await run_error(build(fake, http))
    assert isinstance(caught, JobFailed)
    assert caught.user_message == en("error-job-cancelled-remote")
    assert caught.accepted


async def test_flagged_assets_are_filtered(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    fake.nsfw_labels = ["explicit"]
    caught = await run_error(build(fake, http))
    assert isinstance(caught, ContentFiltered)
    assert caught.accepted and not any(p.startswith("/cdn/") for _, p in fake.requests)
    result = await build(fake, http).generate(make_job(nsfw_allowed=True), RecordingReporter())
    assert result.images and not result.nsfw_filtered


async def test_rate_limit_then_success_honours_retry_after(fake: FakeScenario,
                                                           http: httpx.AsyncClient) -> None:
    fake.script = [(429, api_error("too_many_requests", "Slow down"), {"Retry-After": "0.3"})]
    started = time.monotonic()
    result = await build(fake, http, retries=3).generate(make_job(), RecordingReporter())
    assert result.images and len(fake.generations) == 2
    assert time.monotonic() - started >= 0.3


async def test_never_finishing_job_times_out_and_is_cancelled(fake: FakeScenario,
                                                              http: httpx.AsyncClient) -> None:
    fake.polls_to_finish = -1
    caught = await run_error(build(fake, http), timeout=0.4)
    assert isinstance(caught, ProviderTimeout) and caught.accepted
    assert fake.cancels == [only_job(fake)]
    assert fake.jobs[only_job(fake)].status == "canceled"


async def test_user_cancel_cancels_the_remote_job(fake: FakeScenario,
                                                  http: httpx.AsyncClient) -> None:
    fake.polls_to_finish = -1
    reporter = RecordingReporter()
    task = asyncio.create_task(build(fake, http).generate(make_job(), reporter))
    for _ in range(200):
        if len(reporter.events) >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.cancels == [only_job(fake)]


async def test_slow_server_times_out(fake: FakeScenario, http: httpx.AsyncClient) -> None:
    fake.delay = 0.5
    caught = await run_error(build(fake, http, request_timeout=0.2))
    assert isinstance(caught, ProviderTimeout) and not caught.accepted and not fake.cancels


@pytest.mark.parametrize("answer", [
    "<html><body>Bad gateway</body></html>",
    {"creativeUnitsCost": 5},
    {"job": {"status": "queued"}},
    [1, 2, 3],
])
async def test_malformed_body_fails_clearly(fake: FakeScenario, http: httpx.AsyncClient,
                                            answer: Any) -> None:
    fake.script = [(200, answer, {})]
    assert len((await run_error(build(fake, http))).user_message) < 120


async def test_out_of_bounds_values_are_refused_before_sending(
        fake: FakeScenario, http: httpx.AsyncClient) -> None:
    assert isinstance(await run_error(build(fake, http), width=2052), InvalidProviderRequest)
    caught = await run_error(build(fake, http), samples=5)
    assert isinstance(caught, InvalidProviderRequest) and "1–4 images" in caught.user_message
    assert not fake.seen


async def test_no_request_carries_a_telegram_url_or_token(fake: FakeScenario,
                                                          http: httpx.AsyncClient) -> None:
    for mode in ("asset", "data_url"):
        await build(fake, http, image_input=mode).generate(make_job(), RecordingReporter())
    assert_no_chat_data(fake.seen)


async def test_secrets_never_reach_logs_urls_cdn_or_errors(
        fake: FakeScenario, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await build(fake, http).generate(make_job(), RecordingReporter())
    caught = await run_error(build(fake, http, api_key="sc-wrong-key-555"))
    assert isinstance(caught, ProviderAuthError)
    assert_hidden([KEY, SECRET, BASIC, "sc-wrong-key-555"], caplog, caught)
    for seen in fake.seen:
        assert KEY not in seen.url and SECRET not in seen.url
        if "/cdn/" in seen.url:
            assert "Authorization" not in seen.headers


async def test_health_and_models_spend_nothing(fake: FakeScenario,
                                               http: httpx.AsyncClient) -> None:
    provider = build(fake, http)
    assert (await provider.health()).startswith("ok")
    assert await provider.list_models() == ["flux.1-dev", "model_GTrL3mq4SXWyMxkOHRxlpw"]
    assert not fake.generations and fake.units == 100
    with pytest.raises(ProviderAuthError):
        await build(fake, http, api_secret="wrong-secret-123").health()


def test_settings() -> None:
    settings = ScenarioSettings(type="scenario")
    settings.resolve_secrets("sc", {"SC_API_KEY": "env-key-1234", "SC_API_SECRET": "env-sec-5678"})
    assert (settings.key(), settings.secret()) == ("env-key-1234", "env-sec-5678")
    assert settings.base_url == "https://api.cloud.scenario.com/v1"
    named = ScenarioSettings(type="scenario", api_secret_env="MY_SECRET")
    named.resolve_secrets("sc", {"MY_SECRET": "named-secret-1"})
    assert named.secret() == "named-secret-1"
    with pytest.raises(ValidationError):
        ScenarioSettings(type="scenario", scheduler="FastScheduler")
    assert provider_class("scenario") is ScenarioProvider
    config = build_config({"defaults": {"provider": "sc"}, "providers": {"sc": {
        "type": "scenario", "image_input": "data_url"}}},
        {"SC_API_KEY": "cfg-key-12345", "SC_API_SECRET": "cfg-secret-678"})
    loaded = config.providers["sc"]
    assert isinstance(loaded, ScenarioSettings) and loaded.secret() == "cfg-secret-678"
    assert "cfg-secret-678" not in redact("cfg-secret-678")
    assert ScenarioProvider.CAPABILITIES & Capability.CANCEL
