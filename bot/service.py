"""The generation service: the core of every request, from policy to the queue.

``submit`` checks the image, resolves the settings, applies the chat's policy, prices the
job, and stores it with its upload and its reservation in one transaction; from there the
job lives in storage, and a ``Pipeline`` (in this process or another) runs it, delivers it
and commits or refunds it. Adapters render the job's events and deliver through couriers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from enum import StrEnum

from bot import imaging, metrics
from bot.config import Config
from bot.couriers import Courier
from bot.credits import Credits
from bot.errors import JobCancelled, OptionError, PolicyError, QueueFull
from bot.events import Failed, Queued
from bot.i18n import Duration, Msg
from bot.jobs import GenerationRequest, JobHandle
from bot.lease import hold_exclusively
from bot.models import ImageData
from bot.options import clean_text
from bot.pipeline import Pipeline
from bot.policy import check_text
from bot.preferences import Preferences
from bot.providers.base import Provider
from bot.settings import Layers, Resolved, resolve
from bot.stored_settings import ChatPolicy, ChatSettings
from storage.base import Blob, JobRecord, QueueLimits, Storage
from storage.errors import QueueLimitReached

log = logging.getLogger(__name__)


class CancelOutcome(StrEnum):
    """What a press of a job's Cancel button did."""

    CANCELLED = "cancelled"  # refunded now (queued) or within a heartbeat (running)
    NOT_YOURS = "not-yours"  # only the requester may cancel
    FINISHED = "finished"    # the job had already ended
    TOO_LATE = "too-late"    # it ended between the look and the cancel

    @property
    def answer(self) -> Msg:
        """What the presser is told (``cancel-*``)."""
        return Msg("cancel-done" if self is CancelOutcome.CANCELLED else f"cancel-{self.value}")


