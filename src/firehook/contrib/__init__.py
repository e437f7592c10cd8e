"""Framework helpers for verifying firehook (and Upsun) webhooks on the receiving side.

``firehook.contrib.starlette`` (Starlette and FastAPI), ``firehook.contrib.flask`` and
``firehook.contrib.django``. Each imports its framework only when it is itself imported, so
``firehook.receiver`` needs none of them. Every helper verifies the raw request body, never a
parsed and re-serialised one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from firehook import receiver

# A key, several keys (rotation, newest first), or a callable returning either — handy when
# the key lives in settings or the environment and may change without a restart.
KeySource = str | Sequence[str] | Callable[[], str | Sequence[str]]


def resolve_keys(key: KeySource) -> str | Sequence[str]:
    """The key(s) a :data:`KeySource` stands for, now."""
    return key() if callable(key) else key


def refusal(body: bytes, header: str | None, key: KeySource) -> str | None:
    """Why ``body`` with the ``X-JWS-Signature`` value ``header`` does not verify with
    ``key``, or None when it does (the helpers answer a 401 with this text)."""
    try:
        receiver.verify(body, header, resolve_keys(key))
    except receiver.SignatureError as exc:
        return str(exc)
    return None


def missing_framework(module: str, framework: str, extra: str) -> ImportError:
    """The ImportError raised when a helper's framework is not installed."""
    return ImportError(
        f"firehook.contrib.{module} needs {framework}: pip install 'firehook[{extra}]' "
        f"(or install {framework} itself)"
    )
