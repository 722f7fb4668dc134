"""The Bot API methods the fake serves, with the real limits and error texts."""

from __future__ import annotations

import io
import itertools
import mimetypes
import time
from typing import Any

from PIL import Image

from tests.fakes.telegram_chats import ChatState
from tests.fakes.telegram_model import (
    MB,
    ApiError,
    Params,
    SentMessage,
    StoredFile,
    Upload,
    api_method,
    bad_request,
)
from tests.fakes.telegram_text import CAPTION_LIMIT, TEXT_LIMIT, EntityError, format_text

PHOTO_LIMIT = 10 * MB
DOCUMENT_LIMIT = 50 * MB
DOWNLOAD_LIMIT = 20 * MB
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
})
_ALBUM_IDS = itertools.count(1)
NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")


class BotApiMethods(ChatState):
    """Method handlers; the server (``FakeTelegram``) routes requests here."""

    photo_sends: list[SentMessage]
    chat_actions: list[tuple[int, str]]
    callback_answers: list[dict[str, Any]]

    # -- helpers shared by the send/edit methods ----------------------------------------
    def _formatted(self, p: Params, key: str, entities_key: str, limit: int,
                   ) -> tuple[str | None, list[dict[str, Any]]]:
        raw = p.get(key)
        if raw is None:
            return None, []
        try:
            text, entities = format_text(str(raw), p.get("parse_mode"), p.get(entities_key))
        except EntityError as exc:
            raise ApiError(400, str(exc)) from exc
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        if len(text) > limit:
            raise bad_request("message caption is too long" if limit == CAPTION_LIMIT
                              else "message is too long")
        return text, entities

    def _markup(self, p: Params) -> dict[str, Any] | None:
        markup = p.get("reply_markup")
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return markup if isinstance(markup, dict) else None  # kept, never echoed back
        for row in markup["inline_keyboard"]:
            for button in row:
                if not button.get("text"):
                    raise bad_request("text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
                if len(button) < 2:
                    raise bad_request("can't parse inline keyboard button: Text buttons are "
                                      "unallowed in the inline keyboard")
        return markup

    def _reply_to(self, p: Params, chat_id: int) -> int | None:
        reply = p.get("reply_parameters") or {}
        message_id = reply.get("message_id") or p.integer("reply_to_message_id")
        if message_id is None:
            return None
        if self.message_exists(chat_id, int(message_id)):
            return int(message_id)
        if reply.get("allow_sending_without_reply") or p.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")

    def _file_bytes(self, value: Upload | str | None, what: str) -> tuple[bytes, str | None]:
        if isinstance(value, Upload):
            return value.data, value.filename
        if value is None:
            raise bad_request(f"there is no {what} in the request")
        stored = self.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return stored.data, stored.file_path.rsplit("/", 1)[-1]

    def _new_message(self, chat_id: int, p: Params, kind: str, **fields: Any) -> SentMessage:
        limit = TEXT_LIMIT if kind == "text" else CAPTION_LIMIT
        key, entities_key = ("text", "entities") if kind == "text" else (
            "caption", "caption_entities")
        text, entities = self._formatted(p, key, entities_key, limit)
        if kind == "text" and not text:
            raise bad_request("message text is empty")
        reply_to, markup = self._reply_to(p, chat_id), self._markup(p)
        msg = SentMessage(chat_id, self.next_message_id(chat_id), kind, text, entities,
                          raw_text=p.get(key), parse_mode=p.get("parse_mode"),
                          reply_to_message_id=reply_to, reply_markup=markup, **fields)
        self.store_message(msg)
        return msg

    def _photo_fields(self, data: bytes) -> dict[str, Any]:
        if len(data) > PHOTO_LIMIT:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")
        try:
            width, height = Image.open(io.BytesIO(data)).size
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise bad_request("IMAGE_PROCESS_FAILED") from exc
        if width + height > 10000 or max(width, height) > 20 * min(width, height):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        stored = self.add_file(None, data, kind="photos", extension="jpg")
        return {"data": data, "width": width, "height": height, "file_id": stored.file_id,
                "mime_type": "image/jpeg"}

    def _document_fields(self, data: bytes, filename: str | None,
                         content_type: str | None) -> dict[str, Any]:
        if len(data) > DOCUMENT_LIMIT:
            raise ApiError(413, "Request Entity Too Large")
        if not data:
            raise bad_request("file must be non-empty")
        name = filename or "document"
        mime = mimetypes.guess_type(name)[0] or (
            content_type if content_type and content_type != "application/octet-stream"
            else "application/octet-stream")
        stored = self.add_file(None, data, kind="documents",
                               extension=name.rsplit(".", 1)[-1] if "." in name else "bin")
        return {"data": data, "filename": name, "mime_type": mime, "file_id": stored.file_id}

    # -- identity and updates ------------------------------------------------------------
    @api_method("getMe")
    async def get_me(self, p: Params) -> Any:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    @api_method("logOut")
    async def log_out(self, p: Params) -> Any:
        return True

    @api_method("close")
    async def close_bot(self, p: Params) -> Any:
        return True

    # Profile settings a bot may make at start; accepted and only recorded in ``calls``.
    @api_method("setMyDescription")
    async def set_my_description(self, p: Params) -> Any:
        return True

    @api_method("setMyShortDescription")
    async def set_my_short_description(self, p: Params) -> Any:
        return True

    @api_method("setMyName")
    async def set_my_name(self, p: Params) -> Any:
        return True

    @api_method("setChatMenuButton")
    async def set_chat_menu_button(self, p: Params) -> Any:
        return True

    # -- sending ------------------------------------------------------------------------
    @api_method("sendMessage")
    async def send_message(self, p: Params) -> Any:
        chat_id = self.target_chat(p.get("chat_id"))
        return self.message_json(self._new_message(chat_id, p, "text"))

    @api_method("sendPhoto")
    async def send_photo(self, p: Params) -> Any:
        chat_id = self.target_chat(p.get("chat_id"))
        data, filename = self._file_bytes(p.file("photo"), "photo")
        msg = self._new_message(chat_id, p, "photo", filename=filename, **self._photo_fields(data))
        self.photo_sends.append(msg)
        return self.message_json(msg)

    @api_method("sendDocument")
    async def send_document(self, p: Params) -> Any:
        chat_id = self.target_chat(p.get("chat_id"))
        value = p.file("document")
        data, filename = self._file_bytes(value, "document")
        content_type = value.content_type if isinstance(value, Upload) else None
        msg = self._new_message(chat_id, p, "document",
                                **self._document_fields(data, filename, content_type))
        return self.message_json(msg)

    @api_method("sendMediaGroup")
    async def send_media_group(self, p: Params) -> Any:
        chat_id = self.target_chat(p.get("chat_id"))
        media = p.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("wrong number of media in the album")
        group_id = f"{next(_ALBUM_IDS)}{int(time.time())}"
        sent = []
        for item in media:
            value = Params({"media": item.get("media")}, p.files).file("media")
            data, filename = self._file_bytes(value, "media")
            item_params = Params({**item, "reply_parameters": p.get("reply_parameters"),
                                  "reply_to_message_id": p.get("reply_to_message_id")}, {})
            if item.get("type") == "photo":
                fields = self._photo_fields(data)
            else:
                fields = self._document_fields(data, filename, None)
            msg = self._new_message(chat_id, item_params, "photo" if item.get("type") == "photo"
                                    else "document", media_group_id=group_id, **fields)
            if msg.kind == "photo":
                self.photo_sends.append(msg)
            sent.append(self.message_json(msg))
        return sent

    @api_method("sendChatAction")
    async def send_chat_action(self, p: Params) -> Any:
        chat_id = self.target_chat(p.get("chat_id"))
        action = p.get("action")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.chat_actions.append((chat_id, action))
        return True

    # -- files --------------------------------------------------------------------------
    @api_method("getFile")
    async def get_file(self, p: Params) -> Any:
        stored: StoredFile | None = self.files.get(p.get("file_id", ""))
        if stored is None:
            raise bad_request("invalid file_id")
        # A self-hosted Bot API server may raise ``download_limit``.
        if stored.file_size > getattr(self, "download_limit", DOWNLOAD_LIMIT):
            raise bad_request("file is too big")
        return stored.api()

    # -- callbacks ----------------------------------------------------------------------
    @api_method("answerCallbackQuery")
    async def answer_callback_query(self, p: Params) -> Any:
        query_id = str(p.get("callback_query_id", ""))
        if query_id not in self.open_queries:
            raise bad_request("query is too old and response timeout expired or query ID is "
                              "invalid")
        self.open_queries.discard(query_id)
        self.callback_answers.append({
            "callback_query_id": query_id, "text": p.get("text"),
            "show_alert": bool(p.get("show_alert", False)), "url": p.get("url"),
            "cache_time": p.integer("cache_time", 0)})
        return True

    # -- editing ------------------------------------------------------------------------
    def _editable(self, p: Params) -> SentMessage:
        if p.get("inline_message_id"):
            raise bad_request("the fake does not serve inline messages")
        chat_id = self.target_chat(p.get("chat_id"), sending=False)
        message_id = p.require_int("message_id", "message identifier is not specified")
        msg = self._by_id.get((chat_id, message_id))
        if msg is None or msg.deleted:
            if self.message_exists(chat_id, message_id):
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return msg

    def _apply_edit(self, msg: SentMessage, **changes: Any) -> Any:
        compared = ("kind", "text", "entities", "data")
        if all(getattr(msg, k) == changes[k] for k in compared if k in changes) and (
                msg.same_markup(changes.get("reply_markup"))):
            raise bad_request(NOT_MODIFIED)
        msg.history.append(msg.snapshot())
        for key, value in changes.items():
            setattr(msg, key, value)
        msg.edit_date = int(time.time())
        return self.message_json(msg)

    @api_method("editMessageText")
    async def edit_message_text(self, p: Params) -> Any:
        msg = self._editable(p)
        if msg.kind != "text":
            raise bad_request("there is no text in the message to edit")
        text, entities = self._formatted(p, "text", "entities", TEXT_LIMIT)
        if not text:
            raise bad_request("message text is empty")
        return self._apply_edit(msg, text=text, entities=entities, raw_text=p.get("text"),
                                parse_mode=p.get("parse_mode"), reply_markup=self._markup(p))

    @api_method("editMessageCaption")
    async def edit_message_caption(self, p: Params) -> Any:
        msg = self._editable(p)
        if msg.kind == "text":
            raise bad_request("there is no caption in the message to edit")
        text, entities = self._formatted(p, "caption", "caption_entities", CAPTION_LIMIT)
        return self._apply_edit(msg, text=text, entities=entities, raw_text=p.get("caption"),
                                parse_mode=p.get("parse_mode"), reply_markup=self._markup(p))

    @api_method("editMessageReplyMarkup")
    async def edit_message_reply_markup(self, p: Params) -> Any:
        msg = self._editable(p)
        return self._apply_edit(msg, reply_markup=self._markup(p))

    @api_method("editMessageMedia")
    async def edit_message_media(self, p: Params) -> Any:
        msg = self._editable(p)
        if msg.kind == "text":
            raise bad_request("there is no media in the message to edit")
        media = p.get("media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "document"):
            raise bad_request("can't parse InputMedia JSON object")
        value = Params({"media": media.get("media")}, p.files).file("media")
        data, filename = self._file_bytes(value, "media")
        fields = (self._photo_fields(data) if media["type"] == "photo"
                  else self._document_fields(data, filename, None))
        text, entities = self._formatted(Params(media, {}), "caption", "caption_entities",
                                         CAPTION_LIMIT)
        fields.setdefault("filename", filename)
        result = self._apply_edit(msg, kind=media["type"], text=text, entities=entities,
                                  raw_text=media.get("caption"),
                                  parse_mode=media.get("parse_mode"),
                                  reply_markup=self._markup(p), **fields)
        if msg.kind == "photo":
            self.photo_sends.append(msg)
        return result
