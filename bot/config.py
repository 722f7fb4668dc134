"""Typed configuration loaded from one TOML file, with secrets also taken from the environment."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError
from bot.providers.base import ProviderSettings
from bot.redact import redact_url, register_secret, url_password

CONFIG_ENV = "IMG2IMG_CONFIG"
STORAGE_URL_ENV = "IMG2IMG_STORAGE__URL"
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgres")


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


class TelegramConfig(_Section):
    token: SecretStr | None = None
    api_base: str = "https://api.telegram.org"
    local_files: bool = Field(False, description="the Bot API server runs --local")
    mode: Literal["polling", "webhook"] = "polling"
    webhook: WebhookConfig | None = None
    max_download_bytes: int = Field(20 * 1024 * 1024, gt=0)
    admin_cache_seconds: float = Field(60.0, ge=0)
    progress_interval: float = Field(2.0, ge=0)


class DiscordConfig(_Section):
    token: SecretStr | None = None
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg"
    sharded: bool = False
    shard_count: int | None = Field(None, ge=1)
    progress_interval: float = Field(2.0, ge=0)
    command_guild: int | None = Field(None, description="sync commands to one guild (testing)")


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
    steps: int = Field(25, ge=1, le=150)
    cfg: float = Field(7.0, ge=0.0, le=30.0)
    negative_prompt: str = ""
    samples: int = Field(1, ge=1, le=4)
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
    queued_uploads_in_memory: int = Field(
        64 * 1024 * 1024, ge=0,
        description="bytes of queued uploads kept in RAM; beyond it they wait in temp files")


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


class Config(_Section):
    storage: StorageConfig = Field(default_factory=StorageConfig)
    telegram: TelegramConfig | None = None
    discord: DiscordConfig | None = None
    credits: CreditsConfig = Field(default_factory=CreditsConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    payments: PaymentsConfig = Field(default_factory=PaymentsConfig)
    styles: dict[str, StyleConfig] = Field(default_factory=lambda: dict(DEFAULT_STYLES))
    providers: dict[str, Any] = Field(default_factory=dict)
    log_level: str = "INFO"

    def provider_settings(self) -> dict[str, ProviderSettings]:
        """The typed settings of every provider (validated by ``load_config``)."""
        return {name: value for name, value in self.providers.items()
                if isinstance(value, ProviderSettings)}

    def is_owner(self, user_key: str) -> bool:
        return user_key in self.credits.owners


def _format_validation(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        key = f"{prefix}{loc}" if loc else prefix.rstrip(".")
        parts.append(f"{key}: {err['msg']}")
    return "; ".join(parts)


def _validate_providers(config: Config, environ: Mapping[str, str]) -> None:
    from bot.providers import provider_class

    typed: dict[str, Any] = {}
    for name, raw in config.providers.items():
        if isinstance(raw, ProviderSettings):
            typed[name] = raw
            continue
        if not isinstance(raw, dict) or "type" not in raw:
            raise ConfigError(f"providers.{name}.type: every provider needs a type")
        cls = provider_class(str(raw["type"]), key=f"providers.{name}.type")
        try:
            settings = cls.Settings.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_format_validation(exc, f"providers.{name}.")) from exc
        settings.resolve_secrets(name, environ)
        typed[name] = settings
    config.providers = typed


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
    """Validate a parsed TOML document; secrets missing from it come from the environment."""
    env = os.environ if environ is None else environ
    doc = dict(data)
    _storage_url_from_env(doc, env)
    try:
        config = Config.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc)) from exc
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
    _validate_providers(config, env)
    if config.providers and not config.defaults.provider:
        config.defaults.provider = next(iter(config.providers))
    if config.providers and config.defaults.provider not in config.providers:
        raise ConfigError(
            f"defaults.provider: {config.defaults.provider!r} is not one of the configured "
            f"providers ({', '.join(sorted(config.providers))})"
        )
    if config.defaults.style and config.defaults.style not in config.styles:
        raise ConfigError(f"defaults.style: unknown style {config.defaults.style!r}")
    return config


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``$IMG2IMG_CONFIG``); a bad file raises ``ConfigError`` naming the key."""
    env = os.environ if environ is None else environ
    chosen = path or env.get(CONFIG_ENV)
    if not chosen:
        raise ConfigError(f"no configuration: pass --config PATH or set {CONFIG_ENV}")
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
