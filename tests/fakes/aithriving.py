"""A fake AIThriving server: multipart ``imageToImage`` answered by ``{code, message, data}``."""

from __future__ import annotations

import base64
import io
import random
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.server import HeaderKey, ScriptedServer, json_response, png_bytes

PATH = "/api/generate/basic/imageToImage"
STYLE_PRESETS = {
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
}
SAMPLERS = {"DDIM", "DDPM", "K_DPMPP_2M", "K_DPMPP_2S_ANCESTRAL", "K_DPM_2", "K_DPM_2_ANCESTRAL",
            "K_EULER", "K_EULER_ANCESTRAL", "K_HEUN", "K_LMS"}
CLIP_PRESETS = {"FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST"}
KNOWN_FIELDS = {"init_image", "prompt", "width", "height", "image_strength", "cfg_scale",
                "clip_guidance_preset", "sampler", "seed", "steps", "style_preset"}

# Scripted outcomes: (HTTP status, message, extra headers); "ok" and a few others are special.
FAILURES: dict[str, tuple[int, str]] = {
    "auth_http": (401, "Invalid API key"),
    "credits": (200, "Insufficient credits"),
    "rate": (200, "Rate limit exceeded, please slow down"),
    "rate_http": (429, "Too many requests"),
    "nsfw": (200, "NSFW content detected"),
    "unknown": (200, "Worker exited unexpectedly"),
}


def envelope(code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "data": data}


class FakeAIThriving(ScriptedServer):
    """Speaks ``POST /api/generate/basic/imageToImage`` like AIThriving's docs describe.

    A wrong key is refused with ``code: -1`` on HTTP 200 (``auth_status`` changes the status).
    ``plan(...)`` scripts the next answers: ``ok``, a key of ``FAILURES``, ``unavailable``
    (503 HTML), ``garbage`` (200 HTML), ``no_image`` (``code: 0`` without data).
    """

    def __init__(self, api_key: str = "aith-test-key", *, header: str = "Authentication",
                 prefix: str = "") -> None:
        super().__init__()
        self.auth = HeaderKey(api_key, header, prefix)
        self.auth_status = 200
        self.forms: list[dict[str, str]] = []
        self.images: list[tuple[str, str, bytes]] = []  # (filename, content type, bytes)
        self.headers_seen: list[dict[str, str]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.image_to_image)

    async def image_to_image(self, request: web.Request) -> web.Response:
        await self.hold()
        self.headers_seen.append(dict(request.headers))
        if not self.auth.allows(request):
            return json_response(envelope(-1, "Invalid API key"), self.auth_status)
        if request.content_type != "multipart/form-data":
            return json_response(envelope(-1, "Content-Type must be multipart/form-data"))
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.forms.append(fields)
        upload = form.get("init_image")
        if isinstance(upload, web.FileField):
            self.images.append((upload.filename, upload.content_type, upload.file.read()))
        error = validate(fields, self.images[-1][2] if isinstance(upload, web.FileField) else None)
        if error:
            return json_response(envelope(-1, error))
        return self._answer(self.next_outcome(), fields)

    def _answer(self, outcome: str, fields: dict[str, str]) -> web.Response:
        if outcome == "ok":
            image = png_bytes((int(fields["width"]), int(fields["height"])), (200, 90, 40))
            seed = int(fields.get("seed", "0")) or random.randrange(1, 2**32)
            return json_response(envelope(0, "success", {
                "image": base64.b64encode(image).decode(), "seed": seed}))
        if outcome in FAILURES:
            status, message = FAILURES[outcome]
            headers = {"Retry-After": self.retry_after} if status == 429 else {}
            return json_response(envelope(-1, message), status, **headers)
        if outcome == "echo_key":
            return json_response(envelope(-1, f"Unknown failure for key {self.auth.key}"))
        if outcome == "unavailable":
            return web.Response(status=503, text="<html>Service Unavailable</html>",
                                content_type="text/html")
        if outcome == "garbage":
            return web.Response(text="<html>welcome</html>", content_type="text/html")
        if outcome == "no_image":
            return json_response(envelope(0, "success", None))
        raise AssertionError(f"unknown outcome {outcome!r}")


def validate(fields: dict[str, str], image: bytes | None) -> str:
    """The failure message for an invalid form, or an empty string."""
    unknown = set(fields) - KNOWN_FIELDS
    if unknown:
        return f"Invalid parameter: {sorted(unknown)[0]}"
    if image is None:
        return "init_image is required"
    try:
        Image.open(io.BytesIO(image)).verify()
    except (UnidentifiedImageError, OSError):
        return "init_image must be an image file"
    if not fields.get("prompt"):
        return "prompt is required"
    for side in ("width", "height"):
        value = _int(fields.get(side))
        if value is None or not 320 <= value <= 1536 or value % 64:
            return f"{side} must be a multiple of 64 between 320 and 1536"
    checks = (("steps", 10, 50), ("cfg_scale", 0, 35), ("seed", 0, 2**32 - 1))
    for name, low, high in checks:
        if name in fields:
            value = _int(fields[name])
            if value is None or not low <= value <= high:
                return f"{name} must be an integer between {low} and {high}"
    if "image_strength" in fields:
        try:
            strength = float(fields["image_strength"])
        except ValueError:
            strength = -1.0
        if not 0.0 <= strength <= 1.0:
            return "image_strength must be between 0 and 1"
    for name, allowed in (("style_preset", STYLE_PRESETS), ("sampler", SAMPLERS),
                          ("clip_guidance_preset", CLIP_PRESETS)):
        if name in fields and fields[name] not in allowed:
            return f"Invalid {name}: {fields[name]}"
    return ""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
