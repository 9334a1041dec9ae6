"""Browser test (``--ui``): a class opens the app at once on a freshly started server.

The demo decoder arrives while the pages still load (its test predictions are computed first:
the cache folder is empty). Parts shown or hidden then (the Units view's scatter and maps, the
sidebar's lesson) kept their old visibility in the browser: measured on the code before the
fix, 3 of 8 pages opened at once (the first Units view without its scatter and maps, three
sidebars without the lesson), in 7 of 8 such starts; after it, 0 of 40 pages.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from core.bench.app import CHROMIUM, no_traceback, wait_shown_titles, wait_text, wait_titles

pytestmark = [pytest.mark.ui, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")]

# view -> (titles its plots must show, text it must hold)
PAGES = [("units", ["conv_4: 200 units", "conv_4/7 amplitude"], "Unit conv_4/7"),
         ("prune", ["conv_4: click a unit"], "conv_4/7: in use"),
         ("kernels", ["Decoder output kernel"], "Kernels fitted"),
         ("overview", ["Test block:"], "test Pearson r 0.970"),
         ("units", ["conv_4: 200 units", "conv_4/7 amplitude"], "Unit conv_4/7"),
         ("data", ["Loss", "Validation metric"], "weights of epoch 23")]


@pytest.fixture(scope="module")
def ui_env(tmp_path_factory):
    """A cache folder of its own, empty: the server computes the demo's predictions on first use."""
    return {"UNITSCOPE_CACHE": str(tmp_path_factory.mktemp("cold-cache"))}


def test_pages_opened_at_once_on_a_fresh_server_show_every_part(server, browser):
    contexts, pages = [], []
    try:
        for view, _, _ in PAGES:  # all requested before any has loaded
            ctx = browser.new_context(viewport={"width": 1280, "height": 1400})
            contexts.append(ctx)
            page = ctx.new_page()
            page.goto(f"{server}?view={view}&layer=conv_4&unit=7", wait_until="commit")
            pages.append(page)
        for page, (view, titles, text) in zip(pages, PAGES):
            wait_titles(page, titles, timeout=300)
            wait_text(page, text, timeout=300)
        for page, (view, titles, text) in zip(pages, PAGES):  # shown, not only made
            wait_shown_titles(page, titles, timeout=60)
            page.locator("button:text-is('2. What do units read?')").wait_for(state="visible", timeout=60000)
            if view == "overview":  # lesson step 1's button, shown with the demo's known roles
                page.locator("button:text-is('Each role in its band')").wait_for(state="visible", timeout=60000)
            no_traceback(page)
    finally:
        for ctx in contexts:
            ctx.close()
