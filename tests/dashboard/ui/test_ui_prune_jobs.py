"""Browser tests (``--ui``) of the class audit's layout and download findings (s28): the Prune
view's unit scatter keeps a usable width at 1024 x 768, and an export of nothing downloads
nothing (the alert says why)."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.bench.app import CHROMIUM, no_traceback, wait_text, wait_titles

pytestmark = [pytest.mark.ui, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium")]

# JS: [frame width, left, top] of the plots whose titles start with each prefix (CSS pixels; null if none)
_PLOTS_JS = """(prefixes) => {
  const views = [];
  const walk = (v) => { if (!v) return; views.push(v); if (v.child_views) for (const c of v.child_views) walk(c); };
  for (const v of (Bokeh.index.values ? Bokeh.index.values() : Object.values(Bokeh.index))) walk(v);
  return prefixes.map(p => {
    for (const v of views) {
      const m = v.model;
      if (!m || !m.title || typeof m.title.text !== 'string' || !m.title.text.startsWith(p) || !v.canvas_view) continue;
      const r = v.canvas_view.el.getBoundingClientRect();
      if (r.width > 0) return [v.frame.bbox.width, r.left, r.top];
    }
    return null;
  });
}"""

SCATTER, CURVES = "conv_2: click a unit", "Pruning curves"


@pytest.mark.parametrize("size", [(1024, 768), (1280, 720)])
def test_the_unit_scatter_keeps_a_usable_width(server, new_page, size):
    """At 1024 x 768 the scatter (its legend beside it) shared a row with the curves and its
    plot was squeezed to about 140 pixels, its tick labels overlapping: the curves now go
    below it where two plots do not fit; at 1280 they stay side by side."""
    page = new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(f"{server}?view=prune&layer=conv_2&unit=0")
    wait_text(page, "unit(s) pruned", timeout=180)
    wait_titles(page, [SCATTER, CURVES], timeout=60)
    page.wait_for_function(f"(p) => ({_PLOTS_JS})(p).every(x => x !== null)", arg=[SCATTER, CURVES],
                           timeout=30000)
    (scatter_w, scatter_x, scatter_y), (curves_w, curves_x, curves_y) = page.evaluate(_PLOTS_JS, [SCATTER, CURVES])
    assert scatter_w >= 250, f"the scatter's plot is {scatter_w:.0f} px wide at {size}"
    assert curves_w >= 250
    if size[0] == 1024:
        assert curves_y > scatter_y and curves_x == pytest.approx(scatter_x, abs=2)  # below it
    else:
        assert curves_y == pytest.approx(scatter_y, abs=2) and curves_x > scatter_x  # beside it
    no_traceback(page)


def test_an_export_of_nothing_downloads_no_file(server, new_page):
    """The "Export failed: ... compute them first" alert came with an empty unitscope-kernels.nc
    saved by the browser. The next download that has something to send is the first file."""
    page = new_page()
    downloads = []
    page.on("download", lambda d: downloads.append(d.suggested_filename))
    page.goto(f"{server}?view=export")
    button = page.locator("button:has-text('Kernels (netCDF)')")
    button.wait_for(timeout=180000)
    button.click()
    wait_text(page, "Export failed: No kernels yet", timeout=60)
    with page.expect_download(timeout=60000) as probe:
        page.locator("button:has-text('Probe result (netCDF)')").click()
    assert probe.value.suggested_filename == "unitscope-probe.nc"
    # the page's messages arrive in order: a file sent for the kernels would have come first
    assert downloads == ["unitscope-probe.nc"]
    no_traceback(page)
