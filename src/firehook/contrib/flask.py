"""Verify webhooks in Flask applications.

::

    from firehook.contrib.flask import verify_signature

    @app.post("/hooks/firehook")
    @verify_signature(SHARED_KEY)
    def hook():
        activity = json.loads(request.get_data())   # the raw bytes that were verified

A request that does not verify gets a 401 with the reason as plain text; the view is not
called.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from firehook import receiver
from firehook.contrib import KeySource, missing_framework, refusal

try:
    import flask
except ImportError:  # pragma: no cover - depends on the environment
    raise missing_framework("flask", "Flask", "flask") from None

__all__ = ["verify_signature"]

View = TypeVar("View", bound=Callable[..., Any])


def verify_signature(key: KeySource) -> Callable[[View], View]:
    """Decorate a Flask view so that it runs only for requests signed with ``key``."""

    def decorator(view: View) -> View:
        def refused_response() -> flask.Response | None:
            body = flask.request.get_data(cache=True)
            header = flask.request.headers.get(receiver.SIGNATURE_HEADER)
            reason = refusal(body, header, key)
            if reason is not None:
                return flask.Response(reason, status=401, mimetype="text/plain")
            return None

        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                refused = refused_response()
                return refused if refused is not None else await view(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            refused = refused_response()
            return refused if refused is not None else view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
