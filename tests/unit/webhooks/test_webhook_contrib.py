"""Framework helpers, through each framework's own test client."""

from __future__ import annotations

import json
import sys
import types

import pytest

from firehook import signing

KEY = "contrib-shared-key"
BODY = b'{"id": "a1kz6ffxui7em",  "type": "environment.push"}'  # odd spacing on purpose
GOOD = {"X-JWS-Signature": signing.sign_detached(BODY, KEY)}
ROTATED = {"X-JWS-Signature": signing.signature_header(BODY, ["newer-key", KEY])}


# -- Starlette / FastAPI ---------------------------------------------------------------------


def starlette_client():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from firehook.contrib.starlette import verified_body

    async def hook(request: Request) -> JSONResponse:
        body = await verified_body(request, KEY)
        return JSONResponse({"type": json.loads(body)["type"], "raw": len(body)})

    return TestClient(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))


def fastapi_client(key):  # type: ignore[no-untyped-def]
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from firehook.contrib.starlette import require_signature

    app = FastAPI()

    @app.post("/hook")
    async def hook(body: bytes = Depends(require_signature(key))) -> dict[str, object]:
        return {"type": json.loads(body)["type"], "raw": len(body)}

    return TestClient(app)


def test_starlette_accepts_and_refuses() -> None:
    client = starlette_client()
    ok = client.post("/hook", content=BODY, headers=GOOD)
    assert ok.status_code == 200 and ok.json() == {"type": "environment.push", "raw": len(BODY)}
    assert client.post("/hook", content=BODY, headers=ROTATED).status_code == 200
    refused = client.post("/hook", content=BODY + b" ", headers=GOOD)
    assert refused.status_code == 401 and "mismatch" in refused.text
    assert "missing" in client.post("/hook", content=BODY).text


@pytest.mark.parametrize("key", [KEY, [KEY], lambda: KEY])
def test_fastapi_dependency(key: object) -> None:
    client = fastapi_client(key)
    ok = client.post("/hook", content=BODY, headers=GOOD)
    assert ok.status_code == 200 and ok.json()["raw"] == len(BODY)
    # The classic mistake, done by the client: the same JSON, re-serialised.
    reserialised = json.dumps(json.loads(BODY)).encode()
    refused = client.post("/hook", content=reserialised, headers=GOOD)
    assert refused.status_code == 401
    assert "re-serialised" in refused.json()["detail"]


# -- Flask -----------------------------------------------------------------------------------


def flask_app():  # type: ignore[no-untyped-def]
    import flask

    from firehook.contrib.flask import verify_signature

    app = flask.Flask("firehook-test")
    calls: list[bytes] = []

    @app.post("/hook")
    @verify_signature(KEY)
    def hook() -> tuple[str, int]:
        calls.append(flask.request.get_data())
        return "ok", 200

    @app.post("/async-hook")
    @verify_signature(lambda: [KEY])
    async def async_hook() -> tuple[str, int]:
        return "async ok", 200

    return app, calls


def test_flask_decorator() -> None:
    app, calls = flask_app()
    client = app.test_client()
    ok = client.post("/hook", data=BODY, headers=GOOD, content_type="application/json")
    assert ok.status_code == 200 and calls == [BODY]  # the view reads the bytes verified
    refused = client.post(
        "/hook", data=BODY, headers={"X-JWS-Signature": GOOD["X-JWS-Signature"][:-3]}
    )
    assert refused.status_code == 401 and refused.mimetype == "text/plain"
    assert b"truncated" in refused.data
    assert client.post("/hook", data=BODY).status_code == 401
    assert calls == [BODY]  # refused requests never reach the view


def test_flask_async_view() -> None:
    pytest.importorskip("asgiref")
    app, _ = flask_app()
    client = app.test_client()
    assert client.post("/async-hook", data=BODY, headers=ROTATED).data == b"async ok"
    assert client.post("/async-hook", data=b"{}", headers=ROTATED).status_code == 401


# -- Django ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_client():  # type: ignore[no-untyped-def]
    import django
    from django.conf import settings

    from firehook.contrib.django import verify_signature

    urls = types.ModuleType("firehook_test_django_urls")

    @verify_signature(KEY)
    def hook(request):  # type: ignore[no-untyped-def]
        from django.http import JsonResponse

        return JsonResponse({"type": json.loads(request.body)["type"]})

    @verify_signature(lambda: KEY)
    async def async_hook(request):  # type: ignore[no-untyped-def]
        from django.http import HttpResponse

        return HttpResponse("async ok")

    def plain(request):  # type: ignore[no-untyped-def]
        from django.http import HttpResponse

        return HttpResponse("unprotected")

    from django.urls import path

    urls.urlpatterns = [path("hook", hook), path("async-hook", async_hook), path("plain", plain)]  # type: ignore[attr-defined]
    sys.modules[urls.__name__] = urls
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ROOT_URLCONF=urls.__name__,
            ALLOWED_HOSTS=["testserver"],
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
            INSTALLED_APPS=[],
        )
        django.setup()
    from django.test import Client

    # Enforce CSRF like a real deployment: the decorator must exempt the view.
    yield Client(enforce_csrf_checks=True)
    sys.modules.pop(urls.__name__, None)


def test_django_decorator(django_client) -> None:  # type: ignore[no-untyped-def]
    # The control: without the decorator, CSRF protection refuses the POST.
    assert (
        django_client.post("/plain", data=BODY, content_type="application/json").status_code == 403
    )
    sig = GOOD["X-JWS-Signature"]
    ok = django_client.post(
        "/hook", data=BODY, content_type="application/json", HTTP_X_JWS_SIGNATURE=sig
    )
    assert ok.status_code == 200 and ok.json() == {"type": "environment.push"}
    refused = django_client.post(
        "/hook",
        data=BODY,
        content_type="application/json",
        HTTP_X_JWS_SIGNATURE=sig.replace("..", ".e30."),
    )
    assert refused.status_code == 401 and b"payload not detached" in refused.content
    assert (
        django_client.post("/hook", data=BODY, content_type="application/json").status_code == 401
    )


def test_django_async_view(django_client) -> None:  # type: ignore[no-untyped-def]
    sig = ROTATED["X-JWS-Signature"]
    ok = django_client.post(
        "/async-hook", data=BODY, content_type="application/json", HTTP_X_JWS_SIGNATURE=sig
    )
    assert ok.status_code == 200 and ok.content == b"async ok"
    bad = django_client.post(
        "/async-hook", data=b"{}", content_type="application/json", HTTP_X_JWS_SIGNATURE=sig
    )
    assert bad.status_code == 401
