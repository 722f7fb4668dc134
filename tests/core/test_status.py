"""The throttled status and the follow loop, against a surface that records what it is asked."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

from bot.errors import ProviderError
from bot.events import Detached, Done, Failed, Progress, Queued, Started
from bot.following import Following
from bot.jobs import JobHandle
from bot.models import ChatRef, Params, UserRef
from bot.status import Edit, Status


class FakeSurface:
    """A platform that answers at once; ``calls`` has (seconds from start, verb, text, cancel)."""

    def __init__(self, *, action_every: float | None = None) -> None:
        self.action_every = action_every
        self.t0 = time.monotonic()
        self.calls: list[tuple[float, str, str, bool]] = []
        self.edit_answer = Edit.SHOWN
        self.refuse = 0  # may_send answers False this many times
        self.send_delay = 0.0

    def _note(self, verb: str, text: str = "", cancel: bool = False) -> None:
        self.calls.append((time.monotonic() - self.t0, verb, text, cancel))

    async def send(self, text: str, *, cancel: bool) -> str | None:
        await asyncio.sleep(self.send_delay)
        self._note("send", text, cancel)
        return str(len(self.calls))

    async def edit(self, text: str, *, cancel: bool) -> Edit:
        self._note("edit", text, cancel)
        return self.edit_answer

    async def delete(self) -> None:
        self._note("delete")

    async def act(self) -> None:
        self._note("act")

    def may_send(self) -> bool:
        if self.refuse:
            self.refuse -= 1
            self._note("refused")
            return False
        return True

    def verbs(self) -> list[str]:
        return [verb for _, verb, _, _ in self.calls]


async def test_nothing_is_shown_for_a_job_that_ends_before_the_status_is_due() -> None:
    surface = FakeSurface()
    status = Status(surface, interval=0.2, after=0.3)
    status.update("queued")
    await asyncio.sleep(0.1)
    await status.hold()
    await asyncio.sleep(0.3)
    await status.remove()
    assert surface.calls == []


async def test_the_first_line_waits_for_after_and_later_ones_merge_within_the_interval() -> None:
    surface = FakeSurface()
    status = Status(surface, interval=0.3, after=0.2, notices=("album: first image only",))
    for line in ("one", "two", "three"):
        status.update(line)
    await asyncio.sleep(0.3)
    for line in ("four", "five"):
        status.update(line)
    await asyncio.sleep(0.45)
    (sent_at, verb, text, cancel), (edit_at, verb2, text2, _) = surface.calls
    assert (verb, text, cancel) == ("send", "three\nℹ️ album: first image only", True)
    assert 0.18 <= sent_at < 0.3
    assert (verb2, text2) == ("edit", "five\nℹ️ album: first image only")  # four never shown
    assert edit_at - sent_at >= 0.29
    await status.close()


async def test_an_unchanged_line_costs_no_edit_and_finish_drops_the_button() -> None:
    surface = FakeSurface()
    status = Status(surface, interval=0.1, after=0.0)
    status.update("generating")
    await asyncio.sleep(0.05)
    status.update("generating")
    await asyncio.sleep(0.2)
    await status.finish("⚠️ failed")
    assert surface.verbs() == ["send", "edit"]
    _, _, text, cancel = surface.calls[-1]
    assert (text, cancel) == ("⚠️ failed", False)
    assert surface.calls[1][0] - surface.calls[0][0] >= 0.09  # finish keeps the interval


async def test_a_line_refused_by_the_outgoing_limits_is_retried_and_merged() -> None:
    surface = FakeSurface()
    surface.refuse = 2
    status = Status(surface, interval=0.1, after=0.0)
    status.update("queued: 8")
    await asyncio.sleep(0.05)
    status.update("queued: 3")
    await asyncio.sleep(0.8)
    assert surface.verbs() == ["refused", "refused", "send"]
    assert surface.calls[-1][2] == "queued: 3"
    assert surface.calls[-1][0] - surface.calls[0][0] >= 0.45  # two retries, MIN_RETRY apart
    await status.close()


async def test_hold_stops_changes_but_a_send_under_way_completes_and_is_removed() -> None:
    surface = FakeSurface()
    surface.send_delay = 0.2
    status = Status(surface, interval=0.1, after=0.0)
    status.update("queued")
    await asyncio.sleep(0.05)  # the send is on its way
    await status.hold()
    status.update("generating")
    await status.remove()
    assert surface.verbs() == ["send", "delete"]


async def test_a_deleted_status_is_gone_and_the_end_comes_as_a_new_message() -> None:
    surface = FakeSurface()
    status = Status(surface, interval=0.05, after=0.0, shown=True)
    surface.edit_answer = Edit.GONE
    status.update("generating")
    await asyncio.sleep(0.1)
    assert status.gone
    status.update("generating · 50%")
    await asyncio.sleep(0.1)
    await status.finish("⚠️ failed")
    assert surface.verbs() == ["edit", "send"]
    assert surface.calls[-1][2:] == ("⚠️ failed", False)


async def test_a_failed_edit_keeps_the_status_and_remembers_nothing() -> None:
    surface = FakeSurface()
    sent: list[str] = []

    async def remember(ref: str) -> None:
        sent.append(ref)

    status = Status(surface, interval=0.05, after=0.0, on_sent=remember)
    status.update("queued")
    await asyncio.sleep(0.05)
    surface.edit_answer = Edit.FAILED
    status.update("generating")
    await asyncio.sleep(0.1)
    status.update("generating")  # not shown yet, so it is tried again
    await asyncio.sleep(0.1)
    assert surface.verbs() == ["send", "edit", "edit"] and not status.gone
    assert sent == ["1"]  # only the message with the Cancel button
    await status.finish("done")
    assert sent == ["1"]


def _handle() -> JobHandle:
    return JobHandle("job1", UserRef("test", "1"), ChatRef("test", "1", private=True), {},
                     Params("p", "fake", 0.5, 20, 7.0, 64, 64), 0, ("resized",), None)


def _following(surface: FakeSurface) -> tuple[Following, list[tuple[str, str]]]:
    remembered: list[tuple[str, str]] = []

    async def remember_status(job_id: str, ref: str) -> None:
        remembered.append((job_id, ref))

    app = SimpleNamespace(config=SimpleNamespace(test=SimpleNamespace(progress_interval=0.1,
                                                                      status_after=0.1)),
                          service=SimpleNamespace(remember_status=remember_status,
                                                  unregister_courier=lambda platform: None))
    return Following(cast(Any, app), "test"), remembered


async def test_follow_shows_meaningful_positions_then_removes_the_status_at_the_result() -> None:
    surface = FakeSurface(action_every=0.1)
    following, remembered = _following(surface)
    handle = _handle()
    following.start(handle, surface)
    for position in (8, 7, 6, 4):
        handle.emit(Queued(position))
        await asyncio.sleep(0.15)
    handle.emit(Started())
    await asyncio.sleep(0.35)
    await following.hold(handle.id)
    assert following.surface(handle.id) is surface
    handle.emit(Done((), 1, 0, None, handle.params, "fake"))
    await asyncio.sleep(0.05)
    texts = [text.split("\n")[0] for _, verb, text, _ in surface.calls if verb in ("send", "edit")]
    assert len(texts) == 3 and "7" not in " ".join(texts)  # 8, 4, generating
    assert all(text.endswith("ℹ️ resized") for _, verb, text, _ in surface.calls
               if verb in ("send", "edit"))
    assert surface.verbs().count("act") >= 2 and surface.verbs()[-1] == "delete"
    assert remembered == [("job1", "1")]
    assert following.surface(handle.id) is None


async def test_follow_ends_a_failed_job_without_the_button() -> None:
    surface = FakeSurface()
    following, _ = _following(surface)
    handle = _handle()
    task = asyncio.create_task(following.follow(handle, surface, shown=True))
    handle.emit(Failed(ProviderError("it broke"), refunded=False, balance=None))
    await task
    (_, verb, text, cancel), = surface.calls
    assert verb == "edit" and "it broke" in text and not cancel


async def test_stop_says_restarting_on_shown_statuses_and_starts_nothing_after() -> None:
    surface = FakeSurface()
    following, _ = _following(surface)
    handle = _handle()
    following.start(handle, surface)
    handle.emit(Progress(0.5))
    await asyncio.sleep(0.15)
    await following.stop()
    assert surface.verbs()[-1] == "edit" and not surface.calls[-1][3]
    assert surface.calls[-1][2].split("\n")[0] != surface.calls[0][2].split("\n")[0]
    quiet = FakeSurface()
    following.start(_handle(), quiet)
    await asyncio.sleep(0.2)
    assert quiet.calls == [] and following.stopping


async def test_a_detached_job_says_its_notice() -> None:
    surface = FakeSurface()
    following, _ = _following(surface)
    handle = _handle()
    task = asyncio.create_task(following.follow(handle, surface))
    handle.emit(Detached("it will come later"))
    await task
    assert surface.calls[-1][1:] == ("send", "it will come later\nℹ️ resized", False)
