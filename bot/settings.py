"""Layered settings: global < the backend's defaults < chat defaults < user defaults < request.

Then the chat's policy (locks, caps, allowed lists, forced negative, NSFW) and the provider's
own rules (size multiples and bounds, steps, samples, capabilities). Values are snapped to
the nearest valid ones and every change the user did not ask for becomes a notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bot.config import DefaultsConfig, StyleConfig
from bot.errors import OptionError, PolicyError
from bot.i18n import Msg, t
from bot.models import Capability, Params
from bot.options import Overrides
from bot.providers.base import Provider
from bot.sizing import output_size
from bot.stored_settings import ChatPolicy

IGNORED_WITHOUT = (
    ("strength", Capability.STRENGTH, "--strength"),
    ("seed", Capability.SEED, "--seed"),
    ("negative_prompt", Capability.NEGATIVE_PROMPT, "--no"),
    ("steps", Capability.STEPS, "--steps"),
    ("cfg", Capability.CFG, "--cfg"),
)


@dataclass(frozen=True, slots=True)
class Layers:
    """The settings layers, lowest first (the request wins)."""

    chat: Overrides = field(default_factory=Overrides)
    user: Overrides = field(default_factory=Overrides)
    request: Overrides = field(default_factory=Overrides)


@dataclass(frozen=True, slots=True)
class Resolved:
    params: Params
    notices: tuple[str, ...]


def global_layer(defaults: DefaultsConfig) -> Overrides:
    return Overrides(strength=defaults.strength, steps=defaults.steps, cfg=defaults.cfg,
                     negative_prompt=defaults.negative_prompt or None,
                     provider=defaults.provider, style=defaults.style,
                     samples=defaults.samples)


def _stacked(base: Overrides, layers: Layers) -> Overrides:
    return base.merged(layers.chat).merged(layers.user).merged(layers.request)


def _apply_locks(merged: Overrides, layers: Layers, base: Overrides, policy: ChatPolicy,
                 notices: list[str]) -> Overrides:
    for name in sorted(policy.locked):
        chat_value = getattr(layers.chat, name)
        value = chat_value if chat_value is not None else getattr(base, name)
        asked = getattr(layers.request, name)
        if asked is not None and asked != value:
            notices.append(t("notice-locked", name=name, value=_show(value)))
        merged = replace(merged, **{name: value})
    return merged


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return t("value-default") if value is None else str(value)


def _choose_provider(merged: Overrides, layers: Layers, base: Overrides, policy: ChatPolicy,
                     providers: Mapping[str, Provider], notices: list[str]) -> str:
    name = merged.provider or base.provider or next(iter(providers))
    if name not in providers:
        raise OptionError(msg=Msg("error-unknown-provider",
                                  {"name": repr(name), "available": ", ".join(providers)}))
    allowed = policy.providers
    if allowed and name not in allowed:
        if layers.request.provider is not None:
            raise PolicyError(msg=Msg("error-chat-backends", {"names": ", ".join(allowed)}))
        fallback = next((p for p in allowed if p in providers), None)
        if fallback is None:
            raise PolicyError(msg=Msg("error-chat-no-backend"))
        notices.append(t("notice-provider-fallback", provider=fallback))
        name = fallback
    return name


def _choose_style(style: str | None, styles: Mapping[str, StyleConfig],
                  policy: ChatPolicy) -> StyleConfig | None:
    if style is None:
        return None
    if style not in styles:
        raise OptionError(msg=Msg("error-unknown-style",
                                  {"name": repr(style), "styles": ", ".join(sorted(styles))}))
    if policy.styles and style not in policy.styles:
        raise PolicyError(msg=Msg("error-chat-styles",
                                  {"names": ", ".join(policy.styles)}))
    return styles[style]


def resolve(
    *,
    prompt: str,
    layers: Layers,
    defaults: DefaultsConfig,
    styles: Mapping[str, StyleConfig],
    policy: ChatPolicy,
    providers: Mapping[str, Provider],
    input_size: tuple[int, int],
    nsfw_channel: bool | None = None,
    max_side: int | None = None,
) -> Resolved:
    """Effective parameters for one request, with the notices the user should read."""
    notices: list[str] = []
    base = global_layer(defaults)
    chosen = _apply_locks(_stacked(base, layers), layers, base, policy, [])
    provider_name = _choose_provider(chosen, layers, base, policy, providers, notices)
    provider = providers[provider_name]
    # The backend's defaults (per model family, then its config table) sit under the chat's.
    base = base.merged(provider.defaults_for(chosen.model))
    merged = _apply_locks(_stacked(base, layers), layers, base, policy, notices)
    rules = provider.rules
    style = _choose_style(merged.style, styles, policy)

    steps = merged.steps or defaults.steps
    if policy.max_steps and steps > policy.max_steps:
        notices.append(t("notice-steps-capped", count=policy.max_steps))
        steps = policy.max_steps
    if not rules.min_steps <= steps <= rules.max_steps:
        steps = min(rules.max_steps, max(rules.min_steps, steps))
        notices.append(t("notice-steps-nearest", count=steps, provider=provider.label))
    samples = merged.samples or 1
    if policy.max_images and samples > policy.max_images:
        notices.append(t("notice-chat-max-images", count=policy.max_images))
        samples = policy.max_images
    max_samples = rules.max_samples if provider.supports(Capability.SAMPLES) else 1
    if samples > max_samples:
        notices.append(t("notice-provider-max-images", count=max_samples,
                         provider=provider.label))
        samples = max_samples

    caps = [m for m in (policy.max_size, max_side) if m]
    width, height = output_size(input_size, rules, size=merged.size, aspect=merged.aspect,
                                max_side=min(caps) if caps else None)
    if merged.size is not None and (width, height) != merged.size:
        notices.append(t("notice-size-adjusted", width=str(width), height=str(height),
                         provider=provider.label))

    for name, capability, flag in IGNORED_WITHOUT:
        if getattr(layers.request, name) is not None and not provider.supports(capability):
            notices.append(t("notice-unsupported", provider=provider.label, flag=flag))

    full_prompt = style.prompt.replace("{prompt}", prompt) if style else prompt
    negatives = [style.negative_prompt if style else "", merged.negative_prompt or "",
                 policy.forced_negative]
    negative = ", ".join(part for part in negatives if part)
    nsfw = policy.nsfw and nsfw_channel is not False
    params = Params(
        prompt=full_prompt, provider=provider_name,
        strength=merged.strength if merged.strength is not None else defaults.strength,
        steps=steps, cfg=merged.cfg if merged.cfg is not None else defaults.cfg,
        width=width, height=height, seed=merged.seed, negative_prompt=negative,
        style=merged.style, style_preset=style.preset if style else None, model=merged.model,
        samples=samples, nsfw_allowed=nsfw,
    )
    return Resolved(params=params, notices=tuple(notices))
