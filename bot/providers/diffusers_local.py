"""The in-process backend: a diffusers image-to-image pipeline on this machine's GPU or CPU.

torch and diffusers come from the optional extra ``local`` and are imported only inside the
functions that need them, so the bot starts without them unless this backend is configured.

The pipeline loads once, lazily, on a dedicated worker thread that also runs every pipeline call
(decoding the input and encoding the PNGs included), so the event loop stays free. A pipeline's
safety checker stays as the model ships it: when it flags an image, that image is dropped, and a
job whose every image was flagged fails as content-filtered (refunded).

Jobs with equal size, steps, strength, cfg and model that arrive within ``batch_window_ms`` are
run as one pipeline call of up to ``max_batch`` images (see ``diffusers_batch``). The core's queue
starts at most ``max_concurrency`` jobs per backend at a time, so batching only happens when the
operator sets ``max_concurrency`` above 1 (``max_concurrency = max_batch`` is a good start).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
from PIL import Image as PILImage
from PIL.Image import Image
from pydantic import Field

from bot.errors import (
    ConfigError,
    InvalidProviderRequest,
    JobCancelled,
    JobFailed,
    ProviderError,
    ProviderUnavailable,
)
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ProviderJob, SizeRules
from bot.options import Overrides
from bot.providers.base import Provider, ProviderSettings, Reporter, family_defaults
from bot.providers.diffusers_batch import (
    BatchKey,
    BatchQueue,
    Entry,
    Interrupted,
    Outcome,
    decode_input,
    pipeline_kwargs,
    split_output,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

REQUIRED_PACKAGES = ("torch", "diffusers", "transformers", "accelerate")
# Distilled turbo models want no guidance and a few steps (4 x strength 0.25 is still one step).
FAMILIES = (("turbo", Overrides(cfg=0.0, steps=4)),)
INSTALL_HINT = "install torch (README: Installing torch), then pip install '.[local]'"


class DiffusersSettings(ProviderSettings):
    """Keys of a ``type = "diffusers"`` table."""

    model: str = Field("stabilityai/sd-turbo", description="Hugging Face model id or local folder")
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    variant: str | None = Field(None, description='weights variant to load, e.g. "fp16"')
    local_files_only: bool = Field(False, description="never download; use the local cache")
    batch_window_ms: float = Field(30.0, ge=0, le=5000)
    max_batch: int = Field(4, ge=1, le=64, description="images per pipeline call")
    max_side: int = Field(1024, ge=64, le=4096)
    max_samples: int = Field(4, ge=1, le=16)


@dataclass(slots=True)
class DiffusersStats:
    """Counters for operators and tests: pipeline calls, images made, calls interrupted."""

    calls: int = 0
    images: int = 0
    interrupted: int = 0


def pick_device(choice: str) -> torch.device:
    """``auto`` means CUDA, then Apple MPS, then the CPU."""
    import torch

    if choice != "auto":
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(choice: str, device: torch.device) -> torch.dtype:
    """``auto`` means float16 on CUDA and float32 elsewhere."""
    import torch

    if choice == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    dtype: torch.dtype = getattr(torch, choice)
    return dtype


def missing_packages() -> list[str]:
    return [name for name in REQUIRED_PACKAGES if importlib.util.find_spec(name) is None]


def _is_out_of_memory(exc: BaseException) -> bool:
    return "OutOfMemoryError" in type(exc).__name__ or "out of memory" in str(exc).lower()


class DiffusersProvider(Provider):
    """Runs an ``AutoPipelineForImage2Image`` in this process (see the module docstring)."""

    type_name = "diffusers"
    Settings = DiffusersSettings
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.NEGATIVE_PROMPT
                    | Capability.STEPS | Capability.CFG | Capability.SAMPLES
                    | Capability.PROGRESS | Capability.CANCEL)

    def __init__(self, name: str, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        super().__init__(name, settings, http)
        assert isinstance(settings, DiffusersSettings)
        self.cfg = settings
        self.stats = DiffusersStats()
        self.device_name: str | None = None
        self._pipe: Any = None
        self._call_params: frozenset[str] = frozenset()
        self._multiple = 8
        self._entries: dict[str, Entry] = {}
        # One thread owns the pipeline: loading, every call, and image decoding/encoding.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"diffusers-{name}")
        # With one job at a time nothing can join a batch, so waiting for one only adds latency.
        can_batch = settings.max_concurrency > 1 and settings.max_batch > 1
        self._queue = BatchQueue(self._run_batch, self._executor,
                                 window=settings.batch_window_ms / 1000 if can_batch else 0.0,
                                 max_batch=settings.max_batch)

    @classmethod
    def build(cls, name: str, settings: ProviderSettings, http: httpx.AsyncClient,
              built: Mapping[str, Provider]) -> Provider:
        missing = missing_packages()
        if missing:
            raise ConfigError(
                f"providers.{name}.type: the diffusers backend needs {', '.join(missing)} "
                f"({INSTALL_HINT})"
            )
        return cls(name, settings, http)

    def builtin_defaults(self, model: str | None) -> Overrides:
        return family_defaults(self.cfg.model, FAMILIES)

    @property
    def rules(self) -> SizeRules:
        side = self.cfg.max_side
        return SizeRules(multiple=self._multiple, min_side=max(64, self._multiple), max_side=side,
                         preferred_area=512 * 512, max_area=side * side,
                         max_samples=self.cfg.max_samples,
                         input_format="JPEG")  # decoded in this process; JPEG is cheapest

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        p = job.params
        if p.model not in (None, self.cfg.model):
            raise InvalidProviderRequest(msg=Msg("error-model-only", {"model": self.cfg.model}))
        if min(int(p.steps * p.strength), p.steps) < 1:  # the pipeline would run no step
            numbers = {"strength": p.strength, "steps": p.steps}
            if p.strength <= 0:
                raise InvalidProviderRequest(msg=Msg("error-no-step-strength", numbers))
            least = _min_steps(p.strength)
            raise InvalidProviderRequest(msg=Msg("error-no-step", {**numbers, "least": least}))
        seed = p.seed if p.seed is not None else random.randrange(2**32)
        loop = asyncio.get_running_loop()
        entry = Entry(job=job, reporter=reporter, seed=seed, key=BatchKey.of(job, self.cfg.model),
                      loop=loop, future=loop.create_future(), arrived=loop.time())
        self._entries[job.job_id] = entry
        try:
            return await self._queue.submit(entry)
        finally:
            self._entries.pop(job.job_id, None)

    async def cancel(self, job: ProviderJob, reporter: Reporter) -> None:
        entry = self._entries.get(job.job_id)
        if entry is not None:
            entry.cancel()

    async def health(self) -> str:
        missing = missing_packages()
        if missing:
            return f"missing packages: {', '.join(missing)} ({INSTALL_HINT})"
        if self._pipe is None:
            return f"ok ({self.cfg.model} loads on the first job; device {self.cfg.device})"
        return f"ok ({self.cfg.model} loaded on {self.device_name})"

    async def list_models(self) -> list[str]:
        return [self.cfg.model]

    async def close(self) -> None:
        self._queue.cancel_all()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._pipe = None

    # Everything below runs on the worker thread.

    def _load(self, batch: Sequence[Entry]) -> Any:
        if self._pipe is not None:
            return self._pipe
        for entry in batch:
            entry.post(entry.reporter.progress, None, None, "loading the model")
        s = self.cfg
        try:
            import diffusers
            from diffusers import AutoPipelineForImage2Image
            from packaging.version import Version

            device = pick_device(s.device)
            dtype = pick_dtype(s.dtype, device)
            # diffusers 0.42 renamed torch_dtype to dtype; older releases know only torch_dtype.
            new_api = Version(diffusers.__version__) >= Version("0.42")
            dtype_key = "dtype" if new_api else "torch_dtype"
            kwargs: dict[str, Any] = {dtype_key: dtype, "local_files_only": s.local_files_only}
            if s.variant:
                kwargs["variant"] = s.variant
            loader: Callable[..., Any] = AutoPipelineForImage2Image.from_pretrained
            pipe = loader(s.model, **kwargs).to(device)
        except Exception as exc:  # hub, file, CUDA and import errors all mean "cannot load"
            log.error("diffusers provider %s cannot load %r on %s: %s: %s",
                      self.name, s.model, s.device, type(exc).__name__, exc)
            raise ProviderUnavailable(msg=Msg("error-model-load")) from exc
        pipe.set_progress_bar_config(disable=True)
        processor = getattr(pipe, "image_processor", None)
        factor = getattr(getattr(processor, "config", None), "vae_scale_factor", None)
        factor = factor or getattr(pipe, "vae_scale_factor", None) or 8
        # The pixel multiple the pipeline needs (8 for SD/SDXL, 16 for packed latents).
        self._multiple = max(8, -(-int(factor) // 8) * 8)
        self._call_params = frozenset(inspect.signature(pipe.__call__).parameters)
        self.device_name = f"{device} ({str(dtype).removeprefix('torch.')})"
        log.info("diffusers provider %s loaded %s on %s", self.name, s.model, self.device_name)
        self._pipe = pipe
        return pipe

    def _run_batch(self, batch: Sequence[Entry]) -> list[Outcome]:
        """Run one pipeline call for ``batch``; returns each entry's result or error."""
        outcomes: dict[int, Outcome] = {}
        live: dict[int, Image] = {}
        for index, entry in enumerate(batch):
            p = entry.job.params
            if entry.cancelled.is_set():
                outcomes[index] = JobCancelled()
                continue
            try:
                live[index] = decode_input(entry.job.image.data, p.width, p.height)
            except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
                outcomes[index] = _chained(JobFailed(msg=Msg("error-input-unreadable")), exc)
        if live:
            entries = [batch[index] for index in live]
            try:
                results = self._call(entries, list(live.values()))
            except ProviderError as exc:
                results = [_chained(type(exc)(str(exc), accepted=exc.accepted), exc)
                           for _ in entries]
            outcomes.update(zip(live, results, strict=True))
        return [outcomes[index] for index in range(len(batch))]

    def _call(self, entries: list[Entry], images: list[Image]) -> list[Outcome]:
        pipe = self._load(entries)
        for entry in entries:
            entry.post(entry.reporter.accept)
        kwargs = pipeline_kwargs(entries, images)
        self.stats.calls += 1
        try:
            output = pipe(**{k: v for k, v in kwargs.items() if k in self._call_params})
        except Interrupted:
            self.stats.interrupted += 1
            return [JobCancelled() for _ in entries]
        except Exception as exc:  # a failure inside the model must not kill the worker thread
            if _is_out_of_memory(exc):
                log.warning("diffusers provider %s ran out of memory: %s", self.name, exc)
                message = Msg("error-out-of-memory")
                _free_cache()
            else:
                log.exception("diffusers provider %s: pipeline call failed", self.name)
                message = Msg("error-model-failed")
            return [_chained(JobFailed(msg=message, accepted=True), exc) for _ in entries]
        images_out = list(output.images)
        self.stats.images += len(images_out)
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(images_out)
        return split_output(entries, images_out, [bool(f) for f in flags],
                            {"device": self.device_name})


def _min_steps(strength: float) -> int:
    steps = max(1, math.ceil(1 / strength))
    while int(steps * strength) < 1:  # float rounding, as the pipeline computes it
        steps += 1
    return steps


def _chained(error: ProviderError, cause: BaseException) -> ProviderError:
    error.__cause__ = cause
    return error


def _free_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
