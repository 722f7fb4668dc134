"""Who and what the fake Bot API knows: users, chats, members, files and the bot's messages."""

from __future__ import annotations

import itertools
import re
from typing import Any

from tests.fakes.telegram_model import (
    ApiError,
    Params,
    SentMessage,
    StoredFile,
    api_method,
    bad_request,
)

GROUP_ANONYMOUS_BOT = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                       "username": "GroupAnonymousBot"}
_ADMIN_RIGHTS = dict.fromkeys((
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
    "can_delete_stories", "can_pin_messages", "can_send_welcome_messages"), True)
_RESTRICTIONS = dict.fromkeys((
    "can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos",
    "can_send_videos", "can_send_video_notes", "can_send_voice_notes", "can_send_polls",
    "can_send_other_messages", "can_add_web_page_previews", "can_react_to_messages",
    "can_edit_tag", "can_change_info", "can_invite_users", "can_pin_messages",
    "can_manage_topics"), False)
_SCOPES = frozenset({"default", "all_private_chats", "all_group_chats",
                     "all_chat_administrators", "chat", "chat_administrators", "chat_member"})
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
ScopeKey = tuple[str, int | None, int | None, str]


class ChatState:
    """State plus the methods that only read or remove it."""

    def __init__(self, token: str, username: str, first_name: str, strict_chats: bool) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user = {"id": self.bot_id, "is_bot": True, "first_name": first_name,
                         "username": username}
        self.strict_chats = strict_chats
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.members: dict[tuple[int, int], str] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        self.blocked: set[int] = set()
        self.open_queries: set[str] = set()
        self.my_commands: dict[ScopeKey, list[dict[str, str]]] = {}
        self._messages: dict[int, list[SentMessage]] = {}
        self._by_id: dict[tuple[int, int], SentMessage] = {}
        self._incoming: dict[tuple[int, int], dict[str, Any]] = {}
        self._incoming_deleted: set[tuple[int, int]] = set()
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._file_ids = itertools.count(1)

    # -- set-up, for tests ---------------------------------------------------------------
    def add_user(self, user_id: int, first_name: str | None = None, username: str | None = None,
                 *, language_code: str | None = "en") -> dict[str, Any]:
        """Register (or return) a user; the dict is what updates carry as ``from``."""
        if user_id not in self.users:
            user: dict[str, Any] = {"id": user_id, "is_bot": False,
                                    "first_name": first_name or f"User{user_id}"}
            if username:
                user["username"] = username
            if language_code:
                user["language_code"] = language_code
            self.users[user_id] = user
        return self.users[user_id]

    def add_chat(self, chat_id: int, type: str | None = None, title: str | None = None,
                 *, username: str | None = None) -> dict[str, Any]:
        """Register (or return) a chat: private for positive ids, else (super)group."""
        if chat_id not in self.chats:
            kind = type or ("private" if chat_id > 0 else
                            "supergroup" if str(chat_id).startswith("-100") else "group")
            chat: dict[str, Any] = {"id": chat_id, "type": kind}
            if kind == "private":
                chat["first_name"] = self.add_user(chat_id)["first_name"]
            else:
                chat["title"] = title or f"Group {chat_id}"
            if username:
                chat["username"] = username
            self.chats[chat_id] = chat
        return self.chats[chat_id]

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """Set what getChatMember answers: creator/administrator/member/restricted/left/kicked."""
        if status not in MEMBER_STATUSES:
            raise ValueError(f"unknown member status {status!r}")
        self.add_chat(chat_id)
        self.members[(chat_id, user_id)] = status

    def delete_as_user(self, chat_id: int, message_id: int) -> None:
        """A user deletes a message (the bot's or their own) in their app; no API call."""
        msg = self._by_id.get((chat_id, message_id))
        if msg is not None:
            msg.deleted = True
        else:
            self._incoming_deleted.add((chat_id, message_id))

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to this chat answer 403."""
        self.blocked.add(chat_id)

    def add_file(self, file_id: str | None, data: bytes, file_size: int | None = None, *,
                 kind: str = "photos", extension: str = "jpg") -> StoredFile:
        """Make bytes downloadable; ``file_size`` may claim more than ``data`` holds."""
        n = next(self._file_ids)
        file_id = file_id or f"{kind[:-1]}-{n}"
        stored = StoredFile(file_id, f"u-{file_id}", data,
                            len(data) if file_size is None else file_size,
                            f"{kind}/file_{n}.{extension}")
        self.files[file_id] = stored
        self.files_by_path[stored.file_path] = stored
        return stored

    # -- model queries -------------------------------------------------------------------
    def next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def store_message(self, msg: SentMessage) -> None:
        self._messages.setdefault(msg.chat_id, []).append(msg)
        self._by_id[(msg.chat_id, msg.message_id)] = msg

    def remember_incoming(self, message: dict[str, Any]) -> None:
        """Record a user's message so replies to it, edits and deletes behave."""
        chat = message["chat"]
        self.chats.setdefault(chat["id"], chat)
        if "from" in message:
            self.users.setdefault(message["from"]["id"], message["from"])
        self._incoming[(chat["id"], message["message_id"])] = message

    def message_exists(self, chat_id: int, message_id: int) -> bool:
        key = (chat_id, message_id)
        msg = self._by_id.get(key)
        if msg is not None:
            return not msg.deleted
        return key in self._incoming and key not in self._incoming_deleted

    def target_chat(self, value: Any, *, sending: bool = True) -> int:
        """The chat a request names, refused the way Telegram refuses it."""
        if value is None:
            raise bad_request("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            found = [c for c in self.chats.values() if c.get("username") == value[1:]]
            if not found:
                raise bad_request("chat not found")
            return int(found[0]["id"])
        try:
            chat_id = int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request("chat not found") from exc
        if chat_id not in self.chats:
            if self.strict_chats:
                raise bad_request("chat not found")
            self.add_chat(chat_id)
        if sending and chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat_id

    def chat_json(self, chat_id: int) -> dict[str, Any]:
        return self.chats.get(chat_id) or self.add_chat(chat_id)

    def message_json(self, msg: SentMessage, *, nested: bool = True) -> dict[str, Any]:
        """The Bot API Message object for one of the bot's messages."""
        body = {**msg.api(), "from": self.bot_user, "chat": self.chat_json(msg.chat_id)}
        if nested and msg.reply_to_message_id:
            replied = self.any_message_json(msg.chat_id, msg.reply_to_message_id)
            if replied:
                body["reply_to_message"] = replied
        return body

    def any_message_json(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A user's or the bot's message, without its own reply (Telegram nests one level)."""
        if (chat_id, message_id) in self._incoming:
            incoming = dict(self._incoming[(chat_id, message_id)])
            incoming.pop("reply_to_message", None)
            return incoming
        msg = self._by_id.get((chat_id, message_id))
        return self.message_json(msg, nested=False) if msg else None

    def member_status(self, chat_id: int, user_id: int) -> str:
        return self.members.get((chat_id, user_id), "member")

    def member_json(self, chat_id: int, user_id: int) -> dict[str, Any]:
        status = self.member_status(chat_id, user_id)
        user = self.bot_user if user_id == self.bot_id else self.add_user(user_id)
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(can_be_edited=False, is_anonymous=False, can_promote_members=False,
                          **_ADMIN_RIGHTS)
        elif status == "restricted":
            member.update(is_member=True, until_date=0, **_RESTRICTIONS)
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _known_chat(self, p: Params) -> int:
        return self.target_chat(p.get("chat_id"), sending=False)

    # -- chat information ----------------------------------------------------------------
    @api_method("getChat")
    async def get_chat(self, p: Params) -> Any:
        chat_id = self._known_chat(p)
        return {**self.chat_json(chat_id), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": dict.fromkeys((
                    "unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                    "gifts_from_channels"), False)}

    @api_method("getChatMember")
    async def get_chat_member(self, p: Params) -> Any:
        chat_id = self._known_chat(p)
        return self.member_json(chat_id, p.require_int("user_id", "user_id is empty"))

    @api_method("getChatAdministrators")
    async def get_chat_administrators(self, p: Params) -> Any:
        chat_id = self._known_chat(p)
        if self.chat_json(chat_id)["type"] == "private":
            raise bad_request("there are no administrators in the private chat")
        return [self.member_json(c, u) for (c, u), status in self.members.items()
                if c == chat_id and status in ("creator", "administrator")]

    # -- deleting ------------------------------------------------------------------------
    def _delete(self, chat_id: int, message_id: int) -> None:
        key = (chat_id, message_id)
        msg = self._by_id.get(key)
        if msg is not None and not msg.deleted:
            msg.deleted = True
            return
        if key in self._incoming and key not in self._incoming_deleted:
            chat_type = self.chat_json(chat_id)["type"]
            if chat_type != "private" and self.member_status(chat_id, self.bot_id) not in (
                    "creator", "administrator"):
                raise bad_request("message can't be deleted")
            self._incoming_deleted.add(key)
            return
        raise bad_request("message to delete not found")

    @api_method("deleteMessage")
    async def delete_message(self, p: Params) -> Any:
        chat_id = self._known_chat(p)
        self._delete(chat_id, p.require_int("message_id", "message identifier is not specified"))
        return True

    @api_method("deleteMessages")
    async def delete_messages(self, p: Params) -> Any:
        chat_id = self._known_chat(p)
        for message_id in p.get("message_ids") or []:
            if self.message_exists(chat_id, int(message_id)):
                self._delete(chat_id, int(message_id))
        return True

    # -- command menus -------------------------------------------------------------------
    def _scope_key(self, p: Params) -> ScopeKey:
        scope = p.get("scope") or {"type": "default"}
        kind = scope.get("type")
        if kind not in _SCOPES:
            raise bad_request("wrong bot command scope type specified")
        chat_id = scope.get("chat_id")
        if kind.startswith("chat") and chat_id is None:
            raise bad_request("chat_id is empty")
        user_id = scope.get("user_id")
        return (kind, None if chat_id is None else int(chat_id),
                None if user_id is None else int(user_id), p.get("language_code", ""))

    @api_method("setMyCommands")
    async def set_my_commands(self, p: Params) -> Any:
        commands = p.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("wrong number of commands specified")
        for c in commands:
            if not _COMMAND.fullmatch(str(c.get("command", "")).removeprefix("/")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.my_commands[self._scope_key(p)] = [
            {"command": str(c["command"]).removeprefix("/"), "description": c["description"]}
            for c in commands]
        return True

    @api_method("getMyCommands")
    async def get_my_commands(self, p: Params) -> Any:
        return self.my_commands.get(self._scope_key(p), [])

    @api_method("deleteMyCommands")
    async def delete_my_commands(self, p: Params) -> Any:
        self.my_commands.pop(self._scope_key(p), None)
        return True

    def commands(self, scope: str = "default", chat_id: int | None = None,
                 user_id: int | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The command menu set for one scope (empty list if none)."""
        return self.my_commands.get((scope, chat_id, user_id, language_code), [])
