"""The UI in a real headless Chromium (Debian's), driven by Playwright, against a real
``firehook serve``.

Chromium is installed with apt when it is missing and we run as root; Playwright's own
browser downloads are never used. Without a browser the tests skip — or fail under
``FIREHOOK_REQUIRE_BROWSER=1``, as CI sets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import support
from tests.receivers import Receiver

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = support.REPO / "test-artifacts" / "screenshots"


def _unavailable(reason: str) -> None:
    if os.environ.get("FIREHOOK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (FIREHOOK_REQUIRE_BROWSER=1: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


def _install_chromium() -> str | None:
    """``apt-get install chromium`` when it is absent and we may; the reason when it failed."""
    if Path(CHROMIUM).exists():
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing (install Debian's chromium package to run the browser tests)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-500:]}"
    return None if Path(CHROMIUM).exists() else f"{CHROMIUM} is still missing after apt-get install chromium"


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread until it is stopped, and later tests (asyncio.run) must not find one there.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    problem = _install_chromium()
    if problem:
        _unavailable(problem)
    manager = sync_playwright().start()
    try:
        launched = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except PlaywrightError as exc:  # a broken install, missing libraries…
        manager.stop()
        _unavailable(f"Chromium at {CHROMIUM} did not start: {str(exc).strip().splitlines()[0]}")
    yield launched
    launched.close()
    manager.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    # An hour between webhook attempts: a failed delivery waits for its next attempt, so its
    # run can be cancelled from the UI.
    yield from support.running_server(tmp_path_factory.mktemp("ui"), env={
        "FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost", "FIREHOOK_RETRY_SCHEDULE": "3600"})


@pytest.fixture(scope="module")
def api(server: support.ServerProcess) -> Iterator[httpx.Client]:
    yield from support.api_client(server)


@pytest.fixture
def context(browser: Any, server: support.ServerProcess) -> Iterator[Any]:
    """A fresh browser profile (no cookies) per test."""
    ctx = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, server: support.ServerProcess) -> Any:
    """A page signed in with the admin token; confirmation dialogs are accepted."""
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    sign_in(tab, server.token)
    return tab


def sign_in(tab: Any, token: str, next_path: str = "/projects") -> None:
    tab.goto("/signin?next=" + next_path)
    tab.get_by_label("Token").fill(token)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url("**" + next_path)


def screenshot(tab: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
