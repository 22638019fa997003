"""A real headless Chromium for the dashboard's tests and screenshots, and a drain app served
from a thread so that blocking browser calls never stall the app's event loop.

The browser is Debian's ``chromium`` driven through Debian's ``chromium-driver`` by Selenium
(nothing downloads a browser: Selenium Manager is bypassed by naming the driver's path). Each
:func:`chromium` gets a fresh profile directory, no network beyond what the page asks for, and
keeps the browser console (``goog:loggingPrefs``), so a test can assert that a page logged no
error (a CSP violation, a failed fetch and a script exception are each a SEVERE entry).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

#: where Debian installs them (packages chromium and chromium-driver)
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER_PATHS = ("/usr/bin/chromedriver",)
#: the window the pages are shown (and screenshotted) in
WINDOW = (1400, 1000)
#: seconds a served app may take to start
START_S = 30.0


def find_chromium() -> tuple[str, str] | None:
    """(browser, driver) paths, or None when either is not installed."""
    browser = next((p for p in CHROMIUM_PATHS if Path(p).exists()), shutil.which("chromium"))
    driver = next((p for p in DRIVER_PATHS if Path(p).exists()), shutil.which("chromedriver"))
    if browser is None or driver is None:
        return None
    return browser, driver


@contextmanager
def chromium(
    *, basic_auth: tuple[str, str] | None = None, window: tuple[int, int] = WINDOW
) -> Iterator[Any]:
    """A Selenium WebDriver on a new headless Chromium; quit (and its profile removed) on exit.

    ``basic_auth`` adds ``Authorization: Basic ...`` to every request the browser makes (the
    DevTools protocol's ``Network.setExtraHTTPHeaders``), as a browser that has been given
    the credentials does.

    Raises:
        RuntimeError: chromium or chromium-driver is not installed.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if found is None:
        raise RuntimeError("chromium and chromium-driver are needed (apt-get install ...)")
    browser, driver_path = found
    profile = tempfile.mkdtemp(prefix="drain-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        f"--window-size={window[0]},{window[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(30)
        driver.set_script_timeout(30)
        if basic_auth is not None:
            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd(
                "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
            )
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """The browser console's SEVERE entries since the last call (each read once)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def wait_for_charts(driver: Any, timeout_s: float = 20.0) -> dict[str, str]:
    """Wait until every ``.chart`` of the page is drawn, empty or failed; their states by id.

    Raises:
        TimeoutError: a chart is still loading after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    script = (
        "return Array.from(document.querySelectorAll('.chart'))"
        ".map(function (e) { return [e.id, e.getAttribute('data-state') || 'loading']; });"
    )
    while True:
        states = dict(driver.execute_script(script))
        if all(state in ("ready", "empty", "failed") for state in states.values()):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"charts still loading: {states}")
        time.sleep(0.05)  # bounded by the deadline


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a free 127.0.0.1 port, in a thread with its own
    event loop (the lifespan runs there); yield the base URL; shut down on exit."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except (OSError, RuntimeError, SystemExit) as error:  # reported to the caller below
            failure.append(error)

    thread = threading.Thread(target=run, name="drain-served", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_S
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"the app did not start: {failure!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not start")
        time.sleep(0.02)  # start-up polling, bounded
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_S)
