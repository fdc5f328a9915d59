"""Browser tests: Debian's chromium, driven by Selenium through Debian's chromedriver,
against a live server of the service (pytest-django's ``live_server``).

The test command installs both packages (scripts/test); nothing is downloaded, and
Selenium's own driver manager is never asked. Without them a test is skipped with the
reason, except in CI (``CI`` set), where it fails.

Each test takes screenshots of its steps (``shot``). When a test fails they are kept in
``artifacts/browser/<test>/`` (printed in the report), with the page's HTML; when it
passes they are thrown away, unless ``BROWSER_SCREENSHOTS`` names a folder: the steps
given a ``keep`` name are then written there (the README's pictures: see
``scripts/screenshots``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
DESKTOP = (1280, 900)
PHONE = (390, 844)
# The flags a headless chromium needs as root on a machine without a network or a GPU.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-extensions",
    "--lang=en-US",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
)


@pytest.fixture(scope="session")
def _chromium():
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        message = f"browser tests need {', '.join(missing)} (apt packages chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never downloads anything
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size={},{}".format(*DESKTOP)):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_failed = report.failed
    return report


class Shots:
    """Screenshots of a test's steps, numbered in order."""

    def __init__(self, driver, name: str) -> None:
        self.driver = driver
        self.folder = Path(tempfile.mkdtemp(prefix="browser-shots-"))
        self.name = name
        self.count = 0
        readme = os.environ.get("BROWSER_SCREENSHOTS")
        self.keep_in = Path(readme) if readme else None

    def __call__(self, step: str, *, keep: str = "") -> None:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}.png"
        self.driver.save_screenshot(str(path))
        if keep and self.keep_in:
            self.keep_in.mkdir(parents=True, exist_ok=True)
            full = self.driver.get_window_size()
            # The whole page: the window's height is the page's, plus the window's own
            # frame (outer less inner height).
            height, frame = self.driver.execute_script(
                "return [document.documentElement.scrollHeight,"
                " window.outerHeight - window.innerHeight]"
            )
            self.driver.set_window_size(full["width"], min(max(height, 400), 2400) + frame)
            self.driver.save_screenshot(str(self.keep_in / f"{keep}.png"))
            self.driver.set_window_size(full["width"], full["height"])

    def finish(self, failed: bool) -> Path | None:
        if not failed:
            shutil.rmtree(self.folder, ignore_errors=True)
            return None
        target = ARTIFACTS / self.name
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.folder), target)
        self.driver.save_screenshot(str(target / "zz-at-failure.png"))
        (target / "zz-at-failure.html").write_text(self.driver.page_source)
        return target


@pytest.fixture(scope="session")
def _shared_sqlite(django_db_setup, django_db_blocker):
    """The live server's request threads share an in-memory SQLite database with the
    tests, as Django's own LiveServerTestCase lets them; until the live server (set up
    after this) has stopped."""
    with django_db_blocker.unblock():
        shared = [c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()]
    for connection in shared:
        connection.inc_thread_sharing()
    yield
    for connection in shared:
        connection.dec_thread_sharing()


@pytest.fixture
def browser(_shared_sqlite, _chromium, live_server, request):
    """The browser, on a clean profile, at desktop size; ``browser.url(path)`` is the
    live server's URL of ``path``; ``browser.shot(step)`` takes a step's screenshot."""
    driver = _chromium
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.set_window_size(*DESKTOP)
    driver.url = lambda path: f"{live_server.url}{path}"
    driver.shot = Shots(driver, re.sub(r"[^\w.-]+", "-", request.node.name))
    yield driver
    kept = driver.shot.finish(getattr(request.node, "browser_failed", False))
    if kept:
        print(f"\nbrowser screenshots of the failed test: {kept}")
    driver.get("about:blank")
