"""What users of the fake Discord see: messages, attachments, and each interaction's replies."""

from __future__ import annotations

import io
import json
import mimetypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image, UnidentifiedImageError

from tests.fakes.discord_world import JSON, iso_now

EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_EMBEDS = 1 << 2
COMPONENTS_V2 = 1 << 15


@dataclass(frozen=True, slots=True)
class Upload:
    """One file part of a multipart request (``files[n]``)."""

    field: str
    filename: str
    data: bytes

    @property
    def index(self) -> int | None:
        inner = self.field.removeprefix("files[").removesuffix("]")
        return int(inner) if inner.isdigit() else None


async def read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """The JSON payload (``payload_json`` for multipart) and the uploaded files."""
    if request.content_type.startswith("multipart/"):
        payload: Any = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                payload = json.loads(await part.text())
            else:
                data = bytes(await part.read())
                uploads.append(Upload(part.name or "", part.filename or "", data))
        return payload, uploads
    raw = await request.read()
    return (json.loads(raw) if raw else None), []


def sniff(filename: str, data: bytes) -> tuple[str, int | None, int | None]:
    """Content type and image size the way Discord's media pipeline would report them."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return Image.MIME.get(img.format or "", "image/png"), img.width, img.height
    except (UnidentifiedImageError, OSError, ValueError):
        guess = mimetypes.guess_type(filename)[0]
        return guess or "application/octet-stream", None, None


@dataclass(slots=True)
class FakeAttachment:
    """An attachment with its bytes, served by the fake CDN at ``url``."""

    id: int
    filename: str
    data: bytes
    url: str
    content_type: str
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def to_api(self) -> JSON:
        out: JSON = {"id": str(self.id), "filename": self.filename, "size": self.size,
                     "url": self.url, "proxy_url": self.url, "content_type": self.content_type,
                     "description": self.description}
        if self.width is not None:
            out.update(width=self.width, height=self.height, placeholder="", placeholder_version=1)
        if self.ephemeral:
            out["ephemeral"] = True
        return out


def walk_components(components: list[JSON]) -> Iterator[JSON]:
    """Every component, depth first (action rows, containers, sections included)."""
    for comp in components:
        yield comp
        nested = list(comp.get("components") or [])
        nested += [c for c in (comp.get("component"), comp.get("accessory")) if c]
        yield from walk_components(nested)


@dataclass(slots=True)
class FakeMessage:
    """A message as the channel shows it, with edits applied and deletion flagged."""

    id: int
    channel_id: int
    guild_id: int | None
    author: JSON
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    interaction_token: str | None = None  # set when an interaction's webhook owns it
    extra: JSON = field(default_factory=dict)  # webhook_id, interaction_metadata, reference...
    deleted: bool = False
    edits: int = 0
    history: list[JSON] = field(default_factory=list)  # to_api() before each edit
    timestamp: str = field(default_factory=iso_now)
    edited_timestamp: str | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is still the "is thinking…" placeholder of a deferred reply."""
        return bool(self.flags & LOADING)

    @property
    def embed(self) -> JSON | None:
        return self.embeds[0] if self.embeds else None

    @property
    def buttons(self) -> list[JSON]:
        return [c for c in walk_components(self.components) if c.get("type") == 2]

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in walk_components(self.components) if c.get("custom_id")]

    def button(self, label: str | None = None, *, custom_id: str | None = None,
               emoji: str | None = None) -> JSON:
        """The one button matching every given criterion (label substring, exact id, emoji name)."""
        found = [b for b in self.buttons
                 if (label is None or label in (b.get("label") or ""))
                 and (custom_id is None or b.get("custom_id") == custom_id)
                 and (emoji is None or (b.get("emoji") or {}).get("name") == emoji)]
        if len(found) != 1:
            raise AssertionError(f"{len(found)} buttons match label={label!r} "
                                 f"custom_id={custom_id!r} emoji={emoji!r}: {self.buttons}")
        return found[0]

    def file(self, filename: str | None = None) -> bytes:
        """The bytes of the attachment named ``filename`` (or of the only one)."""
        found = [a for a in self.attachments if filename is None or a.filename == filename]
        if len(found) != 1:
            raise AssertionError(f"{len(found)} attachments match {filename!r}: "
                                 f"{[a.filename for a in self.attachments]}")
        return found[0].data

    def to_api(self) -> JSON:
        out: JSON = {
            "id": str(self.id), "type": self.type, "channel_id": str(self.channel_id),
            "author": self.author, "content": self.content, "embeds": self.embeds,
            "components": self.components, "attachments": [a.to_api() for a in self.attachments],
            "flags": self.flags, "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp, "mentions": [], "mention_roles": [],
            "mention_everyone": False, "pinned": False, "tts": False, **self.extra,
        }
        if self.guild_id is not None:
            out["guild_id"] = str(self.guild_id)
        return out


