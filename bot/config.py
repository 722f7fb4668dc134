"""Typed configuration: an optional TOML file, overridden by ``IMG2IMG_<SECTION>__<KEY>`` variables.

Every key of the file can also come from the environment: ``[limits] max_queue`` is
``IMG2IMG_LIMITS__MAX_QUEUE``, ``[providers.webui] url`` is ``IMG2IMG_PROVIDERS__WEBUI__URL``;
lists and tables take JSON (``IMG2IMG_CREDITS__OWNERS='["telegram:1"]'``). A variable wins over
the file. ``TELEGRAM_BOT_TOKEN``, ``DISCORD_BOT_TOKEN`` and ``NAME_API_KEY`` are read as well; a
platform token turns that platform on.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from bot.errors import ConfigError
from bot.limits import MAX_CFG, MAX_SAMPLES, MAX_STEPS, MIN_STEPS
from bot.providers.base import ProviderSettings
from bot.redact import redact_url, register_secret, url_password

CONFIG_ENV = "IMG2IMG_CONFIG"
STORAGE_URL_ENV = "IMG2IMG_STORAGE__URL"
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgres")
ENV_PREFIX = "IMG2IMG_"
ENV_DELIMITER = "__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StorageConfig(_Section):
    url: str = Field("sqlite:///data/img2img.db",
                     description="sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        # The message names the scheme only: the URL may hold a password.
        scheme = url.partition("://")[0]
        if scheme not in STORAGE_SCHEMES or "://" not in url:
            raise ValueError(f"unsupported scheme {scheme!r}; use sqlite:///path/to/file.db or "
                             "postgresql://user:password@host:5432/database")
        password = url_password(url)
        if password:
            register_secret(password)
            register_secret(quote(password, safe=""))
        return url

    @property
    def display_url(self) -> str:
        """The URL with its password masked: for logs and ``doctor``."""
        return redact_url(self.url)

    @property
    def sqlite_path(self) -> str:
        if not self.url.startswith("sqlite:///"):
            raise ConfigError(f"storage.url: not an SQLite URL ({self.display_url})")
        return self.url.removeprefix("sqlite:///")


class WebhookConfig(_Section):
    url: str = Field(description="public HTTPS URL Telegram posts updates to")
    path: str = "/telegram/webhook"
    host: str = "0.0.0.0"  # noqa: S104 - a webhook server listens on every interface by design
    port: int = Field(8080, ge=1, le=65535)
    secret_token: SecretStr | None = None


class SendLimits(_Section):
    """Telegram's documented flood limits on the bot's messages (sends and edits)."""

    chat_per_second: float = Field(1.0, gt=0)
    group_per_minute: float = Field(20.0, gt=0)
    group_burst: int = Field(20, ge=1, description="messages a quiet group may get at once")
    global_per_second: float = Field(30.0, gt=0)


class TelegramConfig(_Section):
    token: SecretStr | None = None
    api_base: str = "https://api.telegram.org"
    local_files: bool = Field(False, description="the Bot API server runs --local")
    mode: Literal["polling", "webhook"] = "polling"
    webhook: WebhookConfig | None = None
    max_download_bytes: int = Field(20 * 1024 * 1024, gt=0)
    admin_cache_seconds: float = Field(60.0, ge=0)
    progress_interval: float = Field(2.0, ge=0)
    status_after: float = Field(1.0, ge=0, description="a status message only for jobs this slow")
    limits: SendLimits = Field(default_factory=SendLimits)


class DiscordConfig(_Section):
    token: SecretStr | None = None
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg"
    sharded: bool = False
    shard_count: int | None = Field(None, ge=1)
    shard_ids: list[int] | None = Field(None, description="this gateway's shards of shard_count")
    progress_interval: float = Field(2.0, ge=0)
    status_after: float = Field(1.0, ge=0, description="progress edits only for jobs this slow")
    command_guild: int | None = Field(None, description="sync commands to one guild (testing)")

    @model_validator(mode="after")
    def _shards_of_a_count(self) -> DiscordConfig:
        if self.shard_ids is None:
            return self
        if self.shard_count is None:
            raise ValueError("shard_ids needs shard_count (the total over every gateway)")
        wrong = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
        if wrong or not self.shard_ids or len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError(f"shard_ids must be distinct ids from 0 to {self.shard_count - 1}, "
                             f"got {self.shard_ids}")
        return self


class CreditsConfig(_Section):
    enabled: bool = True
    initial: int = Field(20, ge=0)
    daily_free: int = Field(5, ge=0)
    owners: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _owners_shape(self) -> CreditsConfig:
        for owner in self.owners:
            platform, _, ident = owner.partition(":")
            if not platform or not ident:
                raise ValueError(f"owners entries look like 'telegram:111', got {owner!r}")
        return self


class DefaultsConfig(_Section):
    provider: str = Field("", description="a [providers.*] name; empty: the first configured")
    strength: float = Field(0.6, ge=0.0, le=1.0)
    steps: int = Field(25, ge=MIN_STEPS, le=MAX_STEPS)
    cfg: float = Field(7.0, ge=0.0, le=MAX_CFG)
    negative_prompt: str = ""
    samples: int = Field(1, ge=1, le=MAX_SAMPLES)
    style: str | None = None


class StyleConfig(_Section):
    prompt: str = Field("{prompt}", description="template; {prompt} is the user's text")
    negative_prompt: str = ""
    preset: str | None = Field(None, description="provider-native style preset, where supported")


class LimitsConfig(_Section):
    max_input_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_input_pixels: int = Field(40_000_000, gt=0)
    max_prompt_chars: int = Field(2000, gt=0)
    max_queued_per_user: int = Field(3, ge=1)
    max_queue: int = Field(500, ge=1)
    max_side: int = Field(2048, ge=64)
    max_result_bytes: int = Field(50 * 1024 * 1024, gt=0,
                                  description="a finished image above this is refused, refunded")
    max_result_pixels: int = Field(64_000_000, gt=0,
                                   description="a finished image above this is refused, refunded")
    fetch_timeout: float = Field(60.0, gt=0,
                                 description="seconds one download of an outside URL may take")


class JobsConfig(_Section):
    """The durable job pipeline: attempts, delivery, retention and the leases of processes."""

    max_attempts: int = Field(2, ge=1, description="runs of a job whose process died")
    delivery_deadline: float = Field(86400.0, gt=0, description="seconds to keep retrying")
    keep_results: float = Field(0.0, ge=0, description="seconds a delivered result is kept")
    lease: float = Field(15.0, gt=0, description="a process's claim without a heartbeat")
    heartbeat: float = Field(1.0, gt=0, description="also how soon a cancel elsewhere lands")
    poll: float = Field(0.5, gt=0, description="how often idle workers look for new jobs")
    retry_base: float = Field(5.0, gt=0, description="first delivery retry delay, doubled")

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> JobsConfig:
        if self.lease < 3 * self.heartbeat:
            raise ValueError("jobs.lease must be at least three heartbeats")
        return self


DEFAULT_SUPPORT = (
    "Questions about a purchase? Write to the bot's operator and quote the charge id from "
    "your receipt. Packs whose credits you have not used can be refunded.")
DEFAULT_TERMS = (
    "Credits pay for images made by this bot and have no cash value. A pack is added to your "
    "balance as soon as the payment goes through. Unused packs can be refunded on request "
    "(see /paysupport); credits already spent cannot. Prices may change; a purchase already "
    "made keeps what it bought.")


class PackConfig(_Section):
    """One credit pack for sale: its Telegram price in Stars and/or its Discord SKU."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,24}$")
    credits: int = Field(gt=0, le=1_000_000)
    stars: int | None = Field(None, ge=1, le=100_000, description="Telegram price (XTR)")
    discord_sku: int | None = Field(None, gt=0, description="a consumable one-time SKU id")
    discord_price_cents: int | None = Field(
        None, ge=0, description="the SKU's price in US cents, for /stats only")
    title: str | None = Field(None, max_length=32)


