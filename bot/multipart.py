"""A multipart/form-data body rendered into one bytes object (RFC 7578, names escaped as the
WHATWG form encoding does).

aiohttp's multipart writer sends each part's boundary, headers, body and line end as separate
socket writes, and a file given as a stream as a chunked body: about 25 system calls for a
photo with its caption and buttons, each one on the event loop and each one giving the GIL
away to the image threads. A body rendered here from bytes the bot already holds goes out in
one write (measured with ``benchmarks/bench_telegram.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from aiohttp import BytesPayload, FormData

_ESCAPES = str.maketrans({"\n": "%0A", "\r": "%0D", '"': "%22"})


def form_body(fields: Iterable[tuple[str, str]],
              files: Iterable[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """The body of ``fields`` (name, text) and ``files`` (name, filename, bytes), and its
    Content-Type with the boundary."""
    boundary = secrets.token_hex(16)
    head = f"--{boundary}\r\nContent-Disposition: form-data; name="
    parts = [f'{head}"{name.translate(_ESCAPES)}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields]
    for name, filename, data in files:
        parts += (f'{head}"{name.translate(_ESCAPES)}"; filename="{filename.translate(_ESCAPES)}"'
                  f"\r\nContent-Type: application/octet-stream\r\n\r\n".encode(), data, b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class RenderedForm(FormData):
    """``form_body`` as a form aiohttp sends: a client request asks a FormData for its body."""

    def __init__(self, fields: Iterable[tuple[str, str]],
                 files: Iterable[tuple[str, str, bytes]]) -> None:
        super().__init__()
        body, content_type = form_body(fields, files)
        self.payload = BytesPayload(body, content_type=content_type)

    def __call__(self) -> BytesPayload:
        return self.payload
