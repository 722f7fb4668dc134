"""The provider base class: the framework owns ``generate``; each backend fills ``_generate``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, final

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot import imaging
from bot.errors import (
    ImageError,
    JobFailed,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.fetcher import GuardedFetcher
from bot.i18n import Msg
from bot.limits import MAX_CFG, MAX_STEPS, MIN_STEPS
from bot.models import Capability, GenerationResult, ProviderJob, ResultLimits, SizeRules
from bot.options import Overrides
from bot.providers.http import RetryPolicy
from bot.redact import register_secret

log = logging.getLogger(__name__)


class ProviderDefaults(BaseModel):
    """``defaults = {cfg = 3.5, steps = 28}``: where this backend's jobs start.

    They sit above ``[defaults]`` and the backend's built-in defaults, and under the chat's and
    the user's defaults and the request.
    """

    model_config = ConfigDict(extra="forbid")

    strength: float | None = Field(None, ge=0.0, le=1.0)
    steps: int | None = Field(None, ge=MIN_STEPS, le=MAX_STEPS)
    cfg: float | None = Field(None, ge=0.0, le=MAX_CFG)


class ProviderSettings(BaseModel):
    """Keys every ``[providers.NAME]`` table accepts."""

    model_config = ConfigDict(extra="forbid")

    type: str
    cost: int = Field(1, ge=0, description="credits per image at up to 1 megapixel")
    max_concurrency: int = Field(1, ge=1, le=64)
    timeout: float = Field(300.0, gt=0, description="seconds a job may take in total")
    label: str | None = None
    defaults: ProviderDefaults = Field(default_factory=ProviderDefaults)

    def resolve_secrets(self, name: str, environ: Mapping[str, str]) -> None:
        """Fill secrets from the environment; subclasses with keys override this."""


def family_defaults(model: str, families: tuple[tuple[str, Overrides], ...]) -> Overrides:
    """The defaults of the first family whose marker is in ``model``'s name (case-insensitive)."""
    name = model.lower()
    return next((values for marker, values in families if marker in name), Overrides())


def env_name(name: str, suffix: str) -> str:
    """Where a provider's secret is looked up by default: ``my-webui`` → ``MY_WEBUI_{suffix}``."""
    return f"{name.upper().replace('-', '_')}_{suffix}"


def env_secret(value: SecretStr | None, environ: Mapping[str, str],
               variable: str) -> SecretStr | None:
    """``value``, else the secret in ``variable`` of the environment; registered for redaction."""
    if value is None and environ.get(variable):
        value = SecretStr(environ[variable])
    if value is not None:
        register_secret(value.get_secret_value())
    return value


class HttpProviderSettings(ProviderSettings):
    """Keys of backends reached over HTTP."""

    url: str
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(
        None, description="environment variable holding the key (default: NAME_API_KEY)"
    )
    connect_timeout: float = Field(10.0, gt=0)
    request_timeout: float = Field(120.0, gt=0)
    retries: int = Field(3, ge=1, le=10, description="attempts for 429/5xx/connection errors")
    poll_interval: float = Field(2.0, gt=0)

    def resolve_secrets(self, name: str, environ: Mapping[str, str]) -> None:
        self.api_key = env_secret(self.api_key, environ,
                                  self.api_key_env or env_name(name, "API_KEY"))

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")

    def key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key else ""

    def timeouts(self) -> httpx.Timeout:
        return httpx.Timeout(self.request_timeout, connect=self.connect_timeout)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.retries)


class Reporter:
    """What a backend tells the core while it works: progress, acceptance, metadata."""

    def __init__(
        self,
        on_progress: Callable[[float | None, float | None, str | None], None] | None = None,
    ) -> None:
        self._on_progress = on_progress
        self.accepted = False
        self.metadata: dict[str, Any] = {}

    def progress(
        self, fraction: float | None, eta: float | None = None, text: str | None = None
    ) -> None:
        """``fraction`` in 0..1 when known; ``eta`` in seconds; ``text`` e.g. a queue position."""
        if fraction is not None:
            fraction = min(1.0, max(0.0, fraction))
        if self._on_progress is not None:
            self._on_progress(fraction, eta, text)

    def accept(self) -> None:
        """The backend has taken the job: a failure from now on is not moved to another member."""
        self.accepted = True

    def record(self, key: str, value: Any) -> None:
        """Keep a fact on the job (remote id, kudos or units spent, pool member)."""
        self.metadata[key] = value


