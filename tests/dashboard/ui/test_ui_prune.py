"""Browser tests of dashboard part 2 (``--ui``): prune and undo, kernels redraw, report export,
two sessions at once, bad input. The app is served and driven with the same helpers as the
part-1 browser tests and the app benchmark (:mod:`core.bench.app`).
``UNITSCOPE_SCREENSHOT_DIR=assets/screenshots`` makes the screenshot test write the README's
pictures of the Prune, Kernels and Export views there."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.bench.app import _POINT_JS, CHROMIUM, all_text, no_traceback, unit_point, wait_text, wait_titles
from core.bench.app_prune import TOGGLE, wait_card

pytestmark = [pytest.mark.ui, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")]


def metric_after(page) -> str:
    return page.locator(".us-metric-after").inner_text()


def n_pruned(page) -> str:
    return page.locator(".us-n-pruned").inner_text()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "taken").write_text("a file where a folder is expected")
    return root


@pytest.fixture(scope="module")
def ui_env(data_root, demo_cache):
    """The served app (``server``, ``browser``, ``new_page``: tests/dashboard/conftest.py)."""
    return {"UNITSCOPE_DATA_ROOT": str(data_root), "UNITSCOPE_CACHE": str(demo_cache)}


def open_prune(page, url: str, layer: str = "conv_3", unit: int = 5) -> str:
    """Open the Prune view on ``layer``/``unit``; returns the unpruned metric text."""
    page.goto(f"{url}?view=prune&layer={layer}&unit={unit}")
    wait_text(page, "Held-out Pearson r", timeout=180)
    page.locator(f"button:text-is('{TOGGLE} {layer}/{unit}')").wait_for(timeout=60000)
    page.locator(".us-metric-after").wait_for(timeout=60000)
    return page.locator(".us-metric-before").inner_text()


def unit_state(page, layer: str, unit: int, state: str, timeout: float = 30.0) -> None:
    """Wait until the metric card says the unit is ``state`` ("pruned" or "in use")."""
    page.locator(f".us-unit-state:text-is('{layer}/{unit}: {state}')").first.wait_for(timeout=timeout * 1000)


def prune_click(page, layer: str, unit: int) -> None:
    page.locator(f"button:text-is('{TOGGLE} {layer}/{unit}')").click()
    unit_state(page, layer, unit, "pruned")


def test_prune_a_unit_changes_the_metric_and_undo_restores_it(server, new_page):
    page = new_page()
    before = open_prune(page, server, "conv_time_spat", 3)
    assert metric_after(page) == before and n_pruned(page) == "0"
    prune_click(page, "conv_time_spat", 3)
    page.locator(".us-n-pruned:text-is('1')").wait_for(timeout=30000)
    wait_text(page, "last change: pruned conv_time_spat/3")
    page.locator(".us-metric-after").filter(has_not_text=before).wait_for(timeout=30000)
    after = metric_after(page)
    assert after != before
    page.locator("button:text-is('Undo')").click()
    page.locator(".us-n-pruned:text-is('0')").wait_for(timeout=30000)
    page.locator(f".us-metric-after:text-is('{before}')").wait_for(timeout=30000)
    unit_state(page, "conv_time_spat", 3, "in use")
    no_traceback(page)


def test_two_quick_clicks_on_the_scatter_prune_two_units(server, new_page):
    """A second click within 300 ms reaches Bokeh as a double tap: it must still prune."""
    page = new_page()
    open_prune(page, server, "conv_2", 0)
    page.wait_for_function(f"(a) => ({_POINT_JS})(a) !== null", arg=["conv_2:", 49], timeout=60000)
    pts = {k: unit_point(page, "conv_2", k) for k in range(50)}

    def alone(k):  # no other point within two marker diameters
        return all((pts[k][0] - x) ** 2 + (pts[k][1] - y) ** 2 > 22 ** 2 for j, (x, y) in pts.items() if j != k)

    first, second = [k for k in range(50) if alone(k)][:2]
    page.mouse.click(*pts[first])
    page.mouse.click(*pts[second])  # within the double-tap window of the first click
    page.locator(".us-n-pruned:text-is('2')").wait_for(timeout=60000)
    unit_state(page, "conv_2", second, "pruned")
    no_traceback(page)


def test_kernels_redraw_after_a_prune(server, new_page):
    page = new_page()
    page.goto(f"{server}?view=kernels&layer=conv_3&unit=5")
    wait_titles(page, ["Decoder output kernel:\n[mask v0: 0 pruned]", "Unit conv_3/5 kernel:\n[mask v0: 0 pruned]"],
                timeout=240)
    page.locator(".bk-tab:text-is('Prune')").click()
    page.locator("select").first.select_option("conv_2")
    prune_click(page, "conv_2", 5)
    page.locator(".bk-tab:text-is('Kernels')").click()
    wait_titles(page, ["Decoder output kernel:\n[mask v1: 1 pruned] refit"], timeout=120)
    # the kernels from before the prune are drawn faintly beside the refit ones
    wait_text(page, "the faint dashed lines are the kernels before the last change")
    no_traceback(page)


def test_export_a_report_that_opens_offline(server, new_page, tmp_path):
    page = new_page()
    open_prune(page, server, "conv_4", 7)
    prune_click(page, "conv_4", 7)
    page.locator(".us-n-pruned:text-is('1')").wait_for(timeout=30000)
    page.locator(".bk-tab:text-is('Export')").click()
    with page.expect_download(timeout=120000) as info:
        page.locator("button:has-text('Session report (HTML)')").click()
    path = tmp_path / "report.html"
    info.value.save_as(path)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "conv_4</td><td>1</td><td>7" in text
    offline = new_page()
    requests = []
    offline.route("**/*", lambda route: (requests.append(route.request.url), route.continue_()
                                         if route.request.url.startswith(("file:", "data:")) else route.abort()))
    offline.goto(path.as_uri())
    assert offline.title().startswith("UnitScope session")
    assert "Layer summaries" in offline.inner_text("body") and "Pruning" in offline.inner_text("body")
    assert all(u.startswith(("file:", "data:")) for u in requests)
    n_img = offline.evaluate("() => Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length")
    assert n_img >= 2
    no_traceback(page)


def test_two_sessions_prune_independently(server, new_page):
    a, b = new_page(), new_page()
    base_a = open_prune(a, server, "conv_time_spat", 3)
    base_b = open_prune(b, server, "conv_time_spat", 3)
    assert base_a == base_b
    prune_click(a, "conv_time_spat", 3)
    a.locator(".us-n-pruned:text-is('1')").wait_for(timeout=30000)
    a.locator(".us-metric-after").filter(has_not_text=base_a).wait_for(timeout=30000)
    # session B has nothing pruned and still the unpruned metric
    assert n_pruned(b) == "0" and metric_after(b) == base_b
    assert b.locator(".us-unit-state:text-is('conv_time_spat/3: in use')").count() == 1
    unit = b.locator("input[placeholder='unit index']")
    unit.fill("9")
    unit.press("Enter")
    prune_click(b, "conv_time_spat", 9)
    b.locator(".us-n-pruned:text-is('1')").wait_for(timeout=30000)
    wait_text(b, "last change: pruned conv_time_spat/9")
    text_a = all_text(a)
    assert "pruned conv_time_spat/3" in text_a and "conv_time_spat/9" not in text_a and n_pruned(a) == "1"
    no_traceback(a)
    no_traceback(b)


def test_bad_input_in_the_app_gives_messages(server, new_page, tmp_path):
    page = new_page()
    open_prune(page, server, "conv_3", 0)
    page.locator("button:text-is('Prune whole layer')").click()
    page.locator(".us-n-pruned:text-is('100')").wait_for(timeout=60000)
    wait_text(page, "pruned every unit of conv_3")
    assert "unit(s) pruned" in all_text(page)
    other = {"format": "unitscope.maskset", "format_version": 1,
             "signature": {"kind": "shallow", "n_chans": 32, "n_outputs": 1, "units": {"conv_time_spat": 40}},
             "pruned": {"conv_time_spat": [1]}}
    page.locator("input[type=file]").first.set_input_files(files=[
        {"name": "other.json", "mimeType": "application/json", "buffer": json.dumps(other).encode()}])
    wait_text(page, "Mask not loaded: This mask was saved for shallow")
    page.locator(".bk-tab:text-is('Export')").click()
    folder = page.locator("input[placeholder^='a folder under the data root']")
    folder.fill("taken/sub")
    folder.press("Enter")
    page.locator("button:text-is('Save report and results')").click()
    wait_text(page, "Export failed: Cannot write to the folder", timeout=120)
    no_traceback(page)


def test_screenshots_of_the_prune_kernels_and_export_views(server, new_page, tmp_path):
    out = Path(os.environ.get("UNITSCOPE_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    page = new_page()
    page.set_viewport_size({"width": 1400, "height": 1500})
    open_prune(page, server, "conv_3", 5)
    page.locator("button:text-is('Compute ablation effects')").click()
    wait_titles(page, ["conv_3: drop on the validation block when each unit alone is pruned"], timeout=180)
    prune_click(page, "conv_3", 5)
    page.locator(".us-n-pruned:text-is('1')").wait_for(timeout=30000)
    wait_card(page, "last change: pruned conv_3/5")  # measured, not "measuring ..."
    page.screenshot(path=str(out / "prune.png"), full_page=True)
    page.locator(".bk-tab:text-is('Kernels')").click()
    wait_titles(page, ["Decoder output kernel:\n[mask v1: 1 pruned]", "Decoder output codes\nvs",
                       "Unit conv_3/5 kernel:\n[mask v1: 1 pruned]", "Unit conv_3/5 codes\nvs"], timeout=240)
    page.locator("button:text-is('Fit channel kernels')").click()  # the input's own: G03's high gamma
    wait_titles(page, ["G03, 60-90 Hz envelope kernel:\nfitted", "G03, 60-90 Hz envelope codes\nvs"],
                timeout=120)
    page.screenshot(path=str(out / "kernels.png"), full_page=True)
    page.locator(".bk-tab:text-is('Export')").click()
    page.locator("button:has-text('Session report (HTML)')").wait_for(timeout=60000)
    # the picture of a plot as its PNG download draws it: the ablation bars just computed
    page.locator("select").filter(visible=True).first.select_option("Ablation effects of the layer (Prune)")
    page.locator(".bk-btn:has-text('Preview')").filter(visible=True).click()
    wait_text(page, "Ablation effects of the layer (Prune), as the download draws it", timeout=120)
    page.locator("img[src^='data:image/png']").filter(visible=True).first.wait_for(timeout=30000)
    page.screenshot(path=str(out / "export.png"), full_page=True)
    for name in ("prune", "kernels", "export"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    no_traceback(page)
