"""Screenshots the browser tests take for the README, at desktop and phone width.

They go to ``docs/screenshots/NAME-desktop.png`` and ``NAME-phone.png`` when the
environment says ``COOPFED_SCREENSHOTS=1`` (regenerate them that way, look at
them, commit them), and to ``/tmp/coopfed-screenshots/`` otherwise, so that a
test run leaves the working tree clean.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cdp import Browser

REPO = Path(__file__).resolve().parents[2]
DESKTOP = (1280, 900)
PHONE = (390, 844)


def screenshot_dir() -> Path:
    if os.environ.get("COOPFED_SCREENSHOTS") == "1":
        folder = REPO / "docs" / "screenshots"
    else:
        folder = Path("/tmp/coopfed-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def desktop(browser: Browser) -> None:
    width, height = DESKTOP
    await browser.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


async def both_widths(browser: Browser, url: str, name: str) -> dict[str, Path]:
    """Open ``url`` at desktop and at phone width and save a full-page shot of each;
    fails when the page is wider than the phone."""
    shots: dict[str, Path] = {}
    await desktop(browser)
    await browser.goto(url)
    shots["desktop"] = await browser.screenshot(
        screenshot_dir() / f"{name}-desktop.png", full_page=True
    )
    await browser.phone(*PHONE)
    await browser.goto(url)
    width = await browser.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"{name} is {width}px wide on a {PHONE[0]}px phone"
    shots["phone"] = await browser.screenshot(
        screenshot_dir() / f"{name}-phone.png", full_page=True
    )
    return shots
