"""Result buttons: each press is a new request by the presser, charged to them."""

from __future__ import annotations

from typing import Any

from tests.fakes.server import jpeg_bytes
from tests.fakes.telegram_model import SentMessage
from tests.telegram.conftest import GROUP_ID, USER_ID, Harness, image_size
from tests.texts import en

FRIEND = 777


async def _first_result(tg: Harness, caption: str, chat_id: int = GROUP_ID
                        ) -> tuple[dict[str, Any], SentMessage]:
    request = tg.send(tg.fake.build.photo(jpeg_bytes((640, 480)), caption=caption,
                                          chat_id=chat_id))
    result = await tg.result(request)
    await tg.settled(chat_id)
    return request, result


async def _press(tg: Harness, result: SentMessage, button: str, user_id: int) -> SentMessage:
    """Press ``button`` under ``result``; return the new result that follows."""
    before = {m.message_id for m in tg.fake.messages(result.chat_id)}
    answers = len(tg.fake.callback_answers)
    tg.send(tg.fake.build.press(result, button, user_id=user_id))
    await tg.fake.wait_for(lambda: len(tg.fake.callback_answers) > answers, what="an answer")

    def new_result() -> SentMessage | None:
        return next((m for m in tg.fake.messages(result.chat_id)
                     if m.message_id not in before and m.kind == "photo"), None)
    found = await tg.fake.wait_for(new_result, what=f"the result of {button}")
    await tg.settled(result.chat_id)
    return found


async def test_again_is_charged_to_whoever_presses_it(tg: Harness) -> None:
    request, result = await _first_result(tg, "/img2img a lighthouse --seed 42")
    assert tg.a1111.img2img_bodies[0]["seed"] == 42
    again = await _press(tg, result, en("dc-button-again"), FRIEND)
    assert tg.fake.callback_answers[-1]["text"] == en("rerun-started")
    assert again.reply_to_message_id == request["message"]["message_id"]
    assert f"{en('field-prompt')}: a lighthouse" in (again.caption or "")
    assert tg.a1111.img2img_bodies[1]["seed"] == -1  # a new random seed
    assert await tg.balance(USER_ID) == 9 and await tg.balance(FRIEND) == 9
    assert await tg.ledger(FRIEND) == [("initial", 10), ("reserve", -1)]
    # The input came from the request message again (the photo the user sent).
    file_id = request["message"]["photo"][-1]["file_id"]
    assert tg.fake.downloads.count(tg.fake.files[file_id].file_path) == 2
    await tg.assert_ledger_consistent()


async def test_strength_buttons_keep_the_seed(tg: Harness) -> None:
    _, result = await _first_result(tg, "/img2img a lighthouse --strength 0.5 --seed 7",
                                    chat_id=USER_ID)
    weaker = await _press(tg, result, "➖", USER_ID)
    stronger = await _press(tg, result, "➕", USER_ID)
    bodies = tg.a1111.img2img_bodies
    assert [b["denoising_strength"] for b in bodies] == [0.5, 0.4, 0.6]
    assert [b["seed"] for b in bodies] == [7, 7, 7]
    assert f"{en('field-strength')}: 0.4" in (weaker.caption or "")
    assert f"{en('field-strength')}: 0.6" in (stronger.caption or "")
    assert await tg.balance() == 7


async def test_reuse_feeds_the_result_back_in(tg: Harness) -> None:
    _, result = await _first_result(tg, "/img2img a lighthouse")
    reused = await _press(tg, result, en("dc-button-reuse"), FRIEND)
    assert reused.reply_to_message_id == result.message_id
    assert tg.fake.files[result.file_id or ""].file_path in tg.fake.downloads
    body = tg.a1111.img2img_bodies[1]
    assert image_size(reused.data) == (body["width"], body["height"])
    assert await tg.balance(FRIEND) == 9


async def test_a_press_without_credits_is_refused_in_an_alert(tg: Harness) -> None:
    _, result = await _first_result(tg, "/img2img a lighthouse")
    await tg.app.storage.ensure_user(f"telegram:{FRIEND}", initial=0, daily_free=0, today="x")
    tg.send(tg.fake.build.press(result, en("dc-button-again"), user_id=FRIEND))
    await tg.fake.wait_for(lambda: tg.fake.callback_answers, what="an answer")
    answer = tg.fake.callback_answers[-1]
    assert answer["show_alert"] and answer["text"] == en("error-insufficient-credits", count=1,
                                                         balance=0)
    await tg.idle()
    assert len(tg.a1111.img2img_bodies) == 1 and await tg.balance(FRIEND) == 0


async def test_a_result_of_a_reply_request_reuses_the_stored_input(tg: Harness) -> None:
    photo = tg.send(tg.fake.build.photo(chat_id=GROUP_ID))
    request = tg.send(tg.fake.build.reply(photo, "/img2img make it night"))
    result = await tg.result(request)
    await tg.settled(GROUP_ID)
    again = await _press(tg, result, en("dc-button-again"), USER_ID)
    assert again.reply_to_message_id == request["message"]["message_id"]
    file_id = photo["message"]["photo"][-1]["file_id"]
    assert tg.fake.downloads.count(tg.fake.files[file_id].file_path) == 2


async def test_a_forged_press_from_another_chat_is_refused_and_fetches_nothing(
        tg: Harness) -> None:
    """``r:again:<job>`` of a group's job, sent under a message in someone's private chat."""
    request, victim = await _first_result(tg, "/img2img a private portrait", chat_id=GROUP_ID)
    tg.fake.add_chat(FRIEND)
    own_request = tg.send(tg.fake.build.photo(jpeg_bytes((640, 480)), caption="/img2img a dog",
                                              chat_id=FRIEND, user_id=FRIEND))
    own = await tg.result(own_request)
    await tg.settled(FRIEND)
    forged = victim.button(en("dc-button-again"))["callback_data"]
    assert forged.startswith("r:again:")
    downloads, jobs = list(tg.fake.downloads), len(tg.a1111.img2img_bodies)
    answers = len(tg.fake.callback_answers)
    tg.send(tg.fake.build.callback(own, forged, user_id=FRIEND))
    await tg.fake.wait_for(lambda: len(tg.fake.callback_answers) > answers, what="an answer")
    answer = tg.fake.callback_answers[-1]
    assert answer["text"] == en("error-buttons-elsewhere")
    assert answer.get("show_alert")
    await tg.idle()
    assert tg.fake.downloads == downloads  # the group's photo was not fetched again
    victim_file = tg.fake.files[request["message"]["photo"][-1]["file_id"]].file_path
    assert tg.fake.downloads.count(victim_file) == 1
    assert len(tg.a1111.img2img_bodies) == jobs
    assert not any(m.kind == "photo" for m in tg.fake.messages(FRIEND)
                   if m.message_id > own.message_id)
    assert await tg.balance(FRIEND) == 9  # their own first image only