class PaymentsConfig(_Section):
    enabled: bool = False
    discord_test: bool = Field(False, description="count test entitlements (no starts_at)")
    packs: list[PackConfig] = Field(default_factory=list)
    support_text: str = Field(DEFAULT_SUPPORT, min_length=1, max_length=3000)
    terms_text: str = Field(DEFAULT_TERMS, min_length=1, max_length=3000)

    @model_validator(mode="after")
    def _unique(self) -> PaymentsConfig:
        ids = [pack.id for pack in self.packs]
        skus = [str(pack.discord_sku) for pack in self.packs if pack.discord_sku is not None]
        for name, values in (("id", ids), ("discord_sku", skus)):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"packs: {name} {', '.join(repeated)} used more than once")
        return self


class HttpConfig(_Section):
    """The health and metrics server (in webhook mode it also receives Telegram's updates)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)


class LoggingConfig(_Section):
    level: str = "INFO"
    format: Literal["text", "json"] = "text"


DEFAULT_STYLES: dict[str, StyleConfig] = {
    "photo": StyleConfig(prompt="{prompt}, photograph, natural light, detailed",
                         negative_prompt="painting, illustration", preset="photographic"),
    "anime": StyleConfig(prompt="{prompt}, anime style, clean line art", preset="anime"),
    "watercolor": StyleConfig(prompt="{prompt}, watercolor painting, soft washes"),
    "oil": StyleConfig(prompt="{prompt}, oil painting, visible brush strokes"),
    "sketch": StyleConfig(prompt="{prompt}, pencil sketch, graphite", preset="line-art"),
    "cinematic": StyleConfig(prompt="{prompt}, cinematic still, dramatic lighting",
                             preset="cinematic"),
    "pixel": StyleConfig(prompt="{prompt}, pixel art", preset="pixel-art"),
}


def _settings_of_its_type(raw: Any) -> ProviderSettings:
    """A ``[providers.NAME]`` table as the settings class its ``type`` names."""
    if isinstance(raw, ProviderSettings):
        return raw
    from bot.providers import provider_class

    if not isinstance(raw, Mapping) or "type" not in raw:
        raise ValueError("every provider needs a type")
    return provider_class(str(raw["type"])).Settings.model_validate(raw)


# A union told apart by ``type`` whose members are the registry's settings classes: a closed
# pydantic union would import every backend at start and shut out types registered later.
ProviderTable = Annotated[
    ProviderSettings, PlainValidator(_settings_of_its_type),
    # Written out as the class it is (a WebUI's url too), not as the base's fields.
    PlainSerializer(lambda settings, info: settings.model_dump(
        mode=info.mode, by_alias=info.by_alias, exclude_unset=info.exclude_unset,
        exclude_defaults=info.exclude_defaults, exclude_none=info.exclude_none)),
]


class Config(_Section):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    telegram: TelegramConfig | None = None
    discord: DiscordConfig | None = None
    credits: CreditsConfig = Field(default_factory=CreditsConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    payments: PaymentsConfig = Field(default_factory=PaymentsConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig)
    styles: dict[str, StyleConfig] = Field(default_factory=lambda: dict(DEFAULT_STYLES))
    providers: dict[str, ProviderTable] = Field(default_factory=dict)
    http: HttpConfig = Field(default_factory=HttpConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    log_level: str | None = Field(None, description="the same as [logging] level (older files)")
    # Why the default backend is the one it is, for the start-up log (set by build_config).
    _backend_reason: str = PrivateAttr("")

    def provider_settings(self) -> dict[str, ProviderSettings]:
        """The typed settings of every provider (validated by ``load_config``)."""
        return dict(self.providers)

    def is_owner(self, user_key: str) -> bool:
        return user_key in self.credits.owners

    @property
    def backend_reason(self) -> str:
        """One line: the default backend, why it was chosen, and how to choose another."""
        return self._backend_reason


class _EnvLayout(Config, BaseSettings):
    """Tells pydantic-settings how variables map onto ``Config``; never instantiated."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER,
                                      case_sensitive=False, env_ignore_empty=True)


