"""StabilityProvider (v1 and v2beta) against the fake Stability server."""

from __future__ import annotations

import io
import logging
import random
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image
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
from bot.providers.stability import StabilityProvider, StabilitySettings
from tests.fakes.server import png_bytes
from tests.fakes.stability import ENGINES, FakeStability
from tests.providers.helpers import (
    RecordingReporter,
    assert_hidden,
    build_provider,
    image_size,
    make_job,
    run_error,
)

KEY = "sk-stability-secret-0123456789"
V1 = {"api_version": "v1"}
V1_IMAGE = {"api_version": "v1", "accept": "image"}
SD3 = {"api_version": "v2beta", "endpoint": "sd3"}
SD3_IMAGE = {"api_version": "v2beta", "endpoint": "sd3", "accept": "image"}
ULTRA = {"api_version": "v2beta", "endpoint": "ultra"}
VERSIONS = pytest.mark.parametrize("mode", [V1, SD3], ids=["v1", "v2beta"])


@pytest.fixture
async def fake() -> AsyncIterator[FakeStability]:
    async with FakeStability(KEY) as server:
        yield server


def build(fake: FakeStability, http: httpx.AsyncClient, mode: dict[str, object],
          **overrides: object) -> StabilityProvider:
    return build_provider(StabilityProvider, http, "stability", {
        "url": fake.base_url, "api_key": KEY, "retries": 2, **mode, **overrides})


def noise_png(size: tuple[int, int] = (512, 512)) -> bytes:
    buf = io.BytesIO()
    pixels = random.Random(7).randbytes(size[0] * size[1] * 3)
    Image.frombytes("RGB", size, pixels).save(buf, "PNG")
    return buf.getvalue()


async def test_rules_and_capabilities_follow_the_configuration(
        fake: FakeStability, http: httpx.AsyncClient) -> None:
    assert provider_class("stability") is StabilityProvider
    v1 = build(fake, http, V1)
    assert v1.rules.max_samples == 10 and v1.rules.min_steps == 10
    assert v1.supports(Capability.SAMPLES | Capability.STEPS | Capability.STYLES)
    assert not build(fake, http, V1_IMAGE).supports(Capability.SAMPLES)
    assert build(fake, http, V1_IMAGE).rules.max_samples == 1
    sdxl = build(fake, http, V1, engine="stable-diffusion-xl-1024-v1-0")
    assert (1152, 896) in sdxl.rules.allowed_sizes
    sd3 = build(fake, http, SD3)
    assert sd3.supports(Capability.STRENGTH | Capability.SEED | Capability.MODELS)
    assert not sd3.supports(Capability.STEPS) and not sd3.supports(Capability.SAMPLES)
    assert build(fake, http, ULTRA).supports(Capability.STYLES)
    with pytest.raises(ValidationError):
        StabilitySettings(type="stability", api_version="v2beta", endpoint="sd3",
                          output_format="webp")


async def test_v1_json_sends_inverse_strength_and_prompt_array(
        fake: FakeStability, http: httpx.AsyncClient) -> None:
    reporter = RecordingReporter()
    job = make_job(strength=0.7, samples=2, seed=42, negative_prompt="blurry", cfg=6.5,
                   style_preset="anime")
    result = await build(fake, http, V1, sampler="K_EULER").generate(job, reporter)
    assert reporter.accepted and reporter.metadata["engine"] == "stable-diffusion-v1-6"
    assert len(result.images) == 2 and result.seed == 42 and not result.nsfw_filtered
    assert image_size(result.images[0].data) == (512, 512)
    [call] = fake.calls
    assert call.path == "/v1/generation/stable-diffusion-v1-6/image-to-image"
    assert call.fields == {
        "text_prompts[0][text]": "an oil painting", "text_prompts[0][weight]": "1",
        "text_prompts[1][text]": "blurry", "text_prompts[1][weight]": "-1",
        "init_image_mode": "IMAGE_STRENGTH", "image_strength": "0.300", "cfg_scale": "6.5",
        "steps": "20", "samples": "2", "seed": "42", "style_preset": "anime",
        "sampler": "K_EULER"}
    assert call.files["init_image"] == ("input.png", "image/png", job.image.data)
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert call.headers["Accept"] == "application/json"
    assert call.headers["Stability-Client-ID"] == "img2img-bot"


async def test_v1_png_mode_reads_the_headers(fake: FakeStability,
                                             http: httpx.AsyncClient) -> None:
    result = await build(fake, http, V1_IMAGE).generate(make_job(samples=3, seed=None),
                                                        RecordingReporter())
    assert len(result.images) == 1 and isinstance(result.seed, int)
    assert fake.calls[0].fields["samples"] == "1"
    assert "seed" not in fake.calls[0].fields
    assert fake.calls[0].headers["Accept"] == "image/png"


