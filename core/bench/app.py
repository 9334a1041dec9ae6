"""``unitscope bench app``: serve the dashboard and time it in headless Chromium.

Keys (issue 6): ``cold_start_s`` (server process start to the demo overview rendered with
its decoder ready), ``unit_click_ms`` (a click on a unit of the scatter to its amplitude
map, phase map and most-activating windows rendered; median of 10), ``layer_switch_ms``
(choosing another layer to its scatter and maps rendered; median of 5). Also reported:
the per-click times, the server command, whether the demo decoder and probe were shipped,
``torch_threads`` and ``device``.

"Rendered" means the browser holds the Bokeh models of the new view (their titles name
the new layer/unit) and two animation frames have been painted since. The app runs as
``panel serve launch.py --num-threads 2`` in a subprocess (the README's command); this
module imports neither Panel nor the dashboard.

The helpers :func:`serve_app`, :func:`launch_browser`, :func:`wait_titles`, :func:`click_unit`,
:func:`unit_point` are shared with the browser tests.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .._validation import UnitScopeError

__all__ = ["run", "serve_app", "launch_browser", "wait_titles", "click_unit", "unit_point", "select_layer",
           "CHROMIUM", "CHROMIUM_ARGS", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

# JS: the titles of all Bokeh plots in the page
_TITLES_JS = """() => {
  const out = [];
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) {
    for (const m of doc.all_models) { if (m.type === 'Title' || (m.constructor && m.constructor.__name__ === 'Title')) out.push(m.text); }
  }
  return out;
}"""

# JS: true when every needle is contained in some plot title
_HAS_TITLES_JS = """(needles) => {
  const titles = [];
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) {
    for (const m of doc.all_models) { if (typeof m.text === 'string' && m.type === 'Title') titles.push(m.text); }
  }
  return needles.every(n => titles.some(t => t.startsWith(n)));
}"""

_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"

# JS: page coordinates of a unit's point in the scatter whose title starts with `prefix`
_POINT_JS = """([prefix, k]) => {
  const views = [];
  const walk = (v) => { if (!v) return; views.push(v); if (v.child_views) for (const c of v.child_views) walk(c);
                         if (v.renderer_views) for (const c of v.renderer_views.values()) walk(c); };
  for (const v of Bokeh.index.values ? Bokeh.index.values() : Object.values(Bokeh.index)) walk(v);
  for (const v of views) {
    const m = v.model;
    if (!m || !m.title || typeof m.title.text !== 'string' || !m.title.text.startsWith(prefix)) continue;
    for (const r of m.renderers) {
      const d = r.data_source && r.data_source.data;
      if (!d || !d.amp || !d.index) continue;
      const i = Array.from(d.index).indexOf(k);
      if (i < 0) continue;
      const sx = v.frame.x_scale.compute(d.amp[i]), sy = v.frame.y_scale.compute(d.phase[i]);
      const rect = v.canvas_view.el.getBoundingClientRect();
      return [rect.left + sx, rect.top + sy];
    }
  }
  return null;
}"""


# JS: the text of the page including every shadow root (Panel renders into shadow DOM)
_ALL_TEXT_JS = """() => {
  const out = [];
  const walk = (n) => {
    if (n.nodeType === Node.TEXT_NODE) { out.push(n.textContent); return; }
    if (n.nodeName === 'STYLE' || n.nodeName === 'SCRIPT') return;  // (a failure quoted CSS alone)
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) walk(c);
  };
  walk(document.body);
  return out.join(' ');
}"""


def all_text(page) -> str:
    """Text of the page including every shadow root (Panel renders into shadow DOM); the text
    of style and script elements left out."""
    return page.evaluate(_ALL_TEXT_JS)


def wait_text(page, needle, timeout: float = 60.0) -> None:
    """Wait until the page text (shadow roots included) contains ``needle`` (a str, or a
    list of str: any of them).

    On time-out, saves a screenshot to ``$TMPDIR/unitscope-ui-failure.png`` and raises
    ``TimeoutError`` quoting the end of the page text.
    """
    needles = [needle] if isinstance(needle, str) else list(needle)
    try:
        page.wait_for_function(f"() => {{ const t = ({_ALL_TEXT_JS})(); "
                               f"return {json.dumps(needles)}.some(n => t.includes(n)); }}",
                               timeout=timeout * 1000, polling=200)
    except Exception:
        page.screenshot(path=str(Path(os.environ.get("TMPDIR", "/tmp")) / "unitscope-ui-failure.png"))
        raise TimeoutError(f"{needle!r} did not appear; page text ends with: {all_text(page)[-1500:]!r}") from None


def no_traceback(page) -> None:
    """Fail when a Python traceback reached the page."""
    text = all_text(page)
    if "Traceback" in text or 'File "' in text:
        raise AssertionError(f"a Python traceback reached the page: {text[-1500:]!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(*, env: dict | None = None, port: int | None = None, num_threads: int = 2,
              timeout: float = 300.0, log_path: str | Path | None = None):
    """Run ``panel serve launch.py`` in a subprocess; yields ``(url, t_start)``.

    ``t_start`` is ``time.perf_counter()`` just before the process was started. The server
    listens on localhost only (``--address localhost``; Panel's default is every interface).
    """
    port = port or _free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(ROOT / "launch.py"), "--address", "localhost",
           "--port", str(port), "--num-threads", str(num_threads), "--liveness"]
    full_env = {**os.environ, **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    t_start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}/launch"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise UnitScopeError(f"panel serve exited with status {proc.returncode}; command: {' '.join(cmd)}")
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/liveness", timeout=60):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise UnitScopeError(f"panel serve did not answer within {timeout:.0f} s") from None
                time.sleep(0.05)  # polling the server's readiness, not synchronising a test
        yield url, t_start
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()


@contextlib.contextmanager
def _server_log_on_error(log_path: Path, n_lines: int = 40):
    """On an error, print the last ``n_lines`` of the server's log (kept at ``log_path``)
    to stderr: a timed-out page says what it shows, the server says why."""
    try:
        yield
    except BaseException:
        try:
            tail = log_path.read_text(errors="replace").splitlines()[-n_lines:]
        except OSError:
            tail = []
        print(f"unitscope bench app: the server's log ({log_path}), last {len(tail)} lines:\n" + "\n".join(tail),
              file=sys.stderr)
        raise


@contextlib.contextmanager
def launch_browser(*, width: int = 1400, height: int = 1000):
    """Headless Debian Chromium through Playwright; yields ``(browser, page)``."""
    if not Path(CHROMIUM).exists():
        raise UnitScopeError(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover
        raise ImportError("The app benchmark needs Playwright: pip install 'unitscope[test]'") from exc
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield browser, page
        finally:
            browser.close()


def wait_titles(page, needles, *, timeout: float = 60.0) -> None:
    """Wait until every string in ``needles`` starts some Bokeh plot title, then two frames.

    On time-out, raises ``TimeoutError`` quoting the titles the page has and the end of its text.
    """
    try:
        page.wait_for_function(_HAS_TITLES_JS, arg=list(needles), timeout=timeout * 1000, polling="raf")
    except Exception:
        try:
            # shadow roots included: Panel renders there, and the body's own text is the header only
            titles, text = plot_titles(page), all_text(page)[-1500:]
        except Exception as exc:  # the page itself is gone
            titles, text = [], f"(page unreadable: {exc})"
        raise TimeoutError(f"plot titles {list(needles)!r} did not all appear within {timeout:.0f} s; the page has "
                           f"titles {titles!r}; its text ends with: {text!r}") from None
    page.evaluate(_FRAMES_JS)


def plot_titles(page) -> list[str]:
    """Titles of every plot of the page's documents, shown or not."""
    return page.evaluate(_TITLES_JS)


# JS: titles of the plots drawn with a size on the page (a hidden plot's canvas has none)
_SHOWN_TITLES_JS = """() => {
  const views = [];
  const walk = (v) => { if (!v) return; views.push(v); if (v.child_views) for (const c of v.child_views) walk(c); };
  for (const v of (window.Bokeh ? (Bokeh.index.values ? Bokeh.index.values() : Object.values(Bokeh.index)) : [])) walk(v);
  const out = [];
  for (const v of views) {
    const m = v.model;
    if (!m || !m.title || typeof m.title.text !== 'string' || !v.canvas_view) continue;
    const r = v.canvas_view.el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) out.push(m.title.text);
  }
  return out;
}"""


def shown_plot_titles(page) -> list[str]:
    """Titles of the plots the page shows (:func:`plot_titles` also names hidden ones)."""
    return page.evaluate(_SHOWN_TITLES_JS)


def wait_shown_titles(page, needles, *, timeout: float = 60.0) -> None:
    """Wait until every string in ``needles`` starts the title of a plot the page shows; on
    time-out, raises ``TimeoutError`` quoting the titles shown and all titles."""
    js = f"(needles) => {{ const t = ({_SHOWN_TITLES_JS})(); return needles.every(n => t.some(x => x.startsWith(n))); }}"
    try:
        page.wait_for_function(js, arg=list(needles), timeout=timeout * 1000, polling=250)
    except Exception:
        raise TimeoutError(f"plots {list(needles)!r} were not all shown within {timeout:.0f} s; shown: "
                           f"{shown_plot_titles(page)!r}; all: {plot_titles(page)!r}") from None


def unit_point(page, layer: str, k: int) -> tuple[float, float]:
    """Page coordinates (CSS pixels) of unit ``k``'s point in the scatter of ``layer``."""
    xy = page.evaluate(_POINT_JS, [f"{layer}:", k])
    if xy is None:
        raise UnitScopeError(f"unit {k} of {layer} is not in the scatter")
    return float(xy[0]), float(xy[1])


def click_unit(page, layer: str, k: int) -> None:
    """Click unit ``k`` in the scatter of ``layer`` (a real mouse click at its point).

    Clicks may follow each other faster than a person would (Bokeh then reads the second
    as a double tap; the app selects on double taps too).
    """
    page.mouse.click(*unit_point(page, layer, k))


def unit_needles(layer: str, k: int) -> list[str]:
    return [f"{layer}/{k} amplitude", f"{layer}/{k} phase", f"{layer}/{k} most-activating"]


def select_layer(page, layer: str) -> None:
    page.locator("select").first.select_option(layer)


def open_units(page, url: str, layer: str, *, timeout: float = 120.0) -> None:
    page.goto(f"{url}?view=units&layer={layer}&unit=0")
    wait_titles(page, [f"{layer}:"] + unit_needles(layer, 0), timeout=timeout)


def _warm_demo_cache() -> None:
    """Run the app's demo start-up path once in a subprocess (fills the on-disk caches)."""
    code = ("from dashboard.decoder import Decoder; from core.workspace import Workspace, default_cache_dir; "
            "Decoder(Workspace.demo(), label='demo', cache_dir=default_cache_dir()).predictions()")
    subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), check=True)


