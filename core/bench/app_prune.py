"""Dashboard part 2 keys of ``unitscope bench app`` (issue 7), measured in headless Chromium.

Called by :func:`core.bench.app.run` on its served app and browser:

* ``prune_click_ms``: a click on "Prune / restore conv_3/K" (Prune view) to the metric card showing the
  re-measured metric of that mask, plus two painted frames; median of 10 (5 with --quick),
  each click pruning one more unit.
* ``kernel_refit_ms``: in the Kernels view, a click on "Prune / restore conv_3/5" to the decoder
  output's kernel redrawn for the new mask (its title names the mask version), plus two
  frames; median of 5 (3). Between two measurements Undo returns to the unpruned kernels.
* ``concurrent_prune_ms_p95``: five more browser sessions (opened and idle) each click prune
  at (nearly) the same time (the clicks are dispatched back to back); per session, its click
  to its own metric updated, timed inside its page; 95th percentile over 4 rounds (2).
* ``session_rss_mb``: the server's resident memory after those five sessions have opened the
  Prune view and pruned, minus before they were opened, divided by five.

Like :mod:`core.bench.app`, this module imports neither Panel nor the dashboard.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

__all__ = ["measure_part2", "server_rss_mb", "wait_card", "TOGGLE"]

TOGGLE = "Prune / restore"  # the toggle button's label before "LAYER/UNIT" (dashboard.views.prune.toggle_label)

_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"

# JS: the texts of the Prune metric cards (searched through shadow roots)
_CARD_TEXTS_JS = """() => {
  const found = [];
  const walk = (n) => {
    if (n.classList && n.classList.contains('us-prune-metric')) found.push(n.textContent);
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.children || []) walk(c);
  };
  walk(document.body);
  return found;
}"""
_CARD_JS = f"() => ({_CARD_TEXTS_JS})().join(' | ')"
# JS expression: card text `t` shows `needle` with its metric measured (not still waiting)
_MEASURED_JS = "(t.includes(needle) && !t.includes('measuring') && !t.includes('waiting for a free core'))"
_CARD_READY_JS = f"(needle) => ({_CARD_TEXTS_JS})().some(t => {_MEASURED_JS})"


_HAS_TITLE_JS = """(needle) => {
  for (const doc of (window.Bokeh ? Bokeh.documents : [])) {
    for (const m of doc.all_models) { if (m.type === 'Title' && typeof m.text === 'string' && m.text.startsWith(needle)) return true; }
  }
  return false;
}"""


# JS: the shadow root holding the metric card (found once; the card inside is re-rendered)
_FIND_CARD_ROOT = """
  const findRoot = () => {
    let hit = null;
    const walk = (n, root) => {
      if (hit) return;
      if (n.classList && n.classList.contains('us-prune-metric')) { hit = root; return; }
      if (n.shadowRoot) walk(n.shadowRoot, n.shadowRoot);
      for (const c of n.children || []) walk(c, root);
    };
    walk(document.body, document);
    return hit;
  };
