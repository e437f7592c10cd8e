"""Sign-in sessions and CSRF protection for the UI.

The session cookie holds a random session secret, recorded on the server
(``service.sessions``): the session's token is the principal of every page, exactly as a
bearer token is for the API, so the UI can never show what the token could not read through
the API. Signing out, revoking the token or the session's expiry (checked by the server) ends
it. The cookie is ``HttpOnly``, ``SameSite=Strict`` and ``Secure`` when the request came over
https. The CSRF token of a session is an HMAC keyed with its secret: it changes with every
sign-in and cannot be computed by a page that cannot read the cookie. Before sign-in, the
sign-in form is protected by a double-submit cookie.
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
from firehook.service import Services, sessions
from firehook.service import tokens as token_service

SESSION_COOKIE = "fh_session"
PRESESSION_COOKIE = "fh_signin"
FLASH_COOKIE = "fh_flash"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = sessions.MAX_AGE


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


def _session(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


async def principal(request: Request) -> model.Token:
    """The signed-in token, or Unauthorized (the UI answers that with the sign-in page)."""
    session = _session(request)
    if session is None:
        raise errors.Unauthorized("not signed in")
    who: model.Token = await run_in_threadpool(sessions.principal, services_of(request), session)
    request.state.who = who
    return who


async def check_token(request: Request, secret: str) -> model.Token:
    """Authenticate a token typed into the sign-in form."""
    return await run_in_threadpool(token_service.authenticate, services_of(request), "Bearer " + secret.strip())


async def start_session(request: Request, response: Response, secret: str) -> None:
    """Sign in with the token ``secret`` (Unauthorized when it is not valid)."""
    session = await run_in_threadpool(sessions.start, services_of(request), secret.strip())
    set_cookie(request, response, SESSION_COOKIE, session, max_age=SESSION_MAX_AGE)
    clear_cookie(request, response, PRESESSION_COOKIE)


async def end_session(request: Request, response: Response) -> None:
    session = _session(request)
    if session is not None:
        await run_in_threadpool(sessions.end, services_of(request), session)
    clear_cookie(request, response, SESSION_COOKIE)


def csrf_token(request: Request) -> str:
    """The CSRF token forms of this session carry (the pre-session one on the sign-in page)."""
    session = _session(request)
    if session is not None:
        return hmac.new(session.encode(), b"firehook-csrf", hashlib.sha256).hexdigest()
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
    for name, value in form.multi_items():
        if isinstance(value, str) and "\x00" in value:  # no field stores one (PostgreSQL's text refuses it)
            raise errors.InvalidInput.field(name, "holds a NUL character, which cannot be stored")
    return form


def flash(request: Request, response: Response, message: str) -> None:
    """A one-time message shown on the next page."""
    set_cookie(request, response, FLASH_COOKIE, message[:300], max_age=60)


def take_flash(request: Request) -> str | None:
    return request.cookies.get(FLASH_COOKIE) or None
