"""After a crash: tell each user whose job was interrupted, in the channel they asked in."""

from __future__ import annotations

import logging

import discord

from bot.app import App
from storage.base import JobRecord

log = logging.getLogger(__name__)


def notice_text(job: JobRecord, user_id: str) -> str:
    prompt = str(job.params.get("prompt", ""))
    about = f" (“{prompt[:100]}{'…' if len(prompt) > 100 else ''}”)" if prompt else ""
    refund = (f"; your {job.price} credit{'s were' if job.price != 1 else ' was'} refunded"
              if job.price else "")
    return (f"<@{user_id}> The bot restarted before your image was done{about}{refund}. "
            "Please ask again.")


async def send_restart_notices(client: discord.Client, app: App) -> int:
    """Post one notice per interrupted job, then mark it told; returns how many were posted."""
    posted = 0
    for job in await app.storage.pending_notifications("discord"):
        user_id = job.user_key.partition(":")[2]
        channel_id = str(job.origin.get("channel_id", ""))
        if channel_id.isdigit() and user_id.isdigit():
            channel = client.get_partial_messageable(int(channel_id))
            mention = discord.AllowedMentions(everyone=False, roles=False,
                                              users=[discord.Object(int(user_id))])
            try:
                await channel.send(notice_text(job, user_id), allowed_mentions=mention)
                posted += 1
            except (discord.Forbidden, discord.NotFound) as exc:
                log.info("restart notice for job %s cannot be posted: %s", job.id, exc.code)
            except discord.HTTPException as exc:
                log.warning("restart notice for job %s failed (%s); retrying at the next "
                            "start", job.id, exc.status)
                continue
        await app.storage.mark_notified(job.id)
    return posted
