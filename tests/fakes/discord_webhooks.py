"""Interaction callbacks and interaction webhooks (follow-ups, @original) of the fake Discord."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord_limits import (
    EMPTY_MESSAGE,
    TOO_LARGE,
    choices_problems,
    form_error,
    message_problems,
    modal_problems,
)
from tests.fakes.discord_model import (
    EPHEMERAL,
    LOADING,
    FakeMessage,
    InteractionRecord,
    Upload,
    apply_payload,
    oversized,
)
from tests.fakes.discord_world import JSON
from tests.fakes.server import json_response

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

UNKNOWN_INTERACTION = {"message": "Unknown interaction", "code": 10062}
ALREADY_ACKNOWLEDGED = {"message": "Interaction has already been acknowledged.", "code": 40060}
UNKNOWN_WEBHOOK = {"message": "Unknown Webhook", "code": 10015}
INVALID_WEBHOOK_TOKEN = {"message": "Invalid Webhook Token", "code": 50027}
UNKNOWN_MESSAGE = {"message": "Unknown Message", "code": 10008}
# Callback types each interaction type may answer with (ping, command, component, autocomplete,
# modal submit).
ALLOWED_CALLBACKS = {1: {1}, 2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}


def would_be_empty(msg: FakeMessage | None, data: JSON, uploads: list[Upload]) -> bool:
    """Whether applying ``data`` leaves a message with nothing to show (Discord's 50006)."""
    content = data.get("content", msg.content if msg else "")
    embeds = data.get("embeds", msg.embeds if msg else [])
    components = data.get("components", msg.components if msg else [])
    meta = data.get("attachments")
    files = bool(uploads) or (bool(meta) if meta is not None else bool(msg and msg.attachments))
    return not (content or embeds or components or files)


class InteractionRoutes:
    """Handlers for ``/interactions/{id}/{token}/callback`` and ``/webhooks/{app}/{token}...``."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def add_to(self, app: web.Application, prefix: str) -> None:
        app.router.add_post(prefix + "/interactions/{iid}/{token}/callback", self.callback)
        app.router.add_post(prefix + "/webhooks/{app}/{token}", self.followup)
        for method in ("GET", "PATCH", "DELETE"):
            app.router.add_route(method, prefix + "/webhooks/{app}/{token}/messages/{mid}",
                                 self.message)

    async def callback(self, request: web.Request) -> web.Response:
        fake = self.fake
        payload, uploads = await fake.read_body(request)
        rec = fake.interaction_by_id(int(request.match_info["iid"]))
        if rec is None or rec.token != request.match_info["token"] or fake.callback_expired(rec):
            return json_response(UNKNOWN_INTERACTION, 404)
        if rec.response_type is not None:
            return json_response(ALREADY_ACKNOWLEDGED, 400)
        kind, data = payload.get("type"), payload.get("data") or {}
        if kind not in ALLOWED_CALLBACKS.get(rec.type, set()) or (
                kind in (6, 7) and rec.message is None):
            return json_response(form_error([(("type",), "INTERACTION_RESPONSE_TYPE_INVALID",
                                              "Invalid interaction response type")]), 400)
        checks = {4: message_problems, 7: message_problems, 8: choices_problems, 9: modal_problems}
        error = form_error(checks[kind](data) if kind in checks else [])
        if error is not None:
            return json_response(error, 400)
        if oversized(uploads, rec.attachment_size_limit):
            return json_response(TOO_LARGE, 413)
        msg: FakeMessage | None = None
        if kind in (4, 5):
            if kind == 4 and would_be_empty(None, data, uploads):
                return json_response(EMPTY_MESSAGE, 400)
            msg = fake.new_message(rec.channel_id, rec.guild_id, interaction=rec)
            if rec.type == 2:
                msg.type = 20 if rec.payload["data"].get("type", 1) == 1 else 23
            if kind == 4:
                apply_payload(msg, data, uploads, fake.make_attachment, editing=False)
            else:
                msg.flags = LOADING | (data.get("flags") or 0) & EPHEMERAL
            rec.original_id = msg.id
            await fake.emit("MESSAGE_CREATE", msg)
        elif kind in (6, 7):
            msg = fake.adopt_message(rec.message or {})
            if msg.deleted:
                return json_response(UNKNOWN_MESSAGE, 404)
            rec.original_id = msg.id
            if kind == 7:
                apply_payload(msg, data, uploads, fake.make_attachment, editing=True)
                await fake.emit("MESSAGE_UPDATE", msg)
            else:
                msg = None
        elif kind == 8:
            rec.choices = list(data.get("choices") or [])
        elif kind == 9:
            rec.modal = data
        rec.response_type = kind
        rec.callbacks.append(payload)
        return json_response(self._callback_reply(rec, kind, msg))

    @staticmethod
    def _callback_reply(rec: InteractionRecord, kind: int, msg: FakeMessage | None) -> JSON:
        # discord.py always asks ?with_response=1 and reads "interaction" from the reply.
        info: JSON = {"id": str(rec.id), "type": rec.type,
                      "response_message_loading": kind == 5,
                      "response_message_ephemeral": bool(msg and msg.ephemeral)}
        resource: JSON = {"type": kind}
        if msg is not None:
            info["response_message_id"] = str(msg.id)
            resource["message"] = msg.to_api()
        return {"interaction": info, "resource": resource}

    def _webhook_record(self, request: web.Request) -> InteractionRecord | web.Response:
        fake = self.fake
        if request.match_info["app"] != str(fake.app_id):
            return json_response(UNKNOWN_WEBHOOK, 404)
        rec = fake.interactions.get(request.match_info["token"])
        if rec is None or fake.token_expired(rec):
            return json_response(INVALID_WEBHOOK_TOKEN, 401)
        if rec.response_type is None:
            return json_response(UNKNOWN_WEBHOOK, 404)
        return rec

    async def followup(self, request: web.Request) -> web.Response:
        fake = self.fake
        data, uploads = await fake.read_body(request)
        rec = self._webhook_record(request)
        if isinstance(rec, web.Response):
            return rec
        data = data or {}
        error = form_error(message_problems(data))
        if error is not None:
            return json_response(error, 400)
        if oversized(uploads, rec.attachment_size_limit):
            return json_response(TOO_LARGE, 413)
        if would_be_empty(None, data, uploads):
            return json_response(EMPTY_MESSAGE, 400)
        original = fake.messages.get(rec.original_id or 0)
        if (rec.response_type == 5 and not rec.followup_ids and original is not None
                and original.loading and not original.deleted):
            # The first follow-up to a deferred reply replaces the "is thinking…" placeholder,
            # keeping the deferral's ephemerality.
            msg = original
            apply_payload(msg, {k: v for k, v in data.items() if k != "flags"}, uploads,
                          fake.make_attachment, editing=True)
            msg.flags &= ~LOADING
            await fake.emit("MESSAGE_UPDATE", msg)
        else:
            msg = fake.new_message(rec.channel_id, rec.guild_id, interaction=rec)
            apply_payload(msg, data, uploads, fake.make_attachment, editing=False)
            await fake.emit("MESSAGE_CREATE", msg)
        rec.followup_ids.append(msg.id)
        return json_response(msg.to_api())

    async def message(self, request: web.Request) -> web.Response:
        fake = self.fake
        data, uploads = await fake.read_body(request)
        rec = self._webhook_record(request)
        if isinstance(rec, web.Response):
            return rec
        mid = request.match_info["mid"]
        target = rec.original_id if mid == "@original" else int(mid) if mid.isdigit() else None
        msg = fake.messages.get(target or 0)
        if msg is None or msg.deleted or (
                msg.interaction_token != rec.token and msg.id != rec.original_id):
            return json_response(UNKNOWN_MESSAGE, 404)
        if request.method == "GET":
            return json_response(msg.to_api())
        if request.method == "DELETE":
            msg.deleted = True
            await fake.emit("MESSAGE_DELETE", msg)
            return web.Response(status=204)
        data = data or {}
        error = form_error(message_problems(data))
        if error is not None:
            return json_response(error, 400)
        if oversized(uploads, rec.attachment_size_limit):
            return json_response(TOO_LARGE, 413)
        if would_be_empty(msg, data, uploads):
            return json_response(EMPTY_MESSAGE, 400)
        apply_payload(msg, data, uploads, fake.make_attachment, editing=True)
        msg.flags &= ~LOADING
        await fake.emit("MESSAGE_UPDATE", msg)
        return json_response(msg.to_api())
