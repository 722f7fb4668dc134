"""The ComfyUI backend against a fake ComfyUI (HTTP and websocket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import build_config
from bot.errors import ConfigError, InvalidProviderRequest, JobFailed
from bot.providers.comfyui import ComfyUIProvider
from tests.fakes.comfyui import FakeComfyUI
from tests.fakes.server import png_bytes
from tests.providers.helpers import (
    RecordingReporter,
    build_provider,
    image_size,
    job_error,
    make_job,
)
from tests.texts import en


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    async with FakeComfyUI() as server:
        yield server


def build(fake: FakeComfyUI, http: httpx.AsyncClient, **settings: Any) -> ComfyUIProvider:
    return build_provider(ComfyUIProvider, http, "comfy", {
        "url": fake.base_url, "retries": 1, "poll_interval": 0.01, **settings})


@pytest.fixture
async def provider(fake: FakeComfyUI, http: httpx.AsyncClient) -> AsyncIterator[ComfyUIProvider]:
    built = build(fake, http)
    yield built
    await built.close()


def _node(graph: dict[str, Any], class_type: str) -> dict[str, Any]:
    inputs: dict[str, Any] = next(
        n for n in graph.values() if n["class_type"] == class_type)["inputs"]
    return inputs


async def test_builtin_workflow_reports_progress_and_returns_the_image(
        fake: FakeComfyUI, provider: ComfyUIProvider) -> None:
    source = png_bytes((640, 480))
    job = make_job(image=source, width=448, height=320, seed=1234, steps=12, strength=0.45,
                   negative_prompt="blurry")
    reporter = RecordingReporter()

    result = await provider.generate(job, reporter)

    assert len(result.images) == 1
    assert result.images[0].mime == "image/png"
    assert image_size(result.images[0].data) == (448, 320)
    assert result.seed == 1234
    assert reporter.accepted
    assert result.metadata["checkpoint"] == "v1-5-pruned-emaonly.safetensors"
    assert result.metadata["prompt_id"] in fake.history
    assert list(fake.uploads.values()) == [source]
    graph = fake.prompts[-1]
    sampler = _node(graph, "KSampler")
    assert (sampler["seed"], sampler["steps"], sampler["denoise"], sampler["cfg"]) == (
        1234, 12, 0.45, 7.0)
    assert _node(graph, "ImageScale")["width"] == 448
    texts = sorted(n["inputs"]["text"] for n in graph.values()
                   if n["class_type"] == "CLIPTextEncode")
    assert texts == ["an oil painting", "blurry"]
    steps = [(f, t) for f, _, t in reporter.events if t and t.startswith("step ")]
    assert [t for _, t in steps] == [f"step {i}/12" for i in range(1, 13)]
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(t == "generating on ComfyUI" for _, _, t in reporter.events)


async def test_samples_use_a_latent_batch(fake: FakeComfyUI, provider: ComfyUIProvider) -> None:
    result = await provider.generate(make_job(samples=3, model="sd_xl_base_1.0.safetensors"),
                                     RecordingReporter())

    assert len(result.images) == 3
    assert _node(fake.prompts[-1], "RepeatLatentBatch")["amount"] == 3
    assert _node(fake.prompts[-1], "CheckpointLoaderSimple")["ckpt_name"] == (
        "sd_xl_base_1.0.safetensors")
    assert provider.rules.max_samples == 4


async def test_validation_error_reads_as_one_sentence(provider: ComfyUIProvider) -> None:
    reporter = RecordingReporter()
    with pytest.raises(InvalidProviderRequest) as caught:
        await provider.generate(make_job(model="missing.safetensors"), reporter)

    msg = caught.value.msg
    assert msg is not None and msg.id == "error-comfyui-node"
    assert str(msg.params["problem"]).startswith(
        "Value not in list: ckpt_name: 'missing.safetensors'")  # ComfyUI's words, as sent
    assert (msg.params["node"], msg.params["kind"]) == ("4", "CheckpointLoaderSimple")
    message = caught.value.user_message
    assert message == en("error-comfyui-node", **msg.params)
    assert "\n" not in message and len(message) < 300
    assert not caught.value.accepted and not reporter.accepted


async def test_execution_error_names_the_node(fake: FakeComfyUI,
                                              provider: ComfyUIProvider) -> None:
    fake.fail_class = "KSampler"
    caught = await job_error(provider)

    assert isinstance(caught, JobFailed) and caught.accepted
    assert caught.user_message == en(
        "error-comfyui-failed-with", node="3", kind="KSampler",
        message="Allocation on device 0 would exceed allowed memory. (out of memory)")


async def test_custom_workflow_gets_typed_values(fake: FakeComfyUI, http: httpx.AsyncClient,
                                                 tmp_path: Path) -> None:
    workflow = {
        "1": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "{{ image }}"}},
        "3": {"class_type": "ImageScale", "inputs": {
            "image": ["2", 0], "upscale_method": "bicubic", "width": "{{width}}",
            "height": "{{height}}", "crop": "disabled"}},
        "4": {"class_type": "VAEEncode", "inputs": {"pixels": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "masterpiece, {{prompt}}", "clip": ["1", 1]}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "{{negative_prompt}}", "clip": ["1", 1]}},
        "7": {"class_type": "KSampler", "inputs": {
            "seed": "{{seed}}", "steps": "{{steps}}", "cfg": "{{cfg}}",
            "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": "{{denoise}}",
            "model": ["1", 0], "positive": ["5", 0], "negative": ["6", 0],
            "latent_image": ["4", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "custom",
                                                    "images": ["8", 0]}},
    }
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow))
    job = make_job(prompt='a "quoted" {{seed}} fox', seed=7, steps=9, cfg=5.5, strength=0.3,
                   width=256, height=192)

    provider = build(fake, http, workflow=path)
    try:
        assert provider.rules.max_samples == 1  # the workflow has no {{samples}}
        result = await provider.generate(job, RecordingReporter())
    finally:
        await provider.close()

    assert image_size(result.images[0].data) == (256, 192)
    graph = fake.prompts[-1]
    assert graph["7"]["inputs"] == {
        "seed": 7, "steps": 9, "cfg": 5.5, "sampler_name": "dpmpp_2m", "scheduler": "karras",
        "denoise": 0.3, "model": ["1", 0], "positive": ["5", 0], "negative": ["6", 0],
        "latent_image": ["4", 0]}
    assert graph["5"]["inputs"]["text"] == 'masterpiece, a "quoted" {{seed}} fox'
    assert graph["2"]["inputs"]["image"] in fake.uploads
    assert (graph["3"]["inputs"]["width"], graph["3"]["inputs"]["height"]) == (256, 192)
    assert ("GET", "/models/checkpoints") not in fake.requests
    assert json.loads(path.read_text()) == workflow  # filling never touches the template


@pytest.mark.parametrize(("content", "expected"), [
    ('{"1": {"class_type": "LoadImage", "inputs": {"image": "{{picture}}"}}, '
     '"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}',
     "unknown placeholder {{picture}}"),
    ('{"nodes": [], "links": []}', "UI format"),
    ('{"1": {"class_type": "SaveImage", "inputs": {}}}', "must use {{image}}"),
    ("not json", "is not valid JSON"),
])
def test_bad_workflow_file_stops_start_up_naming_the_key(
        tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        build_config({"defaults": {"provider": "comfy"},
                      "providers": {"comfy": {"type": "comfyui", "workflow": str(path)}}},
                     environ={})
    assert "providers.comfy.workflow" in str(caught.value)
    assert expected in str(caught.value)


async def test_cancel_deletes_and_interrupts_the_running_prompt(
        fake: FakeComfyUI, provider: ComfyUIProvider) -> None:
    fake.hold = asyncio.Event()
    reporter = RecordingReporter()
    task = asyncio.create_task(provider.generate(make_job(), reporter))
    await reporter.text_starting("generating on ComfyUI")
    assert fake.running is not None
    prompt_id = fake.running.prompt_id

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert fake.interrupts == [{"prompt_id": prompt_id}]
    assert fake.deleted == [prompt_id]


async def test_closed_websocket_falls_back_to_history(fake: FakeComfyUI,
                                                      provider: ComfyUIProvider) -> None:
    fake.drop_socket = True
    result = await provider.generate(make_job(), RecordingReporter())
    assert len(result.images) == 1
    assert ("GET", f"/history/{result.metadata['prompt_id']}") in fake.requests


@pytest.mark.parametrize(("route", "message", "accepted"), [
    ("prompt", "error-answer-malformed", False),
    ("history", "error-answer-unreadable", True),
])
async def test_malformed_bodies_give_a_clear_provider_error(
        fake: FakeComfyUI, provider: ComfyUIProvider, route: str, message: str,
        accepted: bool) -> None:
    fake.broken.add(route)
    caught = await job_error(provider)
    assert caught.user_message == en(message)
    assert caught.accepted is accepted


async def test_health_and_models(fake: FakeComfyUI, provider: ComfyUIProvider) -> None:
    assert await provider.health() == (
        "ok (ComfyUI 0.3.40 on cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync)")
    assert await provider.list_models() == fake.checkpoints
    fake.legacy_models = True
    assert await provider.list_models() == fake.checkpoints
