"""A fake AI Horde: async submit with the Horde's validation, check/status polling, R2 downloads.

It follows ``horde/apis/v2/stable.py``: ``{message, rc}`` errors, the anonymous key and its
upfront-kudos limit, ``/check`` moving a request through the queue one poll at a time, the
``/status`` rate limit (10 a minute), ``DELETE`` cancelling, and results as presigned URLs
(served here under ``/r2/``) or inline base64 WebP. Knobs: ``queue_positions``,
``processing_polls``, ``censor``, ``fault``, ``impossible``, ``never_finish``, ``check_429``,
``maintenance`` (the status to answer with, 400 or 503), ``max_active``, ``broken_status``.
"""

from __future__ import annotations

import base64
import binascii
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from tests.fakes.server import FakeServer, json_response, stream_png_then_zeros

ANONYMOUS = "0000000000"
SAMPLERS = {"k_lms", "k_heun", "k_euler", "k_euler_a", "k_dpm_2", "k_dpm_2_a", "k_dpm_fast",
            "k_dpm_adaptive", "k_dpmpp_2s_a", "k_dpmpp_2m", "dpmsolver", "k_dpmpp_sde", "DDIM",
            "lcm"}
PROCESSING = {"img2img", "inpainting", "outpainting", "remix"}
MODELS = [{"name": "stable_diffusion", "count": 12, "performance": 1.2, "queued": 4,
           "jobs": 3, "eta": 20, "type": "image"},
          {"name": "Deliberate", "count": 30, "performance": 2.0, "queued": 9, "jobs": 8,
           "eta": 11, "type": "image"}]


@dataclass
class HordeRequest:
    """One submitted request and how far the fake has moved it."""

    id: str
    body: dict[str, Any]
    apikey: str
    source_format: str
    kudos: float
    checks: int = 0
    status_calls: int = 0
    deleted: bool = False
    generations: list[dict[str, Any]] = field(default_factory=list)


