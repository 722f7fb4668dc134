"""Stability REST v1 ``/v1/generation/{engine}/image-to-image``: the form and the answer."""

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

MAX_PROMPT = 2000
SDXL_SIZES = ((1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768),
              (768, 1344), (1536, 640), (640, 1536))
# Output size is the init image's size, so these rules shape the prepared input. The v1 docs
# show init_image only as PNG, so it stays PNG.
SD_RULES = SizeRules(multiple=64, min_side=320, max_side=1536, preferred_area=512 * 512,
                     max_area=1024 * 1024, max_samples=10, max_input_bytes=9 * 1024 * 1024,
                     min_steps=10, max_steps=50)
SDXL_RULES = SizeRules(multiple=64, min_side=640, max_side=1536, preferred_area=1024 * 1024,
                       max_area=1024 * 1024, max_samples=10, max_input_bytes=9 * 1024 * 1024,
                       allowed_sizes=SDXL_SIZES, min_steps=10, max_steps=50)


def is_sdxl(engine: str) -> bool:
    return "-xl-" in engine


def rules_for(engine: str) -> SizeRules:
    return SDXL_RULES if is_sdxl(engine) else SD_RULES


def form(params: Params, engine: str, *, samples: int, sampler: str | None,
         clip_guidance_preset: str | None) -> dict[str, str]:
    """The text fields of an image-to-image request (the image goes as ``init_image``)."""
    if len(params.prompt) > MAX_PROMPT:
        raise InvalidProviderRequest(msg=Msg("error-prompt-limit", {"limit": MAX_PROMPT}))
    if is_sdxl(engine) and (params.width, params.height) not in SDXL_SIZES:
        sizes = ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
        raise InvalidProviderRequest(msg=Msg("error-sdxl-sizes", {"sizes": sizes}))
    rules = rules_for(engine)
    fields = {
        "text_prompts[0][text]": params.prompt,
        "text_prompts[0][weight]": "1",
        "init_image_mode": "IMAGE_STRENGTH",
        # Stability's image_strength keeps the input at 1: the inverse of the core's strength.
        "image_strength": f"{min(1.0, max(0.0, 1.0 - params.strength)):.3f}",
        "cfg_scale": f"{min(35.0, max(0.0, params.cfg)):g}",
        "steps": str(min(rules.max_steps, max(rules.min_steps, params.steps))),
        "samples": str(samples),
    }
    if params.negative_prompt:
        fields["text_prompts[1][text]"] = params.negative_prompt[:MAX_PROMPT]
        fields["text_prompts[1][weight]"] = "-1"
    if params.seed is not None:
        fields["seed"] = str(params.seed)
    if params.style_preset is not None:
        if params.style_preset not in STYLE_PRESETS:
            raise InvalidProviderRequest(msg=no_style(params.style_preset))
        fields["style_preset"] = params.style_preset
    if sampler:
        fields["sampler"] = sampler
    if clip_guidance_preset:
        fields["clip_guidance_preset"] = clip_guidance_preset
    return fields


def accept_header(mode: str) -> str:
    return "application/json" if mode == "json" else "image/png"


def parse(response: httpx.Response) -> Outcome:
    """Artifacts from a JSON answer, or one image with ``Finish-Reason``/``Seed`` headers."""
    if (outcome := image_answer(response)) is not None:
        return outcome
    body: Any = response.json()
    artifacts = body["artifacts"]
    if not isinstance(artifacts, list) or not artifacts:
        raise ValueError("no artifacts in the answer")
    images = []
    for artifact in artifacts:
        images.append((decode_image(artifact["base64"]), optional_seed(artifact.get("seed")),
                       str(artifact.get("finishReason", "SUCCESS"))))
    return finish(images)
