"""A fake Stability AI server: REST v1 image-to-image, v2beta sd3/ultra, balance and engines."""

from __future__ import annotations

import base64
import io
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.server import ScriptedServer, json_response

ENGINES = ("stable-diffusion-v1-6", "stable-diffusion-xl-1024-v1-0")
SDXL_SIZES = {(1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216), (1344, 768),
              (768, 1344), (1536, 640), (640, 1536)}
STYLE_PRESETS = {
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk",
    "origami", "photographic", "pixel-art", "tile-texture",
}
SD3_MODELS = {"sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3-large",
              "sd3-large-turbo", "sd3-medium"}
V1_FIELDS = {"init_image_mode", "image_strength", "step_schedule_start", "step_schedule_end",
             "cfg_scale", "clip_guidance_preset", "sampler", "samples", "seed", "steps",
             "style_preset", "extras"}
V2_FIELDS = {"sd3": {"prompt", "mode", "strength", "model", "negative_prompt", "seed",
                     "output_format", "aspect_ratio", "cfg_scale"},
             "ultra": {"prompt", "strength", "negative_prompt", "seed", "output_format",
                       "style_preset", "aspect_ratio"}}
BANNED_WORDS = ("forbiddenword",)
# Scripted failures: outcome -> (status, name, text).
FAILURES: dict[str, tuple[int, str, str]] = {
    "rate": (429, "rate_limit_exceeded", "You have exceeded the rate limit of 150 requests"),
    "balance": (429, "insufficient_balance",
                "Your organization does not have enough balance to request this action "
                "(need $0.009, have $0)"),
    "payment": (402, "payment_required", "Payment required"),
    "moderation": (403, "content_moderation",
                   "Your request was flagged by our content moderation system"),
    "forbidden": (403, "permission_denied", "You do not have permission to access this resource"),
    "server_error": (500, "server_error", "An unexpected server error occurred, please try again."),
    "too_large": (413, "payload_too_large", "Request body exceeds 10 MiB"),
}


@dataclass
class Call:
    """One generation request as the fake saw it."""

    path: str
    headers: dict[str, str]
    fields: dict[str, str]
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)


