"""Verify webhooks in Django applications.

::

    from firehook.contrib.django import verify_signature

    @verify_signature(settings.FIREHOOK_SHARED_KEY)
    def hook(request):
        activity = json.loads(request.body)   # the raw bytes that were verified
        return HttpResponse(status=204)

The decorated view is exempt from CSRF protection: a webhook sender cannot hold a CSRF token,
and the signature is what authenticates it. A request that does not verify gets a 401 with
the reason as plain text; the view is not called. Sync and async views both work.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from firehook import receiver
from firehook.contrib import KeySource, missing_framework, refusal

try:
    from asgiref.sync import markcoroutinefunction
    from django.http import HttpRequest, HttpResponse
except ImportError:  # pragma: no cover - depends on the environment
    raise missing_framework("django", "Django", "django") from None

__all__ = ["verify_signature"]

View = TypeVar("View", bound=Callable[..., Any])


def verify_signature(key: KeySource) -> Callable[[View], View]:
    """Decorate a Django view so that it runs only for requests signed with ``key``.

    ``key`` may be a callable (``lambda: settings.FIREHOOK_SHARED_KEY``) read per request.
    """

    def refused_response(request: HttpRequest) -> HttpResponse | None:
        header = request.headers.get(receiver.SIGNATURE_HEADER)
        reason = refusal(request.body, header, key)
        if reason is not None:
            return HttpResponse(reason, status=401, content_type="text/plain; charset=utf-8")
        return None

    def decorator(view: View) -> View:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = refused_response(request)
                if refused is not None:
                    return refused
                return await view(request, *args, **kwargs)

            markcoroutinefunction(async_wrapper)
            wrapped: Any = async_wrapper
        else:

            @functools.wraps(view)
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = refused_response(request)
                return refused if refused is not None else view(request, *args, **kwargs)

            wrapped = wrapper
        wrapped.csrf_exempt = True
        return wrapped  # type: ignore[no-any-return]

    return decorator
