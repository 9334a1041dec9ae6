"""Fixtures of the dashboard tests: a small untrained decoder, a real (short) probe result,
and a demo cache folder holding a small decoder so the app starts in seconds."""
from __future__ import annotations

import re

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def _extensions():
    """Panel/HoloViews extensions and torch threads, as the app sets them once per process."""
    from dashboard.app import configure_process

    configure_process()


@pytest.fixture(scope="session")
def tiny_ws():
    """A Deep4 workspace on 60 s of the demo (untrained: tests check wiring, not accuracy)."""
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    return Workspace.create(DataSpec(duration=60.0), TrainConfig(max_epochs=1))


@pytest.fixture(scope="session")
def tiny_decoder(tiny_ws):
    from dashboard.decoder import Decoder

    return Decoder(tiny_ws, label="tiny demo")


@pytest.fixture(scope="session")
def tiny_probe(tiny_decoder):
    """A real probe result of the tiny decoder (2 iterations, classified)."""
    import copy

    from core.probing.pipeline import ProbeConfig, finish, start_probe

    X, y = tiny_decoder.probe_inputs()
    run = start_probe(copy.deepcopy(tiny_decoder.ws.model).eval(), X, sfreq=tiny_decoder.sfreq,
                      config=ProbeConfig(n_iterations=2, n_null=2), y=y, task=tiny_decoder.task,
                      ch_names=tiny_decoder.ch_names)
    run.run()
    return finish(run)


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory, tiny_ws):
    """A UNITSCOPE_CACHE folder whose demo run is the tiny workspace (no training needed)."""
    from core.workspace import DEMO_VERSION

    root = tmp_path_factory.mktemp("uscache")
    tiny_ws.save(root / f"demo-deep4-v{DEMO_VERSION}", demo_version=DEMO_VERSION)
    return root


class ServedDoc:
    """A served document's next-tick queue (what the app needs of a Bokeh document): the
    callbacks the app schedules on the event loop wait in ``ticks`` until a test runs them."""

    session_context = object()

    def __init__(self):
        self.ticks = []

    def add_next_tick_callback(self, fn):
        self.ticks.append(fn)


@pytest.fixture()
def sessions(tmp_path, monkeypatch, tiny_decoder, tiny_probe):
    """``make(decoder=True)``: a new session (closed after the test) and its prune state, with
    the tiny decoder and probe set and the evaluator built (``decoder=False``: neither)."""
    from dashboard.state import Session
    from dashboard.views.prune import prune_state_of

    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    made = []

    def make(decoder=True):
        s = Session()
        if decoder:
            s.set_decoder(tiny_decoder, probe=tiny_probe, probe_source="test")
        made.append(s)
        ps = prune_state_of(s)
        if decoder:
            ps.activate()
            assert ps.join() and ps.ready
        return s, ps

    yield make
    for s in made:
        s.close()


@pytest.fixture()
def served_doc():
    """A fresh :class:`ServedDoc`."""
    return ServedDoc()


@pytest.fixture(scope="session")
def fif():
    """``fif(path, ch_names, ...)`` writes a small FIF recording (see :func:`write_fif`)."""
    return write_fif


def write_fif(path, ch_names, *, sfreq=250.0, seconds=60.0, seed=0, misc=("speed",)):
    """A small FIF recording with the given EEG channel names plus misc target channels."""
    import mne

    rng = np.random.default_rng(seed)
    names = list(ch_names) + list(misc)
    n = int(sfreq * seconds)
    data = rng.standard_normal((len(names), n)) * 1e-5
    info = mne.create_info(names, sfreq, ["eeg"] * len(ch_names) + ["misc"] * len(misc))
    mne.io.RawArray(data, info, verbose="error").save(path, overwrite=True, verbose="error")
    return path


@pytest.fixture(scope="session")
def stim_fif():
    """``stim_fif(path, ...)`` writes a small MEG FIF with a stim channel (see :func:`write_stim_fif`)."""
    return write_stim_fif


def write_stim_fif(path, *, sfreq=250.0, seconds=60.0, every=600, first=500):
    """A small MEG FIF as an Elekta system writes it: a magnetometer, a gradiometer and a stim
    channel STI101 whose triggers, every ``every`` samples from ``first`` on, alternate codes 1
    and 2 (events read from it)."""
    import mne

    data = np.random.default_rng(0).standard_normal((3, int(sfreq * seconds))) * 1e-12
    data[2] = 0.0
    for k, at in enumerate(range(first, int(sfreq * (seconds - 2)), every)):
        data[2, at:at + 5] = 1 + k % 2
    info = mne.create_info(["MEG0111", "MEG2643", "STI101"], sfreq, ["mag", "grad", "stim"])
    mne.io.RawArray(data, info, verbose=False).save(path, overwrite=True, verbose=False)
    return path


