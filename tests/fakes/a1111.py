"""A fake AUTOMATIC1111/Forge WebUI API: img2img, progress, models, interrupt, optional Basic auth.

It follows ``modules/api/api.py`` closely: one queue lock serialises generations, ``info`` is a
JSON string, errors come in the middleware's ``{error, detail, body, errors}`` shape, and
``/sdapi/v1/progress`` reports the running task (``current_task`` is the ``force_task_id``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import random
import time
import uuid
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.server import FakeServer, json_response

DEFAULT_MODELS = (
    "v1-5-pruned-emaonly.safetensors [6ce0161689]",
    "sd_xl_base_1.0.safetensors [31e35c80fc]",
)
DEFAULT_SAMPLERS = ("Euler a", "Euler", "DPM++ 2M", "DDIM")

# Failure kinds ``fail()`` accepts, each answering as the real server does.
FAILURES = frozenset({
    "sampler_not_found",     # 404 HTTPException "Sampler not found"
    "init_image_not_found",  # 404 HTTPException "Init image not found"
    "validation",            # 422 FastAPI body validation list
    "invalid_image",         # 500 HTTPException "Invalid encoded image"
    "oom",                   # 500 OutOfMemoryError from the middleware
    "server_error",          # 500 any other exception
    "unavailable",           # 503 from a proxy in front of the WebUI
    "rate_limited",          # 429 with Retry-After from a proxy
    "malformed",             # 200 with a body that is not JSON
    "not_an_image",          # 200 JSON whose image is not a picture
    "disconnect",            # the connection drops mid-job (a crash or a proxy idle timeout)
})


def api_error(status: int, error: str, detail: str = "", errors: str = "") -> web.Response:
    """An error in the shape of A1111's exception middleware."""
    body = {"error": error, "detail": detail, "body": "", "errors": errors or f"{status}: {detail}"}
    return json_response(body, status)


