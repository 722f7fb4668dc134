"""A group's policy applies to requests made there (set directly; /chatset is B's to test)."""

from __future__ import annotations

from bot.models import ChatRef
from tests.telegram.conftest import GROUP_ID, USER_ID, Harness
from tests.texts import en, warning

GROUP = ChatRef("telegram", str(GROUP_ID))


async def test_banned_word_is_refused_without_charge(tg: Harness) -> None:
    await tg.app.preferences.set_chat(GROUP, "banned_words", "add dog")
    update = tg.send(tg.fake.build.photo(caption="/img2img a Dog in a hat", chat_id=GROUP_ID))
    answer = await tg.reply(update)
    assert answer.text == warning("error-banned-word")
    await tg.idle()
    assert not tg.a1111.img2img_bodies and await tg.ledger() == []
    # The same words in a private chat are the user's business.
    private = tg.send(tg.fake.build.photo(caption="/img2img a dog in a hat"))
    await tg.result(private)


async def test_a_locked_field_wins_and_the_user_is_told(tg: Harness) -> None:
    await tg.app.preferences.set_chat(GROUP, "strength", "0.3")
    await tg.app.preferences.set_chat(GROUP, "lock", "strength")
    update = tg.send(tg.fake.build.photo(caption="/img2img a cat --strength 0.9",
                                         chat_id=GROUP_ID))
    result = await tg.result(update)
    assert tg.a1111.img2img_bodies[0]["denoising_strength"] == 0.3
    assert f"{en('field-strength')}: 0.3" in (result.caption or "")
    assert en("notice-locked", name="strength", value=0.3) in (result.caption or "")
    assert await tg.balance(USER_ID) == 9
