"""The one-write multipart body, read back by aiohttp's own form parser on a real server."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from bot.multipart import RenderedForm, form_body
from tests.fakes.server import FakeServer


class FormEcho(FakeServer):
    """``POST /`` keeps what ``request.post()`` made of the body (as Telegram's server would)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._post)

    async def _post(self, request: web.Request) -> web.Response:
        form: dict[str, Any] = {}
        for key, value in (await request.post()).items():
            form[key] = ((value.filename, value.file.read())
                         if isinstance(value, web.FileField) else value)
        self.forms.append(form)
        return web.Response(text="ok")


async def _posted(body: RenderedForm) -> dict[str, Any]:
    """What a real aiohttp server's form parser makes of ``body`` posted by aiohttp."""
    server = FormEcho()
    url = await server.start()
    try:
        async with aiohttp.ClientSession() as session, session.post(url, data=body) as response:
            assert response.status == 200
    finally:
        await server.stop()
    return server.forms[0]


async def test_fields_and_files_arrive_as_sent() -> None:
    # Binary data that looks like multipart syntax, names that need escaping, non-ASCII text.
    data = b"--\r\n--boundary\r\n\x00\xff" * 1000
    fields = [("chat_id", "-100123"), ("caption", "Хабор «at dusk»\r\n--x"),
              ('we"ird\nname', "v")]
    form = await _posted(RenderedForm.multipart(fields, [("photo", 'a "b".jpg', data)]))
    assert form["chat_id"] == "-100123"
    assert form["caption"] == "Хабор «at dusk»\r\n--x"
    assert form['we%22ird%0Aname'] == "v"
    assert form["photo"] == ('a %22b%22.jpg', data)


async def test_a_form_without_files_arrives_urlencoded() -> None:
    fields = [("chat_id", "-100123"), ("text", "a&b=c d+e «ü» %20\n"), ("offset", "")]
    assert await _posted(RenderedForm.urlencoded(fields)) == dict(fields)


def test_each_body_has_its_own_boundary() -> None:
    first, first_type = form_body([("a", "1")], [])
    second, second_type = form_body([("a", "1")], [])
    assert first_type != second_type and first != second
    assert first.endswith(f"--{first_type.split('boundary=')[1]}--\r\n".encode())
