"""Webhook mode of the fake Bot API: setWebhook and friends, and POSTing updates to the bot."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp

from tests.fakes.telegram_model import (
    ApiError,
    Params,
    Upload,
    api_method,
    bad_request,
    decode_field,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class WebhookDelivery:
    """Mixin for ``FakeTelegram``: it supplies the update queue and ``call``."""

    # Provided by FakeTelegram.
    allowed_updates: list[str] | None
    register_update: Any
    take_updates: Any
    drop_pending_updates: Any
    pending_update_count: Any
    call: Any
    _queue: list[Any]
    _changed: Any

    def __init__(self) -> None:
        self.webhook: dict[str, Any] = {}  # url, secret_token, max_connections while set
        self.webhook_error: tuple[int, str] | None = None
        self.webhook_deliveries: list[tuple[int, int]] = []  # (update_id, HTTP status)
        self.webhook_retry_delay = 0.05
        self.webhook_attempts = 100  # per update, before the queue pump gives up
        self._session: aiohttp.ClientSession | None = None
        self._flush_task: asyncio.Task[None] | None = None

    async def close_delivery(self) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            await asyncio.gather(self._flush_task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- Bot API methods ------------------------------------------------------------------
    @api_method("setWebhook")
    async def set_webhook(self, p: Params) -> Any:
        url = p.get("url", "")
        secret = p.get("secret_token")
        # Real Telegram wants https on port 443/80/88/8443; the fake takes any http(s) URL.
        if url and not re.match(r"https?://[^/\s]+", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not _SECRET.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self.drop_pending_updates()
        if p.get("allowed_updates") is not None:
            self.allowed_updates = p.get("allowed_updates")
        self.webhook = {"url": url, "secret_token": secret,
                        "max_connections": p.integer("max_connections", 40)} if url else {}
        if self.webhook:
            self.start_flush()
        return True

    @api_method("deleteWebhook")
    async def delete_webhook(self, p: Params) -> Any:
        if p.get("drop_pending_updates"):
            self.drop_pending_updates()
        self.webhook = {}
        return True

    @api_method("getWebhookInfo")
    async def get_webhook_info(self, p: Params) -> Any:
        info: dict[str, Any] = {"url": self.webhook.get("url", ""),
                                "has_custom_certificate": False,
                                "pending_update_count": self.pending_update_count()}
        if self.webhook:
            info["max_connections"] = self.webhook["max_connections"]
            info["ip_address"] = "127.0.0.1"
        if self.allowed_updates is not None:
            info["allowed_updates"] = self.allowed_updates
        if self.webhook_error:
            info["last_error_date"], info["last_error_message"] = self.webhook_error
        return info

    # -- delivery -------------------------------------------------------------------------
    async def deliver_webhook(self, url: str | None, update: dict[str, Any],
                              secret_token: str | None = None) -> int:
        """POST ``update`` as Telegram does and return the bot's HTTP status.

        ``url`` defaults to the one set with setWebhook; no secret header is sent when
        ``secret_token`` is None. A method call in the bot's reply is executed, as Telegram does.
        """
        target = url or self.webhook.get("url")
        if not target:
            raise AssertionError("no webhook URL: pass one or let the bot call setWebhook")
        self.register_update(update)
        headers = {SECRET_HEADER: secret_token} if secret_token is not None else {}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        async with self._session.post(target, json=update, headers=headers) as response:
            status = response.status
            if 200 <= status < 300:
                await self._run_reply(response)
            else:
                self.webhook_error = (int(time.time()), f"Wrong response from the webhook: "
                                                        f"{status} {response.reason}")
        self.webhook_deliveries.append((update["update_id"], status))
        self._changed()
        return status

    async def _run_reply(self, response: aiohttp.ClientResponse) -> None:
        values: dict[str, Any] = {}
        files: dict[str, Upload] = {}
        if response.content_type == "application/json":
            body = await response.json()
            values = body if isinstance(body, dict) else {}
        elif response.content_type.startswith("multipart/"):
            reader = aiohttp.MultipartReader(response.headers, response.content)
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename:
                    files[part.name] = Upload(part.name, part.filename,
                                              part.headers.get("Content-Type"),
                                              bytes(await part.read()))
                else:
                    values[part.name] = await part.text()
        method = values.pop("method", None)
        if method:
            try:
                params = {k: decode_field(k, v) for k, v in values.items()}
            except ApiError:
                return  # Telegram drops a malformed reply silently
            await self.call(str(method), params, files)

    def start_flush(self) -> None:
        """Deliver queued updates to the registered webhook in the background, retrying."""
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        attempts = 0
        while self.webhook and attempts < self.webhook_attempts:
            batch = self.take_updates(1)
            if not batch:
                return
            try:
                status = await self.deliver_webhook(self.webhook["url"], batch[0],
                                                    self.webhook.get("secret_token"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = 0
                self.webhook_error = (int(time.time()), f"Connection failed: {exc}")
            if 200 <= status < 300:
                attempts = 0
                self._queue[:] = [q for q in self._queue if q.update is not batch[0]]
                self._changed()
            else:
                attempts += 1
                await asyncio.sleep(self.webhook_retry_delay)
