"""``/docs`` and the UI with the network off (issue 15): every asset comes from firehook itself.

The browser context refuses every request that is not to the server under test, and records
it: a page that renders with nothing recorded needs no CDN.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from tests import support
from tests.browser.conftest import screenshot


def offline(context: Any, server: support.ServerProcess) -> list[str]:
    """Abort every request off the server's own origin; the list of those aborted."""
    own = urlsplit(server.base_url).netloc
    refused: list[str] = []

    def route(handled: Any) -> None:
        url = handled.request.url
        if urlsplit(url).netloc == own:
            handled.continue_()
        else:
            refused.append(url)
            handled.abort("internetdisconnected")

    context.route("**/*", route)
    return refused


def test_docs_render_the_operations_offline(context: Any, server: support.ServerProcess) -> None:
    refused = offline(context, server)
    tab = context.new_page()
    tab.goto("/docs")
    # Swagger UI renders one block per operation, from /openapi.json
    tab.locator(".opblock-summary-path", has_text="/api/projects/{project}/activities").first.wait_for()
    paths = tab.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/projects/{project}/integrations/{integration}/validate" in [p.replace("\u200b", "") for p in paths]
    assert tab.locator(".swagger-ui .info .title", has_text="firehook").count() == 1
    screenshot(tab, "docs-offline")
    assert refused == []


def test_vendored_assets_and_favicon_are_served(server: support.ServerProcess) -> None:
    for path, media in (("/static/vendor/swagger-ui/swagger-ui-bundle.js", "text/javascript"),
                        ("/static/vendor/swagger-ui/swagger-ui.css", "text/css"),
                        ("/static/vendor/codemirror/codemirror.js", "text/javascript"),
                        ("/favicon.ico", "image/svg+xml")):
        answer = httpx.get(server.base_url + path)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media), path
    assert httpx.get(server.base_url + "/static/vendor/swagger-ui/LICENSE").status_code == 404
    assert httpx.get(server.base_url + "/static/vendor/../auth.py").status_code == 404
    page = httpx.get(server.base_url + "/docs").text
    assert "cdn" not in page.lower() and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
