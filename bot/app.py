"""The composition root: config → storage, HTTP client, providers, service.

``App`` is also the core's public face: adapters call its methods for every use case
(credits, forgetting, stats, policies, cancelling, reruns) and never reach storage or the
service's insides. Notices owed to users (restarts, resumed jobs, refunds at the delivery
deadline) need no call: the pipeline sends them through each platform's courier.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import httpx

from bot.config import Config
from bot.diagnose import watch_requests
from bot.errors import PolicyError
from bot.fetcher import GuardedFetcher
from bot.health import Health
from bot.i18n import Msg, current_locale
from bot.jobs import GenerationRequest, JobHandle
from bot.model_lists import ModelLists
from bot.models import ChatRef, ResultLimits, UserRef
from bot.once import PENDING
from bot.payments import Payments
from bot.places import PlacePolicy, place_chat, switches_of
from bot.preferences import Preferences
from bot.presenter import HelpSection, help_sections, providers_lines
from bot.providers import build_providers
from bot.providers.base import Provider
from bot.providers.http import make_client
from bot.rerun import Action, Rerun, plan_rerun
from bot.service import CancelOutcome, GenerationService
from bot.stats import Stats
from bot.store import core_storage
from bot.stored_settings import ChatPolicy
from storage import Storage, open_storage
from storage.base import JobRecord, LedgerEntry

if TYPE_CHECKING:  # bot.web needs aiohttp, which only ``run`` imports
    from bot.web import LateRoute


@dataclass
class App:
    config: Config
    storage: Storage
    http: httpx.AsyncClient
    providers: dict[str, Provider]
    service: GenerationService
    preferences: Preferences
    fetcher: GuardedFetcher
    payments: Payments
    health: Health = field(default_factory=Health)
    # Set when the bot's HTTP server also receives Telegram's webhook (``img2img-bot run``).
    webhook: LateRoute | None = None
    # all: receive platform events and run jobs; gateway: only receive; worker: only run jobs
    # (and deliver them through the platforms' APIs).
    role: str = "all"
    _models: ModelLists = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._models = ModelLists(self.providers)

    # -- credits -------------------------------------------------------------------------------
    async def balance(self, user: UserRef) -> int:
        """The user's balance (a new user gets the welcome grant first)."""
        return await self.service.credits.balance(user)

    async def history(self, user: UserRef, limit: int = 5) -> list[LedgerEntry]:
        """The user's newest ledger rows."""
        return await self.service.credits.history(user, limit)

    async def grant(self, target: UserRef, amount: int, *, by: UserRef) -> int:
        """An owner gives (or, negative, takes) credits; returns the new balance."""
        return await self.service.credits.grant(target, amount, by=by)

    # -- users ---------------------------------------------------------------------------------
    async def locale_for(self, user: UserRef, chat: ChatRef | None,
                         platform_language: str | None) -> str:
        """The language to answer in (``Preferences.locale_for``: the user's choice wins, then
        the chat's default, then the platform's tag)."""
        return await self.preferences.locale_for(user, chat, platform_language)

    async def forget_user(self, user: UserRef) -> int:
        """Erase the user's personal settings and the prompts of their finished jobs (the
        ledger stays, for the audit trail); returns how many jobs were erased."""
        return await self.storage.forget_user(user.key)

    # -- owners --------------------------------------------------------------------------------
    async def stats(self) -> Stats:
        """The owners' figures, over every process sharing the database."""
        numbers = await self.storage.stats()
        return Stats(users=numbers["users"], credits_outstanding=numbers["credits_outstanding"],
                     jobs=dict(numbers["jobs"]), jobs_last_24h=numbers["jobs_last_24h"],
                     credits_spent=numbers["credits_spent"],
                     in_progress=await self.service.in_progress(),
                     providers=tuple(self.providers), drift=tuple(await self.storage.drift()),
                     revenue=tuple(await self.payments.revenue()))

    # -- policies ------------------------------------------------------------------------------
    async def chat_policy(self, chat: ChatRef) -> ChatPolicy:
        """The chat's moderation policy (the defaults in a private chat)."""
        return ChatPolicy() if chat.private else await self.preferences.chat_policy(chat)

    async def place_policy(self, chat: ChatRef, place_id: str, *,
                           marked_nsfw: bool) -> PlacePolicy:
        """The chat's policy in one of its places (a Discord channel), with the place's own
        switches; ``marked_nsfw``: the platform marks the place NSFW."""
        switches = switches_of(await self.preferences.chat(place_chat(chat.platform, place_id)))
        return PlacePolicy(await self.chat_policy(chat), switches, marked_nsfw)

    async def switch_place(self, chat: ChatRef, place_id: str, switches: Mapping[str, bool], *,
                           marked_nsfw: bool) -> PlacePolicy:
        """Switch the bot (``enabled``) and NSFW (``nsfw``) on or off in one place of a chat (the
        caller has checked admin rights); NSFW goes on only where the platform marks the place
        NSFW (``marked_nsfw``). Returns the policy that holds there now."""
        if switches.get("nsfw") and not marked_nsfw:
            raise PolicyError(msg=Msg("dc-nsfw-unmarked"))
        for key, on in switches.items():
            await self.preferences.set_chat(place_chat(chat.platform, place_id), key,
                                            "on" if on else "off")
        return await self.place_policy(chat, place_id, marked_nsfw=marked_nsfw)

    # -- events --------------------------------------------------------------------------------
    async def first_time(self, platform: str, event_id: str) -> bool:
        """Claim a platform event; False when the platform delivered it before."""
        return await self.service.first_time(platform, event_id)

    # -- jobs ----------------------------------------------------------------------------------
    async def submit(self, request: GenerationRequest) -> JobHandle:
        """Queue a request; its job says in which language it was asked, and a platform event
        that may ask for a job (``bot.once.PENDING``) is recorded with that job."""
        pending = PENDING.get()
        request = replace(request, origin={"locale": current_locale.get(), **request.origin},
                          event_id=request.event_id or (pending.event_id if pending else None))
        handle = await self.service.submit(request)
        if pending is not None:
            pending.recorded = True
        return handle

    async def cancel_as(self, job_id: str, user: UserRef) -> CancelOutcome:
        """A Cancel press by ``user``: only the requester may, and only while it runs."""
        return await self.service.cancel_as(job_id, user.key)

    async def cancel_latest(self, user: UserRef) -> JobRecord | None:
        """Cancel the user's newest unfinished job; returns it (None if there was none)."""
        return await self.service.cancel_latest(user.key)

    async def job_owner(self, job_id: str) -> str | None:
        """The user key of a stored job, finished or not."""
        return await self.service.owner(job_id)

    async def plan_rerun(self, job_id: str, action: Action, *, chat: ChatRef,
                         place: dict[str, str] | None = None) -> Rerun | None:
        """What a result button asks for (``bot.rerun.plan_rerun``)."""
        return await plan_rerun(self.storage, job_id, action, chat_key=chat.key, place=place)

    def provider_lines(self) -> list[str]:
        """Each backend with what it costs, for /providers and the help."""
        return providers_lines(self.providers, self.service.credits)

    def help_sections(self) -> dict[str, HelpSection]:
        """/help's options, styles and backends (``presenter.help_sections``)."""
        return help_sections(self.config.styles, self.provider_lines())

    async def models(self, provider: str) -> list[str]:
        """The provider's models, for suggestions (cached; [] when it cannot say in time)."""
        return await self._models.get(provider)

    def follows(self, job_id: str) -> bool:
        """This process shows the job's progress right now."""
        return self.service.follows(job_id)


