"""Talking to the bot like a person does in the command tests: send a text, press a button."""

from __future__ import annotations

from typing import Any

from tests.fakes.telegram_model import SentMessage
from tests.telegram.conftest import USER_ID, Harness


async def say(tg: Harness, text: str, *, chat_id: int | None = None,
              user_id: int = USER_ID, **kwargs: Any) -> SentMessage:
    """Send a text as a user; the bot's first message after it in that chat."""
    update = tg.send(tg.fake.build.text(text, chat_id=chat_id, user_id=user_id, **kwargs))
    sent = update["message"]
    return await tg.fake.wait_for_message(sent["chat"]["id"],
                                          lambda m: m.message_id > sent["message_id"])


async def press(tg: Harness, message: SentMessage, button: str,
                user_id: int = USER_ID) -> dict[str, Any]:
    """Press a button under a bot message; the callback answer the bot gave."""
    before = len(tg.fake.callback_answers)
    tg.send(tg.fake.build.press(message, button, user_id=user_id))
    await tg.fake.wait_for(lambda: len(tg.fake.callback_answers) > before, what="an answer")
    return tg.fake.callback_answers[-1]