AttachmentMaker = Callable[[Upload, int, str | None], FakeAttachment]


def oversized(uploads: list[Upload], limit: int) -> bool:
    """Whether any file is above the per-file upload limit."""
    return any(len(u.data) > limit for u in uploads)


def apply_payload(msg: FakeMessage, data: JSON, uploads: list[Upload],
                  make_attachment: AttachmentMaker, *, editing: bool) -> None:
    """Apply a create or edit body the way Discord does (absent keys leave fields unchanged)."""
    if editing:
        msg.history.append(msg.to_api())
        msg.edits += 1
        msg.edited_timestamp = iso_now()
    if "content" in data:
        msg.content = data["content"] or ""
    if "embeds" in data:
        msg.embeds = list(data["embeds"] or [])
    if "components" in data:
        msg.components = list(data["components"] or [])
    flags = data.get("flags")
    if flags is not None:
        keep = msg.flags & (EPHEMERAL | LOADING) if editing else 0
        changeable = (SUPPRESS_EMBEDS | COMPONENTS_V2) if editing else ~LOADING
        msg.flags = keep | (flags & changeable)
    by_index = {u.index: u for u in uploads}
    meta = data.get("attachments")
    kept: list[FakeAttachment] = [] if meta is not None else list(msg.attachments)
    used: set[int | None] = set()
    for entry in meta or []:
        existing = next((a for a in msg.attachments if str(a.id) == str(entry.get("id"))), None)
        upload = by_index.get(_int(entry.get("id")))
        if existing is not None:
            kept.append(existing)
        elif upload is not None:
            used.add(upload.index)
            kept.append(make_attachment(upload, msg.channel_id, entry.get("description")))
    kept += [make_attachment(u, msg.channel_id, None) for u in uploads if u.index not in used]
    msg.attachments = kept


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def is_empty(msg: FakeMessage) -> bool:
    return not (msg.content or msg.embeds or msg.attachments or msg.components)


@dataclass(slots=True)
class InteractionRecord:
    """One injected interaction: its payload and everything the bot answered to it."""

    id: int
    token: str
    payload: JSON
    created: float  # loop time when injected
    callbacks: list[JSON] = field(default_factory=list)  # callback bodies in order
    response_type: int | None = None
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: JSON | None = None  # the modal opened (callback type 9 data)
    choices: list[JSON] | None = None  # autocomplete choices (callback type 8)
    expired: bool = False

    @property
    def type(self) -> int:
        return int(self.payload["type"])

    @property
    def attachment_size_limit(self) -> int:
        return int(self.payload["attachment_size_limit"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel"]["id"])

    @property
    def guild_id(self) -> int | None:
        gid = self.payload.get("guild_id")
        return int(gid) if gid else None

    @property
    def user(self) -> JSON:
        member = self.payload.get("member")
        return member["user"] if member else self.payload["user"]  # type: ignore[no-any-return]

    @property
    def message(self) -> JSON | None:
        """The message a component was on (component presses and their modals)."""
        return self.payload.get("message")
