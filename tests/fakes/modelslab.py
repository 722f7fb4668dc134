"""A fake ModelsLab API: key in the JSON body, base64_to_url, queued jobs, fetch, downloads."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import JPEG_MAGIC, PNG_MAGIC, RecordingServer, json_response, png_bytes


@dataclass
class QueuedJob:
    """A generation the fake accepted; ``polls_left`` fetches answer "processing" first."""

    id: int
    body: dict[str, Any]
    polls_left: int
    seed: int
    files: list[str] = field(default_factory=list)


class FakeModelsLab(RecordingServer):
    """Speaks the v6 realtime, enterprise realtime and community img2img protocol under ``/api``.

    Knobs (set before the request): ``processing_polls`` (fetches answering "processing";
    -1 never finishes), ``eta``, ``nsfw``, ``output_base64`` (results as ``.base64`` text files),
    ``errors_in_200`` (every error arrives with HTTP 200, as some endpoints do), ``fetch_error``
    (fetches answer this error message with HTTP 200), ``echo_key`` (error messages repeat the
    key, as a careless API might), ``delay`` (seconds before answering a generation), ``credits``
    (generations left before 402), ``script`` (canned ``(status, body)`` answers the next
    generations get, e.g. a 429 before a success) and ``sdk_fetch_route`` (also serve community
    fetches at ``/images/fetch/{id}``, the undocumented form modelslab-py sends; off by
    default, so that route answers 404 as a server that follows the docs would).

    Community fetches follow the docs: ``POST /api/v6/images/fetch`` with ``request_id`` in
    the JSON body. ``negative_prompt``, where sent, must be a string (the docs type it so).
    """

    def __init__(self, key: str = "ml-test-key-0123456789") -> None:
        super().__init__()
        self.key = key
        self.uploads: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.jobs: dict[int, QueuedJob] = {}
        self.generations: list[dict[str, Any]] = []
        self.fetches = 0
        self.processing_polls = 0
        self.eta: float = 0.05
        self.nsfw = False
        self.output_base64 = False
        self.errors_in_200 = False
        self.echo_key = False
        self.delay = 0.0
        self.fetch_error: str | None = None
        self.credits = 100
        self.script: list[tuple[int, Any]] = []
        self.sdk_fetch_route = False
        self._ids = itertools.count(81443063)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v6/base64_to_url", self.upload)
        app.router.add_post("/api/v6/image_editing/base64_to_url", self.upload)
        for path in ("/api/v6/realtime/img2img", "/api/v1/enterprise/realtime/img2img",
                     "/api/v6/images/img2img"):
            app.router.add_post(path, self.img2img)
        for path in ("/api/v6/realtime/fetch/{id}", "/api/v1/enterprise/realtime/fetch/{id}",
                     "/api/v6/images/fetch"):
            app.router.add_post(path, self.fetch)
        app.router.add_post("/api/v6/images/fetch/{id}", self.sdk_fetch)
        app.router.add_get("/files/{name}", self.download)
        app.router.add_get("/generations/{name}", self.download)

    # --- helpers ---------------------------------------------------------------------------

    def _error(self, status: int, message: str, **extra: Any) -> web.Response:
        return json_response({"status": "error", "message": message, **extra},
                             200 if self.errors_in_200 else status)

    async def _authorised_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        if request.content_type != "application/json":
            return self._error(400, "Content-Type must be application/json")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return self._error(400, "Invalid JSON body")
        key = body.get("key")
        if key != self.key:
            shown = f" {key}" if self.echo_key and isinstance(key, str) else ""
            return self._error(401, f"Invalid API key{shown}")
        if "key" in request.query or any(self.key in v for v in request.headers.values()):
            return self._error(400, "The key belongs in the JSON body")
        return body

    # --- endpoints ---------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        body = await self._authorised_body(request)
        if isinstance(body, web.Response):
            return body
        field_name = "init_image" if "image_editing" in request.path else "base64_string"
        value = body.get(field_name)
        if not isinstance(value, str) or not value.startswith("data:image/"):
            return self._error(400, f"{field_name} must be a data:image/...;base64 string")
        header, _, payload = value.partition(",")
        if not header.endswith(";base64"):
            return self._error(400, f"{field_name} must be base64")
        try:
            data = base64.b64decode(payload, validate=True)
        except ValueError:
            return self._error(400, "Invalid base64 string")
        if len(value) > 5 * 1024 * 1024:
            return self._error(400, "Image size must be below 5 MB")
        if not data.startswith((PNG_MAGIC, JPEG_MAGIC)):
            return self._error(400, "Only PNG and JPG images are supported")
        name = f"{next(self._ids)}.png"
        self.uploads[name] = data
        return json_response({"status": "success", "id": len(self.uploads),
                              "output": [f"{self.base_url}/files/{name}"]})

    async def img2img(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        body = await self._authorised_body(request)
        if isinstance(body, web.Response):
            return body
        self.generations.append(body)
        if self.script:
            status, answer = self.script.pop(0)
            if isinstance(answer, str | bytes):
                return web.Response(body=answer, status=status, content_type="text/html")
            return json_response(answer, status)
        problem = self._validate(body, community=request.path.startswith("/api/v6/images/"))
        if problem:
            return self._error(400, problem)
        if self.credits <= 0:
            return self._error(402, "Insufficient credits. Please add more credits to continue.")
        self.credits -= 1
        seed = body.get("seed")
        job = QueuedJob(next(self._ids), body, self.processing_polls,
                        int(seed) if seed is not None else random.randrange(2**32))
        job.files = [f"{job.id}-{i}.{'base64' if self.output_base64 else 'png'}"
                     for i in range(int(body.get("samples", 1)))]
        self.jobs[job.id] = job
        return self._job_answer(job, request)

    def _validate(self, body: dict[str, Any], *, community: bool) -> str | None:
        if not body.get("prompt"):
            return "prompt is required"
        init = body.get("init_image")
        if not isinstance(init, str) or not init.startswith("http"):
            return "init_image must be a URL"
        name = init.rsplit("/", 1)[-1]
        if not init.startswith(f"{self.base_url}/files/") or name not in self.uploads:
            return "Unable to fetch image from provided URL"
        if community and not body.get("model_id"):
            return "model_id is required"
        if not isinstance(body.get("negative_prompt", ""), str):
            return "negative_prompt must be a string"
        try:
            width, height = int(body.get("width", 512)), int(body.get("height", 512))
            samples = int(body.get("samples", 1))
            strength = float(body.get("strength", 0.7))
        except (TypeError, ValueError):
            return "width, height, samples and strength must be numbers"
        if not (256 <= width <= 1024 and 256 <= height <= 1024):
            return "width must be between 256 and 1024"
        if not 1 <= samples <= 4:
            return "samples must be between 1 and 4"
        if not 0 <= strength <= 1:
            return "strength must be between 0 and 1"
        if not isinstance(body.get("safety_checker", False), bool):
            return "safety_checker must be a boolean"
        return None

    def _job_answer(self, job: QueuedJob, request: web.Request) -> web.Response:
        links = [f"{self.base_url}/generations/{name}" for name in job.files]
        meta = {"seed": job.seed, "width": job.body.get("width"), "height": job.body.get("height"),
                "n_samples": len(job.files),
                "safety_checker": "yes" if job.body.get("safety_checker") else "no"}
        if job.polls_left != 0:
            return json_response({
                "status": "processing", "tip": "queued", "eta": self.eta, "id": job.id,
                "message": "Try to fetch request after seconds estimated",
                "fetch_result": f"{self.base_url}{_fetch_path(request.path)}/{job.id}",
                "output": [], "future_links": links, "meta": meta})
        for name in job.files:
            self.files[name] = self._render(job)
        nsfw = bool(self.nsfw and job.body.get("safety_checker"))
        return json_response({"status": "success", "generationTime": 0.65, "id": job.id,
                              "output": links, "proxy_links": links,
                              "nsfw_content_detected": nsfw, "meta": meta})

    def _render(self, job: QueuedJob) -> bytes:
        size = (int(job.body.get("width", 512)) // 8, int(job.body.get("height", 512)) // 8)
        image = png_bytes(size, (job.seed % 256, 90, 160))
        if self.output_base64:
            return base64.b64encode(image)
        return image

    async def fetch(self, request: web.Request) -> web.Response:
        body = await self._authorised_body(request)
        if isinstance(body, web.Response):
            return body
        self.fetches += 1
        if self.fetch_error:
            return json_response({"status": "error", "message": self.fetch_error})
        if request.path == "/api/v6/images/fetch":
            raw_id = body.get("request_id")
            if raw_id is None:
                return self._error(400, "request_id is required")
        else:
            raw_id = request.match_info["id"]
        try:
            job = self.jobs[int(str(raw_id))]
        except (KeyError, ValueError):
            return self._error(200, "Request not found")
        if job.polls_left > 0:
            job.polls_left -= 1
        if job.polls_left != 0:
            return json_response({"status": "processing", "eta": self.eta, "id": job.id,
                                  "message": "Try to fetch request after seconds estimated",
                                  "output": []})
        return self._job_answer(job, request)

    async def sdk_fetch(self, request: web.Request) -> web.Response:
        """``/images/fetch/{id}``: served only with ``sdk_fetch_route``, else an unknown route."""
        if not self.sdk_fetch_route:
            return web.Response(status=404, text="404: Not Found")
        return await self.fetch(request)

    async def download(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        data = self.files.get(name) or self.uploads.get(name)
        if data is None:
            return web.Response(status=404, text="Not Found")
        kind = "text/plain" if name.endswith(".base64") else "image/png"
        return web.Response(body=data, content_type=kind)


def _fetch_path(path: str) -> str:
    """The fetch endpoint that belongs to a generation (or fetch) path, without the id."""
    head = path.split("/img2img")[0] if "/img2img" in path else path.split("/fetch")[0]
    return f"{head}/fetch"
