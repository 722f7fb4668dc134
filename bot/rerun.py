"""The result buttons, platform-neutral: what a press asks for, from the stored job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.errors import NotAllowed
from bot.i18n import Msg
from bot.limits import STRENGTH_STEP
from bot.options import Overrides
from storage.base import Storage


class Action(StrEnum):
    AGAIN = "again"        # same request, a new random seed
    WEAKER = "weaker"      # strength - STRENGTH_STEP, same seed: closer to the input
    STRONGER = "stronger"  # strength + STRENGTH_STEP, same seed: further from the input
    REUSE = "reuse"        # the result becomes the next input


@dataclass(frozen=True, slots=True)
class Rerun:
    prompt: str
    overrides: Overrides
    use_result: bool
    origin: dict[str, object]

    @property
    def input_url(self) -> str:
        """Where the job's input image was fetched from ("" when unknown)."""
        return str(self.origin.get("image_url", ""))

    @property
    def input_origin(self) -> dict[str, str]:
        """The origin fields (``source_*``: the message the input came from) that the new
        job keeps: it runs on the same input, unless it uses the result instead."""
        return {} if self.use_result else {key: str(value) for key, value in self.origin.items()
                                           if key.startswith("source_")}


async def plan_rerun(storage: Storage, job_id: str, action: Action, *, chat_key: str,
                     place: Mapping[str, str] | None = None) -> Rerun | None:
    """The request a button press makes, or None when the job is unknown or was forgotten.

    A press counts only in the job's own chat (``chat_key``) and, where the platform has more
    than one place per chat, the same place (``place``: origin fields such as a channel id);
    anywhere else it is refused (``NotAllowed``): a forged press must not rerun, and so
    fetch, another chat's private photo.
    """
    job = await storage.get_job(job_id)
    if job is None or not job.params.get("prompt"):
        return None
    if job.chat_key != chat_key or any(str(job.origin.get(key)) != value
                                       for key, value in (place or {}).items()):
        raise NotAllowed(msg=Msg("error-buttons-elsewhere"))
    asked = Overrides.from_dict(job.params.get("request", {}))
    resolved = job.params.get("resolved", {})
    strength = float(resolved.get("strength", asked.strength or 0.6))
    if action is Action.AGAIN:
        overrides = replace(asked, seed=None)
    elif action in (Action.WEAKER, Action.STRONGER):
        delta = STRENGTH_STEP if action is Action.STRONGER else -STRENGTH_STEP
        overrides = replace(asked, strength=round(min(1.0, max(0.0, strength + delta)), 2),
                            seed=job.seed if job.seed is not None else asked.seed)
    else:
        overrides = replace(asked, seed=None)
    return Rerun(prompt=str(job.params["prompt"]), overrides=overrides,
                 use_result=action is Action.REUSE, origin=dict(job.origin))
