"""The in-process diffusers backend, run for real on the CPU with a tiny self-built model."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from bot.config import build_config
from bot.errors import ConfigError, InvalidProviderRequest, ProviderTimeout, ProviderUnavailable
from bot.models import GenerationResult
from bot.providers import build_providers, diffusers_local
from bot.providers.diffusers_local import DiffusersProvider
from bot.providers.http import make_client
from tests.fakes.server import png_bytes
from tests.providers.helpers import RecordingReporter, image_size, make_job
from tests.providers.tiny_pipeline import build_tiny_pipeline
from tests.texts import en, raises_message

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:diffusers.*")

SMALL = {"width": 64, "height": 64, "steps": 4, "strength": 0.5, "cfg": 3.0}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import torch

    # Toy tensors gain nothing from intra-op threads; on a busy 2-core runner they only spin.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_tiny_pipeline(tmp_path_factory.mktemp("diffusers"))
    torch.set_num_threads(threads)


async def _provider(model: str, **extra: Any) -> AsyncIterator[DiffusersProvider]:
    table = {"type": "diffusers", "model": model, "device": "auto", "local_files_only": True,
             "max_concurrency": 4, **extra}
    config = build_config({"defaults": {"provider": "local"}, "providers": {"local": table}},
                          environ={})
    async with make_client() as http:
        built = build_providers(config.provider_settings(), http)
        provider = built["local"]
        assert isinstance(provider, DiffusersProvider)
        yield provider
        await provider.close()


@pytest.fixture
async def provider(tiny_model: Path) -> AsyncIterator[DiffusersProvider]:
    async for built in _provider(str(tiny_model)):
        yield built


def _job(**params: Any) -> Any:
    values = {**SMALL, **params}
    return make_job(image=png_bytes((values["width"], values["height"])), timeout=30, **values)


def _steps(reporter: RecordingReporter) -> list[tuple[float | None, float | None, str | None]]:
    return [event for event in reporter.events if (event[2] or "").startswith("step")]


async def test_generates_the_requested_size_with_progress(provider: DiffusersProvider) -> None:
    reporter = RecordingReporter()
    job = make_job(image=png_bytes((100, 70)), width=64, height=96, steps=4, strength=0.5,
                   cfg=3.0, seed=7)
    result = await provider.generate(job, reporter)
    assert image_size(result.images[0].data) == (64, 96)
    assert result.images[0].mime == "image/png" and result.seed == 7
    assert result.metadata["seeds"] == [7]
    steps = _steps(reporter)
    assert len(steps) == int(4 * 0.5)
    assert [event[0] for event in steps] == [0.5, 1.0]
    assert reporter.accepted
    assert provider.rules.multiple == 8 and provider.rules.min_side == 64
    assert "loaded on cpu (float32)" in await provider.health()


async def test_seed_makes_it_deterministic(provider: DiffusersProvider) -> None:
    first = await provider.generate(_job(seed=1234), RecordingReporter())
    again = await provider.generate(_job(seed=1234), RecordingReporter())
    other = await provider.generate(_job(seed=4321), RecordingReporter())
    assert first.images[0].data == again.images[0].data
    assert first.images[0].data != other.images[0].data
    chosen = await provider.generate(_job(seed=None), RecordingReporter())
    assert isinstance(chosen.seed, int) and 0 <= chosen.seed < 2**32
    replay = await provider.generate(_job(seed=chosen.seed), RecordingReporter())
    assert replay.images[0].data == chosen.images[0].data


async def test_samples_get_consecutive_seeds(provider: DiffusersProvider) -> None:
    result = await provider.generate(_job(seed=10, samples=2), RecordingReporter())
    assert len(result.images) == 2 and result.images[0].data != result.images[1].data
    assert result.metadata["seeds"] == [10, 11]
    single = await provider.generate(_job(seed=11), RecordingReporter())
    assert single.images[0].data == result.images[1].data


async def test_concurrent_equal_jobs_share_one_call(provider: DiffusersProvider) -> None:
    alone = [await provider.generate(_job(seed=s, prompt=p, negative_prompt="blurry"),
                                     RecordingReporter())
             for s, p in ((1, "a cat"), (2, "a dog"))]
    calls = provider.stats.calls
    reporters = [RecordingReporter(), RecordingReporter()]
    batched = await asyncio.gather(
        provider.generate(_job(seed=1, prompt="a cat", negative_prompt="blurry"), reporters[0]),
        provider.generate(_job(seed=2, prompt="a dog", negative_prompt="blurry",
                               job_id="job-2"), reporters[1]),
    )
    assert provider.stats.calls == calls + 1
    assert [r.seed for r in batched] == [1, 2]
    assert all(r.metadata["batch_images"] == 2 for r in batched)
    # Each job got its own image back: batching changes at most float rounding.
    assert _max_pixel_difference(alone[0], batched[0]) <= 4
    assert _max_pixel_difference(alone[1], batched[1]) <= 4
    assert _max_pixel_difference(alone[0], batched[1]) > 16
    assert all(len(_steps(reporter)) == 2 for reporter in reporters)
    await asyncio.gather(provider.generate(_job(seed=1), RecordingReporter()),
                         provider.generate(_job(seed=1, width=72, job_id="job-2"),
                                           RecordingReporter()))
    assert provider.stats.calls == calls + 3  # different sizes never share a call


def _max_pixel_difference(a: GenerationResult, b: GenerationResult) -> int:
    with Image.open(io.BytesIO(a.images[0].data)) as first, \
            Image.open(io.BytesIO(b.images[0].data)) as second:
        bands = ImageChops.difference(first.convert("RGB"), second.convert("RGB")).getextrema()
    return max(high for _, high in bands)


async def test_cancelling_a_job_stops_the_pipeline(provider: DiffusersProvider) -> None:
    reporter = RecordingReporter()
    task = asyncio.create_task(provider.generate(_job(steps=400, strength=1.0), reporter))
    await asyncio.wait_for(reporter.text_starting("step"), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until(lambda: provider.stats.interrupted == 1)
    assert len(_steps(reporter)) < 400
    result = await provider.generate(_job(seed=5), RecordingReporter())  # the worker is free
    assert image_size(result.images[0].data) == (64, 64)


async def test_a_job_past_its_timeout_is_interrupted(provider: DiffusersProvider) -> None:
    await provider.generate(_job(), RecordingReporter())  # load first: the timeout is for steps
    job = make_job(image=png_bytes((64, 64)), timeout=0.5, **{**SMALL, "steps": 2000,
                                                               "strength": 1.0})
    with pytest.raises(ProviderTimeout) as caught:
        await provider.generate(job, RecordingReporter())
    assert caught.value.accepted
    await _until(lambda: provider.stats.interrupted == 1)


async def test_event_loop_stays_responsive(tiny_model: Path) -> None:
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - before - 0.01)

    tick = asyncio.create_task(ticker())
    async for provider in _provider(str(tiny_model)):  # includes loading the model
        await provider.generate(_job(steps=20, strength=1.0, width=128, height=128),
                                RecordingReporter())
    done.set()
    await tick
    assert len(lags) > 10 and max(lags) < 0.2


async def test_settings_the_pipeline_cannot_run(provider: DiffusersProvider) -> None:
    with raises_message(InvalidProviderRequest, "error-no-step", least=4, steps=2):
        await provider.generate(_job(steps=2, strength=0.3), RecordingReporter())
    with raises_message(InvalidProviderRequest, "error-model-only"):
        await provider.generate(_job(model="other/model"), RecordingReporter())


async def test_a_model_that_cannot_load_is_unavailable(tmp_path: Path) -> None:
    async for provider in _provider(str(tmp_path / "missing")):
        assert "loads on the first job" in await provider.health()
        assert await provider.list_models() == [str(tmp_path / "missing")]
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.generate(_job(), RecordingReporter())
        assert not caught.value.accepted
        assert caught.value.user_message == en("error-model-load")


def test_missing_packages_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diffusers_local, "missing_packages", lambda: ["torch"])
    with pytest.raises(ConfigError, match=r"providers\.local\.type: .*torch"):
        settings = diffusers_local.DiffusersSettings(type="diffusers")
        DiffusersProvider.build("local", settings, None, {})  # type: ignore[arg-type]


def test_importing_the_module_does_not_import_torch() -> None:
    code = ("import sys, bot.providers.diffusers_local; "
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


async def _until(condition: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the counter changes on the worker thread
            await asyncio.sleep(0.01)
