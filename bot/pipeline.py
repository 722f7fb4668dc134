"""Running jobs from the shared queue: claims, leases, generation, the outbox, notices.

Every processing process runs one ``Pipeline``. It registers an instance with a lease and
renews it with a heartbeat; claims a provider's next job only while a slot of that
provider's ``max_concurrency`` is free over every process; stores the result before
delivery; hands it to the platform's courier and commits the charge on the platform's
confirmation; retries refused deliveries until the deadline; requeues or refunds the jobs of
processes whose lease ran out; and sends the notices those leave owed to users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from bot import imaging, metrics
from bot.config import Config
from bot.couriers import Courier, LocalCourier
from bot.errors import BotError, DeliveryRefused, JobCancelled, JobFailed, StorageUnavailable
from bot.events import Detached, Done, Failed, Progress, Queued, Started
from bot.i18n import Msg, using
from bot.jobs import JobHandle
from bot.models import ChatRef, ImageData, Params, ProviderJob, UserRef
from bot.presenter import DELIVERY_DEFERRED, RESTARTING, notice_text
from bot.providers.base import Provider, Reporter
from storage.base import (
    Blob,
    Claim,
    Created,
    Grants,
    JobRecord,
    QueueLimits,
    StartHere,
    Storage,
    Stored,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# Provider inputs made at submission and held until their jobs start here: a 512x512-class
# JPEG is about 60 KB, so this keeps a few hundred queued jobs' inputs; later ones are made
# again when they start.
PREPARED_BYTES = 32 * 1024 * 1024
MAX_RETRY_DELAY = 600.0
# After a failed storage call a background loop waits, doubling up to the maximum, so that
# users' requests get their turn on a database another program has locked.
OUTAGE_BACKOFF = 2.0
MAX_OUTAGE_BACKOFF = 30.0
PURGE_EVERY = 600.0  # seconds between purges of kept results and old processed-event ids
EVENTS_KEPT = 7 * 86400.0  # platforms re-deliver within minutes; a week is plenty


class _Absent:
    """Stands in for a courier whose adapter is not running here (any more)."""

    async def deliver(self, job: JobRecord, done: Done) -> str:
        raise DeliveryRefused(f"{job.platform} is not connected here")

    async def notify(self, job: JobRecord, text: str) -> None:
        raise DeliveryRefused(f"{job.platform} is not connected here")

    def resume(self, handle: JobHandle, job: JobRecord) -> None:
        return None


_ABSENT = _Absent()


class Pipeline:
    """One process's share of the work on the shared queue."""

    def __init__(self, config: Config, storage: Storage,
                 providers: Mapping[str, Provider]) -> None:
        self.config = config
        self.jobs = config.jobs
        self.storage = storage
        self.providers = providers
        self.instance = uuid.uuid4().hex
        self.handles: dict[str, JobHandle] = {}  # jobs followed here, until they end
        self.couriers: dict[str, Courier] = {}
        self._pinned: set[str] = set()  # platforms whose jobs stay with this process
        self.local = LocalCourier()
        self.stopping = False
        self._running: dict[str, asyncio.Task[None]] = {}
        # Jobs whose creating transaction may start them here, until ``started`` runs them:
        # not jobs another process took, though storage already says they are running.
        self._starting: set[str] = set()
        self.claims = False
        self._wake = {name: asyncio.Event() for name in providers}
        # Local slots free per provider, and whether jobs may wait in the shared queue for them.
        self._free = {name: p.settings.max_concurrency for name, p in providers.items()}
        self._waiting = dict.fromkeys(providers, True)
        self._wakes = dict.fromkeys(providers, 0)
        self._fed_elsewhere = False  # a claim took a job this process did not accept
        self._outbox_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._storage_down = False
        self._outage_delay = 0.0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, *, claims: bool = True) -> None:
        """Register, repair what dead processes left, then claim, beat and deliver (without
        ``claims``, as a gateway: only beat, so its own handles learn where their jobs went)."""
        await self.storage.register_instance(
            self.instance, lease=self.jobs.lease,
            info={"pid": os.getpid(), "host": socket.gethostname()})
        await self._recover()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        if not claims:
            return
        self.claims = True
        for name in self.providers:
            self._tasks.append(asyncio.create_task(self._claim_loop(name), name=f"claims-{name}"))
        self._tasks.append(asyncio.create_task(self._outbox_loop(), name="outbox"))

    async def stop(self) -> None:
        """Stop claiming, stop running jobs and hand them back to the queue for the next
        process (a clean stop does not count as an attempt)."""
        if self.stopping:
            return
        self.stopping = True
        unfinished = {*self._running, *self.handles}
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.storage.retire_instance(self.instance)
        for handle in list(self.handles.values()):
            handle.emit(Detached(RESTARTING))
        self.handles.clear()
        self._tasks.clear()
        metrics.jobs_left(unfinished)

    def alive(self) -> bool:
        """Claims, heartbeat and outbox are all running (a dead loop strands its work)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def register(self, platform: str, courier: Courier, *, shared: bool = True) -> None:
        """Serve a platform's jobs from here; its queued jobs can now be claimed."""
        self.couriers[platform] = courier
        if not shared:
            self._pinned.add(platform)
        for name in self._wake:
            self.wake(name)
        self._outbox_wake.set()

    def affinity_for(self, platform: str) -> str | None:
        """Jobs of a platform no courier serves here can only be finished by this process."""
        return None if platform in self.couriers and platform not in self._pinned \
            else self.instance

    def _shared(self) -> list[str]:
        return [p for p in self.couriers if p not in self._pinned]

    def wake(self, provider: str) -> None:
        """A job of ``provider`` may be waiting: claim it when a slot is free."""
        event = self._wake.get(provider)
        if event is not None:
            self._waiting[provider] = True
            self._wakes[provider] += 1
            event.set()

    def courier(self, job: JobRecord) -> Courier:
        """The job's courier; one whose adapter stopped refuses, so the result waits."""
        courier = self.couriers.get(job.platform)
        if courier is not None:
            return courier
        return self.local if job.affinity == self.instance else _ABSENT

    # -- claiming ------------------------------------------------------------------------------
    async def _claim_loop(self, name: str) -> None:
        """Claim while a local slot is free and a job may be waiting: after a stored request,
        a claim that left others queued, a requeue, or each ``poll`` (other processes' jobs).
        A slot freed with nothing known to wait costs no claim."""
        provider = self.providers[name]
        limit = provider.settings.max_concurrency
        wake = self._wake[name]
        while True:
            wake.clear()
            claimed = False
            while self._free[name] > 0:
                wakes = self._wakes[name]
                self._free[name] -= 1  # held through the claim: a request may start meanwhile
                try:
                    claim = await self.storage.claim_job(
                        self.instance, name, limit=limit, platforms=self._shared(),
                        lease=self.jobs.lease)
                except Exception as exc:  # a broken database: say it once, keep trying
                    self._free[name] += 1
                    # A request accepted meanwhile (the database works again) ends the wait.
                    await self._storage_failed(exc, wake)
                    continue
                # A request stored during the claim may not have been seen by it.
                self._waiting[name] = (claim is not None and claim.more) or \
                    self._wakes[name] != wakes
                if claim is not None:
                    self._begin(claim, provider, name)
                    claimed = True
                else:
                    self._free[name] += 1
                if not self._waiting[name]:
                    break
            if claimed:
                await self.show_positions(name)
            await _wait(wake, self.jobs.poll)

    def start_here(self, name: str) -> StartHere | None:
        """Whether a request accepted now may start in the transaction that stores it (a slot
        of ``name`` is free here); None where it waits for a claim. The slot is taken only
        once that transaction has started the job (``started``): storage counts the slots
        over every process, so a store that hangs or fails holds none."""
        if not self.claims or self.stopping or self._free.get(name, 0) <= 0:
            return None
        return StartHere(self.instance, self.providers[name].settings.max_concurrency,
                         tuple(self._shared()), self.jobs.lease)

    async def create_started(self, job: JobRecord, *, upload: Blob, limits: QueueLimits,
                             start: StartHere, event: tuple[str, str] | None,
                             grants: Grants) -> Created:
        """``create_started_job``, settled here even when the caller is cancelled: a job its
        transaction started after that still runs (nothing else would claim it)."""
        self._starting.add(job.id)
        task = asyncio.ensure_future(self.storage.create_started_job(
            job, upload=upload, limits=limits, start=start, event=event, grants=grants))
        task.add_done_callback(lambda done: self._unless_stored(job.id, done))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._settle_late(job, done))
            raise

    def _unless_stored(self, job_id: str, task: asyncio.Future[Created]) -> None:
        if task.cancelled() or task.exception() is not None:
            self._starting.discard(job_id)

    def _settle_late(self, job: JobRecord, task: asyncio.Future[Created]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.started(job.provider, job.id, task.result().claim)

    def started(self, name: str, job_id: str, claim: Claim | None) -> None:
        """After a ``start_here`` job was stored: run it in a slot taken now, or (it waits)
        let the claim loop take it in its turn."""
        self._starting.discard(job_id)
        if claim is None:
            self.wake(name)
            return
        self._free[name] -= 1  # may dip below 0 for a moment: storage kept the real count
        self._begin(claim, self.providers[name], name)

    def _begin(self, claim: Claim, provider: Provider, name: str) -> None:
        """Run a claimed job in the slot of its provider taken for it."""
        job_id = claim.job.id
        freed = False

        def free_slot() -> None:  # once the result is stored, or the job ended otherwise
            nonlocal freed
            if freed:
                return
            freed = True
            self._free[name] += 1
            # A freed slot is no news of a waiting job (no wake()); but where other processes
            # queue jobs too, this one cannot know of theirs, so it looks.
            if self._waiting[name] or self._fed_elsewhere:
                self._wake[name].set()

        task = asyncio.create_task(self._run(claim, provider, free_slot), name=f"job-{job_id}")
        self._running[job_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)
            free_slot()

        task.add_done_callback(done)

    def keeps_prepared(self) -> bool:
        """Whether a job accepted now may keep its provider input in memory until it starts
        here: only where jobs are claimed, and up to ``PREPARED_BYTES`` for all of them."""
        held = sum(len(h.prepared.data) for h in self.handles.values() if h.prepared)
        return self.claims and not self.stopping and held < PREPARED_BYTES

    @staticmethod
    def prepared_input(provider: Provider, params: Params, upload: bytes) -> ImageData:
        """The upload as ``provider``'s input at the job's size (Pillow work: off the loop)."""
        rules = provider.rules
        return imaging.prepare(upload, (params.width, params.height), rules.input_format,
                               rules.max_input_bytes)

    def busy(self, name: str) -> bool:
        """Whether every slot of ``name`` in this process is taken by a job."""
        return self._free[name] <= 0

    async def show_positions(self, name: str) -> None:
        """Tell the local handles of queued ``name`` jobs where they stand in the shared queue."""
        waiting = [h for h in self.handles.values()
                   if h.params.provider == name and h.id not in self._running]
        if not waiting:
            return
        with contextlib.suppress(Exception):
            positions = {job_id: i + 1 for i, job_id in
                         enumerate(await self.storage.queue_order(name))}
            for handle in waiting:
                if handle.id in positions:
                    handle.emit(Queued(positions[handle.id]))

    def _adopt(self, job: JobRecord) -> JobHandle:
        """A handle for a job accepted elsewhere (or before a restart), shown by its courier."""
        self._fed_elsewhere = True
        platform, _, chat_id = job.chat_key.partition(":")
        params = params_of(job)
        handle = JobHandle(job.id, UserRef.parse(job.user_key), ChatRef(platform, chat_id),
                           job.origin, params, job.price, tuple(job.params.get("notices", ())),
                           None)
        self.handles[job.id] = handle
        with using(_locale(job)):  # the status is shown in the reader's language
            self.courier(job).resume(handle, job)
        return handle

    # -- running -------------------------------------------------------------------------------
    async def _run(self, claim: Claim, provider: Provider,
                   free_slot: Callable[[], None]) -> None:
        job = claim.job
        metrics.job_transition(job.id, job.user_key, job.provider, "running")
        handle = self.handles.get(job.id) or self._adopt(job)
        handle.attach(asyncio.current_task())
        reporter = Reporter(lambda f, e, t: handle.emit(Progress(f, e, t)))
        try:
            if claim.upload is None:
                raise JobFailed(msg=Msg("error-photo-lost"))
            handle.emit(Started())
            image, handle.prepared = handle.prepared, None
            if image is None:  # accepted elsewhere, before a restart, or beyond PREPARED_BYTES
                image = await imaging.off_loop(self.prepared_input, provider, handle.params,
                                               claim.upload.data)
            result = await provider.generate(
                ProviderJob(job_id=job.id, params=handle.params, image=image,
                            timeout=provider.settings.timeout), reporter)
        except asyncio.CancelledError:
            if self.stopping and not handle.cancel_requested:
                raise  # handed back to the queue by retire_instance
            await asyncio.shield(self._fail(handle, job, "cancelled", JobCancelled(),
                                            reporter.metadata))
            return
        except BotError as exc:
            log.info("job %s failed on %s: %s", job.id, provider.name, type(exc).__name__)
            await self._fail(handle, job, "failed", exc, reporter.metadata)
            return
        except Exception:
            log.exception("job %s crashed on %s", job.id, provider.name)
            await self._fail(handle, job, "failed", JobFailed(), reporter.metadata)
            return
        metadata = _jsonable({**reporter.metadata, **result.metadata})
        images = [Blob(i.mime, i.data) for i in result.images]
        stored = await self._persist(
            self.storage.store_result, job.id, self.instance, images, seed=result.seed,
            metadata=metadata,
            deadline=time.time() + self.jobs.delivery_deadline)
        free_slot()  # the provider is done with it; delivery needs no slot
        if not stored:  # our lease ran out and the job went back to the queue
            log.warning("job %s was taken back from this process before its result was stored",
                        job.id)
            self._forget(handle, Detached())
            return
        done = await self._done(job, result.images, result.seed, handle.notices, stored)
        await self.deliver(job, done, handle)

    async def _done(self, job: JobRecord, images: tuple[ImageData, ...], seed: int | None,
                    notices: tuple[str, ...], stored: Stored | None = None) -> Done:
        """The result as its courier shows it; the balance as ``store_result`` read it, else
        read now (a result from the outbox)."""
        balance = None
        if self.config.credits.enabled:
            balance = stored.balance if stored is not None else \
                await self.storage.balance(job.user_key)
        provider = self.providers.get(job.provider)
        return Done(images=images, seed=seed, cost=job.price, balance=balance,
                    params=params_of(job), provider_label=provider.label if provider else
                    job.provider, notices=notices)

    async def _fail(self, handle: JobHandle, job: JobRecord, status: str, error: BotError,
                    metadata: dict[str, Any]) -> None:
        balance = await self._persist(self.storage.finish_job, job.id, status,
                                      error=type(error).__name__,
                                                metadata=_jsonable(metadata))
        metrics.job_transition(job.id, job.user_key, job.provider, status, price=job.price,
                               error=type(error).__name__)
        self._forget(handle, Failed(error=error, refunded=job.price > 0, balance=balance))

    def _forget(self, handle: JobHandle | None, final: Done | Failed | Detached) -> None:
        if handle is not None:
            handle.emit(final)
            self.handles.pop(handle.id, None)
            metrics.jobs_left([handle.id])  # where another process took or ended it

    # -- delivering ----------------------------------------------------------------------------
    async def deliver(self, job: JobRecord, done: Done, handle: JobHandle | None) -> None:
        """Hand a stored result to its courier; commit on confirmation, else retry later or
        refund when retrying cannot help."""
        try:
            with using(_locale(job)):  # the reader's language
                ref = await self.courier(job).deliver(job, done)
        except DeliveryRefused as exc:
            await self._refused(job, exc, handle)
            return
        except Exception as exc:
            log.exception("delivery of job %s crashed", job.id)
            await self._refused(job, DeliveryRefused(str(exc)), handle)
            return
        # The platform shows the result now: record it even when a stop arrives meanwhile,
        # or the next start would send it again (one short transaction delays the stop).
        confirm = asyncio.ensure_future(self._persist(
            self.storage.confirm_delivery, job.id, ref, keep_results=self.jobs.keep_results > 0))
        try:
            confirmed = await asyncio.shield(confirm)
        except asyncio.CancelledError:
            await asyncio.gather(confirm, return_exceptions=True)
            raise
        if confirmed:
            metrics.job_transition(job.id, job.user_key, job.provider, "delivered",
                                   price=job.price)
        self._forget(handle, done)

    async def _refused(self, job: JobRecord, exc: DeliveryRefused,
                       handle: JobHandle | None) -> None:
        if exc.permanent:
            log.warning("job %s cannot be delivered (%s); refunding it", job.id, exc)
            balance = await self._persist(self.storage.finish_job, job.id, "expired",
                                          error="undeliverable",
                                                    notice="expired")
            metrics.job_transition(job.id, job.user_key, job.provider, "expired",
                                   price=job.price, error="undeliverable")
            self._forget(handle, Failed(error=exc, refunded=job.price > 0, balance=balance))
            return
        fresh = await self.storage.get_job(job.id)
        attempts = fresh.delivery_attempts if fresh is not None else 0
        delay = min(MAX_RETRY_DELAY, self.jobs.retry_base * 2 ** attempts)
        delay = max(delay, exc.retry_after or 0.0)
        log.warning("job %s not delivered yet (%s); retrying in %.0f s", job.id, exc, delay)
        await self._persist(self.storage.delivery_failed, job.id, retry_at=time.time() + delay)
        self._forget(handle, Detached(DELIVERY_DEFERRED))

    async def _outbox_loop(self) -> None:
        while True:
            self._outbox_wake.clear()
            try:
                due = await self.storage.claim_deliveries(
                    self.instance, self._shared(), lease=self.jobs.lease)
                for job in due:
                    images = tuple(ImageData(b.data, b.mime)
                                   for b in await self.storage.results(job.id))
                    done = await self._done(job, images, job.seed,
                                            tuple(job.params.get("notices", ())))
                    await self.deliver(job, done, self.handles.get(job.id))
                await self._send_notices()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._storage_failed(exc)
            await _wait(self._outbox_wake, max(1.0, self.jobs.poll * 2))

    async def _send_notices(self) -> None:
        if not self.couriers:
            return
        for job in await self.storage.take_notices(list(self.couriers), lease=60.0):
            if job.notice is None:
                continue
            with using(_locale(job)):  # the reader's language
                text = notice_text(job.notice, job.price)
            try:
                await self.courier(job).notify(job, text)
            except DeliveryRefused as exc:
                if not exc.permanent:
                    continue  # taken again once its lease is over
                log.info("notice for job %s cannot be delivered: %s", job.id, exc)
            await self.storage.mark_notified(job.id)

    # -- leases --------------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        beats = 0
        purged = time.monotonic()
        while True:
            await asyncio.sleep(self.jobs.heartbeat)
            beats += 1
            try:
                for job_id in await self.storage.heartbeat(self.instance, lease=self.jobs.lease):
                    self.cancel_here(job_id)
                await self._follow_elsewhere()
                if beats % 3 == 0:
                    await self._recover()
                if time.monotonic() - purged >= PURGE_EVERY:  # by time: heartbeats vary
                    await self.storage.purge(results_before=time.time() - self.jobs.keep_results,
                                             events_before=time.time() - EVENTS_KEPT)
                    purged = time.monotonic()
                self._storage_down, self._outage_delay = False, 0.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._storage_failed(exc)

    async def _recover(self) -> None:
        recovery = await self.storage.recover_expired(max_attempts=self.jobs.max_attempts)
        expired = await self.storage.expire_undelivered()
        if recovery.requeued:
            log.warning("%d job(s) of a stopped process are being made again",
                        len(recovery.requeued))
            for name in self._wake:
                self.wake(name)
        if recovery.refunded:
            log.warning("refunded %d job(s) of a stopped process past their attempts",
                        len(recovery.refunded))
        for job_id in (*recovery.refunded, *expired):
            if (job := await self.storage.get_job(job_id)) is not None:
                metrics.job_transition(job.id, job.user_key, job.provider,
                                       "interrupted" if job.status == "failed" else job.status,
                                       price=job.price)
        if expired:
            log.warning("refunded %d result(s) not delivered by the deadline", len(expired))
        if recovery.released or recovery.requeued or recovery.refunded or expired:
            self._outbox_wake.set()

    async def _follow_elsewhere(self) -> None:
        """Local handles of queued jobs that another process took or cancelled."""
        waiting = [job_id for job_id in self.handles
                   if job_id not in self._running and job_id not in self._starting]
        if not waiting:
            return
        for job_id, status in (await self.storage.job_statuses(waiting)).items():
            handle = self.handles.get(job_id)
            if (handle is None or status == "queued" or job_id in self._running
                    or job_id in self._starting):
                continue
            if status == "cancelled":
                job = await self.storage.get_job(job_id)
                self._forget(handle, Failed(JobCancelled(), refunded=bool(job and job.price),
                                            balance=await self.storage.balance(handle.user.key)))
            elif status != "generated":
                self._forget(handle, Detached())

    def cancel_here(self, job_id: str) -> bool:
        task = self._running.get(job_id)
        handle = self.handles.get(job_id)
        if task is None:
            return False
        if handle is not None:
            handle.cancel_requested = True
        task.cancel()
        return True

    async def _persist(self, step: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """A job's transition, retried through a database outage: a job left half-done by
        a failed write would stay "running" under a live owner and never be repaired."""
        while True:
            try:
                return await step(*args, **kwargs)
            except StorageUnavailable as exc:
                if self.stopping:
                    raise  # the next start repairs it once this process's lease has run out
                await self._storage_failed(exc)

    async def _storage_failed(self, exc: Exception, wake: asyncio.Event | None = None) -> None:
        """A loop's storage call failed: the storage has logged the cause (once per cause);
        back off, so that the requests of users get their turn on a locked database. ``wake``
        set (new work was stored) ends the back-off early."""
        if not self._storage_down:
            log.debug("storage failed: %s", exc)
        self._storage_down = True
        self._outage_delay = min(MAX_OUTAGE_BACKOFF, max(OUTAGE_BACKOFF, 2 * self._outage_delay))
        if wake is None:
            await asyncio.sleep(self._outage_delay)
        else:
            await _wait(wake, self._outage_delay)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` passes (``asyncio.timeout``: Python 3.11's
    ``wait_for`` can swallow a cancellation that arrives as the event is set)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def params_of(job: JobRecord) -> Params:
    resolved = dict(job.params.get("resolved", {}))
    return Params(**resolved) if resolved else Params(
        prompt=str(job.params.get("prompt", "")), provider=job.provider, strength=0.5,
        steps=0, cfg=0.0, width=0, height=0)


def _jsonable(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if isinstance(v, str | int | float | bool | None)}


def _locale(job: JobRecord) -> str:
    """The language the job was asked in (its result and notices follow it)."""
    return str(job.origin.get("locale") or "")
