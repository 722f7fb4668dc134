"""Backend pools with fake A1111 servers (and one dead port) as real members."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bot.config import DefaultsConfig
from bot.errors import (
    ConfigError,
    InvalidProviderRequest,
    JobFailed,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.models import Capability
from bot.policy import ChatPolicy
from bot.providers import build_providers
from bot.providers.a1111 import A1111Provider, A1111Settings
from bot.providers.base import ProviderSettings
from bot.providers.circuit import CircuitBreaker
from bot.providers.echo import EchoProvider
from bot.providers.pool import PoolProvider, PoolSettings
from bot.providers.stability import StabilityProvider, StabilitySettings
from bot.settings import Layers, Overrides, resolve
from tests.fakes.a1111 import FakeA1111
from tests.fakes.stability import FakeStability
from tests.providers.helpers import RecordingReporter, dead_url, make_job
from tests.texts import raises_message


def webui(url: str, **extra: Any) -> A1111Settings:
    values: dict[str, Any] = {"type": "a1111", "url": url, "retries": 1, "poll_interval": 0.05}
    values.update(extra)
    return A1111Settings.model_validate(values)


def make_pool(http: httpx.AsyncClient, members: dict[str, ProviderSettings],
              **pool: Any) -> PoolProvider:
    """Build members and pool through the registry, as the bot does at start."""
    settings: dict[str, ProviderSettings] = dict(members)
    settings["pool"] = PoolSettings.model_validate(
        {"type": "pool", "members": list(members), **pool})
    built = build_providers(settings, http)
    provider = built["pool"]
    assert isinstance(provider, PoolProvider)
    return provider


async def run(pool: PoolProvider, **job: Any) -> tuple[Any, RecordingReporter]:
    reporter = RecordingReporter()
    result = await pool.generate(make_job(**job), reporter)
    return result, reporter


async def test_failover_past_a_dead_member(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        pool = make_pool(http, {"dead": webui(dead_url()), "live": webui(fake.base_url)})
        result, reporter = await run(pool)
    assert result.images
    assert reporter.metadata["member"] == "live"
    assert result.metadata["member"] == "live"
    assert reporter.metadata["members_tried"] == "dead,live"
    assert len(fake.img2img_bodies) == 1
    assert fake.img2img_bodies[0]["prompt"] == "an oil painting"


async def test_breaker_opens_after_n_failures(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        pool = make_pool(http, {"dead": webui(dead_url()), "live": webui(fake.base_url)},
                         failure_threshold=2, reset_after=30)
        for _ in range(2):
            _, reporter = await run(pool)
            assert reporter.metadata["members_tried"] == "dead,live"
        assert pool.members[0].breaker.state == "open"
        _, reporter = await run(pool)
    assert reporter.metadata["members_tried"] == "live"  # the dead member is skipped
    assert len(fake.img2img_bodies) == 3


async def test_breaker_half_opens_after_reset_and_closes_once_healthy(
        http: httpx.AsyncClient) -> None:
    async with FakeA1111() as flaky, FakeA1111() as steady:
        flaky.fail("unavailable", times=None)
        pool = make_pool(http, {"flaky": webui(flaky.base_url), "steady": webui(steady.base_url)},
                         failure_threshold=1, reset_after=0.2)
        breaker = pool.members[0].breaker
        _, reporter = await run(pool)
        assert reporter.metadata["member"] == "steady"
        assert breaker.state == "open"
        await run(pool)
        assert len(flaky.img2img_bodies) == 1  # skipped while open

        await asyncio.sleep(0.25)
        _, reporter = await run(pool)  # the half-open trial fails: open again
        assert reporter.metadata["members_tried"] == "flaky,steady"
        assert len(flaky.img2img_bodies) == 2
        assert breaker.state == "open"

        flaky.clear_failures()
        await asyncio.sleep(0.25)
        _, reporter = await run(pool)  # the trial succeeds: closed and used
        assert reporter.metadata["member"] == "flaky"
        assert breaker.state == "closed"
        _, reporter = await run(pool)
        assert reporter.metadata["member"] == "flaky"
    assert len(flaky.img2img_bodies) == 4
    assert len(steady.img2img_bodies) == 3


async def test_round_robin_spreads_jobs(http: httpx.AsyncClient) -> None:
    async with FakeA1111() as a, FakeA1111() as b, FakeA1111() as c:
        pool = make_pool(http, {"a": webui(a.base_url), "b": webui(b.base_url),
                                "c": webui(c.base_url)}, strategy="round_robin")
        members = [(await run(pool, job_id=f"j{i}"))[1].metadata["member"] for i in range(6)]
    assert members == ["a", "b", "c", "a", "b", "c"]
    assert [len(f.img2img_bodies) for f in (a, b, c)] == [2, 2, 2]


async def test_least_busy_avoids_the_member_with_a_running_job(http: httpx.AsyncClient) -> None:
    async with FakeA1111(delay=0.6) as slow, FakeA1111() as fast:
        pool = make_pool(http, {"slow": webui(slow.base_url), "fast": webui(fast.base_url)},
                         strategy="least_busy", max_concurrency=2)
        long_job = asyncio.create_task(run(pool, job_id="long"))
        await asyncio.sleep(0.1)
        assert pool.members[0].in_flight == 1
        members = [(await run(pool, job_id=f"j{i}"))[1].metadata["member"] for i in range(3)]
        first, _ = await long_job
    assert first.metadata["member"] == "slow"
    assert members == ["fast", "fast", "fast"]
    assert (len(slow.img2img_bodies), len(fast.img2img_bodies)) == (1, 3)


@pytest.mark.parametrize(("kind", "error"), [("oom", JobFailed), ("server_error", JobFailed),
                                             ("malformed", JobFailed)])
async def test_an_accepted_failure_is_not_retried_elsewhere(
        http: httpx.AsyncClient, kind: str, error: type[Exception]) -> None:
    async with FakeA1111() as first, FakeA1111() as second:
        first.fail(kind)
        pool = make_pool(http, {"first": webui(first.base_url),
                                "second": webui(second.base_url)})
        reporter = RecordingReporter()
        with pytest.raises(error):
            await pool.generate(make_job(), reporter)
    assert reporter.metadata["member"] == "first"
    assert reporter.accepted
    assert (len(first.img2img_bodies), len(second.img2img_bodies)) == (1, 0)


async def test_a_timed_out_job_is_not_sent_elsewhere(http: httpx.AsyncClient) -> None:
    async with FakeA1111(delay=2) as first, FakeA1111() as second:
        pool = make_pool(http, {"first": webui(first.base_url),
                                "second": webui(second.base_url)})
        with pytest.raises(ProviderTimeout) as info:
            await run(pool, timeout=0.3)
        assert info.value.accepted
        assert first.interrupts == 1
    assert len(second.img2img_bodies) == 0


async def test_a_setting_one_member_lacks_moves_to_the_next(http: httpx.AsyncClient) -> None:
    async with FakeA1111(samplers=("Euler a",)) as old, FakeA1111() as new:
        pool = make_pool(http, {"old": webui(old.base_url, sampler="DPM++ 2M"),
                                "new": webui(new.base_url, sampler="DPM++ 2M")})
        _, reporter = await run(pool)
        assert reporter.metadata["member"] == "new"
        assert pool.members[0].breaker.failures == 0  # a refusal is not an outage

        pool_alone = make_pool(http, {"old": webui(old.base_url, sampler="DPM++ 2M"),
                                      "gone": webui(dead_url())})
        with pytest.raises(InvalidProviderRequest, match="Sampler not found"):
            await run(pool_alone)


async def test_all_members_failing(http: httpx.AsyncClient) -> None:
    pool = make_pool(http, {"x": webui(dead_url()), "y": webui(dead_url())},
                     failure_threshold=1, reset_after=30)
    with pytest.raises(ProviderUnavailable) as info:
        await run(pool)
    assert not info.value.accepted
    with raises_message(ProviderUnavailable, "error-pool-down"):
        await run(pool)


async def test_progress_passes_through(http: httpx.AsyncClient) -> None:
    async with FakeA1111(delay=0.3) as fake:
        pool = make_pool(http, {"a": webui(fake.base_url)})
        _, reporter = await run(pool)
    assert any(f is not None and f > 0 for f, _, _ in reporter.events)
    assert fake.img2img_bodies[0]["force_task_id"] == "task(img2img-bot-job-1)"


async def test_health_loop_opens_the_breaker_and_stops_on_close(
        http: httpx.AsyncClient) -> None:
    async with FakeA1111() as fake:
        pool = make_pool(http, {"dead": webui(dead_url()), "live": webui(fake.base_url)},
                         failure_threshold=2, reset_after=30, health_interval=0.05)
        assert pool._health_task is None  # started lazily
        await run(pool, job_id="first")
        await asyncio.sleep(0.3)
        assert pool.members[0].breaker.state == "open"
        assert pool.members[1].breaker.state == "closed"
        task = pool._health_task
        assert task is not None and not task.done()
        _, reporter = await run(pool, job_id="second")
        assert reporter.metadata["members_tried"] == "live"
        assert (await pool.health()).startswith("1/2 members ok")
        await pool.close()
        assert task.done() and pool._health_task is None


async def test_health_and_models(http: httpx.AsyncClient) -> None:
    models_a = ("shared.safetensors [1]", "only-a.safetensors [2]")
    models_b = ("only-b.safetensors [3]", "shared.safetensors [1]")
    async with FakeA1111(models=models_a) as a, FakeA1111(models=models_b) as b:
        pool = make_pool(http, {"a": webui(a.base_url), "b": webui(b.base_url)})
        assert await pool.list_models() == ["shared.safetensors [1]"]
        assert await pool.health() == "2/2 members ok (a: ok (2 models); b: ok (2 models))"
    with pytest.raises(ProviderUnavailable, match="no pool member is healthy"):
        await make_pool(http, {"x": webui(dead_url())}).health()


async def test_capabilities_and_size_rules_are_the_strictest(http: httpx.AsyncClient) -> None:
    members = {"sdxl": webui("http://127.0.0.1:1", preferred_side=1024, max_side=1536,
                             max_samples=2),
               "echo": ProviderSettings(type="echo")}
    pool = make_pool(http, members)
    assert pool.capabilities == A1111Provider.CAPABILITIES & EchoProvider.CAPABILITIES
    assert not pool.supports(Capability.PROGRESS)
    assert pool.supports(Capability.SEED)
    rules = pool.rules
    assert (rules.multiple, rules.min_side, rules.max_side) == (8, 64, 1536)
    assert rules.preferred_area == 512 * 512
    assert rules.max_area == 1536 * 1536
    assert rules.max_samples == 2


async def test_config_errors_name_the_key(http: httpx.AsyncClient) -> None:
    a = webui("http://127.0.0.1:1")
    with pytest.raises(ConfigError, match=r"providers\.pool\.members: unknown provider 'b'"):
        build_providers({"a": a, "pool": PoolSettings(type="pool", members=["a", "b"])}, http)
    with pytest.raises(ConfigError, match="cannot contain itself"):
        build_providers({"a": a, "pool": PoolSettings(type="pool", members=["a", "pool"])}, http)
    with pytest.raises(ValidationError, match="listed twice"):
        PoolSettings.model_validate({"type": "pool", "members": ["a", "a"]})
    with pytest.raises(ValidationError, match="strategy"):
        PoolSettings.model_validate({"type": "pool", "members": ["a"], "strategy": "random"})
    with pytest.raises(ValidationError, match="members"):
        PoolSettings.model_validate({"type": "pool", "members": []})


def test_circuit_breaker_states() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_after=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"  # failures must be consecutive
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.0
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # one trial at a time
    breaker.release()
    assert breaker.allow()
    breaker.record_failure()  # a failed trial reopens at once
    assert breaker.state == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0


async def test_a_pool_of_stability_v1_members_keeps_what_their_configuration_adds(
        http: httpx.AsyncClient) -> None:
    """Capabilities are decided per instance: v1 adds steps, cfg and samples to what every
    Stability configuration has, and a pool of v1 members keeps them all the way to the API."""
    key = "sk-stability-secret-0123456789"
    async with FakeStability(key) as a, FakeStability(key) as b:
        def member(url: str) -> ProviderSettings:
            return StabilitySettings.model_validate(
                {"type": "stability", "url": url, "api_key": key, "api_version": "v1"})

        pool = make_pool(http, {"a": member(a.base_url), "b": member(b.base_url)})
        wanted = Capability.STEPS | Capability.CFG | Capability.SAMPLES
        assert pool.capabilities & wanted == wanted
        assert not StabilityProvider.CAPABILITIES & wanted  # not from the class
        resolved = resolve(
            prompt="a cat", layers=Layers(request=Overrides(steps=30, cfg=9.0, samples=2)),
            defaults=DefaultsConfig(provider="pool"), styles={}, policy=ChatPolicy(),
            providers={"pool": pool}, input_size=(512, 512))
        assert not [n for n in resolved.notices if "does not support" in n]
        assert (resolved.params.steps, resolved.params.samples) == (30, 2)
        reporter = RecordingReporter()
        job = make_job(steps=resolved.params.steps, cfg=resolved.params.cfg,
                       samples=resolved.params.samples)
        result = await pool.generate(job, reporter)
    assert len(result.images) == 2
    [call] = a.calls + b.calls
    assert (call.fields["steps"], call.fields["cfg_scale"], call.fields["samples"]) == (
        "30", "9", "2")