class FakeHorde(FakeServer):
    """AI Horde's ``/api/v2`` on 127.0.0.1 (the base URL to configure ends in ``/api``)."""

    def __init__(self) -> None:
        super().__init__()
        self.users = {ANONYMOUS: ("Anonymous#0", 0.0), "registered-key": ("alice#4242", 5000.0)}
        self.queue_positions = [3, 1]  # one /check poll each, then processing
        self.processing_polls = 1
        self.censor = False
        self.fault = False
        self.impossible = False
        self.never_finish = False
        self.check_429 = 0  # the next N /check polls answer 429
        self.retry_after = "0"
        self.maintenance: int | None = None
        self.max_active = 10
        self.broken_status = False
        self.submitted: dict[str, HordeRequest] = {}
        self.deleted: list[str] = []
        self.client_agents: list[str] = []
        self.r2_headers: list[dict[str, str]] = []
        self.r2_objects: dict[str, bytes] = {}
        self.result_url: str | None = None  # every generation's img points here instead
        self.r2_redirect: str | None = None  # R2 answers 302 to this URL
        self.r2_stream_bytes = 0  # R2 streams a PNG signature then this many zero bytes
        self.r2_failures = 0  # the next N R2 downloads answer 503

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v2/generate/async", self.submit)
        app.router.add_get("/api/v2/generate/check/{id}", self.check)
        app.router.add_get("/api/v2/generate/status/{id}", self.status)
        app.router.add_delete("/api/v2/generate/status/{id}", self.delete)
        app.router.add_get("/api/v2/status/models", self.models)
        app.router.add_get("/api/v2/status/heartbeat", self.heartbeat)
        app.router.add_get("/api/v2/find_user", self.find_user)
        app.router.add_get("/r2/{name}", self.r2)

    @property
    def api_url(self) -> str:
        return self.base_url + "/api"

    def _user(self, request: web.Request) -> str | web.Response:
        self.client_agents.append(request.headers.get("Client-Agent", "unknown:0:unknown"))
        key = request.headers.get("apikey") or ANONYMOUS
        if key not in self.users:
            return _error(401, "InvalidAPIKey", "No user matching sent API Key. Have you "
                          "remembered to register at https://aihorde.net/register ?")
        return key

    # -- submit --------------------------------------------------------------------------------

    async def submit(self, request: web.Request) -> web.Response:
        key = self._user(request)
        if isinstance(key, web.Response):
            return key
        if self.maintenance:
            return _error(self.maintenance, "MaintenanceMode", "Horde is currently in "
                          "maintenance mode. Please try again later.")
        body = await request.json()
        problem = self._invalid(body)
        if problem is not None:
            return problem
        params = body.get("params", {})
        width, height, steps = params.get("width", 512), params.get("height", 512), \
            params.get("steps", 30)
        if key == ANONYMOUS and (width * height > 1024 * 1024 or steps > 50):
            return _error(403, "KudosUpfront", "Due to heavy demand, for requests over "
                          "1024x1024 or over 50 steps (including hires fix), the client needs "
                          "to already have the sufficient kudos required.")
        active = [r for r in self.submitted.values() if r.apikey == key and not r.deleted
                  and not r.generations]
        if len(active) >= self.max_active:
            return _error(429, "TooManyPrompts", f"Parallel requests ({len(active)}) exceeded "
                          f"user limit ({self.max_active}).")
        source_format = _image_format(body["source_image"])
        if source_format is None:
            return _error(400, "ImageValidationFailed", "Image validation failed: the source "
                          "image is not a valid image.")
        kudos = round(steps * width * height / (512 * 512) * params.get("n", 1) * 0.6, 2)
        horde_request = HordeRequest(str(uuid.uuid4()), body, key, source_format, kudos)
        self.submitted[horde_request.id] = horde_request
        return json_response({"id": horde_request.id, "kudos": kudos}, 202)

    def _invalid(self, body: dict[str, Any]) -> web.Response | None:
        params = body.get("params", {})
        schema: dict[str, str] = {}
        if not isinstance(body.get("source_image"), str):
            schema["source_image"] = "'source_image' is a required property here"
        if body.get("source_processing", "img2img") not in PROCESSING:
            schema["source_processing"] = f"'{body['source_processing']}' is not one of " \
                f"{sorted(PROCESSING)}"
        if params.get("sampler_name", "k_euler_a") not in SAMPLERS:
            schema["params.sampler_name"] = f"'{params['sampler_name']}' is not one of " \
                f"{sorted(SAMPLERS)}"
        denoise = params.get("denoising_strength", 0.75)
        if not 0.01 <= denoise <= 1.0:
            schema["params.denoising_strength"] = f"{denoise} is out of range [0.01, 1.0]"
        if not isinstance(params.get("seed", ""), str):
            schema["params.seed"] = f"{params['seed']!r} is not of type 'string'"
        if schema:
            return json_response({"errors": schema, "message": "Input payload validation "
                                  "failed"}, 400)
        if not str(body.get("prompt", "")).strip():
            return _error(400, "MissingPrompt", "You cannot specify an empty prompt.")
        if params.get("width", 512) % 64 or params.get("height", 512) % 64:
            return _error(400, "InvalidSize", "Invalid size. The image dimensions have to be "
                          "multiples of 64.")
        if params.get("steps", 30) > 500:
            return _error(400, "TooManySteps", "Too many sampling steps.")
        if round(params.get("cfg_scale", 7.5), 2) != params.get("cfg_scale", 7.5):
            return _error(400, "BadCFGDecimals", "cfg_scale can only have 2 decimal places.")
        served = {m["name"] for m in MODELS}
        if body.get("models") and not served & set(body["models"]):
            return _error(400, "NoValidWorkers", "No active worker found to fulfill this "
                          "request. Please Try again later...")
        return None

    # -- polling -------------------------------------------------------------------------------

    def _find(self, request: web.Request) -> HordeRequest | web.Response:
        found = self.submitted.get(request.match_info["id"])
        if found is None or found.deleted:
            return _error(404, "RequestNotFound", "Request with ID not found.")
        return found

    def _state(self, found: HordeRequest) -> dict[str, Any]:
        n = int(found.body.get("params", {}).get("n", 1))
        queued = len(self.queue_positions)
        done = not self.never_finish and found.checks > queued + self.processing_polls
        processing = not self.never_finish and not done and found.checks > queued
        position = 0 if done or processing else self.queue_positions[
            min(max(found.checks - 1, 0), queued - 1)] if queued else 0
        faulted = self.fault and found.checks > queued
        return {"finished": n if done else 0, "processing": n if processing else 0,
                "restarted": 0, "waiting": 0 if done or processing else n,
                "done": done and not faulted, "faulted": faulted,
                "wait_time": 0 if done else 5 + position * 10, "queue_position": position,
                "kudos": found.kudos if done else 0.0, "is_possible": not self.impossible}

    async def check(self, request: web.Request) -> web.Response:
        key = self._user(request)
        if isinstance(key, web.Response):
            return key
        if self.check_429 > 0:
            self.check_429 -= 1
            return json_response({"message": "10 per 1 second"}, 429,
                                 **{"Retry-After": self.retry_after})
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        found.checks += 1
        return json_response(self._state(found))

    async def status(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        found.status_calls += 1
        if found.status_calls > 10:
            return json_response({"message": "10 per 1 minute"}, 429, **{"Retry-After": "60"})
        if self.broken_status:
            return json_response(["not", "an", "object"])
        state = self._state(found)
        if state["done"] and not found.generations:
            found.generations = [self._generation(found, i)
                                 for i in range(state["finished"])]
        return json_response({**state, "shared": found.apikey == ANONYMOUS,
                              "generations": found.generations})

    async def delete(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        found.deleted = True
        self.deleted.append(found.id)
        return json_response({**self._state(found), "generations": found.generations})

    def _generation(self, found: HordeRequest, index: int) -> dict[str, Any]:
        params = found.body.get("params", {})
        seed = params.get("seed") or str(1_000_000 + index)
        size = (params.get("width", 512), params.get("height", 512))
        censored = self.censor and not found.body.get("nsfw")
        data = _webp(size if not censored else (512, 512), (0, 0, 0) if censored else
                     (40, 160, 220))
        gen_id = str(uuid.uuid4())
        if found.body.get("r2", True):
            self.r2_objects[gen_id] = data
            img = self.result_url or (
                f"{self.base_url}/r2/{gen_id}.webp?X-Amz-Expires=1800&X-Amz-Signature=ab12")
        else:
            img = base64.b64encode(data).decode()
        return {"img": img, "seed": seed, "id": gen_id, "censored": censored,
                "gen_metadata": [{"type": "censorship", "value": "nsfw"}] if censored else [],
                "worker_id": str(uuid.uuid4()), "worker_name": "fake-worker-1",
                "model": (found.body.get("models") or ["stable_diffusion"])[0],
                "state": "censored" if censored else "ok"}

    async def r2(self, request: web.Request) -> web.StreamResponse:
        self.r2_headers.append(dict(request.headers))
        if self.r2_failures:
            self.r2_failures -= 1
            return web.Response(status=503, text="SlowDown")
        if self.r2_redirect:
            raise web.HTTPFound(self.r2_redirect)
        if self.r2_stream_bytes:
            return await stream_png_then_zeros(request, self.r2_stream_bytes)
        data = self.r2_objects.get(request.match_info["name"].removesuffix(".webp"))
        if data is None or "X-Amz-Signature" not in request.query:
            return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")
        return web.Response(body=data, content_type="image/webp")

    # -- status --------------------------------------------------------------------------------

    async def models(self, request: web.Request) -> web.Response:
        return json_response(MODELS if request.query.get("type", "image") == "image" else [])

    async def heartbeat(self, request: web.Request) -> web.Response:
        return json_response({"message": "OK", "version": "4.44.0"})

    async def find_user(self, request: web.Request) -> web.Response:
        key = self._user(request)
        if isinstance(key, web.Response):
            return key
        name, kudos = self.users[key]
        return json_response({"username": name, "kudos": kudos, "concurrency": self.max_active})



def _error(status: int, rc: str, message: str) -> web.Response:
    return json_response({"message": message, "rc": rc}, status)


def _image_format(source: str) -> str | None:
    try:
        with Image.open(io.BytesIO(base64.b64decode(source, validate=True))) as image:
            return str(image.format)
    except (binascii.Error, UnidentifiedImageError, ValueError):
        return None


def _webp(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "WEBP")
    return buffer.getvalue()
