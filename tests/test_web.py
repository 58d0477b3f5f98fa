"""The posting page in a real headless Chromium (Debian's package) driven by Playwright."""

import os
import shutil
from pathlib import Path

import pytest

from test_api import start

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("TAGATLAS_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


@pytest.fixture()
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def test_typing_a_caption_shows_tags_and_the_map(browser, model_dir, tmp_path):
    folder = tmp_path / "web"
    shutil.copytree(model_dir, folder)
    proc, url = start(folder)
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        assert page.get_by_label("Caption").is_visible()
        page.get_by_label("Caption").press_sequentially("we're hiring! retail sales associate, apply now", delay=20)
        chips = page.locator("#tags button")
        chips.first.wait_for(timeout=30_000)
        tag = chips.first.get_attribute("data-tag")
        chips.first.focus()
        page.keyboard.press("Enter")  # keyboard works as well as the mouse
        page.wait_for_function("tag => document.getElementById('caption').value.includes('#' + tag)", arg=tag, timeout=10_000)
        page.locator(f"#tags button[data-tag='{tag}'].added").wait_for(timeout=30_000)
        assert page.locator(".leaflet-marker-icon").count() == 1
        assert page.locator("#place").inner_text().strip()
        page.locator("path.leaflet-interactive").first.wait_for(state="attached", timeout=10_000)
        page.get_by_role("searchbox", name="Search").fill("snow")
        page.get_by_role("button", name="Search", exact=True).click()
        page.locator("#results li").first.wait_for(timeout=30_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "posting-page.png"), full_page=True)
        assert not errors, errors
    finally:
        proc.terminate()
        proc.wait(timeout=30)