async def test_v1_sdxl_sizes(fake: FakeStability, http: httpx.AsyncClient) -> None:
    provider = build(fake, http, V1, engine="stable-diffusion-xl-1024-v1-0")
    job = make_job(width=1152, height=896, image=png_bytes((1152, 896)))
    assert (await provider.generate(job, RecordingReporter())).images
    error = await run_error(provider)  # 512x512 is not an SDXL size
    assert isinstance(error, InvalidProviderRequest) and "1024x1024" in error.user_message
    assert len(fake.calls) == 1


async def test_v1_engine_from_the_request(fake: FakeStability, http: httpx.AsyncClient) -> None:
    provider = build(fake, http, V1)
    error = await run_error(provider, model="stable-diffusion-9000")
    assert isinstance(error, InvalidProviderRequest) and "9000" in error.user_message
    error = await run_error(provider, model="../v1/user/balance")
    assert isinstance(error, InvalidProviderRequest)
    assert all("balance" not in c.path for c in fake.calls)


@pytest.mark.parametrize("mode", [SD3, SD3_IMAGE], ids=["json", "image"])
async def test_sd3_sends_strength_as_is(fake: FakeStability, http: httpx.AsyncClient,
                                        mode: dict[str, object]) -> None:
    reporter = RecordingReporter()
    provider = build(fake, http, mode, output_format="jpeg", model="sd3.5-medium")
    result = await provider.generate(make_job(strength=0.7, negative_prompt="blurry"), reporter)
    [image] = result.images
    assert image.mime == "image/jpeg" and result.seed == 42
    [call] = fake.calls
    assert call.path == "/v2beta/stable-image/generate/sd3"
    assert call.fields == {"prompt": "an oil painting", "strength": "0.700",
                           "output_format": "jpeg", "mode": "image-to-image",
                           "model": "sd3.5-medium", "negative_prompt": "blurry", "seed": "42"}
    assert call.files["image"][2] == make_job().image.data
    assert call.headers["Accept"] == ("image/*" if mode is SD3_IMAGE else "application/json")
    assert reporter.metadata["model"] == "sd3.5-medium"


async def test_sd3_turbo_gets_no_negative_prompt(fake: FakeStability,
                                                 http: httpx.AsyncClient) -> None:
    provider = build(fake, http, SD3, model="sd3.5-large-turbo")
    await provider.generate(make_job(negative_prompt="blurry"), RecordingReporter())
    assert "negative_prompt" not in fake.calls[0].fields


async def test_ultra_with_style_and_webp(fake: FakeStability, http: httpx.AsyncClient) -> None:
    provider = build(fake, http, ULTRA, output_format="webp", accept="image")
    reporter = RecordingReporter()
    result = await provider.generate(make_job(style_preset="cinematic"), reporter)
    assert result.images[0].mime == "image/webp"
    assert "request_id" in reporter.metadata
    fields = fake.calls[0].fields
    assert fields["style_preset"] == "cinematic"
    assert "mode" not in fields and "model" not in fields


@VERSIONS
async def test_bad_key(fake: FakeStability, http: httpx.AsyncClient,
                       mode: dict[str, object]) -> None:
    error = await run_error(build(fake, http, mode, api_key="sk-wrong-key-123456"))
    assert isinstance(error, ProviderAuthError) and not error.accepted


@VERSIONS
@pytest.mark.parametrize(("outcomes", "expected"), [
    (("forbidden",), ProviderAuthError),
    (("balance", "balance"), ProviderCreditsError),
    (("payment",), ProviderCreditsError),
    (("rate", "rate"), RateLimited),
    (("moderation",), ContentFiltered),
    (("filtered",), ContentFiltered),
    (("server_error",), ProviderUnavailable),
])
async def test_documented_errors(fake: FakeStability, http: httpx.AsyncClient,
                                 mode: dict[str, object], outcomes: tuple[str, ...],
                                 expected: type[ProviderError]) -> None:
    fake.plan(*outcomes)
    error = await run_error(build(fake, http, mode))
    assert type(error) is expected
    assert error.accepted == (expected is ContentFiltered)
    assert len(fake.calls) == len(outcomes)  # a 500 is not repeated: it may have been charged


@VERSIONS
async def test_invalid_parameters(fake: FakeStability, http: httpx.AsyncClient,
                                  mode: dict[str, object]) -> None:
    error = await run_error(build(fake, http, mode), seed=2**40)
    assert isinstance(error, InvalidProviderRequest) and "seed" in error.user_message