def configured_origins(config: Config) -> list[str]:
    """The URLs the operator configured: the only private addresses the fetcher may reach."""
    urls = [str(url) for settings in config.provider_settings().values()
            if (url := getattr(settings, "url", None))]
    urls += [section.api_base for section in (config.telegram, config.discord) if section]
    return urls


def make_fetcher(config: Config, http: httpx.AsyncClient) -> GuardedFetcher:
    """The guarded fetcher for every URL from outside (results, attachments, files)."""
    return GuardedFetcher(http, origins=configured_origins(config),
                          max_bytes=config.limits.max_result_bytes,
                          timeout=config.limits.fetch_timeout)


@contextlib.asynccontextmanager
async def running_app(config: Config, *, start_workers: bool = True,
                      role: str = "all") -> AsyncIterator[App]:
    """Build everything, start the service (taking over what a dead process left), and tear
    down in order.

    Whatever fails, at start or later, what was built is closed again (newest first): an open
    database connection or client left behind would keep the process from exiting.
    """
    async with contextlib.AsyncExitStack() as built:
        storage = core_storage(open_storage(config.storage.url))
        await storage.open()
        built.push_async_callback(storage.close)
        http = make_client()
        watch_requests(http)  # lets doctor and the start-up check name a failure's URL and status
        built.push_async_callback(http.aclose)
        fetcher = make_fetcher(config, http)
        limits = ResultLimits(config.limits.max_result_bytes, config.limits.max_result_pixels)
        providers = build_providers(config.provider_settings(), http, fetcher=fetcher,
                                    result_limits=limits)
        for provider in providers.values():
            built.push_async_callback(provider.close)
        service = GenerationService(config, storage, providers)
        built.push_async_callback(service.stop)
        if start_workers:
            await service.start(claims=role != "gateway")
        yield App(config, storage, http, providers, service, service.preferences,
                  fetcher, Payments(config.payments, storage, service.credits), role=role)
