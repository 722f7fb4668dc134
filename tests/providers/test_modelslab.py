"""The ModelsLab backend against its fake server."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

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
from bot.providers.modelslab import ModelsLabProvider, ModelsLabSettings
from tests.fakes.modelslab import FakeModelsLab
from tests.providers.helpers import (
    RecordingReporter,
    assert_hidden,
    assert_no_chat_data,
    build_provider,
    make_job,
    run_error,
)
from tests.texts import en

KEY = "ml-test-key-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeModelsLab]:
    async with FakeModelsLab(KEY) as server:
        yield server


def build(fake: FakeModelsLab, http: httpx.AsyncClient, **overrides: Any) -> ModelsLabProvider:
    return build_provider(ModelsLabProvider, http, "modelslab", {
        "url": f"{fake.base_url}/api", "api_key": KEY, "poll_interval": 0.02, "retries": 1,
        **overrides})


async def test_success_uploads_then_generates(fake: FakeModelsLab, http: httpx.AsyncClient) -> None:
    reporter = RecordingReporter()
    result = await build(fake, http).generate(make_job(seed=42, samples=2), reporter)

    assert [image.data for image in result.images] == [fake.files[n] for n in fake.jobs[
        next(iter(fake.jobs))].files]
    assert all(image.mime == "image/png" for image in result.images)
    assert result.seed == 42
    assert reporter.accepted and reporter.metadata["modelslab_id"] in fake.jobs
    body = fake.generations[0]
    assert body["init_image"].startswith(f"{fake.base_url}/files/")
    assert body["safety_checker"] is True and body["strength"] == 0.6
    assert body["samples"] == 2 and "model_id" not in body
    paths = [path for _, path in fake.requests]
    assert paths[:2] == ["/api/v6/base64_to_url", "/api/v6/realtime/img2img"]


async def test_seed_comes_from_meta_when_random(fake: FakeModelsLab,
                                                http: httpx.AsyncClient) -> None:
    result = await build(fake, http).generate(make_job(seed=None), RecordingReporter())
    assert fake.generations[0]["seed"] is None
    assert result.seed == next(iter(fake.jobs.values())).seed


async def test_processing_waits_eta_and_reports_it(fake: FakeModelsLab,
                                                   http: httpx.AsyncClient) -> None:
    fake.processing_polls, fake.eta = 2, 0.05
    reporter = RecordingReporter()
    result = await build(fake, http).generate(make_job(), reporter)

    assert result.images and fake.fetches == 2
    queued = [event for event in reporter.events if event[2] == "Queued at ModelsLab"]
    assert len(queued) == 2 and all(eta == 0.05 for _, eta, _ in queued)
    assert reporter.events[-1][0] == 1.0
    assert reporter.accepted


@pytest.mark.parametrize("fetch_style", [None, "path"])
async def test_community_endpoint(fake: FakeModelsLab, http: httpx.AsyncClient,
                                  fetch_style: str | None) -> None:
    fake.processing_polls = 1
    fake.sdk_fetch_route = fetch_style == "path"
    chosen = {} if fetch_style is None else {"community_fetch": fetch_style}
    provider = build(fake, http, endpoint="community", model_id="realistic-vision-v6",
                     scheduler="DPMSolverMultistepScheduler", **chosen)
    result = await provider.generate(make_job(steps=20, cfg=30.0), RecordingReporter())

    assert result.images
    body = fake.generations[0]
    assert body["model_id"] == "realistic-vision-v6" and body["num_inference_steps"] == 20
    assert body["guidance_scale"] == 20.0 and body["scheduler"] == "DPMSolverMultistepScheduler"
    fetch = "/api/v6/images/fetch" + ("" if fetch_style is None else f"/{body_id(fake)}")
    assert ("POST", fetch) in fake.requests
    assert provider.supports(Capability.STEPS) and provider.capabilities & Capability.CFG
    assert provider.rules.max_steps == 20
    assert await provider.list_models() == ["realistic-vision-v6"]


async def test_community_default_follows_the_documented_fetch(fake: FakeModelsLab,
                                                              http: httpx.AsyncClient) -> None:
    fake.processing_polls = 2
    provider = build(fake, http, endpoint="community", model_id="realistic-vision-v6")
    assert (await provider.generate(make_job(steps=20), RecordingReporter())).images
    fetches = [path for method, path in fake.requests if "/fetch" in path]
    assert fetches == ["/api/v6/images/fetch"] * 2 and fake.fetches == 2


async def test_a_404_while_polling_an_accepted_job_is_a_failed_job(
        fake: FakeModelsLab, http: httpx.AsyncClient) -> None:
    fake.processing_polls = 1  # queued: the service has taken the job
    provider = build(fake, http, endpoint="community", model_id="realistic-vision-v6",
                     community_fetch="path")
    caught = await run_error(provider)
    assert isinstance(caught, JobFailed) and caught.accepted
    assert "rejected these settings" not in caught.user_message
    assert caught.user_message.startswith(en("error-job-failed").removesuffix("."))


@pytest.mark.parametrize("negative", ["", "blurry, text"])
async def test_negative_prompt_is_always_a_string(fake: FakeModelsLab, http: httpx.AsyncClient,
                                                  negative: str) -> None:
    assert (await build(fake, http).generate(make_job(negative_prompt=negative),
                                             RecordingReporter())).images
    assert fake.generations[0]["negative_prompt"] == negative


def body_id(fake: FakeModelsLab) -> int:
    return next(iter(fake.jobs))


async def test_enterprise_endpoint_and_image_editing_upload(fake: FakeModelsLab,
                                                            http: httpx.AsyncClient) -> None:
    fake.processing_polls = 1
    provider = build(fake, http, endpoint="enterprise", upload="image_editing")
    assert (await provider.generate(make_job(), RecordingReporter())).images
    paths = [path for _, path in fake.requests]
    assert "/api/v6/image_editing/base64_to_url" in paths
    assert "/api/v1/enterprise/realtime/img2img" in paths
    assert f"/api/v1/enterprise/realtime/fetch/{body_id(fake)}" in paths
    assert not provider.supports(Capability.STEPS)


async def test_base64_text_results_are_decoded(fake: FakeModelsLab,
                                               http: httpx.AsyncClient) -> None:
    fake.output_base64 = True
    result = await build(fake, http).generate(make_job(), RecordingReporter())
    assert result.images[0].data.startswith(b"\x89PNG")


async def test_nsfw_result_is_content_filtered(fake: FakeModelsLab,
                                               http: httpx.AsyncClient) -> None:
    fake.nsfw = True
    caught = await run_error(build(fake, http))
    assert isinstance(caught, ContentFiltered) and caught.accepted
    assert caught.user_message == en("error-content-filtered")


async def test_nsfw_allowed_turns_the_safety_checker_off(fake: FakeModelsLab,
                                                         http: httpx.AsyncClient) -> None:
    fake.nsfw = True
    result = await build(fake, http).generate(make_job(nsfw_allowed=True), RecordingReporter())
    assert result.images and fake.generations[0]["safety_checker"] is False


@pytest.mark.parametrize("in_200", [False, True])
async def test_bad_key(fake: FakeModelsLab, http: httpx.AsyncClient, in_200: bool) -> None:
    fake.errors_in_200 = in_200
    provider = build(fake, http, api_key="wrong-key-123456")
    caught = await run_error(provider)
    assert isinstance(caught, ProviderAuthError)
    assert not caught.accepted and "key" in caught.user_message


@pytest.mark.parametrize("in_200", [False, True])
async def test_out_of_credits(fake: FakeModelsLab, http: httpx.AsyncClient, in_200: bool) -> None:
    fake.errors_in_200, fake.credits = in_200, 0
    caught = await run_error(build(fake, http))
    assert isinstance(caught, ProviderCreditsError)
    assert caught.user_message == en("error-provider-credits")


@pytest.mark.parametrize(("status", "body", "error"), [
    (429, {"status": "error", "message": "Rate limit exceeded. Maximum 5 queued requests "
           "allowed.", "retry_after": 30}, RateLimited),
    (400, {"status": "error", "message": "prompt is required"}, InvalidProviderRequest),
    (403, {"status": "error", "message": "This feature requires a premium subscription"},
     ProviderAuthError),
    (500, {"status": "error", "message": "Internal server error. Please try again."},
     ProviderUnavailable),
    (200, {"status": "error", "messege": "width must be between 256 and 1024"},
     InvalidProviderRequest),
])
async def test_documented_errors(fake: FakeModelsLab, http: httpx.AsyncClient, status: int,
                                 body: dict[str, Any], error: type[ProviderError]) -> None:
    fake.script = [(status, body)]
    caught = await run_error(build(fake, http))
    assert isinstance(caught, error) and not caught.accepted
    if error is RateLimited:
        assert isinstance(caught, RateLimited) and caught.retry_after == 30
    if error is InvalidProviderRequest:
        assert ("prompt is required" in caught.user_message
                or "between 256 and 1024" in caught.user_message)


async def test_failure_while_queued_is_job_failed(fake: FakeModelsLab,
                                                  http: httpx.AsyncClient) -> None:
    fake.processing_polls, fake.fetch_error = 1, "Failed to generate image, try again."
    caught = await run_error(build(fake, http))
    assert isinstance(caught, JobFailed) and caught.accepted
    assert caught.user_message == (en("error-job-failed").removesuffix(".")
                                   + " (Failed to generate image, try again).")


async def test_rate_limit_then_success_honours_retry_after(fake: FakeModelsLab,
                                                           http: httpx.AsyncClient) -> None:
    fake.script = [(429, {"status": "error", "message": "Rate limit exceeded.",
                          "retry_after": 0.3})]
    started = time.monotonic()
    result = await build(fake, http, retries=3).generate(make_job(), RecordingReporter())
    assert result.images and len(fake.generations) == 2
    assert time.monotonic() - started >= 0.3


async def test_never_finishing_job_times_out(fake: FakeModelsLab,
                                             http: httpx.AsyncClient) -> None:
    fake.processing_polls, fake.eta = -1, 0.02
    caught = await run_error(build(fake, http), timeout=0.4)
    assert isinstance(caught, ProviderTimeout) and caught.accepted and fake.fetches >= 2
    assert caught.user_message == en("error-provider-timeout")


async def test_slow_server_times_out(fake: FakeModelsLab, http: httpx.AsyncClient) -> None:
    fake.delay = 0.5
    caught = await run_error(build(fake, http, request_timeout=0.2))
    assert isinstance(caught, ProviderTimeout) and not caught.accepted


@pytest.mark.parametrize("answer", [
    "<html><body>502 Bad Gateway</body></html>",
    {"status": "queued?", "id": 1},
    {"status": "processing", "eta": 1},
    {"status": "success", "id": 7, "output": "not-a-list"},
])
async def test_malformed_body_fails_clearly(fake: FakeModelsLab, http: httpx.AsyncClient,
                                            answer: Any) -> None:
    fake.script = [(200, answer)]
    assert len((await run_error(build(fake, http))).user_message) < 120


async def test_result_that_is_not_an_image(fake: FakeModelsLab, http: httpx.AsyncClient) -> None:
    fake.script = [(200, {"status": "success", "id": 9,
                          "output": [f"{fake.base_url}/files/nothing.png"]})]
    fake.uploads["nothing.png"] = b"this is not an image at all"
    caught = await run_error(build(fake, http))
    assert isinstance(caught, JobFailed)
    assert caught.accepted and caught.user_message == en("error-not-an-image")


async def test_out_of_bounds_values_are_refused_before_sending(
        fake: FakeModelsLab, http: httpx.AsyncClient) -> None:
    caught = await run_error(build(fake, http), width=2048)
    assert isinstance(caught, InvalidProviderRequest)
    assert "256–1024" in caught.user_message and not fake.seen


async def test_no_request_carries_a_telegram_url_or_token(fake: FakeModelsLab,
                                                          http: httpx.AsyncClient) -> None:
    fake.processing_polls = 1
    await build(fake, http).generate(make_job(), RecordingReporter())
    assert_no_chat_data(fake.seen)
    assert fake.generations[0]["init_image"].startswith(fake.base_url)


async def test_key_never_reaches_logs_urls_or_errors(fake: FakeModelsLab, http: httpx.AsyncClient,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.processing_polls = 1
    await build(fake, http).generate(make_job(), RecordingReporter())
    fake.echo_key = True
    other = "ml-other-secret-key-99"
    caught = await run_error(build(fake, http, api_key=other))
    assert isinstance(caught, ProviderAuthError)
    assert_hidden([KEY, other], caplog, caught)
    for seen in fake.seen:
        assert KEY not in seen.url and all(KEY not in v for v in seen.headers.values())


async def test_health_spends_no_credits(fake: FakeModelsLab, http: httpx.AsyncClient) -> None:
    assert (await build(fake, http).health()).startswith("ok")
    assert fake.uploads and not fake.generations
    with pytest.raises(ProviderAuthError):
        await build(fake, http, api_key="wrong-key-123456").health()


def test_settings() -> None:
    settings = ModelsLabSettings(type="modelslab")
    settings.resolve_secrets("ml", {"ML_API_KEY": "from-env-1234"})
    assert settings.key() == "from-env-1234" and settings.base_url == "https://modelslab.com/api"
    with pytest.raises(ValidationError, match="model_id"):
        ModelsLabSettings(type="modelslab", endpoint="community")
    with pytest.raises(ValidationError):
        ModelsLabSettings(type="modelslab", endpont="realtime")
    assert provider_class("modelslab") is ModelsLabProvider
