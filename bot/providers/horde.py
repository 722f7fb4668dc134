"""AI Horde: submit an async img2img request, poll its queue position, fetch the result."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
from PIL import Image
from pydantic import Field

from bot.errors import (
    ContentFiltered,
    InvalidProviderRequest,
    JobFailed,
    ProviderAuthError,
    ProviderCreditsError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from bot.i18n import Msg
from bot.models import Capability, GenerationResult, ImageData, Params, ProviderJob, SizeRules
from bot.providers.base import HttpProviderSettings, Provider, ProviderSettings, Reporter
from bot.providers.http import RetryPolicy, error_for_status, json_body, parse_retry_after, send
from bot.providers.results import fetch_image
from bot.redact import redact

ANONYMOUS_KEY = "0000000000"  # AI Horde's documented anonymous key; not a secret
CLIENT_VERSION = "0.1"
RETRY_5XX = (500, 502, 503, 504)
MAX_BACKOFF = 30.0
NO_WORKERS = Msg("error-horde-no-workers")
FAULTED = Msg("error-horde-faulted")


class HordeSettings(HttpProviderSettings):
    """``[providers.NAME]`` keys of AI Horde."""

    url: str = "https://aihorde.net/api"
    poll_interval: float = Field(2.0, gt=0, description="seconds between /check polls")
    contact: str = Field("unknown", description="how AI Horde can reach the operator "
                         "(sent in the Client-Agent header)")
    models: list[str] = Field(default_factory=list, description="models to allow; empty: any")
    sampler: str = "k_euler_a"
    karras: bool = True
    trusted_workers: bool = False
    slow_workers: bool = True
    shared: bool = Field(False, description="share results with LAION (cheaper; always on for "
                         "the anonymous key)")
    r2: bool = Field(True, description="results as download URLs (true) or inline base64")


class HordeProvider(Provider):
    """The crowdsourced AI Horde; anonymous by default, with the lowest queue priority."""

    type_name = "horde"
    Settings = HordeSettings
    CAPABILITIES = (Capability.STRENGTH | Capability.SEED | Capability.NEGATIVE_PROMPT
                    | Capability.STEPS | Capability.CFG | Capability.SAMPLES
                    | Capability.PROGRESS | Capability.MODELS | Capability.CANCEL
                    | Capability.SAFETY)
    # Past 1024x1024 or 50 steps the Horde wants kudos up front, which anonymous users lack.
    # source_image is WebP (the Horde's native format): prepared as WebP, never converted.
    size_rules = SizeRules(multiple=64, min_side=64, max_side=3072, preferred_area=512 * 512,
                           max_area=1024 * 1024, max_samples=4, max_steps=50,
                           input_format="WEBP")

    def __init__(self, name: str, settings: ProviderSettings, http: httpx.AsyncClient) -> None:
        super().__init__(name, settings, http)
        assert isinstance(settings, HordeSettings)
        self.cfg = settings

    async def _generate(self, job: ProviderJob, reporter: Reporter) -> GenerationResult:
        source = await asyncio.to_thread(_webp_base64, job.image)
        request_id = await self._submit(self._payload(job.params, source), reporter)
        try:
            await self._wait(request_id, job.params.samples, reporter)
            status = await self._status(request_id)
        except Exception:
            await self._cancel_quietly(job, reporter)  # do not leave it to spend kudos
            raise
        return await self._result(status, reporter)

    def _payload(self, params: Params, source: str) -> dict[str, Any]:
        prompt = params.prompt
        if params.negative_prompt:
            prompt = f"{prompt} ### {params.negative_prompt}"
        settings: dict[str, Any] = {
            "sampler_name": self.cfg.sampler, "karras": self.cfg.karras,
            "cfg_scale": round(params.cfg, 2),  # more decimals is BadCFGDecimals
            "denoising_strength": min(1.0, max(0.01, round(params.strength, 2))),
            "width": params.width, "height": params.height, "steps": params.steps,
            "n": params.samples,
        }
        if params.seed is not None:
            settings["seed"] = str(params.seed)
        body: dict[str, Any] = {
            "prompt": prompt, "params": settings, "source_image": source,
            "source_processing": "img2img", "nsfw": params.nsfw_allowed,
            "censor_nsfw": not params.nsfw_allowed, "r2": self.cfg.r2, "shared": self.cfg.shared,
            "trusted_workers": self.cfg.trusted_workers, "slow_workers": self.cfg.slow_workers,
        }
        models = [params.model] if params.model else self.cfg.models
        if models:
            body["models"] = models
        return body

    def _headers(self) -> dict[str, str]:
        return {"apikey": self.cfg.key() or ANONYMOUS_KEY,
                "Client-Agent": f"img2img-bot:{CLIENT_VERSION}:{self.cfg.contact}"}

    async def _call(self, method: str, path: str, *, retry: RetryPolicy | None = None,
                    retry_statuses: tuple[int, ...] = (429, *RETRY_5XX),
                    **kwargs: Any) -> httpx.Response:
        return await send(self.http, method, self.cfg.base_url + path,
                          retry=retry or self.cfg.retry_policy(), retry_statuses=retry_statuses,
                          headers=self._headers(), timeout=self.cfg.timeouts(), **kwargs)

    async def _submit(self, payload: dict[str, Any], reporter: Reporter) -> str:
        # Only 429 is retried: after a 5xx the Horde may have queued the request anyway.
        response = await self._call("POST", "/v2/generate/async", json=payload,
                                    retry_statuses=(429,))
        if not response.is_success:
            raise horde_error(response)
        body = _object(response)
        request_id = str(body["id"])
        reporter.accept()
        reporter.record("horde_id", request_id)
        reporter.record("kudos", body.get("kudos"))
        warnings = body.get("warnings") or []
        if warnings and isinstance(warnings[0], dict) and warnings[0].get("message"):
            reporter.progress(None, text=f"AI Horde: {warnings[0]['message']}"[:200])
        return request_id

    async def _wait(self, request_id: str, samples: int, reporter: Reporter) -> None:
        """Poll ``/check`` until done, backing off while the Horde answers 429."""
        backoff = self.cfg.poll_interval
        while True:
            response = await self._call("GET", f"/v2/generate/check/{request_id}",
                                        retry_statuses=RETRY_5XX)
            if response.status_code == 429:
                backoff = min(backoff * 2, MAX_BACKOFF)
                retry_after = parse_retry_after(response.headers.get("Retry-After")) or 0.0
                await asyncio.sleep(max(retry_after, backoff))
                continue
            if not response.is_success:
                raise horde_error(response, accepted=True)
            check = _object(response)
            if check.get("faulted"):
                raise JobFailed(msg=FAULTED, accepted=True)
            if check.get("done"):
                return
            if check.get("is_possible") is False:
                raise ProviderUnavailable(msg=NO_WORKERS, accepted=True)
            _report(check, samples, reporter)
            backoff = self.cfg.poll_interval
            await asyncio.sleep(backoff)

    async def _status(self, request_id: str) -> dict[str, Any]:
        response = await self._call("GET", f"/v2/generate/status/{request_id}")
        if not response.is_success:
            raise horde_error(response, accepted=True)
        return _object(response)

    async def _result(self, status: dict[str, Any], reporter: Reporter) -> GenerationResult:
        if status.get("faulted"):
            raise JobFailed(msg=FAULTED, accepted=True)
        reporter.record("kudos", status.get("kudos"))
        generations = [gen for gen in status["generations"] if isinstance(gen, dict)]
        usable = [gen for gen in generations if not gen.get("censored")
                  and not _source_unreadable(gen)]
        censored = sum(1 for gen in generations if gen.get("censored"))
        if not usable and censored:
            raise ContentFiltered(accepted=True)
        if not usable and generations:
            raise JobFailed(msg=Msg("error-horde-input-unreadable"), accepted=True)
        images = tuple([await fetch_image(self.fetcher, str(gen["img"]), attempts=self.cfg.retries)
                        for gen in usable])
        if usable:
            reporter.record("worker", usable[0].get("worker_name"))
            reporter.record("model", usable[0].get("model"))
        seed = _seed(usable[0].get("seed")) if usable else None
        reporter.progress(1.0)
        return GenerationResult(images=images, seed=seed, nsfw_filtered=censored > 0,
                                metadata=dict(reporter.metadata))

    async def cancel(self, job: ProviderJob, reporter: Reporter) -> None:
        request_id = reporter.metadata.get("horde_id")
        if request_id:
            await self._call("DELETE", f"/v2/generate/status/{request_id}")

    async def health(self) -> str:
        response = await self._call("GET", "/v2/status/heartbeat")
        if not response.is_success:
            raise horde_error(response)
        if not self.cfg.key() or self.cfg.key() == ANONYMOUS_KEY:
            return "ok (AI Horde, anonymous: lowest queue priority)"
        response = await self._call("GET", "/v2/find_user")
        if not response.is_success:
            raise horde_error(response)
        user = _object(response)
        return f"ok (AI Horde as {user.get('username', '?')}, {user.get('kudos', 0):g} kudos)"

    async def list_models(self) -> list[str]:
        response = await self._call("GET", "/v2/status/models", params={"type": "image"})
        if not response.is_success:
            raise horde_error(response)
        models = [m for m in json_body(response) if isinstance(m, dict) and m.get("name")]
        models.sort(key=lambda m: -int(m.get("count") or 0))  # most workers first
        return [str(m["name"]) for m in models]


def horde_error(response: httpx.Response, *, accepted: bool = False) -> ProviderError:
    """The error-tree exception for a ``{message, rc}`` answer (HTTP status as the fallback)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    body = body if isinstance(body, dict) else {}
    rc = str(body.get("rc") or "")
    message = " ".join(redact(str(body.get("message") or "")).split())[:200].rstrip(".")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if rc == "InvalidAPIKey":
        return ProviderAuthError(msg=Msg("error-horde-key"), accepted=accepted)
    # ``message`` is AI Horde's own words: a parameter, shown as it came, not translated.
    if rc in ("AnonForbidden", "NotTrusted", "Forbidden"):
        return ProviderAuthError(msg=Msg("error-horde-forbidden", {"reason": message}),
                                 accepted=accepted)
    if rc in ("KudosUpfront", "SharedKeyInsufficientKudos"):
        return ProviderCreditsError(msg=Msg("error-horde-kudos"), accepted=accepted)
    if rc in ("TooManyPrompts", "TimeoutIP"):
        return RateLimited(msg=Msg("error-horde-rate"), retry_after=retry_after,
                           accepted=accepted)
    if rc == "NoValidWorkers":
        return ProviderUnavailable(msg=NO_WORKERS, accepted=accepted)
    if rc == "MaintenanceMode":
        return ProviderUnavailable(msg=Msg("error-horde-maintenance"), accepted=accepted)
    if rc in ("RequestNotFound", "RequestExpired"):
        return JobFailed(msg=Msg("error-horde-expired"), accepted=accepted)
    if response.status_code == 400:
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:  # schema validation: {field: problem}
            field, problem = next(iter(errors.items()))
            message = redact(f"{field}: {problem}")[:200]
        return InvalidProviderRequest(
            msg=Msg("error-horde-rejected", {"reason": message}) if message else None,
            accepted=accepted)
    return error_for_status(response.status_code, message, retry_after=retry_after,
                            accepted=accepted)


