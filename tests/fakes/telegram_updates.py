"""Builders of realistic Update dicts; they register chats, users and file bytes with the fake.

``fake.build.photo(...)`` returns the Update (not yet queued): pass it to ``fake.push_update``,
``fake.deliver_webhook`` or aiogram's ``dp.feed_update``. Ids grow as Telegram's do: update_id
per bot, message_id per chat (shared with the bot's own messages).
"""

from __future__ import annotations

import io
import mimetypes
import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from tests.fakes.server import jpeg_bytes
from tests.fakes.telegram_chats import GROUP_ANONYMOUS_BOT
from tests.fakes.telegram_model import SentMessage
from tests.fakes.telegram_text import utf16_len

if TYPE_CHECKING:
    from tests.fakes.telegram_api import FakeTelegram

USER_ID = 555
GROUP_ID = -1001234567890
_THUMB_SIDES = (90, 320, 800)  # Telegram's s/m/x sizes; the original is the largest size here

Replyable = dict[str, Any] | SentMessage


class UpdateBuilder:
    """Makes updates as Telegram would send them to this fake's bot."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self._group_ids = 0

    # -- pieces ---------------------------------------------------------------------------
    def _base(self, chat_id: int | None, user_id: int, anonymous_admin: bool,
              reply_to: Replyable | None, media_group_id: str | None) -> dict[str, Any]:
        user = self.fake.add_user(user_id)
        chat = self.fake.add_chat(user_id if chat_id is None else chat_id)
        message: dict[str, Any] = {
            "message_id": self.fake.next_message_id(chat["id"]), "date": int(time.time()),
            "chat": chat, "from": user}
        if anonymous_admin:
            message["from"] = GROUP_ANONYMOUS_BOT
            message["sender_chat"] = chat
        if reply_to is not None:
            message["reply_to_message"] = self._as_message(reply_to)
        if media_group_id:
            message["media_group_id"] = media_group_id
        return message

    def _as_message(self, item: Replyable) -> dict[str, Any]:
        if isinstance(item, SentMessage):
            return self.fake.message_json(item, nested=False)
        message = item.get("message", item)
        return {k: v for k, v in message.items() if k != "reply_to_message"}

    def _update(self, message: dict[str, Any]) -> dict[str, Any]:
        self.fake.remember_incoming(message)
        return {"update_id": self.fake.next_update_id(), "message": message}

    @staticmethod
    def _text_fields(text: str, key: str) -> dict[str, Any]:
        fields: dict[str, Any] = {key: text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            entities_key = "entities" if key == "text" else "caption_entities"
            fields[entities_key] = [{"type": "bot_command", "offset": 0,
                                     "length": utf16_len(command)}]
        return fields

    def photo_sizes(self, image: bytes, *, file_size: int | None = None,
                    thumbs: bool = True) -> list[dict[str, Any]]:
        """PhotoSize list, smallest first; the largest is ``image`` itself (size may be claimed)."""
        with Image.open(io.BytesIO(image)) as img:
            width, height = img.size
            wanted = [s for s in _THUMB_SIDES if s < max(width, height)] if thumbs else []
            sizes: list[dict[str, Any]] = []
            if wanted:
                img.draft("RGB", (wanted[-1], wanted[-1]))
                thumb = img.convert("RGB")
                for side in reversed(wanted):
                    thumb.thumbnail((side, side))
                    buf = io.BytesIO()
                    thumb.save(buf, "JPEG", quality=80)
                    sizes.insert(0, self._size(buf.getvalue(), *thumb.size, None))
        sizes.append(self._size(image, width, height, file_size))
        return sizes

    def _size(self, data: bytes, width: int, height: int, file_size: int | None) -> dict[str, Any]:
        stored = self.fake.add_file(None, data, file_size, kind="photos", extension="jpg")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "width": width, "height": height, "file_size": stored.file_size}

    # -- messages -------------------------------------------------------------------------
    def text(self, text: str, *, chat_id: int | None = None, user_id: int = USER_ID,
             reply_to: Replyable | None = None, anonymous_admin: bool = False) -> dict[str, Any]:
        """A text message (a leading /command gets its bot_command entity)."""
        message = self._base(chat_id, user_id, anonymous_admin, reply_to, None)
        message.update(self._text_fields(text, "text"))
        return self._update(message)

    def reply(self, to: Replyable, text: str, *, user_id: int = USER_ID,
              anonymous_admin: bool = False) -> dict[str, Any]:
        """A text message replying to ``to`` (an update, a message dict or a bot message)."""
        replied = self._as_message(to)
        return self.text(text, chat_id=replied["chat"]["id"], user_id=user_id, reply_to=to,
                         anonymous_admin=anonymous_admin)

    def photo(self, image: bytes | None = None, *, caption: str | None = None,
              chat_id: int | None = None, user_id: int = USER_ID,
              file_size: int | None = None, thumbs: bool = True,
              reply_to: Replyable | None = None, media_group_id: str | None = None,
              anonymous_admin: bool = False) -> dict[str, Any]:
        """A photo message; ``file_size`` makes the largest size claim more bytes."""
        message = self._base(chat_id, user_id, anonymous_admin, reply_to, media_group_id)
        message["photo"] = self.photo_sizes(image or jpeg_bytes((640, 480)),
                                            file_size=file_size, thumbs=thumbs)
        if caption:
            message.update(self._text_fields(caption, "caption"))
        return self._update(message)

    def document(self, data: bytes, *, file_name: str = "image.png",
                 mime_type: str | None = None, caption: str | None = None,
                 chat_id: int | None = None, user_id: int = USER_ID,
                 file_size: int | None = None, reply_to: Replyable | None = None,
                 anonymous_admin: bool = False) -> dict[str, Any]:
        """A file message; the MIME type comes from the name unless given."""
        message = self._base(chat_id, user_id, anonymous_admin, reply_to, None)
        extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        stored = self.fake.add_file(None, data, file_size, kind="documents",
                                    extension=extension)
        message["document"] = {
            "file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
            "file_name": file_name, "file_size": stored.file_size,
            "mime_type": mime_type or mimetypes.guess_type(file_name)[0]
            or "application/octet-stream"}
        if caption:
            message.update(self._text_fields(caption, "caption"))
        return self._update(message)

    def album(self, images: list[bytes], *, caption: str | None = None, caption_index: int = 0,
              chat_id: int | None = None, user_id: int = USER_ID) -> list[dict[str, Any]]:
        """Several photo updates sharing a media_group_id; only one carries the caption."""
        self._group_ids += 1
        group = f"{int(time.time())}{self._group_ids:04d}"
        return [self.photo(image, caption=caption if i == caption_index else None,
                           chat_id=chat_id, user_id=user_id, media_group_id=group)
                for i, image in enumerate(images)]

    def callback(self, message: SentMessage, data: str, *,
                 user_id: int = USER_ID) -> dict[str, Any]:
        """A press of an inline button carrying ``data`` under one of the bot's messages."""
        query_id = self.fake.next_query_id()
        self.fake.open_queries.add(query_id)
        return {"update_id": self.fake.next_update_id(), "callback_query": {
            "id": query_id, "from": self.fake.add_user(user_id),
            "message": self.fake.message_json(message), "data": data,
            "chat_instance": str(abs(message.chat_id) * 7919)}}

    def press(self, message: SentMessage, button_text: str, *,
              user_id: int = USER_ID) -> dict[str, Any]:
        """A press of the button whose text contains ``button_text``."""
        return self.callback(message, message.button(button_text)["callback_data"],
                             user_id=user_id)
