"""The messages between a script pool (:mod:`firehook.scripts.pool`) and its children
(:mod:`firehook.scripts.child`), over the child's standard input and output.

A message is a JSON object preceded by its length (4 bytes, big-endian). The parent sends
``run`` (a run's inputs) and ``reply`` (the answer to a storage call); the child sends
``ready`` once its engine is built, ``log`` (a log line, as the run writes it), ``call`` (a
storage operation the parent performs on the run's storage) and ``done`` (the outcome).
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

import orjson

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024  # far above any run's inputs; a larger length is a broken pipe


class Closed(Exception):
    """The other side closed the pipe (or wrote something that is not a message)."""


def encode(message: dict[str, Any]) -> bytes:
    body = orjson.dumps(message)
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Closed(f"not a message: {exc}") from None
    if not isinstance(value, dict):
        raise Closed("not a message: not an object")
    return value


def read_blocking(stream: BinaryIO) -> dict[str, Any]:
    """The next message from a blocking stream (the child's standard input)."""
    head = _exactly(stream, HEADER.size)
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE:
        raise Closed(f"message of {size} bytes")
    return decode(_exactly(stream, size))


def _exactly(stream: BinaryIO, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise Closed("end of stream")
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