# ---- browser tests (``--ui``): one served app per module, one Chromium, fresh pages ----------
def app_tracebacks(log_text: str) -> list[str]:
    """Traceback blocks of a server log raised by the app.

    Tornado's write to a websocket that a closing browser tab already shut
    (StreamClosedError / WebSocketClosedError) is not the app's, nor is Bokeh's own assertion
    when a tab's websocket closes before Bokeh has made its session (``notify_connection_lost``
    with no session yet: a test that goes on to its next page under load; bokeh/bokeh#14720
    shows the same trace), and a UnitScopeError is a reported user error.
    """
    parts = log_text.split("Traceback (most recent call last):")
    benign = ("WebSocketClosedError", "StreamClosedError", "UnitScopeError")
    out = []
    for before, after in zip(parts, parts[1:]):
        # the traceback without the log lines after it (up to the next one that starts with a
        # date), and with the line before it (what the app was doing: "done callback of job ...")
        body = re.split(r"\n(?=\d{4}-\d\d-\d\d )", after, maxsplit=1)[0]
        closed_before_its_session = ("notify_connection_lost" in body and "bokeh/server/connection.py" in body
                                     and "assert self._session is not None" in body and "dashboard" not in body)
        if not any(k in body for k in benign) and not closed_before_its_session:
            out.append(before.rstrip("\n").rsplit("\n", 1)[-1] + "\nTraceback (most recent call last):" + body)
    return out


@pytest.fixture(scope="module")
def ui_env(demo_cache):
    """Environment of the served app; a module overrides it to add a data root and limits."""
    return {"UNITSCOPE_CACHE": str(demo_cache)}


# what the served app logs beside its warnings: errors its jobs showed as alerts, and each step
# of the kernel refit loop, so a failing browser test's report says what the server did
SERVER_LOG_LEVELS = "dashboard.jobs=INFO,dashboard.kernel_state=DEBUG"
_SERVER_LOGS: dict = {}  # test module name -> its server's log file


@pytest.fixture(scope="module")
def server(request, ui_env, tmp_path_factory):
    """``panel serve launch.py`` with ``ui_env``; yields its URL. Afterwards the server log
    must hold no traceback raised by the app. A failing test's report ends with the log's tail."""
    from core.bench.app import serve_app

    log = tmp_path_factory.mktemp("log") / "serve.log"
    _SERVER_LOGS[request.module.__name__] = log
    with serve_app(env={"UNITSCOPE_LOG": SERVER_LOG_LEVELS, **ui_env}, log_path=log) as (url, _):
        yield url
    text = log.read_text(errors="replace")
    found = app_tracebacks(text)
    # the tracebacks themselves (each with the log line that announced it), not the log's tail:
    # a CI report once ended 4000 characters after the traceback it failed on
    assert not found, "the app logged a traceback:\n" + "\n----\n".join(b[-6000:] for b in found)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used ``server`` gets the end of that server's log in its report."""
    outcome = yield
    rep = outcome.get_result()
    log = _SERVER_LOGS.get(getattr(item.module, "__name__", ""))
    if rep.failed and "server" in getattr(item, "fixturenames", ()) and log is not None and log.exists():
        text = log.read_text(errors="replace")
        for i, block in enumerate(app_tracebacks(text)):
            rep.sections.append((f"served app traceback {i + 1}", block[-6000:]))
        rep.sections.append(("served app log (last 60 lines)", "\n".join(text.splitlines()[-60:])))


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium (overrides pytest-playwright's fixture of the same name)."""
    from core.bench.app import launch_browser

    with launch_browser(height=1100) as (b, _):
        yield b


@pytest.fixture()
def new_page(browser):
    """``new_page()`` opens a page in a fresh browser context (1400 x 1100, downloads
    accepted); ``page.dialogs`` collects the messages of dismissed JS dialogs. Contexts
    are closed after the test."""
    contexts = []

    def make():
        ctx = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        contexts.append(ctx)
        page = ctx.new_page()
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        return page

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture()
def app_page(new_page):
    """One fresh page (see ``new_page``)."""
    return new_page()