def run(*, quick: bool = False, progress=None) -> dict:
    """Serve the app, then time the cold start, unit clicks and layer switches."""
    say = progress or (lambda msg: None)
    from ..workspace import ASSETS_DIR

    shipped_model = (ASSETS_DIR / "demo-deep4" / "model.pt").is_file()
    shipped_probe = (ASSETS_DIR / "demo-probe" / "deep4.nc").is_file()
    if not shipped_model:
        say("no shipped demo decoder: making sure the cached one exists (trains once)")
        from ..workspace import Workspace

        Workspace.demo()
    # like the cached decoder, the demo's test-block predictions are cached on disk after the
    # first start (keyed by the model hash); the timed start below finds them, as a class would
    say("warming the on-disk caches of the demo (decoder, test predictions)")
    _warm_demo_cache()
    n_clicks, n_switch = (5, 3) if quick else (10, 5)
    threads = max(1, (os.cpu_count() or 2) - 1)  # the app's default (dashboard.app.configure_process)
    result: dict = {}
    log_dir = Path(tempfile.mkdtemp(prefix="unitscope-bench-app-"))
    log_path = log_dir / "serve.log"
    with launch_browser() as (browser, page), _server_log_on_error(log_path):
        with serve_app(env={"UNITSCOPE_TORCH_THREADS": str(threads)}, log_path=log_path) as (url, t_start):
            say("server up; loading the demo page")
            page.goto(url)
            wait_titles(page, ["Test block:"], timeout=300)
            result["cold_start_s"] = round(time.perf_counter() - t_start, 2)
            say(f"cold start {result['cold_start_s']} s")
            layer = "conv_2"
            page.locator(".bk-tab:text-is('Units')").click()
            wait_titles(page, [f"{layer}:"] + unit_needles(layer, 0), timeout=120)
            clicks = []
            for k in range(1, n_clicks + 1):
                unit = (7 * k) % 50 or 1
                t0 = time.perf_counter()
                click_unit(page, layer, unit)
                wait_titles(page, unit_needles(layer, unit), timeout=30)
                clicks.append((time.perf_counter() - t0) * 1000)
            say(f"unit clicks (ms): {[round(c) for c in clicks]}")
            switches = []
            order = ["conv_3", "conv_4", "conv_time_spat", "conv_2", "conv_3"][:n_switch]
            for name in order:
                t0 = time.perf_counter()
                select_layer(page, name)
                wait_titles(page, [f"{name}:", f"{name}/"], timeout=30)
                switches.append((time.perf_counter() - t0) * 1000)
            say(f"layer switches (ms): {[round(s) for s in switches]}")
            from .app_prune import measure_part2  # issue 7 keys: prune, kernels, five sessions

            result.update(measure_part2(browser, url, quick=quick, say=say))
    shutil.rmtree(log_dir, ignore_errors=True)
    result.update(
        unit_click_ms=round(statistics.median(clicks), 1),
        layer_switch_ms=round(statistics.median(switches), 1),
        unit_click_all_ms=[round(c, 1) for c in clicks],
        layer_switch_all_ms=[round(s, 1) for s in switches],
        server="panel serve launch.py --num-threads 2",
        demo_decoder_shipped=shipped_model, demo_probe_shipped=shipped_probe,
        quick=quick, torch_threads=threads, device="cpu",
        targets={"cold_start_s": 15, "unit_click_ms": 500, "layer_switch_ms": 1000, "prune_click_ms": 300,
                 "kernel_refit_ms": 1500, "concurrent_prune_ms_p95": 1000, "session_rss_mb": 100},
    )
    return result