"""

# JS: click the button labelled `label` and time, in the page, until the metric card shows
# `needle` re-measured (two painted frames later); the result lands in window.__usPruneMs and
# resolves the promise window.__usPruneDone, which the harness awaits (no polling of the page).
# A MutationObserver on the card's shadow root checks the card when it changes [A]: five
# pages polling every 5 ms took CPU from the server they were timing (two cores for
# everything); a 100 ms interval check is only a fallback and never decides the time.
_CLICK_AND_TIME_JS = """([label, needle]) => {""" + _FIND_CARD_ROOT + """
  const root = findRoot();
  const buttons = [];
  const walk = (n) => { if (n.tagName === 'BUTTON' && n.textContent.trim() === label) buttons.push(n);
                        if (n.shadowRoot) walk(n.shadowRoot); for (const c of n.children || []) walk(c); };
  walk(document.body);
  if (!buttons.length || !root) throw new Error('no button ' + label + ' or no metric card');
  window.__usPruneMs = null;
  let resolveDone;
  window.__usPruneDone = new Promise(r => { resolveDone = r; });
  let done = false, fallback = null, current = root;
  const t0 = performance.now();
  const check = () => {
    if (done) return;
    if (current.host && !current.host.isConnected) {  // the card was re-rendered elsewhere: follow it
      current = findRoot() || current;
      observer.disconnect();
      observer.observe(current, {subtree: true, childList: true, characterData: true});
    }
    const e = current.querySelector('.us-prune-metric');
    const t = e ? e.textContent : '';
    if (""" + _MEASURED_JS + """) {
      done = true;
      observer.disconnect();
      clearInterval(fallback);
      requestAnimationFrame(() => requestAnimationFrame(() => {
        window.__usPruneMs = performance.now() - t0;
        resolveDone(window.__usPruneMs);
      }));
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(root, {subtree: true, childList: true, characterData: true});
  fallback = setInterval(check, 100);
  buttons[0].click();
  return true;
}"""


# JS: the page's time from _CLICK_AND_TIME_JS once it is there, or null after `ms` milliseconds
_AWAIT_DONE_JS = "(ms) => Promise.race([window.__usPruneDone, new Promise(r => setTimeout(() => r(null), ms))])"


def server_rss_mb(url: str) -> float:
    """Resident memory (MB) of the ``panel serve`` process listening on ``url``'s port."""
    port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"panel" in cmd and b"--port" in cmd and cmd[cmd.index(b"--port") + 1] == port.encode():
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


def wait_card(page, needle: str, timeout: float = 60.0) -> None:
    """Wait until a Prune metric card shows ``needle`` and is not measuring, then two frames."""
    page.wait_for_function(_CARD_READY_JS, arg=needle, timeout=timeout * 1000, polling="raf")
    page.evaluate(_FRAMES_JS)



def _open_prune(page, url: str, layer: str, unit: int) -> None:
    page.goto(f"{url}?view=prune&layer={layer}&unit={unit}")
    wait_card(page, "unit(s) pruned", timeout=180)
    page.locator(f"button:text-is('{TOGGLE} {layer}/{unit}')").wait_for(timeout=60000)


def _set_unit(page, layer: str, unit: int) -> None:
    box = page.locator("input[placeholder='unit index']")
    box.fill(str(unit))
    box.press("Enter")
    page.locator(f"button:text-is('{TOGGLE} {layer}/{unit}')").wait_for(timeout=30000)


def _p95(values) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]


def measure_part2(browser, url: str, *, quick: bool = False, say=None) -> dict:
    """Measure the four part-2 keys on a served app (see the module docstring)."""
    say = say or (lambda msg: None)
    n_clicks, n_refits, n_rounds = (5, 3, 2) if quick else (10, 5, 4)
    out: dict = {}
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = ctx.new_page()
    try:
        layer = "conv_3"
        _open_prune(page, url, layer, 1)
        clicks = []
        for k in range(1, n_clicks + 1):
            if k > 1:
                _set_unit(page, layer, k)
            t0 = time.perf_counter()
            page.locator(f"button:text-is('{TOGGLE} {layer}/{k}')").click()
            wait_card(page, f"last change: pruned {layer}/{k} (", timeout=60)
            clicks.append((time.perf_counter() - t0) * 1000)
        say(f"prune clicks (ms): {[round(c) for c in clicks]}")

        say("kernels: fitting the unpruned kernels once (shared by every session)")
        page.goto(f"{url}?view=kernels&layer={layer}&unit=5")
        page.wait_for_function(_HAS_TITLE_JS, arg="Decoder output kernel:\n[mask v0: 0 pruned]", timeout=600000)
        refits = []
        for i in range(n_refits):
            t0 = time.perf_counter()
            page.locator(f"button:text-is('{TOGGLE} {layer}/5')").click()
            page.wait_for_function(_HAS_TITLE_JS, arg=f"Decoder output kernel:\n[mask v{2 * i + 1}: 1 pruned] refit",
                                   timeout=120000, polling="raf")
            page.evaluate(_FRAMES_JS)
            refits.append((time.perf_counter() - t0) * 1000)
            page.locator("button:text-is('Undo')").click()
            page.wait_for_function(_HAS_TITLE_JS, arg=f"Decoder output kernel:\n[mask v{2 * i + 2}: 0 pruned]",
                                   timeout=120000)
        say(f"kernel refits (ms): {[round(r) for r in refits]}")

        rss0 = server_rss_mb(url)
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1100}) for _ in range(5)]
        try:
            pages = [c.new_page() for c in contexts]
            for j, p in enumerate(pages):
                _open_prune(p, url, layer, 10 + j)
            for p in pages:  # sessions that are open and idle, as in a class, not still loading
                p.wait_for_load_state("networkidle")
                p.evaluate(_FRAMES_JS)
            times, rss1 = [], None
            for r in range(n_rounds):
                units = [10 + j + 5 * r for j in range(5)]
                if r:
                    for p, u in zip(pages, units):
                        _set_unit(p, layer, u)
                for p, u in zip(pages, units):  # five clicks dispatched back to back, timed in each page
                    p.evaluate(_CLICK_AND_TIME_JS, [f"{TOGGLE} {layer}/{u}", f"last change: pruned {layer}/{u} ("])
                # each page times itself; awaiting its promise adds no load while the others work
                for j, p in enumerate(pages):
                    ms = p.evaluate(_AWAIT_DONE_JS, 120000)
                    if ms is None:  # say what the session shows, for whoever reads the failure
                        raise TimeoutError(f"session {j + 1} of 5 did not show its metric within 120 s of its click "
                                           f"on {TOGGLE} {layer}/{units[j]}; its metric card reads "
                                           f"{p.evaluate(_CARD_JS)!r}")
                    times.append(float(ms))
                if rss1 is None:
                    rss1 = server_rss_mb(url)
            say(f"concurrent prunes (ms): {[round(t) for t in times]}")
        finally:
            for c in contexts:
                c.close()
    finally:
        ctx.close()
    out.update(
        prune_click_ms=round(statistics.median(clicks), 1),
        kernel_refit_ms=round(statistics.median(refits), 1),
        concurrent_prune_ms_p95=round(_p95(times), 1),
        session_rss_mb=round((rss1 - rss0) / 5, 1),
        prune_click_all_ms=[round(c, 1) for c in clicks],
        kernel_refit_all_ms=[round(r, 1) for r in refits],
        concurrent_prune_all_ms=[round(t, 1) for t in times],
        server_rss_mb=[round(rss0, 1), round(rss1, 1)],
    )
    return out