async def test_v1_filtered_prompt_words(fake: FakeStability, http: httpx.AsyncClient) -> None:
    error = await run_error(build(fake, http, V1), prompt="a forbiddenword")
    assert isinstance(error, ContentFiltered)


async def test_v1_error_artifact_is_a_failed_job(fake: FakeStability,
                                                 http: httpx.AsyncClient) -> None:
    fake.plan("error_artifact")
    assert isinstance(await run_error(build(fake, http, V1)), JobFailed)


async def test_v1_partly_filtered_keeps_the_rest(fake: FakeStability,
                                                 http: httpx.AsyncClient) -> None:
    fake.plan("partial")
    reporter = RecordingReporter()
    result = await build(fake, http, V1).generate(make_job(samples=3), reporter)
    assert len(result.images) == 2 and result.nsfw_filtered and result.seed == 43
    assert reporter.metadata["content_filtered"] == 1


@VERSIONS
async def test_413_shrinks_and_retries_once(fake: FakeStability, http: httpx.AsyncClient,
                                            mode: dict[str, object]) -> None:
    original = noise_png()
    fake.max_request_bytes = len(original) * 2 // 3
    result = await build(fake, http, mode).generate(make_job(image=original),
                                                    RecordingReporter())
    assert result.images and len(fake.rejected_sizes) == 1
    name, mime, sent = next(iter(fake.calls[0].files.values()))
    assert (name, mime) == ("input.jpg", "image/jpeg")
    assert len(sent) < fake.max_request_bytes
    assert image_size(sent) == (512, 512)


async def test_oversized_input_is_shrunk_before_sending(fake: FakeStability,
                                                        http: httpx.AsyncClient) -> None:
    original = noise_png()
    provider = build(fake, http, SD3, max_request_bytes=len(original) // 2)
    assert (await provider.generate(make_job(image=original), RecordingReporter())).images
    assert fake.rejected_sizes == []
    assert len(fake.calls[0].files["image"][2]) < len(original) // 2


async def test_413_twice_is_a_clear_failure(fake: FakeStability, http: httpx.AsyncClient) -> None:
    fake.max_request_bytes = 2000
    error = await run_error(build(fake, http, SD3), image=noise_png())
    assert isinstance(error, InvalidProviderRequest) and "too large" in error.user_message
    assert len(fake.rejected_sizes) == 2


@VERSIONS
async def test_429_then_success_honours_retry_after(fake: FakeStability, http: httpx.AsyncClient,
                                                    mode: dict[str, object]) -> None:
    fake.retry_after = "0.3"
    fake.plan("rate")
    started = time.monotonic()
    result = await build(fake, http, mode).generate(make_job(), RecordingReporter())
    assert time.monotonic() - started >= 0.3
    assert result.images and len(fake.calls) == 2


@VERSIONS
async def test_slow_server_times_out(fake: FakeStability, http: httpx.AsyncClient,
                                     mode: dict[str, object]) -> None:
    fake.delay = 2.0
    error = await run_error(build(fake, http, mode), timeout=0.3)
    assert isinstance(error, ProviderTimeout)


@pytest.mark.parametrize("mode", [V1, V1_IMAGE, SD3, SD3_IMAGE], ids=str)
async def test_malformed_answer(fake: FakeStability, http: httpx.AsyncClient,
                                mode: dict[str, object]) -> None:
    fake.plan("garbage")
    error = await run_error(build(fake, http, mode))
    assert isinstance(error, JobFailed) and error.accepted


@VERSIONS
async def test_key_never_logged_nor_in_errors(fake: FakeStability, http: httpx.AsyncClient,
                                              mode: dict[str, object],
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = build(fake, http, mode)
    await provider.generate(make_job(), RecordingReporter())
    fake.plan("echo_key")
    with pytest.raises(InvalidProviderRequest) as info:
        await provider.generate(make_job(), RecordingReporter())
    assert "***" in info.value.user_message
    with pytest.raises(ProviderAuthError) as auth:
        await build(fake, http, mode, api_key="sk-wrong-key-123456").health()
    assert_hidden([KEY], caplog, info.value, auth.value)


async def test_health_reads_the_balance(fake: FakeStability, http: httpx.AsyncClient) -> None:
    provider = build(fake, http, SD3)
    assert await provider.health() == "ok (12.5 credits left)"
    fake.credits = 0
    with pytest.raises(ProviderCreditsError):
        await provider.health()
    assert fake.calls == []


async def test_models(fake: FakeStability, http: httpx.AsyncClient) -> None:
    assert await build(fake, http, V1).list_models() == list(ENGINES)
    assert "sd3.5-large" in await build(fake, http, SD3).list_models()
    assert await build(fake, http, ULTRA).list_models() == []
