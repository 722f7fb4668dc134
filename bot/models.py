"""Frozen values that travel between the layers; images are bytes plus a MIME type."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any

from bot.limits import MAX_STEPS, MIN_STEPS


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user on a platform; ``key`` is the stable ``platform:id`` form."""

    platform: str
    id: str
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"

    @classmethod
    def parse(cls, key: str) -> UserRef:
        platform, _, ident = key.partition(":")
        if not platform or not ident:
            raise ValueError(f"user must look like 'telegram:123', got {key!r}")
        return cls(platform, ident)


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A chat, group, server or channel; ``private`` chats have no group policy."""

    platform: str
    id: str
    private: bool = False
    nsfw_channel: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"


@dataclass(frozen=True, slots=True)
class ImageData:
    """Encoded image bytes and their MIME type; ``size`` (width, height) once a decode has
    read it (a backend's result after its check)."""

    data: bytes
    mime: str = "image/png"
    size: tuple[int, int] | None = None

    @property
    def extension(self) -> str:
        return {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}.get(
            self.mime, "bin"
        )


class Capability(IntFlag):
    """What a provider supports; the core checks these before calling it."""

    NONE = 0
    STRENGTH = 1
    SEED = 2
    NEGATIVE_PROMPT = 4
    STEPS = 8
    CFG = 16
    SAMPLES = 32
    STYLES = 64
    PROGRESS = 128
    MODELS = 256
    CANCEL = 512
    SAFETY = 1024


@dataclass(frozen=True, slots=True)
class ResultLimits:
    """What a finished image may be before a job counts as generated (``[limits]``)."""

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 64_000_000


@dataclass(frozen=True, slots=True)
class SizeRules:
    """A provider's size constraints."""

    multiple: int = 8
    min_side: int = 256
    max_side: int = 2048
    preferred_area: int = 512 * 512
    max_area: int = 2048 * 2048
    max_samples: int = 4
    max_input_bytes: int = 10 * 1024 * 1024
    input_format: str = "PNG"  # what the backend is sent: PNG, JPEG or WEBP (README, Backends)
    allowed_sizes: tuple[tuple[int, int], ...] = ()
    min_steps: int = MIN_STEPS
    max_steps: int = MAX_STEPS


@dataclass(frozen=True, slots=True)
class Params:
    """Fully resolved generation parameters (after layering, policy and provider rules)."""

    prompt: str
    provider: str
    strength: float
    steps: int
    cfg: float
    width: int
    height: int
    seed: int | None = None
    negative_prompt: str = ""
    style: str | None = None
    style_preset: str | None = None
    model: str | None = None
    samples: int = 1
    nsfw_allowed: bool = False

    def with_changes(self, **changes: Any) -> Params:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ProviderJob:
    """What a backend receives: resolved parameters and the prepared input image."""

    job_id: str
    params: Params
    image: ImageData
    timeout: float


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """What a backend returns."""

    images: tuple[ImageData, ...]
    seed: int | None = None
    nsfw_filtered: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
