"""Backend pools: several configured providers behind one name, with failover and breakers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import httpx
from pydantic import Field, field_validator

from bot.errors import (
    ConfigError,
    ContentFiltered,
    InvalidProviderRequest,
    ProviderError,
    ProviderUnavailable,
)
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ProviderJob, SizeRules
from bot.options import Overrides
from bot.providers.base import Provider, ProviderSettings, Reporter
from bot.providers.circuit import CircuitBreaker

log = logging.getLogger(__name__)


class PoolSettings(ProviderSettings):
    """Keys of ``type = "pool"``."""

    members: list[str] = Field(min_length=1, description="names of other [providers.*] tables")
    strategy: Literal["failover", "round_robin", "least_busy"] = "failover"
    failure_threshold: int = Field(3, ge=1, description="consecutive failures that open a breaker")
    reset_after: float = Field(60.0, gt=0, description="seconds before an open breaker's trial")
    health_interval: float | None = Field(None, gt=0, description="seconds between health checks")

    @field_validator("members")
    @classmethod
    def _unique(cls, members: list[str]) -> list[str]:
        if len(set(members)) != len(members):
            raise ValueError("a member is listed twice")
        return members


@dataclass(eq=False)
class Member:
    """One provider of the pool with its breaker and the pool's jobs running on it."""

    provider: Provider
    breaker: CircuitBreaker
    in_flight: int = 0

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def load(self) -> float:
        return self.in_flight / self.provider.settings.max_concurrency


class _MemberReporter(Reporter):
    """Passes a member's progress, acceptance and records through to the pool's reporter."""

    def __init__(self, parent: Reporter) -> None:
        super().__init__(parent.progress)
        self._parent = parent

    def accept(self) -> None:
        super().accept()
        self._parent.accept()

    def record(self, key: str, value: object) -> None:
        super().record(key, value)
        self._parent.record(key, value)


