"""Browser test of the Encoding tab (``--ui``): the shipped result is drawn at once, switching
channel and feature redraws the plots, a bad results file becomes an alert, no traceback.
``UNITSCOPE_SCREENSHOT_DIR=assets/screenshots`` makes it write the README's ``encoding.png``."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core.bench.app import CHROMIUM, all_text, plot_titles, wait_text, wait_titles

pytestmark = [pytest.mark.ui, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")]


def title_starting(page, prefix: str) -> str:
    return next(t for t in plot_titles(page) if t.startswith(prefix))


@pytest.fixture(scope="module")
def encoding_root(tmp_path_factory):
    import xarray as xr

    root = tmp_path_factory.mktemp("encdata")
    (root / "broken.nc").write_text("this is not a netCDF file")
    xr.Dataset({"amp_corr": (("unit", "freq"), np.zeros((2, 3)))}).to_netcdf(root / "probe.nc", engine="h5netcdf")
    return root


@pytest.fixture(scope="module")
def ui_env(encoding_root, demo_cache):
    """The shared ``server`` fixture (tests/dashboard/conftest.py) serves the app with this data root."""
    return {"UNITSCOPE_DATA_ROOT": str(encoding_root), "UNITSCOPE_CACHE": str(demo_cache)}


def test_encoding_tab_draws_switches_and_rejects_a_bad_file(server, new_page, tmp_path):
    page = new_page()
    page.set_viewport_size({"width": 1400, "height": 1500})
    page.goto(f"{server}?view=encoding")
    wait_titles(page, ["Predicted vs actual:\nMEG", "r of DRE (all subjects);\npost-onset mean",
                       "Importance over time\n(all subjects, all channels)\nbold: word_freq",
                       "Importance of word_freq (all subjects)"], timeout=180)
    wait_text(page, "post-onset mean r (test epochs)")
    assert page.locator(".us-enc-score").count() == 3  # DRE, TRF, ridge ARX
    wait_text(page, "Probe: done", timeout=120)  # the README's picture: the sidebar done loading too
    out = Path(os.environ.get("UNITSCOPE_SCREENSHOT_DIR", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "encoding.png"), full_page=True)
    assert (out / "encoding.png").stat().st_size > 10_000
    # another channel: the predicted-vs-actual plot follows
    first = title_starting(page, "Predicted vs actual:\n")
    other = "MEG001" if "MEG001," not in first else "MEG002"
    page.locator(".us-enc-channel select").select_option(other)
    wait_titles(page, [f"Predicted vs actual:\n{other}, epoch"], timeout=30)
    # another feature: the importance map and the bold course follow
    page.locator(".us-enc-feature select").select_option("word_length")
    wait_titles(page, ["Importance of word_length (all subjects)",
                       "Importance over time\n(all subjects, all channels)\nbold: word_length"], timeout=30)
    # another subject for the maps
    page.locator(".us-enc-subject select").select_option("S02")
    wait_titles(page, ["r of DRE (S02)", "Importance of word_length (S02)"], timeout=30)
    # bad files: visible alerts, the result stays on screen
    page.locator(".us-enc-file select").select_option("broken.nc")  # choosing a file loads it
    wait_text(page, "Encoding result not loaded: 'broken.nc' could not be read as netCDF")
    page.locator(".us-enc-file select").select_option("probe.nc")
    wait_text(page, "'probe.nc' is not an encoding result")
    assert page.locator("[role=alert]").count() >= 2
    assert title_starting(page, "Predicted vs actual:\n").startswith(f"Predicted vs actual:\n{other},")
    text = all_text(page)
    assert "Traceback" not in text and 'File "' not in text


def test_fit_shows_progress_and_stops_while_another_tab_stays_usable(server, new_page):
    a, b = new_page(), new_page()
    for page in (a, b):
        page.goto(f"{server}?view=encoding")
        wait_titles(page, ["Predicted vs actual:\nMEG"], timeout=180)
    a.locator("button:text-is('Fit')").click()
    wait_text(a, "dre epoch", timeout=120)  # the study's progress lines reach the page live
    # the other tab answers while the fit runs (its work is in a worker thread, through the queue)
    b.locator(".us-enc-channel select").select_option("MEG005")
    wait_titles(b, ["Predicted vs actual:\nMEG005, epoch"], timeout=30)
    a.locator("button:text-is('Stop')").click()
    wait_text(a, "Fit stopped; the result shown is unchanged.", timeout=120)
    assert "shipped example" in all_text(a) and "shipped example" in all_text(b)
    assert a.locator("button:text-is('Fit')").is_enabled()