class FakeStability(ScriptedServer):
    """Speaks Stability's v1 and v2beta generation APIs with their error bodies.

    ``plan(...)`` scripts the next generation answers: ``ok``, a key of ``FAILURES``,
    ``filtered`` (every image CONTENT_FILTERED), ``partial`` (the first one filtered),
    ``error_artifact`` (finish reason ERROR), ``garbage`` (200 HTML) and ``echo_key``
    (400 quoting the key). ``max_request_bytes`` answers 413 above it; ``delay`` slows answers.
    """

    def __init__(self, api_key: str = "sk-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.credits = 12.5
        self.max_request_bytes = 10 * 1024 * 1024
        self.calls: list[Call] = []
        self.rejected_sizes: list[int] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/user/balance", self.balance)
        app.router.add_get("/v1/engines/list", self.engines)
        app.router.add_post("/v1/generation/{engine}/image-to-image", self.v1_generate)
        app.router.add_post("/v2beta/stable-image/generate/{endpoint}", self.v2_generate)

    @staticmethod
    def error(status: int, name: str, text: str, *, v2: bool, **headers: str) -> web.Response:
        body: dict[str, Any] = {"id": uuid.uuid4().hex, "name": name}
        if v2:
            body["errors"] = [text]
        else:
            body["message"] = text
        return json_response(body, status, **headers)

    def _auth_error(self, request: web.Request, *, v2: bool) -> web.Response | None:
        header = request.headers.get("Authorization")
        if header is None:
            return self.error(401, "unauthorized", "missing authorization header", v2=v2)
        if header != f"Bearer {self.api_key}":
            return self.error(401, "unauthorized", "Incorrect API key provided", v2=v2)
        return None

    async def balance(self, request: web.Request) -> web.Response:
        return self._auth_error(request, v2=False) or json_response({"credits": self.credits})

    async def engines(self, request: web.Request) -> web.Response:
        return self._auth_error(request, v2=False) or json_response([
            {"id": e, "name": e.replace("-", " ").title(), "description": "", "type": "PICTURE"}
            for e in ENGINES])

    async def _receive(self, request: web.Request, *, v2: bool) -> Call | web.Response:
        await self.hold()
        if (request.content_length or 0) > self.max_request_bytes:
            self.rejected_sizes.append(len(await request.read()))
            return self.error(413, "payload_too_large", "Request body exceeds the limit", v2=v2)
        denied = self._auth_error(request, v2=v2)
        if denied:
            return denied
        if request.content_type != "multipart/form-data":
            return self.error(400, "bad_request", "body must be multipart/form-data", v2=v2)
        form = await request.post()
        call = Call(request.path, dict(request.headers), {})
        for key, value in form.items():
            if isinstance(value, web.FileField):
                call.files[key] = (value.filename, value.content_type, value.file.read())
            else:
                call.fields[key] = str(value)
        self.calls.append(call)
        return call

    def _scripted(self, *, v2: bool) -> tuple[str, web.Response | None]:
        outcome = self.next_outcome()
        if outcome in FAILURES:
            status, name, text = FAILURES[outcome]
            headers = {"Retry-After": self.retry_after} if status in (429, 503) else {}
            return outcome, self.error(status, name, text, v2=v2, **headers)
        if outcome == "echo_key":
            return outcome, self.error(400, "bad_request", f"bad key {self.api_key}", v2=v2)
        if outcome == "garbage":
            return outcome, web.Response(text="<html>oops</html>", content_type="text/html")
        return outcome, None

    async def v1_generate(self, request: web.Request) -> web.Response:
        received = await self._receive(request, v2=False)
        if isinstance(received, web.Response):
            return received
        engine = request.match_info["engine"]
        if engine not in ENGINES:
            return self.error(404, "not_found",
                              f"The specified engine (ID {engine}) was not found.", v2=False)
        problem, size = check_v1(received, engine, request.headers.get("Accept", ""))
        if problem:
            name, text = problem
            return self.error(400, name, text, v2=False)
        outcome, scripted = self._scripted(v2=False)
        if scripted is not None:
            return scripted
        samples = int(received.fields.get("samples", "1"))
        seed = int(received.fields.get("seed", "0")) or random.randrange(1, 2**32)
        reasons = ["SUCCESS"] * samples
        if outcome in ("filtered", "partial"):
            reasons = ["CONTENT_FILTERED"] * (samples if outcome == "filtered" else 1)
            reasons += ["SUCCESS"] * (samples - len(reasons))
        elif outcome == "error_artifact":
            reasons = ["ERROR"] * samples
        if request.headers.get("Accept") == "image/png":
            return web.Response(body=render(size, "png", seed), content_type="image/png",
                                headers={"Finish-Reason": reasons[0], "Seed": str(seed)})
        return json_response({"artifacts": [
            {"base64": base64.b64encode(render(size, "png", seed + i)).decode(),
             "seed": seed + i, "finishReason": reason} for i, reason in enumerate(reasons)]})

    async def v2_generate(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        if endpoint not in V2_FIELDS:
            return self.error(404, "not_found", f"unknown endpoint {endpoint}", v2=True)
        received = await self._receive(request, v2=True)
        if isinstance(received, web.Response):
            return received
        problem, size = check_v2(received, endpoint)
        if problem:
            return self.error(400, "bad_request", problem, v2=True)
        outcome, scripted = self._scripted(v2=True)
        if scripted is not None:
            return scripted
        fmt = received.fields.get("output_format", "png")
        seed = int(received.fields.get("seed", "0")) or random.randrange(1, 2**32 - 1)
        reason = "CONTENT_FILTERED" if outcome == "filtered" else "SUCCESS"
        image = render(size, fmt, seed)
        accept = request.headers.get("Accept", "image/*")
        if accept == "application/json":
            return web.json_response(
                {"image": base64.b64encode(image).decode(), "finish_reason": reason, "seed": seed},
                content_type=f"application/json; type=image/{fmt}")
        if accept != "image/*":
            return self.error(400, "bad_request", "accept: must be image/* or application/json",
                              v2=True)
        return web.Response(body=image, content_type=f"image/{fmt}",
                            headers={"finish-reason": reason, "seed": str(seed),
                                     "x-request-id": uuid.uuid4().hex})


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
            return img.size
    except (UnidentifiedImageError, OSError):
        return None


def _number(fields: dict[str, str], name: str, low: float, high: float) -> str:
    if name not in fields:
        return ""
    try:
        value = float(fields[name])
    except ValueError:
        return f"{name}: must be a number"
    return "" if low <= value <= high else f"{name}: must be between {low} and {high}"


def check_v1(call: Call, engine: str, accept: str) -> tuple[tuple[str, str] | None,
                                                            tuple[int, int]]:
    """((error name, message) or None, init image size) for a v1 request."""
    fields = call.fields
    prompts = {k for k in fields if k.startswith("text_prompts[")}
    unknown = set(fields) - V1_FIELDS - prompts
    if unknown:
        return ("bad_request", f"{sorted(unknown)[0]}: unknown field"), (0, 0)
    size = _image_size(call.files.get("init_image", ("", "", b""))[2])
    if size is None:
        return ("bad_request", "init_image: is required"), (0, 0)
    text = fields.get("text_prompts[0][text]", "")
    if not text or len(text) > 2000:
        return ("invalid_prompts", "text_prompts[0][text]: is required"), size
    if any(word in v.lower() for k, v in fields.items() if k.endswith("[text]")
           for word in BANNED_WORDS):
        return ("invalid_prompts", "One or more prompts contains filtered words."), size
    for name, low, high in (("image_strength", 0, 1), ("cfg_scale", 0, 35), ("steps", 10, 50),
                            ("samples", 1, 10), ("seed", 0, 4294967295),
                            ("text_prompts[0][weight]", -10, 10),
                            ("text_prompts[1][weight]", -10, 10)):
        problem = _number(fields, name, low, high)
        if problem:
            return ("bad_request", problem), size
    if fields.get("init_image_mode", "IMAGE_STRENGTH") not in ("IMAGE_STRENGTH", "STEP_SCHEDULE"):
        return ("bad_request", "init_image_mode: invalid value"), size
    if "style_preset" in fields and fields["style_preset"] not in STYLE_PRESETS:
        return ("bad_request", "style_preset: invalid value"), size
    if int(fields.get("samples", "1")) > 1 and accept == "image/png":
        return ("invalid_samples", "samples > 1 requires Accept: application/json"), size
    if "-xl-" in engine and size not in SDXL_SIZES:
        return ("invalid_sdxl_v1_dimensions",
                "For SDXL v1.0 engines, dimensions must be one of the allowed sizes"), size
    return None, size


def check_v2(call: Call, endpoint: str) -> tuple[str, tuple[int, int]]:
    """(error message or "", input image size) for a v2beta request."""
    fields = call.fields
    unknown = set(fields) - V2_FIELDS[endpoint]
    if unknown:
        return f"{sorted(unknown)[0]}: unknown field", (0, 0)
    size = _image_size(call.files.get("image", ("", "", b""))[2])
    if size is None:
        return "image: is required", (0, 0)
    if not fields.get("prompt"):
        return "prompt: is required", size
    if endpoint == "sd3" and fields.get("mode") != "image-to-image":
        return "image: only allowed when mode is image-to-image", size
    if "strength" not in fields:
        return "strength: is required when an image is given", size
    problem = _number(fields, "strength", 0, 1) or _number(fields, "seed", 0, 4294967294)
    if problem:
        return problem, size
    model = fields.get("model", "sd3.5-large")
    if endpoint == "sd3" and model not in SD3_MODELS:
        return f"model: must be one of {sorted(SD3_MODELS)}", size
    if "turbo" in model and "negative_prompt" in fields:
        return "negative_prompt: not supported by turbo models", size
    formats = {"png", "jpeg", "webp"} if endpoint == "ultra" else {"png", "jpeg"}
    if fields.get("output_format", "png") not in formats:
        return "output_format: invalid value", size
    if "style_preset" in fields and fields["style_preset"] not in STYLE_PRESETS:
        return "style_preset: invalid value", size
    return "", size


def render(size: tuple[int, int], fmt: str, seed: int) -> bytes:
    """A plain image whose colour follows the seed."""
    buf = io.BytesIO()
    colour = (seed % 251, (seed // 7) % 251, (seed // 49) % 251)
    Image.new("RGB", size, colour).save(buf, {"jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG"))
    return buf.getvalue()