class Provider(ABC):
    """A backend. Subclasses set the class attributes and write ``_generate``."""

    type_name: ClassVar[str]
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings
    # What every instance of the class supports; ``capabilities_for`` widens it per configuration.
    CAPABILITIES: ClassVar[Capability] = Capability.STRENGTH
    size_rules: ClassVar[SizeRules] = SizeRules()
    styles: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        self.name = name
        self.settings = settings
        self.http = http
        # The composition root replaces both with the ones built from the whole config.
        self.result_limits = ResultLimits()
        own = [settings.url] if isinstance(settings, HttpProviderSettings) else []
        self.fetcher = GuardedFetcher(http, origins=own, max_bytes=self.result_limits.max_bytes)
        # The one place capabilities are decided: per instance, from its configuration.
        self.capabilities: Capability = self.capabilities_for(settings)

    def capabilities_for(self, settings: ProviderSettings) -> Capability:
        """What this configuration of the backend supports; the class's by default."""
        return self.CAPABILITIES

    @classmethod
    def build(
        cls,
        name: str,
        settings: ProviderSettings,
        http: httpx.AsyncClient,
        built: Mapping[str, Provider],
    ) -> Provider:
        """Construct from config; pools override this to pick up their members."""
        return cls(name, settings, http)

    @property
    def rules(self) -> SizeRules:
        return self.size_rules

    @property
    def label(self) -> str:
        return self.settings.label or self.name

    def supports(self, capability: Capability) -> bool:
        return bool(self.capabilities & capability)

    @final
    def defaults_for(self, model: str | None) -> Overrides:
        """This backend's settings layer: its built-in defaults, then the operator's table."""
        configured = Overrides(**self.settings.defaults.model_dump(exclude_none=True))
        return self.builtin_defaults(model).merged(configured)

    def builtin_defaults(self, model: str | None) -> Overrides:
        """What this backend, or ``model``'s family, works best with; nothing by default."""
        return Overrides()

    @final
    async def generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        """Run a job with the timeout, cancellation and error mapping every backend shares."""
        try:
            async with asyncio.timeout(job.timeout):
                result = await self._generate(job, reporter)
        except TimeoutError as exc:
            await self._cancel_quietly(job, reporter)
            raise ProviderTimeout(accepted=reporter.accepted) from exc
        except asyncio.CancelledError:
            await self._cancel_quietly(job, reporter)
            raise
        except ProviderError as exc:
            # The HTTP helpers cannot know whether the backend had taken the job; the reporter does.
            exc.accepted = exc.accepted or reporter.accepted
            raise
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(accepted=reporter.accepted) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(accepted=reporter.accepted) from exc
        except (ValueError, KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
            log.warning("provider %s sent a malformed answer: %s", self.name, type(exc).__name__)
            raise JobFailed(msg=Msg("error-answer-malformed"),
                            accepted=reporter.accepted) from exc
        if not result.images:
            raise JobFailed(msg=Msg("error-no-image"), accepted=True)
        return await self._checked(result)

    async def _checked(self, result: GenerationResult) -> GenerationResult:
        """Decode every image for real (off the loop) before the job counts as generated; the
        images then carry their size."""
        images = []
        for image in result.images:
            try:
                size = await imaging.off_loop(imaging.check_result, image.data,
                                              self.result_limits)
            except ImageError as exc:
                log.warning("provider %s sent an unusable image: %s", self.name, exc)
                raise JobFailed(msg=exc.msg, accepted=True) from exc
            images.append(dataclasses.replace(image, size=size))
        return dataclasses.replace(result, images=tuple(images))

    async def _cancel_quietly(self, job: ProviderJob, reporter: Reporter) -> None:
        if not (self.capabilities & Capability.CANCEL):
            return
        try:
            await asyncio.shield(asyncio.wait_for(self.cancel(job, reporter), 10))
        except (ProviderError, httpx.HTTPError, TimeoutError, asyncio.CancelledError):
            log.info("provider %s: remote cancel of job %s failed", self.name, job.job_id)

    @abstractmethod
    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        """Speak the backend's protocol; raise errors from ``bot.errors``."""

    async def cancel(self, job: ProviderJob, reporter: Reporter) -> None:
        """Cancel the job at the backend (only called with ``Capability.CANCEL``)."""

    async def health(self) -> str:
        """Check reachability and auth without spending credits; return a short status line."""
        return "not checked (this backend has no free health check)"

    async def list_models(self) -> list[str]:
        """Model names the backend offers (empty when it has no list)."""
        return []

    async def close(self) -> None:
        """Release resources the backend holds besides the shared HTTP client."""


def environ() -> Mapping[str, str]:
    return os.environ
