"""Stability REST v2beta ``stable-image/generate/sd3`` and ``ultra`` in image-to-image use."""

from __future__ import annotations

from typing import Any

import httpx

from bot.errors import InvalidProviderRequest
from bot.i18n import Msg
from bot.models import Params, SizeRules
from bot.providers.results import decode_image, no_style
from bot.providers.stability_wire import (
    STYLE_PRESETS,
    Outcome,
    finish,
    image_answer,
    optional_seed,
)

MAX_PROMPT = 10000
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3-large",
              "sd3-large-turbo", "sd3-medium")
# The output follows the input's aspect ratio at about a megapixel; sides of at least 64.
# ``image`` may be JPEG, PNG or WebP: JPEG.
RULES = SizeRules(multiple=64, min_side=256, max_side=2048, preferred_area=1024 * 1024,
                  max_area=1536 * 1536, max_samples=1, max_input_bytes=9 * 1024 * 1024,
                  input_format="JPEG")


def form(params: Params, endpoint: str, model: str, output_format: str) -> dict[str, str]:
    """The text fields of a generate request (the image goes as ``image``)."""
    if len(params.prompt) > MAX_PROMPT:
        raise InvalidProviderRequest(msg=Msg("error-prompt-limit", {"limit": MAX_PROMPT}))
    fields = {
        "prompt": params.prompt,
        "strength": f"{min(1.0, max(0.0, params.strength)):.3f}",
        "output_format": output_format,
    }
    if endpoint == "sd3":
        fields["mode"] = "image-to-image"
        fields["model"] = model
    # Turbo models take no negative prompt.
    if params.negative_prompt and not (endpoint == "sd3" and "turbo" in model):
        fields["negative_prompt"] = params.negative_prompt[:MAX_PROMPT]
    if params.seed is not None:
        fields["seed"] = str(params.seed)
    if endpoint == "ultra" and params.style_preset is not None:
        if params.style_preset not in STYLE_PRESETS:
            raise InvalidProviderRequest(msg=no_style(params.style_preset))
        fields["style_preset"] = params.style_preset
    return fields


def accept_header(mode: str) -> str:
    return "application/json" if mode == "json" else "image/*"


def parse(response: httpx.Response) -> Outcome:
    """Image bytes with ``finish-reason``/``seed`` headers, or ``{image, finish_reason, seed}``."""
    if (outcome := image_answer(response)) is not None:
        return outcome
    body: Any = response.json()
    reason = str(body.get("finish_reason", "SUCCESS"))
    return finish([(decode_image(body["image"]), optional_seed(body.get("seed")), reason)])