class GenerationService:
    """The use cases of a job: submit, cancel, follow; the pipeline runs what is queued."""

    def __init__(self, config: Config, storage: Storage, providers: Mapping[str, Provider]):
        self.config = config
        self.storage = storage
        self.providers = dict(providers)
        self.credits = Credits(config.credits, storage)
        self.preferences = Preferences(storage)
        self.pipeline = Pipeline(config, storage, self.providers)
        self._stopping = False

    @property
    def active(self) -> dict[str, JobHandle]:
        """Jobs this process follows that have not ended."""
        return {job_id: h for job_id, h in self.pipeline.handles.items() if h.final is None}

    def follows(self, job_id: str) -> bool:
        """This process shows the job's progress (so it also clears its status message)."""
        handle = self.pipeline.handles.get(job_id)
        return handle is not None and handle.final is None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, *, claims: bool = True) -> None:
        """Register this process, requeue or refund what dead ones left, and start claiming
        (a gateway, ``claims=False``, only queues jobs for the workers)."""
        await self.pipeline.start(claims=claims)

    async def stop(self) -> None:
        """Stop claiming; jobs running here go back to the queue for the next start."""
        self._stopping = True
        await self.pipeline.stop()

    def register_courier(self, platform: str, courier: Courier, *, shared: bool = True) -> None:
        """An adapter serves ``platform`` from this process: its jobs can run here, or, when
        not ``shared`` (a CLI writing local files), the jobs submitted here run only here."""
        self.pipeline.register(platform, courier, shared=shared)

    def unregister_courier(self, platform: str) -> None:
        """The adapter stopped: results for ``platform`` wait in the outbox from now on."""
        self.pipeline.couriers.pop(platform, None)

    async def remember_status(self, job_id: str, message_id: int | str) -> None:
        """Keep the job's status message, so whichever process runs it can update it."""
        await self.storage.set_origin(job_id, {"status_message_id": message_id})

    async def first_time(self, platform: str, event_id: str) -> bool:
        """Claim a platform event; False when it was handled before (a redelivery)."""
        return await self.storage.mark_event(platform, event_id)

    async def status_message(self, job_id: str) -> str | None:
        """The job's status message as last remembered (by whichever process showed it)."""
        job = await self.storage.get_job(job_id)
        found = job.origin.get("status_message_id") if job is not None else None
        return str(found) if found is not None else None

    async def exclusively(self, role: str, stop: asyncio.Event,
                          body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        """Play ``role`` only while no other process does (see bot.lease), until ``stop``."""
        jobs = self.config.jobs
        await hold_exclusively(self.storage, role, self.pipeline.instance, ttl=jobs.lease,
                               beat=jobs.heartbeat, stop=stop, body=body)

    def workers_alive(self) -> bool:
        """Every worker is still running (one that died would strand its provider's queue)."""
        return self.pipeline.alive()

    # -- submitting ----------------------------------------------------------------------------
    async def submit(self, request: GenerationRequest) -> JobHandle:
        """Check, price, reserve and queue a request; raises a ``UserError`` with the reason."""
        if self._stopping:
            raise QueueFull(msg=Msg("error-restarting"))
        prompt = clean_text(request.prompt).strip()  # adapters may pass text unparsed
        if not prompt:
            raise OptionError(msg=Msg("error-prompt-missing"))
        limits = self.config.limits
        if len(prompt) > limits.max_prompt_chars:
            raise OptionError(msg=Msg("error-prompt-too-long", {
                "length": len(prompt), "limit": limits.max_prompt_chars}))
        chat_settings = ChatSettings() if request.chat.private else ChatSettings.load(
            await self.storage.chat_settings(request.chat.key))
        policy = ChatPolicy() if request.chat.private else chat_settings.policy
        check_text(policy, prompt, request.overrides.negative_prompt or "")
        await self._check_rate(request, policy)
        mine = await self.preferences.user(request.user)
        layers = Layers(chat=chat_settings.overrides, user=mine.overrides,
                        request=request.overrides)
        early = self.pipeline.keeps_prepared()

        def checked() -> tuple[imaging.ImageInfo, Resolved, ImageData | None]:
            """The upload probed, the options resolved for its size and, where the job will
            likely start here, the provider input made (its decode is the probe's trial
            decode): one trip to the imaging pool."""
            info = imaging.probe(request.image, max_bytes=limits.max_input_bytes,
                                 max_pixels=limits.max_input_pixels, trial=not early)
            resolved = resolve(
                prompt=prompt, layers=layers, defaults=self.config.defaults,
                styles=self.config.styles, policy=policy, providers=self.providers,
                input_size=(info.width, info.height), nsfw_channel=request.chat.nsfw_channel,
                max_side=limits.max_side)
            provider = self.providers[resolved.params.provider]
            return info, resolved, (Pipeline.prepared_input(provider, resolved.params,
                                                            request.image) if early else None)

        info, resolved, prepared = await imaging.off_loop(checked)
        params = resolved.params
        provider = self.providers[params.provider]
        price = self.credits.price(provider.settings.cost, params)
        job_id = uuid.uuid4().hex
        platform = request.user.platform
        record = JobRecord(
            id=job_id, user_key=request.user.key, chat_key=request.chat.key,
            provider=params.provider, status="queued", charge="", price=price,
            params={"prompt": prompt, "request": request.overrides.to_dict(),
                    "resolved": asdict(params), "notices": list(resolved.notices),
                    # delivery reads no settings
                    "prefs": mine.prefs.model_dump(exclude_unset=True)},
            origin=request.origin, platform=platform,
            affinity=self.pipeline.affinity_for(platform))
        handle = JobHandle(job_id, request.user, request.chat, request.origin, params, price,
                           resolved.notices, None)
        handle.prepared = prepared
        self.pipeline.handles[job_id] = handle  # before the claim can see the job
        handle.emit(Queued(1))
        # Where a slot is free here, the job starts in the transaction that stores it.
        start = self.pipeline.start_here(params.provider)
        # The job keeps what it runs on: where the provider input is made already and is the
        # smaller, that (a process that claims the job after a crash prepares it again at the
        # same size, losslessly for PNG, once more at JPEG quality 92 otherwise).
        upload = (Blob(prepared.mime, prepared.data)
                  if prepared is not None and len(prepared.data) <= len(request.image)
                  else Blob(info.mime, request.image))
        queue = QueueLimits(limits.max_queue, limits.max_queued_per_user)
        event = (platform, request.event_id) if request.event_id else None
        grants = self.credits.grants()  # the user's free credits, given as the job is stored
        claim = None
        try:
            if start is None:
                handle.balance_after_reserve = await self.storage.create_job(
                    record, upload=upload, limits=queue, event=event, grants=grants)
            else:
                created = await self.pipeline.create_started(
                    record, upload=upload, limits=queue, start=start, event=event,
                    grants=grants)
                handle.balance_after_reserve, claim = created.balance, created.claim
        except BaseException as exc:
            self.pipeline.handles.pop(job_id, None)
            if isinstance(exc, QueueLimitReached):
                raise self._queue_full(exc) from exc
            raise
        metrics.job_transition(job_id, record.user_key, record.provider, "queued", price=price)
        if start is not None:
            self.pipeline.started(params.provider, job_id, claim)
            if claim is not None:
                return handle
        else:
            self.pipeline.wake(params.provider)
        if self.pipeline.busy(params.provider):
            await self.pipeline.show_positions(params.provider)
        return handle

    @staticmethod
    def _queue_full(exc: QueueLimitReached) -> QueueFull:
        if exc.scope == "total":
            return QueueFull()
        return QueueFull(msg=Msg("error-queue-user", {"count": exc.count}))


    async def _check_rate(self, request: GenerationRequest, policy: ChatPolicy) -> None:
        if request.chat.private or not (policy.cooldown or policy.daily_limit):
            return
        now = time.time()
        usage = await self.storage.usage(request.user.key, request.chat.key, since=now - 86400)
        if policy.cooldown and usage.last_at and now - usage.last_at < policy.cooldown:
            wait = int(policy.cooldown - (now - usage.last_at)) + 1
            raise PolicyError(msg=Msg("error-cooldown", {"duration": Duration(wait)}))
        if policy.daily_limit and usage.count >= policy.daily_limit:
            raise PolicyError(msg=Msg("error-daily-limit", {"count": policy.daily_limit}))

    async def in_progress(self) -> int:
        """Jobs not yet delivered or refunded, over every process."""
        return await self.storage.active_jobs()

    # -- cancelling ------------------------------------------------------------------------------
    async def requester(self, job_id: str) -> str | None:
        """The user key of an unfinished job (None once it has ended)."""
        job = await self.storage.get_job(job_id)
        return job.user_key if job is not None and job.status in ("queued", "running") else None

    async def cancel(self, job_id: str, user_key: str | None = None) -> bool:
        """Cancel a job (only its requester's, when ``user_key`` is given), wherever it runs:
        a queued one is refunded now, a running one by its process within a heartbeat."""
        outcome = await self.storage.request_cancel(job_id, user_key)
        if outcome == "cancelled":
            # Counted and logged where it was cancelled, with its refund: a job accepted here
            # is known by its handle, one accepted elsewhere is read back.
            handle = self.pipeline.handles.pop(job_id, None)
            if handle is not None:
                metrics.job_transition(job_id, handle.user.key, handle.params.provider,
                                       "cancelled", price=handle.price)
                handle.emit(Failed(JobCancelled(), refunded=handle.price > 0,
                                   balance=await self.storage.balance(handle.user.key)))
            elif (job := await self.storage.get_job(job_id)) is not None:
                metrics.job_transition(job_id, job.user_key, job.provider, "cancelled",
                                       price=job.price)
            return True
        if outcome == "requested":
            self.pipeline.cancel_here(job_id)
            return True
        return False

    async def cancel_as(self, job_id: str, user_key: str) -> CancelOutcome:
        """A Cancel press by ``user_key``: only the requester may, while the job is unfinished."""
        requester = await self.requester(job_id)
        if requester is None:
            return CancelOutcome.FINISHED
        if requester != user_key:
            return CancelOutcome.NOT_YOURS
        if await self.cancel(job_id, user_key):
            return CancelOutcome.CANCELLED
        return CancelOutcome.TOO_LATE

    async def owner(self, job_id: str) -> str | None:
        """The user key of a job, finished or not (None once it is gone)."""
        job = await self.storage.get_job(job_id)
        return job.user_key if job is not None else None

    async def cancel_latest(self, user_key: str) -> JobRecord | None:
        """Cancel the user's newest unfinished job; returns it, or None if there was none."""
        for _ in range(3):  # another process may start or finish it meanwhile
            job = await self.storage.latest_active(user_key)
            if job is None:
                return None
            if await self.cancel(job.id, user_key):
                return job
        return None