class FakeA1111(FakeServer):
    """A WebUI that renders solid-colour PNGs of the requested size after ``delay`` seconds."""

    def __init__(
        self,
        *,
        delay: float = 0.0,
        auth: tuple[str, str] | None = None,
        models: tuple[str, ...] = DEFAULT_MODELS,
        samplers: tuple[str, ...] = DEFAULT_SAMPLERS,
        return_grid: bool = False,
        image_format: str = "PNG",
        report_task: bool = True,
        parallel: bool = False,
    ) -> None:
        super().__init__()
        self.delay = delay
        self.auth = auth
        self.models = models
        self.samplers = samplers
        self.return_grid = return_grid
        self.image_format = image_format
        self.report_task = report_task  # False: an older WebUI without ``current_task``
        # True: requests run side by side (a farm behind one URL), not one after another as
        # on one GPU; progress then follows the latest.
        self.parallel = parallel
        self.img2img_bodies: list[dict[str, Any]] = []  # every img2img JSON body received
        self.in_flight = 0  # img2img requests being answered now
        self.max_in_flight = 0
        self.interrupts = 0
        self.completed = 0
        self.progress_polls = 0
        self.result_bytes: bytes | None = None  # every image of the answer is these bytes
        self._failures: list[tuple[str, int | None]] = []
        self.request_transport: asyncio.BaseTransport | None = None
        self._lock = asyncio.Lock()
        self._running: dict[str, Any] | None = None
        self._interrupted = asyncio.Event()

    def fail(self, kind: str, times: int | None = 1) -> None:
        """Make the next ``times`` img2img calls fail as ``kind`` (``None``: until cleared)."""
        if kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}; known: {sorted(FAILURES)}")
        self._failures.append((kind, times))

    def clear_failures(self) -> None:
        self._failures.clear()

    def _next_failure(self) -> str | None:
        if not self._failures:
            return None
        kind, times = self._failures[0]
        if times is not None:
            if times <= 1:
                self._failures.pop(0)
            else:
                self._failures[0] = (kind, times - 1)
        return kind

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._check_auth)
        app.router.add_post("/sdapi/v1/img2img", self._img2img)
        app.router.add_get("/sdapi/v1/progress", self._progress)
        app.router.add_get("/sdapi/v1/sd-models", self._sd_models)
        app.router.add_get("/sdapi/v1/samplers", self._samplers)
        app.router.add_post("/sdapi/v1/interrupt", self._interrupt)

    @web.middleware
    async def _check_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.auth is not None and request.path.startswith("/sdapi"):
            header = request.headers.get("Authorization", "")
            challenge = {"WWW-Authenticate": "Basic"}
            if not header.startswith("Basic "):
                return json_response({"detail": "Not authenticated"}, 401, **challenge)
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return json_response({"detail": "Invalid authentication credentials"}, 401,
                                     **challenge)
            if (user, password) != self.auth:
                return json_response({"detail": "Incorrect username or password"}, 401,
                                     **challenge)
        response: web.StreamResponse = await handler(request)
        return response

    async def _img2img(self, request: web.Request) -> web.Response:
        """One img2img request, counted while in flight (``max_in_flight`` is the most seen)."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._img2img_body(request)
        finally:
            self.in_flight -= 1

    async def _img2img_body(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return json_response({"detail": [{"loc": ["body", 0], "msg": "Expecting value",
                                              "type": "value_error.jsondecode"}]}, 422)
        self.img2img_bodies.append(body)
        self.request_transport = request.transport
        failure = self._next_failure()
        if failure is not None:
            return self._failure(failure, body)
        problems = _validate(body)
        if problems:
            return json_response({"detail": problems}, 422)
        sampler = body.get("sampler_name")
        if sampler is not None and sampler not in self.samplers:
            return api_error(404, "HTTPException", "Sampler not found")
        if not body.get("init_images"):
            return api_error(404, "HTTPException", "Init image not found")
        try:
            _decode_image(body["init_images"][0])
        except ValueError:
            return api_error(500, "HTTPException", "Invalid encoded image")
        checkpoint = (body.get("override_settings") or {}).get("sd_model_checkpoint")
        if checkpoint is not None and checkpoint not in self.models:
            return api_error(500, "RuntimeError", "", f"model {checkpoint!r} not found")
        task_id = body.get("force_task_id") or f"task(img2img-{uuid.uuid4().hex[:7]})"
        async with contextlib.nullcontext() if self.parallel else self._lock:
            await self._run(task_id, body)
        return json_response(self._result(body, checkpoint))

    async def _run(self, task_id: str, body: dict[str, Any]) -> None:
        self._interrupted.clear()
        self._running = {"task": task_id, "start": time.monotonic(),
                         "steps": int(body.get("steps", 50))}
        try:
            if self.delay > 0:
                # An interrupt ends sampling early; the WebUI still answers with what it has.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._interrupted.wait(), self.delay)
        finally:
            self._running = None
            self.completed += 1

    def _result(self, body: dict[str, Any], checkpoint: str | None) -> dict[str, Any]:
        width, height = int(body.get("width", 512)), int(body.get("height", 512))
        batch = int(body.get("batch_size", 1))
        seed = int(body.get("seed", -1))
        if seed == -1:
            seed = random.randrange(2**32)
        seeds = [seed + i for i in range(batch)]
        images = [self._encode(Image.new("RGB", (width, height), _colour(s))) for s in seeds]
        if self.result_bytes is not None:
            images = [base64.b64encode(self.result_bytes).decode()] * batch
        first = 0
        if self.return_grid and batch > 1:
            images.insert(0, self._encode(Image.new("RGB", (width * batch, height), (0, 0, 0))))
            first = 1
        model = checkpoint or self.models[0]
        info = {
            "prompt": body.get("prompt", ""), "all_prompts": [body.get("prompt", "")] * batch,
            "negative_prompt": body.get("negative_prompt", ""), "seed": seed,
            "all_seeds": seeds, "subseed": 98765, "width": width, "height": height,
            "sampler_name": body.get("sampler_name") or self.samplers[0],
            "cfg_scale": body.get("cfg_scale", 7.0), "steps": body.get("steps", 50),
            "batch_size": batch, "sd_model_name": model.split(".")[0],
            "sd_model_hash": model.rsplit("[", 1)[-1].rstrip("]"),
            "denoising_strength": body.get("denoising_strength", 0.75),
            "infotexts": ["..."] * batch, "job_timestamp": "20240101120000",
            "index_of_first_image": first, "is_using_inpainting_conditioning": False,
        }
        parameters = {k: v for k, v in body.items() if k != "init_images"}
        parameters["init_images"] = None
        return {"images": images, "parameters": parameters, "info": json.dumps(info)}

    def _encode(self, image: Image.Image) -> str:
        buf = io.BytesIO()
        image.save(buf, self.image_format)
        return base64.b64encode(buf.getvalue()).decode()

    def _failure(self, kind: str, body: dict[str, Any]) -> web.Response:
        if kind == "sampler_not_found":
            return api_error(404, "HTTPException", "Sampler not found")
        if kind == "init_image_not_found":
            return api_error(404, "HTTPException", "Init image not found")
        if kind == "validation":
            return json_response({"detail": [{"loc": ["body", "steps"],
                                              "msg": "value is not a valid integer",
                                              "type": "type_error.integer"}]}, 422)
        if kind == "invalid_image":
            return api_error(500, "HTTPException", "Invalid encoded image")
        if kind == "oom":
            return api_error(500, "OutOfMemoryError", "",
                             "CUDA out of memory. Tried to allocate 2.00 GiB")
        if kind == "server_error":
            return api_error(500, "RuntimeError", "", "Sizes of tensors must match")
        if kind == "unavailable":
            return web.Response(status=503, text="Service Unavailable")
        if kind == "rate_limited":
            return json_response({"detail": "slow down"}, 429, **{"Retry-After": "0"})
        if kind == "disconnect":
            assert self.request_transport is not None
            self.request_transport.close()
            return web.Response(status=200)
        if kind == "malformed":
            return web.Response(status=200, text="<html>oops</html>", content_type="text/html")
        result = self._result(body, None)
        result["images"] = [base64.b64encode(b"definitely not an image").decode()]
        return json_response(result)

    async def _progress(self, request: web.Request) -> web.Response:
        self.progress_polls += 1
        running = self._running
        idle_state = {"skipped": False, "interrupted": False, "job": "", "job_count": 0,
                      "job_timestamp": "0", "job_no": 0, "sampling_step": 0,
                      "sampling_steps": 0}
        if running is None:
            return json_response({"progress": 0, "eta_relative": 0, "state": idle_state,
                                  "current_image": None, "textinfo": None})
        elapsed = time.monotonic() - running["start"]
        fraction = min(0.99, elapsed / self.delay) if self.delay > 0 else 0.99
        state = dict(idle_state, job="scripts_img2img", job_count=1,
                     interrupted=self._interrupted.is_set(),
                     sampling_step=int(fraction * running["steps"]),
                     sampling_steps=running["steps"])
        body: dict[str, Any] = {
            "progress": round(fraction, 3),
            "eta_relative": round(max(0.0, self.delay - elapsed), 3),
            "state": state, "current_image": None, "textinfo": None,
        }
        if self.report_task:
            body["current_task"] = running["task"]
        return json_response(body)

    async def _sd_models(self, request: web.Request) -> web.Response:
        return json_response([
            {"title": title, "model_name": title.split(".")[0],
             "hash": title.rsplit("[", 1)[-1].rstrip("]"), "sha256": None,
             "filename": f"/models/Stable-diffusion/{title.split(' ')[0]}", "config": None}
            for title in self.models
        ])

    async def _samplers(self, request: web.Request) -> web.Response:
        return json_response([{"name": n, "aliases": [], "options": {}} for n in self.samplers])

    async def _interrupt(self, request: web.Request) -> web.Response:
        self.interrupts += 1
        self._interrupted.set()
        return json_response({})


def _validate(body: dict[str, Any]) -> list[dict[str, Any]]:
    """FastAPI-style validation of the typed fields the fake reads."""
    problems: list[dict[str, Any]] = []
    for key, kind in (("steps", int), ("batch_size", int), ("width", int), ("height", int),
                      ("seed", int), ("cfg_scale", (int, float)),
                      ("denoising_strength", (int, float))):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            problems.append({"loc": ["body", key], "msg": "value is not a valid number",
                             "type": "type_error"})
    return problems


def _decode_image(data: str) -> Image.Image:
    """Decode base64 (with or without a ``data:`` prefix) as the WebUI does."""
    if data.startswith("data:image/"):
        data = data.split(";")[1].split(",")[1]
    try:
        image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise ValueError("invalid image") from exc
    return image


def _colour(seed: int) -> tuple[int, int, int]:
    return (seed % 256, (seed // 256) % 256, (seed // 65536) % 256)
