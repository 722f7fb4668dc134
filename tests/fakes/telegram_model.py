"""What the fake Bot API keeps: uploads, stored files, recorded calls and the bot's messages."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

MB = 1024 * 1024


class ApiError(Exception):
    """A Bot API error reply: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = {k: v for k, v in parameters.items() if v is not None}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code,
                                "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(slots=True)
class Upload:
    """One multipart file part the bot sent."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class StoredFile:
    """A file the fake can serve through getFile and /file/bot<token>/<path>."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_size: int
    file_path: str

    def api(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                "file_size": self.file_size, "file_path": self.file_path}


@dataclass(slots=True)
class Call:
    """One Bot API request as the fake understood it (JSON fields already decoded)."""

    method: str
    params: dict[str, Any]
    files: dict[str, Upload]
    at: float
    status: int = 200
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent, as its chat shows it now (``history`` holds earlier versions)."""

    chat_id: int
    message_id: int
    kind: str  # "text" | "photo" | "document" | "invoice"
    text: str | None  # the text or caption the user sees, markup already parsed
    entities: list[dict[str, Any]] = field(default_factory=list)
    raw_text: str | None = None  # as the bot sent it
    parse_mode: str | None = None
    reply_to_message_id: int | None = None
    reply_markup: dict[str, Any] | None = None
    data: bytes | None = None
    filename: str | None = None
    mime_type: str | None = None
    file_id: str | None = None
    width: int | None = None
    height: int | None = None
    media_group_id: str | None = None
    date: int = field(default_factory=lambda: int(time.time()))
    edit_date: int | None = None
    deleted: bool = False
    sent_at: float = field(default_factory=time.perf_counter)
    history: list[dict[str, Any]] = field(default_factory=list)
    invoice: dict[str, Any] | None = None  # sendInvoice's fields, payload included

    @property
    def caption(self) -> str | None:
        return None if self.kind == "text" else self.text

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        """Rows of the inline keyboard (empty when there is none)."""
        rows: list[list[dict[str, Any]]] = (self.reply_markup or {}).get("inline_keyboard", [])
        return rows

    @property
    def button_texts(self) -> list[str]:
        return [b["text"] for row in self.buttons for b in row]

    def button(self, text: str) -> dict[str, Any]:
        """The first inline button whose text contains ``text``."""
        for row in self.buttons:
            for b in row:
                if text in b["text"]:
                    return b
        raise AssertionError(f"no button with {text!r} in {self.button_texts}")

    def snapshot(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "entities": self.entities,
                "parse_mode": self.parse_mode, "reply_markup": self.reply_markup,
                "filename": self.filename, "data": self.data, "at": time.perf_counter()}

    def same_markup(self, markup: dict[str, Any] | None) -> bool:
        return json.dumps(markup, sort_keys=True) == json.dumps(self.reply_markup, sort_keys=True)

    def photo_size(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "file_unique_id": f"u-{self.file_id}",
                "width": self.width, "height": self.height, "file_size": len(self.data or b"")}

    def api(self) -> dict[str, Any]:
        """The message body fields (without chat, sender and reply)."""
        body: dict[str, Any] = {"message_id": self.message_id, "date": self.date}
        if self.edit_date:
            body["edit_date"] = self.edit_date
        text_key, entities_key = ("text", "entities") if self.kind == "text" else (
            "caption", "caption_entities")
        if self.invoice is not None:
            body["invoice"] = {k: v for k, v in self.invoice.items() if k != "payload"}
        elif self.text:
            body[text_key] = self.text
        if self.entities:
            body[entities_key] = self.entities
        if self.kind == "photo":
            body["photo"] = [self.photo_size()]
        elif self.kind == "document":
            body["document"] = {"file_id": self.file_id, "file_unique_id": f"u-{self.file_id}",
                                "file_name": self.filename, "mime_type": self.mime_type,
                                "file_size": len(self.data or b"")}
        if self.media_group_id:
            body["media_group_id"] = self.media_group_id
        if self.reply_markup and self.reply_markup.get("inline_keyboard"):
            body["reply_markup"] = self.reply_markup
        return body


# Bot API fields whose value is an object or array, sent as JSON text in forms.
JSON_FIELDS = frozenset({
    "reply_markup", "reply_parameters", "commands", "scope", "caption_entities", "entities",
    "allowed_updates", "media", "link_preview_options", "message_ids", "menu_button",
    "prices", "suggested_tip_amounts",
})
INT_FIELDS = frozenset({
    "message_id", "reply_to_message_id", "offset", "limit", "timeout", "user_id", "cache_time",
    "max_connections", "message_thread_id", "from_chat_id",
})
BOOL_FIELDS = frozenset({
    "show_alert", "disable_notification", "protect_content", "drop_pending_updates",
    "has_spoiler", "disable_content_type_detection", "allow_sending_without_reply",
    "show_caption_above_media", "disable_web_page_preview", "is_anonymous", "ok",
    "need_name", "need_email", "need_phone_number", "need_shipping_address", "is_flexible",
})


def decode_field(name: str, value: Any) -> Any:
    """Turn a form string into the type the Bot API gives that field."""
    if not isinstance(value, str):
        return value
    try:
        if name in JSON_FIELDS:
            return json.loads(value)
        if name in INT_FIELDS or (name == "chat_id" and value.lstrip("-").isdigit()):
            return int(value)
    except ValueError as exc:
        if name == "reply_markup":
            raise bad_request("can't parse reply keyboard markup JSON object") from exc
        raise bad_request(f"can't parse {name}") from exc
    if name in BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


Handler = Callable[[Any, "Params"], Awaitable[Any]]
HANDLERS: dict[str, tuple[str, Handler]] = {}  # lower-case name -> (Bot API name, handler)


def api_method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name.lower()] = (name, fn)
        return fn
    return register


class Params:
    """A request's decoded fields and file parts."""

    def __init__(self, values: dict[str, Any], files: dict[str, Upload]) -> None:
        self.values = values
        self.files = files

    def get(self, name: str, default: Any = None) -> Any:
        value = self.values.get(name)
        return default if value is None or value == "" else value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name)
        if value is None:
            return default
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"invalid {name} specified") from exc

    def require_int(self, name: str, missing: str) -> int:
        value = self.integer(name)
        if value is None:
            raise bad_request(missing)
        return value

    def file(self, name: str) -> Upload | str | None:
        """A file part (directly or through ``attach://``), or a file_id / URL string."""
        if name in self.files:
            return self.files[name]
        value = self.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            return self.files.get(value.removeprefix("attach://"))
        return value if isinstance(value, str) else None
