"""Real headless Chromium (Debian's) driven by Playwright for Python, with screenshots kept as test artifacts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SCRIPT = Path(__file__).with_name("install_chromium.sh")
ARTIFACTS = REPO / "test-artifacts" / "portal"
# No GPU, sandbox or background traffic: the same browser whether run as root, in CI or offline.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def require_chromium() -> Path:
    """The Chromium binary, installed first if missing and possible; otherwise the test is skipped."""
    if not CHROMIUM.exists():
        subprocess.run(["sh", str(INSTALL_SCRIPT)], check=False, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed and could not be installed here "
                    f"(run {INSTALL_SCRIPT.relative_to(REPO)} as root); the portal browser tests need it")
    return CHROMIUM


class Browser:
    """One fresh browser profile; `page` is its tab. JavaScript errors on the page are collected."""

    def __init__(self, context: Any, name: str) -> None:
        self.context = context
        self.name = name
        self.page = context.pages[0] if context.pages else context.new_page()
        self.page_errors: list[str] = []
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.shots = 0

    def screenshot(self, label: str) -> Path:
        """Saves test-artifacts/portal/<test>-<nn>-<label>.png (numbered in the order taken)."""
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def chromium(tmp_path: Path, name: str, width: int = 1280, height: int = 900) -> Iterator[Browser]:
    """A headless Chromium with a fresh user-data dir under tmp_path, closed afterwards."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / f"chromium-profile-{name}"), executable_path=str(executable), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": width, "height": height}, accept_downloads=True)
        context.set_default_timeout(15_000)
        browser = Browser(context, name)
        try:
            yield browser
        finally:
            try:
                browser.screenshot("last")
            except Exception:
                pass
            context.close()
