"""What the bot tells operators: Prometheus metrics and one log line per job transition.

The core and the adapters call the few functions here at the points where things happen
(``job_transition``, ``platform_error``, ``platform_rate_limited``; ``platform_trace`` for a
platform client on aiohttp); ``render`` is what
``/metrics`` serves. Metrics live in prometheus-client's default registry, beside its process
and Python collectors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from types import SimpleNamespace

import aiohttp
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate

log = logging.getLogger("img2img-bot.jobs")

FINAL_STATUSES = frozenset({"succeeded", "delivered", "failed", "cancelled", "interrupted",
                            "expired"})
REFUNDED_STATUSES = FINAL_STATUSES - {"succeeded", "delivered"}
WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)
RUN_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)

JOBS = Counter("img2img_jobs", "Job transitions, by provider and the status entered",
               ["provider", "status"])
QUEUED = Gauge("img2img_queue_depth", "Jobs waiting for a worker", ["provider"])
RUNNING = Gauge("img2img_jobs_running", "Jobs a provider is working on", ["provider"])
WAIT = Histogram("img2img_job_wait_seconds", "Time from queued to started", ["provider"],
                 buckets=WAIT_BUCKETS)
RUN = Histogram("img2img_job_run_seconds", "Time from started to finished", ["provider"],
                buckets=RUN_BUCKETS)
PROVIDER_ERRORS = Counter("img2img_provider_errors", "Failed jobs by provider and error class",
                          ["provider", "error"])
CREDITS = Counter("img2img_credits", "Credits charged for results and refunded for failures",
                  ["movement"])
PLATFORM_ERRORS = Counter("img2img_platform_api_errors", "Failed chat-platform API requests",
                          ["platform", "kind"])
PLATFORM_RATE_LIMITED = Counter("img2img_platform_rate_limited",
                                "Chat-platform API answers of 429 (rate limited)", ["platform"])

_lock = threading.Lock()
# Since when each job this process counts is queued / running, and at which provider.
_queued_at: dict[str, tuple[float, str]] = {}
_started_at: dict[str, tuple[float, str]] = {}


def job_transition(job_id: str, user_key: str, provider: str, status: str, *, price: int = 0,
                   error: str | None = None) -> None:
    """Record that a job entered ``status`` (queued, running, or a final one) and log it."""
    now = time.monotonic()
    waited = ran = None
    with _lock:
        if status == "queued":
            _queued_at[job_id] = (now, provider)
            QUEUED.labels(provider).inc()
        else:
            queued = _queued_at.pop(job_id, None)
            if queued is not None:
                QUEUED.labels(provider).dec()
                if status == "running":
                    waited = now - queued[0]
                    WAIT.labels(provider).observe(waited)
            if status == "running":
                _started_at[job_id] = (now, provider)
                RUNNING.labels(provider).inc()
            elif (started := _started_at.pop(job_id, None)) is not None:
                RUNNING.labels(provider).dec()
                ran = now - started[0]
                RUN.labels(provider).observe(ran)
    JOBS.labels(provider, status).inc()
    if error is not None and status == "failed":
        PROVIDER_ERRORS.labels(provider, error).inc()
    if price and status in ("succeeded", "delivered"):
        CREDITS.labels("spent").inc(price)
    elif price and status in REFUNDED_STATUSES:
        CREDITS.labels("refunded").inc(price)
    timing = "".join(f", {label} {value:.2f} s" for label, value in
                     (("waited", waited), ("ran", ran)) if value is not None)
    log.info("job %s %s: user %s, provider %s%s%s", job_id, status, user_key, provider, timing,
             f", error {error}" if error else "",
             extra={"job_id": job_id, "user_key": user_key, "provider": provider,
                    "status": status, "wait_seconds": waited, "run_seconds": ran,
                    "error": error})


def jobs_left(job_ids: Iterable[str]) -> None:
    """These jobs are no longer this process's (another one took or ended them, or this one
    stopped with them unfinished): they leave its queue-depth and running gauges."""
    with _lock:
        for job_id in job_ids:
            if (queued := _queued_at.pop(job_id, None)) is not None:
                QUEUED.labels(queued[1]).dec()
            if (started := _started_at.pop(job_id, None)) is not None:
                RUNNING.labels(started[1]).dec()


def platform_error(platform: str, kind: str) -> None:
    """A chat-platform API request failed (``kind``: network, or the API's error class)."""
    PLATFORM_ERRORS.labels(platform, kind).inc()


def platform_rate_limited(platform: str) -> None:
    PLATFORM_RATE_LIMITED.labels(platform).inc()


def platform_trace(platform: str) -> aiohttp.TraceConfig:
    """An aiohttp trace for a platform client's session: counts its 429s, error answers
    (``http_<status>``) and network failures."""

    async def on_end(_: aiohttp.ClientSession, __: SimpleNamespace,
                     params: aiohttp.TraceRequestEndParams) -> None:
        status = params.response.status
        if status == 429:
            platform_rate_limited(platform)
        elif status >= 400:
            platform_error(platform, f"http_{status}")

    async def on_exception(_: aiohttp.ClientSession, __: SimpleNamespace,
                           params: aiohttp.TraceRequestExceptionParams) -> None:
        platform_error(platform, "network")

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return _generate(REGISTRY), CONTENT_TYPE_LATEST
