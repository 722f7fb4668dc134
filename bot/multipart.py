"""Request bodies rendered into one bytes object: multipart/form-data (RFC 7578, names escaped
as the WHATWG form encoding does) and application/x-www-form-urlencoded.

aiohttp's multipart writer sends each part's boundary, headers, body and line end as separate
socket writes, and a file given as a stream as a chunked body: about 25 system calls for a
photo with its caption and buttons, each one on the event loop and each one giving the GIL
away to the image threads. A body rendered here from bytes the bot already holds goes out in
one write (measured with ``benchmarks/bench_telegram.py``). Making one costs no system call
either: see ``RenderedForm`` and ``_boundaries``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from urllib.parse import urlencode

from aiohttp import BytesPayload, FormData

_ESCAPES = str.maketrans({"\n": "%0A", "\r": "%0D", '"': "%22"})
# A boundary only has to be absent from the body, and no one but the server it is sent to ever
# sees one: 128 bits from a generator seeded once from the system keep it so, where
# ``secrets`` or ``uuid4`` would ask the kernel on every request.
_boundaries = random.Random()


def form_body(fields: Iterable[tuple[str, str]],
              files: Iterable[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """The body of ``fields`` (name, text) and ``files`` (name, filename, bytes), and its
    Content-Type with the boundary."""
    boundary = f"{_boundaries.getrandbits(128):032x}"
    head = f"--{boundary}\r\nContent-Disposition: form-data; name="
    parts = [f'{head}"{name.translate(_ESCAPES)}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields]
    for name, filename, data in files:
        parts += (f'{head}"{name.translate(_ESCAPES)}"; filename="{filename.translate(_ESCAPES)}"'
                  f"\r\nContent-Type: application/octet-stream\r\n\r\n".encode(), data, b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class RenderedForm(FormData):
    """A rendered body as a form aiohttp sends: a client request asks a FormData for its body
    and for nothing else. FormData's own ``__init__`` is not run: it makes a multipart writer,
    whose random boundary (``uuid4``) is a system call, for a body that is already made."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.payload = BytesPayload(body, content_type=content_type)

    @classmethod
    def multipart(cls, fields: Iterable[tuple[str, str]],
                  files: Iterable[tuple[str, str, bytes]]) -> RenderedForm:
        return cls(*form_body(fields, files))

    @classmethod
    def urlencoded(cls, fields: Iterable[tuple[str, str]]) -> RenderedForm:
        return cls(urlencode(list(fields)).encode(), "application/x-www-form-urlencoded")

    def __call__(self) -> BytesPayload:
        return self.payload
