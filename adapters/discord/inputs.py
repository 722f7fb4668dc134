"""The input image: found in an attachment or a message, checked, then downloaded with a cap.

Sizes and content types Discord reports are checked before downloading, so an oversized file or
a video never leaves the CDN; the core's ``probe`` then checks the bytes themselves.

Only Discord's own CDN and media proxy (or the configured ``discord.api_base`` origin: a
self-hosted proxy) are fetched from, through the guarded fetcher, every redirect included: an
embed pointing anywhere else is refused, so a message cannot make the bot fetch from the
operator's network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import discord
import httpx

from bot.app import App
from bot.errors import FetchError, FetchTooLarge, ImageError, UnsafeURL
from bot.fetcher import origin_of
from bot.i18n import Msg, file_size
from bot.imaging import FORMATS, named_like_image
from bot.rerun import Rerun

# The CDN (attachments), the media proxy and the external-image proxy (embeds).
DISCORD_MEDIA = re.compile(r"cdn\.discordapp\.com|media\.discordapp\.net|"
                           r"images-ext-\d+\.discordapp\.net")
ONLY_DISCORD = Msg("dc-only-discord-images")
GONE = Msg("dc-original-gone")


@dataclass(frozen=True, slots=True)
class ImageSource:
    """Where the input image is, with what Discord told about it (None: unknown)."""

    url: str
    size: int | None = None
    content_type: str | None = None

    @classmethod
    def of(cls, attachment: discord.Attachment) -> ImageSource:
        return cls(attachment.url, attachment.size, attachment.content_type)


def find_image(message: discord.Message | None, missing: Msg) -> ImageSource:
    """The first image of a message: an attachment, else an embed's picture; ``missing``
    (an ``ImageError``) when it has none."""
    for attachment in message.attachments if message else ():
        if named_like_image(attachment.filename, attachment.content_type):
            return ImageSource.of(attachment)
    for embed in message.embeds if message else ():
        # A pasted image link embeds as type "image" with the picture in the thumbnail.
        media = [embed.image] + ([embed.thumbnail] if embed.type == "image" else [])
        for item in media:
            # Discord's proxy copy first: the original link may point anywhere.
            urls = [url for url in (item.proxy_url, item.url) if url]
            if urls:
                return ImageSource(next((u for u in urls if _discord_media(u)), urls[0]))
    raise ImageError(msg=missing)


def _discord_media(url: str | httpx.URL) -> bool:
    origin = origin_of(url)
    return origin is not None and origin[0] == "https" and origin[2] == 443 and bool(
        DISCORD_MEDIA.fullmatch(origin[1]))


def hosted_by_discord(app: App, url: str | httpx.URL) -> bool:
    """Whether ``url`` is Discord's CDN or media proxy, or the configured API origin."""
    api = origin_of(app.config.discord.api_base) if app.config.discord else None
    return _discord_media(url) or (api is not None and origin_of(url) == api)


async def download(app: App, source: ImageSource) -> bytes:
    """The image's bytes, refusing more than ``limits.max_input_bytes`` or a host not Discord's;
    what Discord already says is too big or not an image is refused before any byte moves."""
    max_bytes = app.config.limits.max_input_bytes
    if source.size is not None and source.size > max_bytes:
        raise ImageError(msg=Msg("dc-image-too-big", {"size": file_size(source.size),
                                                      "limit": file_size(max_bytes)}))
    if source.content_type and not source.content_type.startswith("image/"):
        raise ImageError(msg=Msg("dc-not-an-image", {"formats": FORMATS}))
    if not hosted_by_discord(app, source.url):
        raise ImageError(msg=ONLY_DISCORD)
    try:
        return await app.fetcher.fetch(source.url, max_bytes=max_bytes,
                                       allow=lambda url: hosted_by_discord(app, url))
    except UnsafeURL as exc:
        raise ImageError(msg=ONLY_DISCORD) from exc
    except FetchTooLarge as exc:
        raise ImageError(msg=exc.msg) from exc
    except FetchError as exc:
        raise ImageError(msg=Msg("dc-send-again", {"message": exc.user_message})) from exc


async def refetch(app: App, client: discord.Client, origin: dict[str, Any]) -> bytes:
    """A job's input again: from its URL, else from the message it came from (fresh URLs)."""
    url, channel_id, message_id = (str(origin.get(key) or "") for key in (
        "image_url", "source_channel_id", "source_message_id"))
    if url:
        try:
            return await download(app, ImageSource(url))
        except ImageError:
            if not message_id:
                raise
    try:
        channel = client.get_partial_messageable(int(channel_id))
        message = await channel.fetch_message(int(message_id))
    except (ValueError, discord.HTTPException) as exc:  # not stored, or gone
        raise ImageError(msg=GONE) from exc
    return await download(app, find_image(message, GONE))


async def rerun_input(app: App, interaction: discord.Interaction[Any],
                      plan: Rerun) -> tuple[bytes, str]:
    """A rerun's image and its URL: the result under the pressed button, or the job's input."""
    if not plan.use_result:
        return await refetch(app, interaction.client, plan.origin), plan.input_url
    result = find_image(interaction.message, Msg("dc-result-gone"))
    return await download(app, result), result.url
