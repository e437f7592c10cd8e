"""Sign-in sessions and CSRF protection for the UI.

The session cookie holds ``<nonce>.<token secret>``: the token is the principal of every page,
exactly as a bearer token is for the API, so the UI can never show what the token could not
read through the API. The cookie is ``HttpOnly``, ``SameSite=Strict`` and ``Secure`` when the
request came over https. The CSRF token of a session is an HMAC of its random nonce keyed
with the token secret: it changes with every sign-in, needs no server-side state, and cannot
be computed by a page that cannot read the cookie. Before sign-in, the sign-in form is
protected by a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from firehook import errors, model
from firehook.service import Services
from firehook.service import tokens as token_service

SESSION_COOKIE = "fh_session"
PRESESSION_COOKIE = "fh_signin"
FLASH_COOKIE = "fh_flash"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = 12 * 3600


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def call(fn: Any, *args: Any) -> Any:
    """Run a (blocking) service call off the event loop."""
    return await run_in_threadpool(fn, *args)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=_secure(request), httponly=True,
                        samesite="strict")


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=_secure(request), httponly=True, samesite="strict")


def _session(request: Request) -> tuple[str, str] | None:
    raw = request.cookies.get(SESSION_COOKIE) or ""
    nonce, dot, secret = raw.partition(".")
    if not dot or not nonce or not secret:
        return None
    return nonce, secret


async def principal(request: Request) -> model.Token:
    """The signed-in token, or Unauthorized (the UI answers that with the sign-in page)."""
    session = _session(request)
    if session is None:
        raise errors.Unauthorized("not signed in")
    who: model.Token = await run_in_threadpool(token_service.authenticate, services_of(request),
                                               "Bearer " + session[1])
    request.state.who = who
    return who


async def check_token(request: Request, secret: str) -> model.Token:
    """Authenticate a token typed into the sign-in form."""
    return await run_in_threadpool(token_service.authenticate, services_of(request), "Bearer " + secret.strip())


def start_session(request: Request, response: Response, secret: str) -> None:
    set_cookie(request, response, SESSION_COOKIE, secrets.token_urlsafe(16) + "." + secret.strip(),
               max_age=SESSION_MAX_AGE)
    clear_cookie(request, response, PRESESSION_COOKIE)


def end_session(request: Request, response: Response) -> None:
    clear_cookie(request, response, SESSION_COOKIE)


def csrf_token(request: Request) -> str:
    """The CSRF token forms of this session carry (the pre-session one on the sign-in page)."""
    session = _session(request)
    if session is not None:
        nonce, secret = session
        return hmac.new(secret.encode(), b"firehook-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()
    return request.cookies.get(PRESESSION_COOKIE) or ""


def presession_token(request: Request) -> tuple[str, bool]:
    """(the sign-in form's CSRF token, whether its cookie must be set now)."""
    current = request.cookies.get(PRESESSION_COOKIE)
    if current:
        return current, False
    return secrets.token_urlsafe(24), True


async def form_checked(request: Request, *, presession: bool = False) -> Any:
    """The submitted form, once its CSRF token is checked; Forbidden when it is missing or wrong."""
    form = await request.form()
    sent = str(form.get(CSRF_FIELD) or "")
    if presession:
        expected = request.cookies.get(PRESESSION_COOKIE) or ""
    else:
        if _session(request) is None:
            raise errors.Unauthorized("not signed in")
        expected = csrf_token(request)
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise errors.Forbidden("the form's security token is missing or out of date: reload the page and try again")
    return form


def flash(request: Request, response: Response, message: str) -> None:
    """A one-time message shown on the next page."""
    set_cookie(request, response, FLASH_COOKIE, message[:300], max_age=60)


def take_flash(request: Request) -> str | None:
    return request.cookies.get(FLASH_COOKIE) or None
