"""How often the page's prediction bars update while a person draws: a 5 s continuous stroke in headless
Chromium against a real `cnnlab serve`, counting /predict responses the page received."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def measure(base_url: str, seconds: float = 5.0) -> dict:
    from playwright.sync_api import sync_playwright

    from browser import launch

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(base_url + "/")
        page.wait_for_selector("#summary table")
        answered = []
        page.on("response", lambda r: answered.append(time.perf_counter()) if r.url.endswith("/predict") else None)
        box = page.locator("#pad").bounding_box()
        cx, cy = box["x"] + 140, box["y"] + 140
        page.mouse.move(cx, cy)
        page.mouse.down()
        t0, step = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:  # a loop of circles, one mouse event every ~10 ms
            step += 1
            angle = step * 0.15
            page.mouse.move(cx + 90 * math.cos(angle), cy + 90 * math.sin(angle))
            page.wait_for_timeout(10)
        page.mouse.up()
        elapsed = time.perf_counter() - t0
        during = [t for t in answered if t <= t0 + elapsed]
        browser.close()
    return {
        "what": "prediction updates while drawing",
        "seconds": round(elapsed, 1),
        "mouse_events": step,
        "updates": len(during),
        "updates_per_s": round(len(during) / elapsed, 1),
        "goal_per_s": 20,
    }
