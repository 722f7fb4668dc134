"""The generation service: parse-free core of every request, from policy to refund.

``submit`` checks the image, resolves the settings, applies the chat's policy, prices the job,
reserves the credits and queues it; a worker per provider slot runs it, and any failure,
cancel or timeout refunds the reservation in full. Adapters render the job's events.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from bot import imaging, metrics
from bot.config import Config
from bot.credits import Credits
from bot.errors import BotError, JobCancelled, JobFailed, OptionError, PolicyError, QueueFull
from bot.events import Done, Failed, Progress, Queued, Started
from bot.jobs import GenerationRequest, JobHandle, UploadSpool
from bot.models import ProviderJob
from bot.options import clean_text
from bot.policy import ChatPolicy, chat_defaults, check_text
from bot.preferences import Preferences
from bot.providers.base import Provider, Reporter
from bot.queue import Lane
from bot.settings import Layers, resolve
from storage.base import JobRecord, Storage

log = logging.getLogger(__name__)
# Uploads of queued jobs kept in RAM in all; the rest wait in temporary files
# (500 queued 5 MB photos would otherwise hold 2.5 GB: benchmarks/bench_memory.py).


class GenerationService:
    """Owns the queue, the workers and every credit movement of a job."""

    def __init__(self, config: Config, storage: Storage, providers: Mapping[str, Provider]):
        self.config = config
        self.storage = storage
        self.providers = dict(providers)
        self.credits = Credits(config.credits, storage)
        self.preferences = Preferences(storage)
        self.lanes: dict[str, Lane[JobHandle]] = {name: Lane() for name in self.providers}
        self.active: dict[str, JobHandle] = {}
        self.spool = UploadSpool(config.limits.queued_uploads_in_memory)
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> list[JobRecord]:
        """Repair what a dead process left (refunds), then start the workers."""
        interrupted = await self.storage.recover_interrupted()
        if interrupted:
            log.warning("refunded %d job(s) interrupted by a restart", len(interrupted))
        for job in interrupted:
            metrics.job_transition(job.id, job.user_key, job.provider, "interrupted",
                                   price=job.price)
        for name, provider in self.providers.items():
            for slot in range(provider.settings.max_concurrency):
                self._workers.append(asyncio.create_task(self._worker(name),
                                                         name=f"worker-{name}-{slot}"))
        return interrupted

    async def stop(self) -> None:
        """Stop the workers; jobs still queued or running are refunded as interrupted."""
        self._stopping = True
        for handle in list(self.active.values()):
            handle.cancel()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for handle in list(self.active.values()):
            await self._finish_failed(handle, "interrupted", JobFailed(
                "The bot restarted before your image was done."))
        self._workers.clear()
        self.spool.close()

    def workers_alive(self) -> bool:
        """Every worker is still running (one that died would strand its provider's queue)."""
        return bool(self._workers) and not any(task.done() for task in self._workers)

    # -- submitting ----------------------------------------------------------------------------
    async def submit(self, request: GenerationRequest) -> JobHandle:
        """Check, price, reserve and queue a request; raises a ``UserError`` with the reason."""
        if self._stopping:
            raise QueueFull("The bot is restarting; please try again in a minute.")
        prompt = clean_text(request.prompt).strip()  # adapters may pass text unparsed
        if not prompt:
            raise OptionError("Please describe what to make, e.g. /img2img a watercolor painting.")
        limits = self.config.limits
        if len(prompt) > limits.max_prompt_chars:
            raise OptionError(f"The prompt is {len(prompt)} characters; the limit is "
                              f"{limits.max_prompt_chars}.")
        self._check_capacity(request)
        chat_settings = {} if request.chat.private else await self.storage.chat_settings(
            request.chat.key)
        policy = ChatPolicy() if request.chat.private else ChatPolicy.from_settings(chat_settings)
        check_text(policy, prompt, request.overrides.negative_prompt or "")
        await self._check_rate(request, policy)
        info = await imaging.off_loop(imaging.probe, request.image,
                                      max_bytes=limits.max_input_bytes,
                                      max_pixels=limits.max_input_pixels)
        layers = Layers(chat=chat_defaults(chat_settings),
                        user=await self.preferences.user_defaults(request.user),
                        request=request.overrides)
        resolved = resolve(prompt=prompt, layers=layers, defaults=self.config.defaults,
                           styles=self.config.styles, policy=policy, providers=self.providers,
                           input_size=(info.width, info.height),
                           nsfw_channel=request.chat.nsfw_channel, max_side=limits.max_side)
        params = resolved.params
        provider = self.providers[params.provider]
        await self.credits.ensure(request.user)
        price = self.credits.price(provider.settings.cost, params)
        job_id = uuid.uuid4().hex
        record = JobRecord(
            id=job_id, user_key=request.user.key, chat_key=request.chat.key,
            provider=params.provider, status="queued", charge="", price=price,
            params={"prompt": prompt, "request": request.overrides.to_dict(),
                    "resolved": asdict(params)},
            origin=request.origin)
        balance = await self.storage.create_job(record)  # raises InsufficientCredits
        metrics.job_transition(job_id, record.user_key, record.provider, "queued", price=price)
        handle = JobHandle(job_id, request, params, price, resolved.notices, balance)
        self.active[job_id] = handle
        lane = self.lanes[params.provider]
        lane.add(request.user.key, handle)
        handle.emit(Queued(lane.positions().get(job_id, 1)))
        await self.spool.hold(handle)
        return handle

    def _check_capacity(self, request: GenerationRequest) -> None:
        limits = self.config.limits
        if len(self.active) >= limits.max_queue:
            raise QueueFull()
        mine = sum(1 for h in self.active.values() if h.user.key == request.user.key)
        if mine >= limits.max_queued_per_user:
            raise QueueFull(f"You already have {mine} images in progress; wait for one to "
                            "finish or /cancel it.")

    async def _check_rate(self, request: GenerationRequest, policy: ChatPolicy) -> None:
        if request.chat.private or not (policy.cooldown or policy.daily_limit):
            return
        now = time.time()
        usage = await self.storage.usage(request.user.key, request.chat.key, since=now - 86400)
        if policy.cooldown and usage.last_at and now - usage.last_at < policy.cooldown:
            wait = int(policy.cooldown - (now - usage.last_at)) + 1
            raise PolicyError(f"Please wait {wait} s before your next image in this chat.")
        if policy.daily_limit and usage.count >= policy.daily_limit:
            raise PolicyError(f"This chat allows {policy.daily_limit} images per member a day; "
                              "please try again tomorrow.")

    # -- cancelling ------------------------------------------------------------------------------
    async def cancel(self, job_id: str, user_key: str | None = None) -> bool:
        """Cancel a job (only its requester's, when ``user_key`` is given)."""
        handle = self.active.get(job_id)
        if handle is None or (user_key is not None and handle.user.key != user_key):
            return False
        if self.lanes[handle.params.provider].remove(job_id):
            await self._finish_failed(handle, "cancelled", JobCancelled())
            return True
        return handle.cancel()

    async def cancel_latest(self, user_key: str) -> JobHandle | None:
        """Cancel the user's newest unfinished job; returns it, or None if there was none."""
        mine = [h for h in self.active.values() if h.user.key == user_key]
        for handle in sorted(mine, key=lambda h: h.created, reverse=True):
            if await self.cancel(handle.id, user_key):
                return handle
        return None

    # -- running -----------------------------------------------------------------------------------
    async def _worker(self, provider_name: str) -> None:
        lane = self.lanes[provider_name]
        provider = self.providers[provider_name]
        while True:
            handle = await lane.take()
            for other_id, position in lane.positions().items():
                self.active[other_id].emit(Queued(position))
            task = asyncio.create_task(self._run(handle, provider), name=f"job-{handle.id}")
            handle.attach(task)
            try:
                await asyncio.wait({task})  # raises only when this worker itself is cancelled
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise
            if task.cancelled():  # cancelled before its first step
                await self._finish_failed(handle, "cancelled", JobCancelled())

    async def _run(self, handle: JobHandle, provider: Provider) -> None:
        params = handle.params
        reporter = Reporter(lambda f, e, t: handle.emit(Progress(f, e, t)))
        try:
            await self.storage.start_job(handle.id)
            metrics.job_transition(handle.id, handle.user.key, provider.name, "running")
            handle.emit(Started())
            rules = provider.rules
            upload = await self.spool.take(handle)
            handle.image = b""  # the compressed upload is no longer needed once prepared
            image = await imaging.off_loop(imaging.prepare, upload,
                                           (params.width, params.height), rules.input_format,
                                           rules.max_input_bytes)
            del upload
            job = ProviderJob(job_id=handle.id, params=params, image=image,
                              timeout=provider.settings.timeout)
            result = await provider.generate(job, reporter)
        except asyncio.CancelledError:
            status = "interrupted" if self._stopping else "cancelled"
            error: BotError = JobCancelled() if status == "cancelled" else JobFailed(
                "The bot restarted before your image was done.")
            await asyncio.shield(self._finish_failed(handle, status, error, reporter.metadata))
            return
        except BotError as exc:
            log.info("job %s failed on %s: %s", handle.id, provider.name, type(exc).__name__)
            await self._finish_failed(handle, "failed", exc, reporter.metadata)
            return
        except Exception:
            log.exception("job %s crashed on %s", handle.id, provider.name)
            await self._finish_failed(handle, "failed", JobFailed(), reporter.metadata)
            return
        metadata = {**reporter.metadata, **result.metadata}
        balance = await self.storage.finish_job(handle.id, "succeeded", seed=result.seed,
                                                metadata=_jsonable(metadata))
        metrics.job_transition(handle.id, handle.user.key, provider.name, "succeeded",
                               price=handle.price)
        self.active.pop(handle.id, None)
        handle.emit(Done(images=result.images, seed=result.seed, cost=handle.price,
                         balance=balance if self.config.credits.enabled else None,
                         params=params, provider_label=provider.label, notices=handle.notices))

    async def _finish_failed(self, handle: JobHandle, status: str, error: BotError,
                             metadata: dict[str, Any] | None = None) -> None:
        if handle.final is not None:
            return
        self.spool.release(handle)
        balance = await self.storage.finish_job(handle.id, status, error=type(error).__name__,
                                                metadata=_jsonable(metadata or {}))
        metrics.job_transition(handle.id, handle.user.key, handle.params.provider, status,
                               price=handle.price, error=type(error).__name__)
        self.active.pop(handle.id, None)
        handle.emit(Failed(error=error, refunded=handle.price > 0, balance=balance))


def _jsonable(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if isinstance(v, str | int | float | bool | None)}