class _Environment(EnvSettingsSource):
    """pydantic-settings' own variable parsing, over a given mapping instead of ``os.environ``."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(_EnvLayout)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, False, True, None)


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The ``IMG2IMG_*`` variables as a nested document.

    A variable shaped like a setting (``IMG2IMG_<SECTION>__<KEY>``) whose section does not
    exist is an error, so that a typo is not silently ignored; other ``IMG2IMG_`` names
    (``IMG2IMG_CONFIG``, test settings) are not settings and are left alone.
    """
    ours = {name: value for name, value in environ.items()
            if name.upper().startswith(ENV_PREFIX)}
    for variable in ours:
        section, nested, _ = variable[len(ENV_PREFIX):].partition(ENV_DELIMITER)
        if nested and section.lower() not in Config.model_fields:
            raise ConfigError(f"{variable}: there is no setting {section.lower()!r} (sections: "
                              f"{', '.join(sorted(Config.model_fields))})")
    try:
        return _Environment(ours)()
    except ValueError as exc:  # SettingsError: a list or table value that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        names = [v for v in ours if field and v.upper().startswith(
            f"{ENV_PREFIX}{field.group(1).upper()}")] or [f"{ENV_PREFIX}*"]
        raise ConfigError(f"{', '.join(sorted(names))}: not valid JSON (lists and tables are "
                          "written as JSON, e.g. '[\"telegram:1\"]')") from exc


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``, table by table."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _key_name(loc: tuple[Any, ...], from_env: Mapping[str, Any]) -> str:
    """The variable that set the value at ``loc`` if one did, else the file's dotted key."""
    node: Any = from_env
    for depth, part in enumerate(loc, 1):
        if not isinstance(node, Mapping) or str(part) not in node:
            break
        node = node[str(part)]
        if not isinstance(node, Mapping):
            return ENV_PREFIX + ENV_DELIMITER.join(str(p).upper() for p in loc[:depth])
    return ".".join(str(p) for p in loc)


def _format_validation(exc: ValidationError, prefix: tuple[str, ...] = (),
                       from_env: Mapping[str, Any] | None = None) -> str:
    parts = []
    for err in exc.errors()[:5]:
        parts.append(f"{_key_name((*prefix, *err['loc']), from_env or {})}: {err['msg']}")
    return "; ".join(parts)


