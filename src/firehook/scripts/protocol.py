"""The messages between a script pool (:mod:`firehook.scripts.pool`) and its children
(:mod:`firehook.scripts.child`), over the child's standard input and output.

A message is a JSON object, optionally followed by raw bytes, preceded by the two lengths
(4 bytes each, big-endian). The parent sends
``run`` (a run's inputs) and ``reply`` (the answer to a storage call); the child sends
``ready`` once its engine is built, ``log`` (a log line, as the run writes it), ``call`` (a
storage operation the parent performs on the run's storage) and ``done`` (the outcome).
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

import orjson

HEADER = struct.Struct(">II")  # the whole message's length, then its JSON part's
MAX_MESSAGE = 256 * 1024 * 1024  # far above any run's inputs; a larger length is a broken pipe


class Closed(Exception):
    """The other side closed the pipe (or wrote something that is not a message)."""


def encode(message: dict[str, Any], blob: bytes = b"") -> bytes:
    """A message, and optional bytes sent as they are beside it (a run's activity document:
    no escaping as a JSON string inside the message, no unescaping in the child). An integer
    beyond 64 bits (a variable's JSON value) is written by the stdlib; the child reads it as a
    float, as JavaScript would. TypeError or ValueError when the message is not JSON."""
    try:
        body = orjson.dumps(message)
    except orjson.JSONEncodeError:
        body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
            "utf-8", "surrogatepass")
    return HEADER.pack(len(body) + len(blob), len(body)) + body + blob


def decode(body: bytes, json_size: int) -> tuple[dict[str, Any], bytes]:
    try:
        value = orjson.loads(memoryview(body)[:json_size])
    except orjson.JSONDecodeError as exc:
        raise Closed(f"not a message: {exc}") from None
    if not isinstance(value, dict):
        raise Closed("not a message: not an object")
    return value, body[json_size:]


def check(size: int, json_size: int, limit: int = MAX_MESSAGE) -> None:
    if size > limit or json_size > size:
        raise Closed(f"message of {size} bytes ({json_size} of JSON)")


def read_blocking(stream: BinaryIO) -> tuple[dict[str, Any], bytes]:
    """The next message and its bytes from a blocking stream (the child's standard input)."""
    size, json_size = HEADER.unpack(_exactly(stream, HEADER.size))
    check(size, json_size)
    return decode(_exactly(stream, size), json_size)


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
