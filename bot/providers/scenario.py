"""Scenario img2img: optional asset upload, a queued inference job polled to the end, signed URLs.

Every API call carries HTTP Basic ``api_key:api_secret``; the signed asset URLs carry their own
authorisation and get no header. Jobs can be cancelled, which the framework does on timeout or
when the requester cancels.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from bot.errors import ContentFiltered, JobFailed, ProviderError
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ImageData, Params, ProviderJob, SizeRules
from bot.options import Overrides
from bot.providers.base import (
    HttpProviderSettings,
    Provider,
    ProviderSettings,
    Reporter,
    env_name,
    env_secret,
    family_defaults,
)
from bot.providers.http import (
    error_detail,
    error_for_status,
    failed_job,
    json_body,
    retry_after_of,
    send,
)
from bot.providers.results import check_rules, fetch_image
from bot.redact import redact, register_secret

log = logging.getLogger(__name__)

Scheduler = Literal[
    "DDIMScheduler", "DDPMScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler", "EulerAncestralDiscreteScheduler", "EulerDiscreteScheduler",
    "HeunDiscreteScheduler", "KDPM2AncestralDiscreteScheduler", "KDPM2DiscreteScheduler",
    "LCMScheduler", "LMSDiscreteScheduler", "PNDMScheduler", "TCDScheduler",
    "UniPCMultistepScheduler",
]
# A generation is repeated only on answers that mean it was not started (no double charge).
SUBMIT_RETRY = frozenset({429, 503})
# The insufficient-Creative-Units status is undocumented (402 or 403): the message decides.
CREDIT_WORDS = ("creative unit", "credit", "insufficient", "quota")
# Guidance and steps per model family, from Scenario's model docs (flux-dev 3.5, flux-pro 3 in
# [2, 5], SDXL 6) and its Flux img2img example (28 steps); the first marker found wins.
FAMILIES = (
    ("flux-pro", Overrides(cfg=3.0, steps=28)),
    ("flux.1-pro", Overrides(cfg=3.0, steps=28)),
    ("flux", Overrides(cfg=3.5, steps=28)),
    ("sdxl", Overrides(cfg=6.0, steps=30)),
)
STATUS_TEXT = {"queued": "Queued at Scenario", "warming-up": "Warming up the model",
               "pending": "Waiting for a GPU", "in-progress": "Generating",
               "finalizing": "Finishing"}


class ScenarioSettings(HttpProviderSettings):
    """``[providers.NAME]`` keys of ``type = "scenario"``."""

    url: str = "https://api.cloud.scenario.com/v1"
    api_secret: SecretStr | None = None
    api_secret_env: str | None = Field(
        None, description="environment variable holding the secret (default: NAME_API_SECRET)")
    model_id: str = "flux.1-dev"
    image_input: Literal["asset", "data_url"] = Field(
        "asset", description="upload the input as an asset first, or inline it as a data URL")
    project_id: str | None = None
    guidance: float | None = Field(None, ge=0, le=20, description="fixed guidance (else cfg)")
    negative_prompt_strength: float | None = Field(None, ge=0, le=10)
    scheduler: Scheduler | None = None
    min_side: int = Field(64, ge=64, le=2048)
    max_side: int = Field(2048, ge=64, le=2048)
    max_samples: int = Field(4, ge=1, le=128)

    def resolve_secrets(self, name: str, environ: Mapping[str, str]) -> None:
        super().resolve_secrets(name, environ)
        self.api_secret = env_secret(self.api_secret, environ,
                                     self.api_secret_env or env_name(name, "API_SECRET"))
        if self.api_secret is not None:
            register_secret(self.basic_token())

    def secret(self) -> str:
        return self.api_secret.get_secret_value() if self.api_secret else ""

    def basic_token(self) -> str:
        """The base64 credential of the Authorization header (a secret of its own)."""
        return base64.b64encode(f"{self.key()}:{self.secret()}".encode()).decode("ascii")


class ScenarioProvider(Provider):
    """Scenario's ``/generate/img2img`` inference jobs with progress, cancel and signed URLs."""

    type_name = "scenario"
    Settings = ScenarioSettings
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.NEGATIVE_PROMPT
                    | Capability.STEPS | Capability.CFG | Capability.SAMPLES
                    | Capability.PROGRESS | Capability.MODELS | Capability.CANCEL
                    | Capability.SAFETY)
    size_rules = SizeRules(multiple=8, min_side=64, max_side=2048, preferred_area=1024 * 1024,
                           max_samples=4, max_input_bytes=4 * 1024 * 1024, min_steps=1,
                           max_steps=150)

    def __init__(self, name: str, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        if not isinstance(settings, ScenarioSettings):
            raise TypeError("ScenarioProvider needs ScenarioSettings")
        super().__init__(name, settings, http)
        self.cfg = settings

    @property
    def rules(self) -> SizeRules:
        # Assets up to 6 MB go through /assets as base64, which is 4/3 of the bytes.
        return SizeRules(multiple=8, min_side=self.cfg.min_side, max_side=self.cfg.max_side,
                         preferred_area=min(1024, self.cfg.max_side) ** 2,
                         max_area=self.cfg.max_side**2,
                         max_samples=self.cfg.max_samples, max_input_bytes=4 * 1024 * 1024,
                         min_steps=1, max_steps=150)

    def builtin_defaults(self, model: str | None) -> Overrides:
        return family_defaults(model or self.cfg.model_id, FAMILIES)

    async def _api(self, method: str, path: str, *, accepted: bool,
                   retry_statuses: frozenset[int] | None = None, **kwargs: Any) -> Any:
        """Call the API with Basic auth; return its JSON or raise the mapped error."""
        if retry_statuses is not None:
            kwargs["retry_statuses"] = retry_statuses
        if self.cfg.project_id:
            kwargs["params"] = {**kwargs.get("params", {}), "projectId": self.cfg.project_id}
        response = await send(self.http, method, f"{self.cfg.base_url}/{path}",
                              auth=httpx.BasicAuth(self.cfg.key(), self.cfg.secret()),
                              retry=self.cfg.retry_policy(), timeout=self.cfg.timeouts(),
                              **kwargs)
        if not response.is_success:
            raise failure(response, accepted=accepted)
        return json_body(response)

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        check_rules(job.params, self.rules, steps=True)
        image = await self._input_image(job)
        answer = await self._api("POST", "generate/img2img", accepted=False,
                                 retry_statuses=SUBMIT_RETRY, json=self._body(job.params, image))
        remote = answer["job"]
        job_id = remote.get("jobId") or remote["id"]
        reporter.accept()
        reporter.record("scenario_job_id", job_id)
        if answer.get("creativeUnitsCost") is not None:
            reporter.record("creative_units", answer["creativeUnitsCost"])
        remote = await self._wait(str(job_id), remote, reporter)
        reporter.progress(1.0, 0.0, "Downloading")
        return await self._collect(job, remote)

    async def _input_image(self, job: ProviderJob) -> str:
        data_url = (f"data:{job.image.mime};base64,"
                    f"{base64.b64encode(job.image.data).decode('ascii')}")
        if self.cfg.image_input == "data_url":
            return data_url
        answer = await self._api("POST", "assets", accepted=False, json={
            "image": data_url, "name": f"img2img-{job.job_id}.{job.image.extension}"})
        asset_id = answer["asset"]["id"]
        if not isinstance(asset_id, str):
            raise TypeError("the asset id is not a string")
        return asset_id

    def _body(self, params: Params, image: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "modelId": params.model or self.cfg.model_id, "prompt": params.prompt,
            "image": image, "strength": min(1.0, max(0.01, params.strength)),
            "numSamples": params.samples, "numInferenceSteps": params.steps,
            "width": params.width, "height": params.height,
            "guidance": self.cfg.guidance if self.cfg.guidance is not None
            else min(20.0, max(0.0, params.cfg)),
        }
        if params.seed is not None:
            body["seed"] = str(params.seed)
        if params.negative_prompt:
            body["negativePrompt"] = params.negative_prompt
            if self.cfg.negative_prompt_strength is not None:
                body["negativePromptStrength"] = self.cfg.negative_prompt_strength
        if self.cfg.scheduler:
            body["scheduler"] = self.cfg.scheduler
        return body

    async def _wait(self, job_id: str, remote: dict[str, Any],
                    reporter: Reporter) -> dict[str, Any]:
        """Poll the job until success; failure and cancellation raise."""
        while True:
            status = remote["status"]
            billing = remote.get("billing")
            if isinstance(billing, dict) and billing.get("cuCost") is not None:
                reporter.record("creative_units", billing["cuCost"])
            if status == "success":
                return remote
            if status == "failure":
                raise job_failure(remote)
            if status == "canceled":
                raise JobFailed(msg=Msg("error-job-cancelled-remote"), accepted=True)
            progress = remote.get("progress")
            fraction = float(progress) if isinstance(progress, int | float) else None
            reporter.progress(fraction, None, STATUS_TEXT.get(status, str(status)))
            await asyncio.sleep(self.cfg.poll_interval)
            remote = (await self._api("GET", f"jobs/{job_id}", accepted=True))["job"]

    async def _collect(self, job: ProviderJob, remote: dict[str, Any]) -> GenerationResult:
        asset_ids = remote["metadata"]["assetIds"]
        if not isinstance(asset_ids, list):
            raise TypeError("assetIds is not a list")
        images: list[ImageData] = []
        seed: int | None = None
        flagged = 0
        for asset_id in asset_ids:
            asset = (await self._api("GET", f"assets/{asset_id}", accepted=True))["asset"]
            if asset.get("nsfw") and not job.params.nsfw_allowed:
                flagged += 1
                continue
            images.append(await fetch_image(self.fetcher, str(asset["url"]),
                                             attempts=self.cfg.retries))
            metadata = asset.get("metadata")
            if seed is None and isinstance(metadata, dict):
                seed = _int(metadata.get("seed"))
        if flagged and not images:
            raise ContentFiltered(accepted=True)
        if seed is None:
            inputs = remote["metadata"].get("input")
            seed = _int(inputs.get("seed")) if isinstance(inputs, dict) else None
        return GenerationResult(images=tuple(images),
                                seed=job.params.seed if seed is None else seed,
                                nsfw_filtered=bool(flagged),
                                metadata={"scenario_job_id": remote.get("jobId"),
                                          "asset_ids": list(asset_ids)})

    async def cancel(self, job: ProviderJob, reporter: Reporter) -> None:
        """Ask Scenario to cancel the inference job this attempt started, if any."""
        job_id = reporter.metadata.get("scenario_job_id")
        if job_id is None:
            return
        await self._api("POST", f"jobs/{job_id}/action", accepted=True,
                        json={"action": "cancel"})
        log.info("provider %s: cancelled Scenario job %s", self.name, job_id)

    async def health(self) -> str:
        """Listing one model checks key and reachability without spending Creative Units."""
        await self._api("GET", "models", accepted=False, params={"pageSize": "1"})
        return f"ok (credentials accepted; model {self.cfg.model_id})"

    async def list_models(self) -> list[str]:
        names: list[str] = []
        for privacy in ("private", "public"):
            answer = await self._api("GET", "models", accepted=False,
                                     params={"privacy": privacy, "pageSize": "100"})
            models = answer.get("models") if isinstance(answer, dict) else None
            names.extend(str(model["id"]) for model in models or []
                         if isinstance(model, dict) and "id" in model)
        return sorted(set(names))


def failure(response: httpx.Response, *, accepted: bool) -> ProviderError:
    """Map a Scenario error (``{apiError, error}``) onto the tree."""
    detail = error_detail(response)
    status = response.status_code
    if status in (402, 403) and any(word in detail.lower() for word in CREDIT_WORDS):
        status = 402
    if accepted and status in (400, 404, 409, 422):
        return failed_job(detail)
    return error_for_status(status, detail, retry_after=retry_after_of(response),
                            accepted=accepted)


def job_failure(remote: dict[str, Any]) -> ProviderError:
    """The error for a job that ended in ``failure`` (``metadata.error`` says why)."""
    metadata = remote.get("metadata")
    reason = str(metadata.get("error") or "") if isinstance(metadata, dict) else ""
    if "nsfw" in reason.lower():
        return ContentFiltered(accepted=True)
    return failed_job(redact(reason.strip().rstrip("."))[:200])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
