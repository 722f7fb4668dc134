"""A fake KellyAPI server: FastAPI-style JSON, Bearer auth, ``{"detail": ...}`` errors."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.server import HeaderKey, ScriptedServer, json_response, png_bytes

INVALID_KEY = "Invalid API key, Get an api key from @KellyAIBot"


class FakeKellyAPI(ScriptedServer):
    """Speaks ``image/edit``, ``sd/models`` and ``sdxl/models`` like api.kellyai.pro.

    ``plan(...)`` scripts the answers to the next ``image/edit`` calls: ``ok``, ``credits``,
    ``rate`` (429 with Retry-After), ``nsfw``, ``bad_gateway`` (502 HTML), ``garbage``
    (200 with an HTML body), ``bad_image`` (200 with a non-image), ``detail`` (200 with only
    ``detail``), ``echo_key`` (400 that repeats the key). ``delay`` slows every answer.
    """

    def __init__(self, api_key: str = "kelly-test-key", *, header: str = "Authorization",
                 prefix: str = "Bearer ") -> None:
        super().__init__()
        self.auth = HeaderKey(api_key, header, prefix)
        self.edits: list[dict[str, Any]] = []
        self.edit_headers: list[dict[str, str]] = []
        self.sd_models = ["PhotoPerfect", "DreamShaper", "RealisticVision"]
        self.sdxl_models = ["SDXL-Base", "PhotoPerfect"]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/image/edit", self.edit)
        app.router.add_get("/sd/models", self.models)
        app.router.add_get("/sdxl/models", self.models)

    async def models(self, request: web.Request) -> web.Response:
        if not self.auth.allows(request):
            return json_response({"detail": INVALID_KEY}, 401)
        if request.path.startswith("/sdxl"):
            return json_response({"models": self.sdxl_models})
        return json_response(self.sd_models)

    async def edit(self, request: web.Request) -> web.Response:
        await self.hold()
        self.edit_headers.append(dict(request.headers))
        if not self.auth.allows(request):
            return json_response({"detail": INVALID_KEY}, 401)
        if request.content_type != "application/json":
            return json_response({"detail": "Content-Type must be application/json"}, 415)
        body = await request.json()
        self.edits.append(body)
        errors = validate_edit(body)
        if errors:
            return json_response({"detail": errors}, 422)
        return self._answer(self.next_outcome(), body)

    def _answer(self, outcome: str, body: dict[str, Any]) -> web.Response:
        if outcome == "ok":
            image = png_bytes((body["width"], body["height"]), (90, 140, 60))
            return json_response({"image": base64.b64encode(image).decode()})
        if outcome == "credits":
            return json_response({"detail": "Insufficient credits on this account"}, 402)
        if outcome == "rate":
            return json_response({"detail": "Too many requests"}, 429,
                                 **{"Retry-After": self.retry_after})
        if outcome == "nsfw":
            return json_response({"detail": "NSFW content detected in the prompt"}, 400)
        if outcome == "bad_gateway":
            return web.Response(status=502, text="<html><h1>502 Bad Gateway</h1></html>",
                                content_type="text/html")
        if outcome == "garbage":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if outcome == "bad_image":
            return json_response({"image": base64.b64encode(b"not an image").decode()})
        if outcome == "detail":
            return json_response({"detail": "Generation failed on the GPU worker"})
        if outcome == "echo_key":
            return json_response({"detail": f"Bad request for key {self.auth.key}"}, 400)
        raise AssertionError(f"unknown outcome {outcome!r}")


def validate_edit(body: Any) -> list[dict[str, Any]]:
    """FastAPI-style validation errors for an ``image/edit`` body (empty when it is valid)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error"}]
    errors: list[dict[str, Any]] = []

    def fail(field: str, msg: str) -> None:
        errors.append({"loc": ["body", field], "msg": msg, "type": "value_error"})

    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        fail("prompt", "field required")
    if not isinstance(body.get("negative_prompt", ""), str):
        fail("negative_prompt", "str type expected")
    for side in ("width", "height"):
        value = body.get(side)
        if not isinstance(value, int) or not 256 <= value <= 2048:
            fail(side, "ensure this value is an integer between 256 and 2048")
    if body.get("responseType") != "base64data":
        fail("responseType", "unexpected value; permitted: 'base64data'")
    data = body.get("image_data")
    if not isinstance(data, str):
        fail("image_data", "field required")
    else:
        try:
            Image.open(io.BytesIO(base64.b64decode(data, validate=True))).verify()
        except (binascii.Error, UnidentifiedImageError, ValueError):
            fail("image_data", "not a base64-encoded image")
    return errors
