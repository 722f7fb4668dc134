"""A fake Scenario API: Basic auth, assets, img2img inference jobs, job polling, signed CDN URLs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import JPEG_MAGIC, PNG_MAGIC, RecordingServer, json_response, png_bytes

STAMP = "2023-02-03T11:19:41.579Z"
MODELS = [{"id": "flux.1-dev", "name": "Flux.1 [dev]", "privacy": "public"},
          {"id": "model_GTrL3mq4SXWyMxkOHRxlpw", "name": "House style", "privacy": "private"}]


@dataclass
class FakeJob:
    """An inference job; ``polls`` counts the GETs that advance it."""

    id: str
    body: dict[str, Any]
    status: str = "queued"
    progress: float = 0.0
    polls: int = 0
    asset_ids: list[str] = field(default_factory=list)
    error: str | None = None


class FakeScenario(RecordingServer):
    """Speaks ``/v1`` of api.cloud.scenario.com, with signed asset URLs under ``/cdn``.

    Knobs: ``polls_to_finish`` (job GETs before the end; -1 never ends), ``final_status``
    ("success", "failure" or "canceled"), ``failure_error``, ``nsfw_labels`` (put on every
    produced asset), ``units`` (Creative Units left; at 0 generations answer ``units_status``),
    ``job_key`` ("jobId" per the spec, "id" as the quick-start shows), ``delay`` (seconds before
    a generation answers) and ``script`` (canned ``(status, body, headers)`` generation answers).
    """

    def __init__(self, key: str, secret: str) -> None:
        super().__init__()
        self.key, self.secret = key, secret
        self.assets: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.generations: list[dict[str, Any]] = []
        self.cancels: list[str] = []
        self.polls_to_finish = 2
        self.final_status = "success"
        self.failure_error = "The model could not process this image"
        self.nsfw_labels: list[str] = []
        self.units = 100
        self.units_status = 403
        self.cost = 5
        self.job_key = "jobId"
        self.delay = 0.0
        self.script: list[tuple[int, Any, dict[str, str]]] = []
        self._ids = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/assets", self.upload)
        app.router.add_get("/v1/assets/{id}", self.get_asset)
        app.router.add_post("/v1/generate/img2img", self.img2img)
        app.router.add_get("/v1/jobs/{id}", self.get_job)
        app.router.add_post("/v1/jobs/{id}/action", self.job_action)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/cdn/{name}", self.cdn)

    # --- helpers ---------------------------------------------------------------------------

    def _error(self, status: int, code: str, message: str) -> web.Response:
        return json_response({"apiError": code, "error": message, "id": f"err_{next(self._ids)}",
                              "infos": {}, "createdAt": STAMP, "updatedAt": STAMP}, status)

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        expected = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return self._error(401, "unauthorized", "Invalid credentials")
        return None

    async def _json(self, request: web.Request) -> dict[str, Any] | web.Response:
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(400, "bad_request", "Body must be JSON")
        if not isinstance(body, dict):
            return self._error(400, "bad_request", "Body must be a JSON object")
        return body

    def _store(self, data: bytes, *, mime: str, seed: str | None = None,
               nsfw: list[str] | None = None) -> dict[str, Any]:
        asset_id = f"asset_{next(self._ids):08d}"
        signature = hashlib.sha256(asset_id.encode()).hexdigest()[:16]
        self.blobs[asset_id] = data
        asset = {"id": asset_id, "url": f"{self.base_url}/cdn/{asset_id}.png?sig={signature}",
                 "mimeType": mime, "kind": "image", "status": "success",
                 "metadata": {"seed": seed, "kind": "image"}, "createdAt": STAMP}
        if nsfw:
            asset["nsfw"] = nsfw
        self.assets[asset_id] = asset
        return asset

    def _job_view(self, job: FakeJob) -> dict[str, Any]:
        view: dict[str, Any] = {
            self.job_key: job.id, "jobType": "inference", "status": job.status,
            "progress": job.progress, "createdAt": STAMP, "updatedAt": STAMP,
            "statusHistory": [{"status": job.status, "date": STAMP}],
            "metadata": {"input": job.body, "assetIds": job.asset_ids},
            "billing": {"cuCost": self.cost, "cuDiscount": 0}}
        if job.error:
            view["metadata"]["error"] = job.error
        return view

    # --- endpoints ---------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        data = _data_url(body.get("image"))
        if data is None or not body.get("name"):
            return self._error(400, "bad_request", "image (base64 data URL) and name are required")
        return json_response({"asset": self._store(data, mime="image/png")})

    async def img2img(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        self.generations.append(body)
        if self.script:
            status, answer, headers = self.script.pop(0)
            if isinstance(answer, str):
                return web.Response(text=answer, status=status, content_type="text/html",
                                    headers=headers)
            return json_response(answer, status, **headers)
        problem = self._validate(body)
        if problem:
            return self._error(400, "bad_request", problem)
        if request.query.get("dryRun") == "true":
            return json_response({"creativeUnitsCost": self.cost, "creativeUnitsDiscount": 0}, 269)
        if self.units < self.cost:
            return self._error(self.units_status, "insufficient_creative_units",
                               "Not enough Creative Units to run this inference")
        self.units -= self.cost
        job = FakeJob(f"job_{next(self._ids):08d}", body)
        self.jobs[job.id] = job
        return json_response({"creativeUnitsCost": self.cost, "creativeUnitsDiscount": 0,
                              "inference": {"type": "img2img", **body},
                              "job": self._job_view(job)})

    def _validate(self, body: dict[str, Any]) -> str | None:
        if not body.get("modelId") or not body.get("prompt"):
            return "modelId and prompt are required"
        image = body.get("image")
        if not (isinstance(image, str) and (image in self.assets or _data_url(image))):
            return "image must be an asset id or a base64 data URL"
        if "numSamples" not in body:
            return "numSamples is required by this fake (the default differs between docs)"
        checks = [("numSamples", 1, 128), ("strength", 0.01, 1.0), ("numInferenceSteps", 1, 150),
                  ("guidance", 0, 20), ("width", 64, 2048), ("height", 64, 2048)]
        for name, low, high in checks:
            value = body.get(name, low)
            if not isinstance(value, int | float) or not low <= value <= high:
                return f"{name} must be within [{low}, {high}]"
        if body.get("width", 512) % 8 or body.get("height", 512) % 8:
            return "width and height must be multiples of 8"
        if "seed" in body and not isinstance(body["seed"], str):
            return "seed must be a string"
        return None

    async def get_job(self, request: web.Request) -> web.Response:
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._error(404, "not_found", "Job not found")
        if job.status not in ("success", "failure", "canceled"):
            self._advance(job)
        return json_response({"job": self._job_view(job)})

    def _advance(self, job: FakeJob) -> None:
        job.polls += 1
        if self.polls_to_finish < 0 or job.polls < self.polls_to_finish:
            warming = job.polls == 1 and self.polls_to_finish >= 3
            job.status = "warming-up" if warming else "in-progress"
            job.progress = 0.5 if self.polls_to_finish < 0 else job.polls / self.polls_to_finish
            return
        job.status, job.progress = self.final_status, 1.0
        if self.final_status == "failure":
            job.error = self.failure_error
        if self.final_status != "success":
            return
        seed = int(job.body.get("seed") or random.randrange(2**32))
        for index in range(int(job.body["numSamples"])):
            size = (int(job.body.get("width", 512)) // 8, int(job.body.get("height", 512)) // 8)
            asset = self._store(png_bytes(size, (index * 40, 80, 120)), mime="image/png",
                                seed=str(seed + index), nsfw=list(self.nsfw_labels))
            job.asset_ids.append(asset["id"])

    async def job_action(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._error(404, "not_found", "Job not found")
        if body.get("action") != "cancel":
            return self._error(400, "bad_request", "action must be 'cancel'")
        self.cancels.append(job.id)
        job.status = "canceled"
        return json_response({"job": self._job_view(job)})

    async def get_asset(self, request: web.Request) -> web.Response:
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        asset = self.assets.get(request.match_info["id"])
        if asset is None:
            return self._error(404, "not_found", "Asset not found")
        return json_response({"asset": asset})

    async def models(self, request: web.Request) -> web.Response:
        denied = self._unauthorised(request)
        if denied is not None:
            return denied
        privacy = request.query.get("privacy", "private")
        return json_response({"models": [m for m in MODELS if m["privacy"] == privacy],
                              "nextPaginationToken": None})

    async def cdn(self, request: web.Request) -> web.Response:
        # Like S3, a signed URL refuses a second authorisation mechanism.
        if "Authorization" in request.headers:
            return web.Response(status=400, text="Only one auth mechanism allowed")
        asset_id = request.match_info["name"].removesuffix(".png")
        expected = hashlib.sha256(asset_id.encode()).hexdigest()[:16]
        if request.query.get("sig") != expected or asset_id not in self.blobs:
            return web.Response(status=403, text="AccessDenied")
        return web.Response(body=self.blobs[asset_id], content_type="image/png")


def _data_url(value: Any) -> bytes | None:
    """The image inside a ``data:image/...;base64,`` URL, or None."""
    if not isinstance(value, str) or not value.startswith("data:image/"):
        return None
    header, _, payload = value.partition(",")
    if not header.endswith(";base64"):
        return None
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:
        return None
    return data if data.startswith((PNG_MAGIC, JPEG_MAGIC)) else None