def _object(response: httpx.Response) -> dict[str, Any]:
    """A JSON object body; anything else is a malformed answer."""
    body = json_body(response)
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def _report(check: dict[str, Any], samples: int, reporter: Reporter) -> None:
    wait = check.get("wait_time")
    eta = float(wait) if isinstance(wait, int | float) and wait > 0 else None
    position = check.get("queue_position") or 0
    if check.get("processing") or check.get("finished"):
        done = int(check.get("finished") or 0)
        reporter.progress(done / max(samples, 1), eta, "generating on an AI Horde worker")
    elif position:
        reporter.progress(0.0, eta, f"position {position} in the AI Horde queue")
    else:
        reporter.progress(0.0, eta, "waiting for an AI Horde worker")


def _source_unreadable(generation: dict[str, Any]) -> bool:
    return any(isinstance(m, dict) and m.get("type") == "source_image"
               for m in generation.get("gen_metadata") or [])


def _seed(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def _webp_base64(image: ImageData) -> str:
    """The input as base64 WebP, the Horde's native source format."""
    data = image.data
    if image.mime != "image/webp":
        try:
            with Image.open(io.BytesIO(data)) as picture:
                alpha = "A" in picture.getbands() or "transparency" in picture.info
                buffer = io.BytesIO()
                picture.convert("RGBA" if alpha else "RGB").save(buffer, "WEBP", quality=95)
        except OSError as exc:
            raise InvalidProviderRequest(msg=Msg("error-horde-convert")) from exc
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")