def _check_provider_types(doc: Mapping[str, Any], from_env: Mapping[str, Any]) -> None:
    """Each ``[providers.NAME]`` names a known type, said before its keys are checked."""
    from bot.providers import provider_class

    tables = doc.get("providers")
    for name, raw in (tables.items() if isinstance(tables, Mapping) else ()):
        if not isinstance(raw, Mapping) or "type" not in raw:
            raise ConfigError(f"providers.{name}.type: every provider needs a type")
        provider_class(str(raw["type"]), key=_key_name(("providers", name, "type"), from_env))


def _resolve_provider_secrets(config: Config, environ: Mapping[str, str]) -> None:
    for name, settings in config.providers.items():
        settings.resolve_secrets(name, environ)


def _storage_url_from_env(doc: dict[str, Any], env: Mapping[str, str]) -> None:
    """IMG2IMG_STORAGE__URL overrides the file; DATABASE_URL applies when neither sets one."""
    section = doc.get("storage")
    if section is not None and not isinstance(section, dict):
        return  # validation reports the bad table
    section = dict(section or {})
    url = env.get(STORAGE_URL_ENV) or (None if "url" in section else env.get("DATABASE_URL"))
    if url:
        section["url"] = url
        doc["storage"] = section


def build_config(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """Validate a parsed TOML document with the environment laid over it."""
    env = os.environ if environ is None else environ
    from_env = _from_environment(env)
    doc = _merge(data, from_env)
    _storage_url_from_env(doc, env)
    # A platform token in the environment turns the platform on, file or no file.
    for platform, variable in (("telegram", "TELEGRAM_BOT_TOKEN"),
                               ("discord", "DISCORD_BOT_TOKEN")):
        if env.get(variable) and not isinstance(doc.get(platform), Mapping):
            doc[platform] = {}
    _check_provider_types(doc, from_env)
    try:
        config = Config.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, from_env=from_env)) from exc
    if config.log_level is not None:
        config.logging.level = config.log_level
    if config.telegram is not None and config.telegram.token is None:
        token = env.get("TELEGRAM_BOT_TOKEN")
        config.telegram.token = SecretStr(token) if token else None
    if config.discord is not None and config.discord.token is None:
        token = env.get("DISCORD_BOT_TOKEN")
        config.discord.token = SecretStr(token) if token else None
    for section in (config.telegram, config.discord):
        if section is not None and section.token is not None:
            register_secret(section.token.get_secret_value())
    if config.telegram and config.telegram.webhook and config.telegram.webhook.secret_token:
        register_secret(config.telegram.webhook.secret_token.get_secret_value())
    if config.telegram and config.telegram.mode == "webhook" and config.telegram.webhook is None:
        raise ConfigError("telegram.webhook: webhook mode needs a [telegram.webhook] table")
    _resolve_provider_secrets(config, env)
    _choose_backend(config, env, from_env)
    if config.defaults.style and config.defaults.style not in config.styles:
        raise ConfigError(f"defaults.style: unknown style {config.defaults.style!r}")
    return config


def _choose_backend(config: Config, environ: Mapping[str, str],
                    from_env: Mapping[str, Any]) -> None:
    """The default backend: the one named, else the first configured, else one that works here."""
    from bot.backends import automatic_backend

    how = (f"choose another with [defaults] provider or {ENV_PREFIX}DEFAULTS__PROVIDER, or "
           f"add one with [providers.NAME] or {ENV_PREFIX}PROVIDERS__NAME__TYPE")
    chosen = config.defaults.provider
    if not config.providers:
        if chosen:
            raise ConfigError(f"{_key_name(('defaults', 'provider'), from_env)}: {chosen!r} "
                              "is not a configured provider (there are none)")
        name, settings, why = automatic_backend(environ)
        config.providers[name] = settings
        config.defaults.provider = name
        config._backend_reason = f"image backend: {name} ({why}); {how}"
        return
    if not chosen:
        config.defaults.provider = chosen = next(iter(config.providers))
        why = "the first configured provider"
    elif chosen not in config.providers:
        raise ConfigError(
            f"{_key_name(('defaults', 'provider'), from_env)}: {chosen!r} is not one of the "
            f"configured providers ({', '.join(sorted(config.providers))})")
    else:
        why = "named by defaults.provider"
    kind = config.providers[chosen].type
    config._backend_reason = f"image backend: {chosen} ({kind}, {why}); {how}"


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``$IMG2IMG_CONFIG``) if given, then the environment over it.

    Without a file the defaults and the environment make the whole configuration. A bad value
    raises ``ConfigError`` naming its key, or its variable when the environment set it.
    """
    env = os.environ if environ is None else environ
    chosen = path or env.get(CONFIG_ENV)
    if not chosen:
        return build_config({}, env)
    file = Path(chosen)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {file}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from exc
    return build_config(data, env)