class PoolProvider(Provider):
    """Runs each job on one member, chosen by ``strategy``, skipping members whose breaker is open.

    A job that fails before its member accepted it (unreachable, 5xx, rate limited, auth, a
    setting that member lacks) moves on to the next member; once a member has accepted it, its
    failure is final, so no job is ever done twice. A safety-filter refusal is final too: a pool
    never shops for a laxer filter. The member that ran the job is recorded as ``member``.

    The pool never charges: the core prices a job by the pool's own ``cost`` and reserves,
    commits or refunds it exactly once, however many members were tried; members' ``cost``
    and ``max_concurrency`` are not applied to jobs sent through the pool (set the pool's
    ``max_concurrency`` to the members' total).
    """

    type_name = "pool"
    Settings = PoolSettings

    settings: PoolSettings

    def __init__(self, name: str, settings: PoolSettings, http: httpx.AsyncClient,
                 members: Sequence[Provider]) -> None:
        self.members = [
            Member(p, CircuitBreaker(settings.failure_threshold, settings.reset_after))
            for p in members
        ]
        super().__init__(name, settings, http)
        # The base declares these per class; a pool's follow from its members.
        self.__dict__.update(
            size_rules=strictest_rules([p.rules for p in members], key=f"providers.{name}"),
            styles=tuple(s for s in members[0].styles
                         if all(s in p.styles for p in members[1:])),
        )
        self._next = 0
        self._health_task: asyncio.Task[None] | None = None

    def capabilities_for(self, settings: ProviderSettings) -> Capability:
        """What every member supports, as each member is configured."""
        return functools.reduce(operator.and_, (m.provider.capabilities for m in self.members))

    def builtin_defaults(self, model: str | None) -> Overrides:
        # A job starts on the first member (failover's primary), so its defaults lead.
        return self.members[0].provider.defaults_for(model)

    @classmethod
    def build(cls, name: str, settings: ProviderSettings, http: httpx.AsyncClient,
              built: Mapping[str, Provider]) -> Provider:
        """Pick the members out of the providers built so far; unknown names are config errors."""
        if not isinstance(settings, PoolSettings):
            raise ConfigError(f"providers.{name}: expected pool settings")
        key = f"providers.{name}.members"
        for member in settings.members:
            if member == name:
                raise ConfigError(f"{key}: a pool cannot contain itself")
            if member not in built:
                known = ", ".join(sorted(built)) or "none"
                raise ConfigError(f"{key}: unknown provider {member!r} (known: {known})")
        return cls(name, settings, http, [built[m] for m in settings.members])

    def _order(self) -> list[Member]:
        """The members in the order this job tries them."""
        if self.settings.strategy == "failover":
            return list(self.members)
        start = self._next % len(self.members)
        self._next += 1
        rotated = self.members[start:] + self.members[:start]
        if self.settings.strategy == "round_robin":
            return rotated
        return sorted(rotated, key=lambda m: m.load)  # stable: ties keep the rotation

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        self._start_health_loop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + job.timeout
        errors: list[ProviderError] = []
        tried: list[str] = []
        for member in self._order():
            remaining = deadline - loop.time()
            if remaining <= 0 or not member.breaker.allow():
                continue
            tried.append(member.name)
            reporter.record("member", member.name)
            reporter.record("members_tried", ",".join(tried))
            try:
                return await self._run_on(member, job, remaining, reporter)
            except ProviderError as exc:
                if exc.accepted or isinstance(exc, ContentFiltered):
                    raise
                log.info("pool %s: member %s refused job %s (%s); trying the next one",
                         self.name, member.name, job.job_id, type(exc).__name__)
                errors.append(exc)
        if not errors:
            raise ProviderUnavailable(msg=Msg("error-pool-down"))
        # A member's refusal of the settings tells the user more than another's outage.
        raise next((e for e in errors if isinstance(e, InvalidProviderRequest)), errors[-1])

    async def _run_on(self, member: Member, job: ProviderJob, remaining: float,
                      reporter: Reporter) -> GenerationResult:
        """One attempt on one member, keeping its breaker and load up to date."""
        member_job = replace(job, timeout=min(remaining, member.provider.settings.timeout),
                             params=job.params.with_changes(provider=member.name))
        member.in_flight += 1
        healthy: bool | None = None
        try:
            result = await member.provider.generate(member_job, _MemberReporter(reporter))
            healthy = True
        except (InvalidProviderRequest, ContentFiltered):
            healthy = True  # the member works; the request was the problem
            raise
        except ProviderError:
            healthy = False
            raise
        finally:
            member.in_flight -= 1
            if healthy is None:
                member.breaker.release()
            elif healthy:
                member.breaker.record_success()
            else:
                member.breaker.record_failure()
        return replace(result, metadata={**result.metadata, "member": member.name})

    async def cancel(self, job: ProviderJob, reporter: Reporter) -> None:
        """Nothing to do: the member cancels its own job as the cancellation passes through it."""

    async def _check(self, member: Member) -> tuple[bool | None, str]:
        """Health-check one member and feed its breaker; ``None`` when it has no free check."""
        if type(member.provider).health is Provider.health:
            return None, "not checked"
        try:
            status = await asyncio.wait_for(member.provider.health(),
                                            member.provider.settings.timeout)
        except (ProviderError, httpx.HTTPError, TimeoutError) as exc:
            member.breaker.record_failure()
            text = exc.user_message if isinstance(exc, ProviderError) else type(exc).__name__
            return False, f"failing: {text}"
        member.breaker.record_success()
        return True, status

    async def health(self) -> str:
        """Check every member; raise ``ProviderUnavailable`` when none that can be checked is up."""
        results = await asyncio.gather(*(self._check(m) for m in self.members))
        ok = sum(1 for healthy, _ in results if healthy)
        checked = sum(1 for healthy, _ in results if healthy is not None)
        parts = "; ".join(f"{m.name}: {text}" for m, (_, text) in zip(self.members, results,
                                                                         strict=True))
        if checked and not ok:
            raise ProviderUnavailable(f"no pool member is healthy ({parts})")
        return f"{ok}/{len(self.members)} members ok ({parts})"

    def _start_health_loop(self) -> None:
        interval = self.settings.health_interval
        if interval is not None and self._health_task is None:
            self._health_task = asyncio.create_task(self._health_loop(interval),
                                                    name=f"pool-{self.name}-health")

    async def _health_loop(self, interval: float) -> None:
        while True:
            try:
                await asyncio.gather(*(self._check(m) for m in self.members))
            except Exception:
                # A bug in one check must not end the loop for the life of the bot.
                log.exception("pool %s: health check failed", self.name)
            await asyncio.sleep(interval)

    async def list_models(self) -> list[str]:
        """The models every reachable member offers (a job may land on any of them)."""
        answers = await asyncio.gather(*(m.provider.list_models() for m in self.members),
                                       return_exceptions=True)
        lists = [a for a in answers if isinstance(a, list)]
        if not lists:
            failure = next(a for a in answers if isinstance(a, BaseException))
            raise failure
        return [model for model in lists[0] if all(model in other for other in lists[1:])]

    async def close(self) -> None:
        """Stop the health loop; members are closed by whoever built them."""
        task, self._health_task = self._health_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def strictest_rules(rules: Sequence[SizeRules], *, key: str) -> SizeRules:
    """Size rules every member can honour: the strictest value of each bound."""
    max_area = min(r.max_area for r in rules)
    fixed = [set(r.allowed_sizes) for r in rules if r.allowed_sizes]
    combined = SizeRules(
        multiple=math.lcm(*(r.multiple for r in rules)),
        min_side=max(r.min_side for r in rules),
        max_side=min(r.max_side for r in rules),
        preferred_area=min(min(r.preferred_area for r in rules), max_area),
        max_area=max_area,
        max_samples=min(r.max_samples for r in rules),
        max_input_bytes=min(r.max_input_bytes for r in rules),
        input_format=rules[0].input_format
        if all(r.input_format == rules[0].input_format for r in rules) else "PNG",
        allowed_sizes=tuple(sorted(set.intersection(*fixed))) if fixed else (),
        min_steps=max(r.min_steps for r in rules),
        max_steps=min(r.max_steps for r in rules),
    )
    if combined.min_side > combined.max_side or (fixed and not combined.allowed_sizes):
        raise ConfigError(f"{key}.members: the members' image sizes have nothing in common")
    if combined.min_steps > combined.max_steps:
        raise ConfigError(f"{key}.members: the members' step ranges have nothing in common")
    return combined
