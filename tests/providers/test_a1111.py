"""The A1111 backend against a fake WebUI speaking ``/sdapi/v1``."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bot.errors import (
    ConfigError,
    InvalidProviderRequest,
    JobFailed,
    ProviderAuthError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.providers.a1111 import A1111Provider, A1111Settings
from tests.fakes.a1111 import DEFAULT_MODELS, FakeA1111
from tests.providers.helpers import (
    RecordingReporter,
    build_provider,
    dead_url,
    image_size,
    job_error,
    make_job,
)
from tests.texts import en, raises_message


def provider(url: str, http: httpx.AsyncClient, **settings: Any) -> A1111Provider:
    return build_provider(A1111Provider, http, "webui", {
        "url": url, "retries": 1, "poll_interval": 0.05, **settings})


async def test_success_returns_images_and_the_real_seed(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        job = make_job(seed=None, width=640, height=384, negative_prompt="blurry",
                       model=DEFAULT_MODELS[1])
        reporter = RecordingReporter()
        result = await provider(fake.base_url, http, sampler="DPM++ 2M").generate(job, reporter)

    assert len(result.images) == 1
    assert result.images[0].mime == "image/png"
    assert image_size(result.images[0].data) == (640, 384)
    body = fake.img2img_bodies[0]
    assert body["seed"] == -1
    assert result.seed is not None and result.seed >= 0  # parsed from the info string
    assert base64.b64decode(body["init_images"][0]) == job.image.data
    assert body["denoising_strength"] == 0.6
    assert body["prompt"] == "an oil painting"
    assert body["negative_prompt"] == "blurry"
    assert (body["steps"], body["cfg_scale"], body["batch_size"]) == (20, 7.0, 1)
    assert (body["width"], body["height"]) == (640, 384)
    assert body["sampler_name"] == "DPM++ 2M"
    assert body["override_settings"] == {"sd_model_checkpoint": DEFAULT_MODELS[1]}
    assert reporter.accepted
    assert result.metadata["model"] == "sd_xl_base_1"


async def test_fixed_seed_batch_and_grid_skipped(http: httpx.AsyncClient) -> None:
    async with FakeA1111(return_grid=True) as fake:
        result = await provider(fake.base_url, http).generate(
            make_job(seed=42, samples=3, width=256, height=320), RecordingReporter())
    body = fake.img2img_bodies[0]
    assert body["seed"] == 42 and body["batch_size"] == 3
    assert "sampler_name" not in body and "override_settings" not in body
    assert result.seed == 42
    assert [image_size(i.data) for i in result.images] == [(256, 320)] * 3  # no 768-wide grid
    assert result.metadata["seeds"] == [42, 43, 44]


async def test_basic_auth(http: httpx.AsyncClient) -> None:
    async with FakeA1111(auth=("alice", "s3cret-pass")) as fake:
        ok = provider(fake.base_url, http, username="alice", password="s3cret-pass")
        result = await ok.generate(make_job(), RecordingReporter())
        assert result.images
        assert await ok.list_models() == list(DEFAULT_MODELS)

        for bad in (provider(fake.base_url, http),
                    provider(fake.base_url, http, username="alice", password="wrong-pass")):
            caught = await job_error(bad)
            assert isinstance(caught, ProviderAuthError) and not caught.accepted
            assert "s3cret" not in caught.user_message
            with pytest.raises(ProviderAuthError):
                await bad.health()


def test_password_from_the_environment_and_settings_errors() -> None:
    cfg = A1111Settings.model_validate({"type": "a1111", "username": "bob"})
    cfg.resolve_secrets("my-webui", {"MY_WEBUI_PASSWORD": "from-env-pass"})
    auth = cfg.basic_auth()
    assert auth is not None
    assert cfg.url == "http://127.0.0.1:7860"

    custom = A1111Settings.model_validate({"type": "a1111", "username": "bob",
                                           "password_env": "SD_PASS"})
    custom.resolve_secrets("webui", {"SD_PASS": "other-pass"})
    assert custom.password is not None and custom.password.get_secret_value() == "other-pass"

    with pytest.raises(ConfigError, match=r"providers\.webui\.password"):
        A1111Settings.model_validate({"type": "a1111", "username": "bob"}).resolve_secrets(
            "webui", {})
    with pytest.raises(ValidationError, match="api_key"):
        A1111Settings.model_validate({"type": "a1111", "api_key": "x"})
    with pytest.raises(ValidationError, match="smapler"):
        A1111Settings.model_validate({"type": "a1111", "smapler": "Euler"})


@pytest.mark.parametrize(("kind", "error", "accepted", "text"), [
    ("sampler_not_found", InvalidProviderRequest, False, "Sampler not found"),
    ("init_image_not_found", InvalidProviderRequest, False, "Init image not found"),
    ("validation", InvalidProviderRequest, False, "steps: value is not a valid integer"),
    ("invalid_image", InvalidProviderRequest, False, en("error-input-unreadable")),
    ("oom", JobFailed, True, en("error-out-of-memory")),
    ("server_error", JobFailed, True, en("error-job-failed")),
    ("malformed", JobFailed, True, en("error-answer-malformed")),
    ("not_an_image", JobFailed, True, en("error-not-an-image")),
])
async def test_error_shapes(http: httpx.AsyncClient, kind: str, error: type[ProviderError],
                            accepted: bool, text: str) -> None:
    async with FakeA1111() as fake:
        fake.fail(kind)
        caught = await job_error(provider(fake.base_url, http))
    assert type(caught) is error
    assert caught.accepted is accepted
    assert text in caught.user_message


async def test_real_validation_from_the_server(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        with pytest.raises(InvalidProviderRequest, match="Sampler not found"):
            await provider(fake.base_url, http, sampler="Nope").generate(
                make_job(), RecordingReporter())
        with raises_message(InvalidProviderRequest, "error-input-unreadable"):
            await provider(fake.base_url, http).generate(
                make_job(image=b"not a picture"), RecordingReporter())


async def test_progress_is_polled_while_the_job_runs(http: httpx.AsyncClient) -> None:
    async with FakeA1111(delay=0.5) as fake:
        reporter = RecordingReporter()
        result = await provider(fake.base_url, http).generate(make_job(), reporter)
        polls = fake.progress_polls
        await asyncio.sleep(0.2)
        assert fake.progress_polls == polls  # polling stopped with the POST
    assert result.images
    fractions = [f for f, _, _ in reporter.events if f is not None]
    assert len(fractions) >= 3
    assert fractions == sorted(fractions) and 0 < fractions[-1] < 1
    assert any(eta is not None and 0 < eta <= 0.5 for _, eta, _ in reporter.events)


async def test_a_queued_job_reports_waiting(http: httpx.AsyncClient) -> None:
    async with FakeA1111(delay=0.3) as fake:
        backend = provider(fake.base_url, http)
        first = asyncio.create_task(backend.generate(make_job(job_id="a"), RecordingReporter()))
        await asyncio.sleep(0.05)
        reporter = RecordingReporter()
        await backend.generate(make_job(job_id="b"), reporter)
        await first
    assert (None, None, "waiting for the server's queue") in reporter.events
    assert any(f is not None and f > 0 for f, _, _ in reporter.events)


async def test_timeout_interrupts_the_job(http: httpx.AsyncClient) -> None:
    async with FakeA1111(delay=3) as fake:
        caught = await job_error(provider(fake.base_url, http), timeout=0.3)
        assert isinstance(caught, ProviderTimeout) and caught.accepted
        assert fake.interrupts == 1
        assert fake.img2img_bodies[0]["force_task_id"] == "task(img2img-bot-job-1)"


async def test_timeout_of_a_queued_job_leaves_the_running_one_alone(
        http: httpx.AsyncClient) -> None:
    async with FakeA1111(delay=0.6) as fake:
        backend = provider(fake.base_url, http)
        first = asyncio.create_task(backend.generate(make_job(job_id="a"), RecordingReporter()))
        await asyncio.sleep(0.05)
        with pytest.raises(ProviderTimeout):
            await backend.generate(make_job(job_id="b", timeout=0.2), RecordingReporter())
        assert fake.interrupts == 0  # interrupt is server-wide: it would have hit job "a"
        assert (await first).images


async def test_unavailable_then_success_is_retried(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        fake.fail("unavailable")
        fake.fail("rate_limited")
        result = await provider(fake.base_url, http, retries=3).generate(
            make_job(), RecordingReporter())
    assert result.images
    assert len(fake.img2img_bodies) == 3


async def test_unavailable_and_dead_servers_are_not_accepted(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        fake.fail("unavailable", times=None)
        caught = await job_error(provider(fake.base_url, http, retries=2))
        assert isinstance(caught, ProviderUnavailable) and not caught.accepted
        assert len(fake.img2img_bodies) == 2
    caught = await job_error(provider(dead_url(), http))
    assert isinstance(caught, ProviderUnavailable) and not caught.accepted


async def test_a_connection_lost_mid_job_counts_as_accepted(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        fake.fail("disconnect")
        caught = await job_error(provider(fake.base_url, http))
    assert isinstance(caught, ProviderUnavailable)
    assert caught.accepted  # the WebUI may still be working on it: no failover


async def test_models_and_health(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        backend = provider(fake.base_url, http)
        assert await backend.list_models() == list(DEFAULT_MODELS)
        assert await backend.health() == "ok (2 models)"
    with pytest.raises(ProviderUnavailable):
        await provider(dead_url(), http).health()
