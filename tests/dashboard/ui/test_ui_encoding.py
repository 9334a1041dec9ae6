"""Browser test of the Encoding tab (``--ui``): the shipped result is drawn at once, switching
channel and feature redraws the plots, a bad results file becomes an alert, no traceback.
``UNITSCOPE_SCREENSHOT_DIR=assets/screenshots`` makes it write the README's ``encoding.png``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.bench.app import CHROMIUM, launch_browser, plot_titles, serve_app, wait_titles

pytestmark = [pytest.mark.ui, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")]

ALL_TEXT_JS = """() => {
  const out = [];
  const walk = (n) => {
    if (n.nodeType === Node.TEXT_NODE) { out.push(n.textContent); return; }
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) walk(c);
  };
  walk(document.body);
  return out.join(' ');
}"""


def all_text(page) -> str:
    return page.evaluate(ALL_TEXT_JS)


def wait_text(page, needle: str, timeout: float = 60.0) -> None:
    page.wait_for_function(f"() => ({ALL_TEXT_JS})().includes({json.dumps(needle)})", timeout=timeout * 1000,
                           polling=100)


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
def encoding_server(encoding_root, demo_cache, tmp_path_factory):
    log = tmp_path_factory.mktemp("enclog") / "serve.log"
    env = {"UNITSCOPE_DATA_ROOT": str(encoding_root), "UNITSCOPE_CACHE": str(demo_cache)}
    with serve_app(env=env, log_path=log) as (url, _):
        yield url
    text = log.read_text(errors="replace")
    ours = [ln for ln in text.splitlines() if ln.strip().startswith("File ") and ("/dashboard/" in ln or "/core/" in ln)]
    assert not ours, text[-4000:]  # no traceback through UnitScope code in the server log


def test_encoding_tab_draws_switches_and_rejects_a_bad_file(encoding_server, tmp_path):
    with launch_browser(height=1500) as (browser, page):
        page.goto(f"{encoding_server}?view=encoding")
        wait_titles(page, ["Predicted vs actual: MEG", "r of DRE (all subjects); post-onset mean",
                           "Importance over time (all subjects, all channels); bold: word_freq",
                           "Importance of word_freq (all subjects)"], timeout=180)
        wait_text(page, "post-onset mean r (test epochs)")
        assert page.locator(".us-enc-score").count() == 3  # DRE, TRF, ridge ARX
        out = Path(os.environ.get("UNITSCOPE_SCREENSHOT_DIR", tmp_path))
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "encoding.png"), full_page=True)
        assert (out / "encoding.png").stat().st_size > 10_000
        # another channel: the predicted-vs-actual plot follows
        first = title_starting(page, "Predicted vs actual: ")
        other = "MEG001" if "MEG001," not in first else "MEG002"
        page.locator(".us-enc-channel select").select_option(other)
        wait_titles(page, [f"Predicted vs actual: {other}, epoch"], timeout=30)
        # another feature: the importance map and the bold course follow
        page.locator(".us-enc-feature select").select_option("word_length")
        wait_titles(page, ["Importance of word_length (all subjects)",
                           "Importance over time (all subjects, all channels); bold: word_length"], timeout=30)
        # another subject for the maps
        page.locator(".us-enc-subject select").select_option("S02")
        wait_titles(page, ["r of DRE (S02)", "Importance of word_length (S02)"], timeout=30)
        # bad files: visible alerts, the result stays on screen
        page.locator(".us-enc-file select").select_option("broken.nc")  # choosing a file loads it
        wait_text(page, "Encoding result not loaded: 'broken.nc' could not be read as netCDF")
        page.locator(".us-enc-file select").select_option("probe.nc")
        wait_text(page, "'probe.nc' is not an encoding result")
        assert page.locator("[role=alert]").count() >= 2
        assert title_starting(page, "Predicted vs actual: ").startswith(f"Predicted vs actual: {other},")
        text = all_text(page)
        assert "Traceback" not in text and 'File "' not in text
