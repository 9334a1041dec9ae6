"""Long work against what the user does meanwhile: going back to the demo during a training, a
page reloaded during a probe, a probe (and pruning) of a decoder that a training replaces.
Without a browser: sessions, views and a training whose batches the test controls."""
from __future__ import annotations

import threading

import pytest

from core.training import TrainResult
from dashboard.state import Session, apply_in_doc


@pytest.fixture()
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("UNITSCOPE_DATA_ROOT", str(tmp_path))
    s = Session()
    yield s
    s.close()


class _ReadyDemo:
    """The shared demo provider, loaded: its decoder is the tiny one."""

    def __init__(self, decoder):
        self.state, self.decoder, self.probe = "ready", decoder, (None, None)

    def subscribe(self, fn):
        pass

    def unsubscribe(self, fn):
        pass

    def start(self):
        pass


class _Training:
    """Training as the session runs it, with batches the test controls: each run reports one
    batch, then waits for its stop event; a stopped run ends its batch when ``batch_ends`` is set
    (a slow batch), then returns. The trained workspace is the tiny one."""

    def __init__(self, ws):
        self.ws = ws
        self.stops: list[threading.Event] = []
        self.started = threading.Semaphore(0)
        self.batch_ends = threading.Event()

    def train(self, *, progress=None, stop=None, **kw):
        self.stops.append(stop)
        progress({"epoch": 0, "batch": 1, "n_batches": 4, "train_loss": 1.0, "fraction": 0.1})
        self.started.release()
        stop.wait(60)
        self.batch_ends.wait(60)
        history = [{"epoch": 0, "train_loss": 1.0, "valid_loss": 1.0, "valid_metric": 0.0}]
        return TrainResult(history=history, best_epoch=0, stopped=stop.is_set())


@pytest.fixture()
def training(monkeypatch, tiny_ws):
    from core.workspace import Workspace

    fake = _Training(tiny_ws)
    monkeypatch.setattr(Workspace, "create", classmethod(lambda cls, spec=None, config=None: tiny_ws))
    monkeypatch.setattr(tiny_ws, "train", fake.train)
    yield fake
    fake.batch_ends.set()
    for stop in fake.stops:
        stop.set()


def _texts(session):
    return [text for _, text in session.alerts]


# ---- 1. "Back to the demo decoder" during a training -------------------------------------
def test_back_to_the_demo_during_training_stops_it_and_its_decoder_never_replaces_the_demo(
        session, tiny_decoder, training):
    """The training kept running unseen: the page looked idle (Stop disabled), Train answered
    "Training is already running", and its decoder replaced the demo when it finished."""
    from dashboard.views.data import DataView

    session._demo = _ReadyDemo(tiny_decoder)
    session.load_demo()
    view = DataView(session=session)
    session.param.update(model_kind="shallow", max_epochs=3)
    view.train_btn.clicks += 1
    assert training.started.acquire(timeout=30)
    first = session._jobs["training"]
    assert session.busy == "training" and not view.stop_btn.disabled and not view.demo_btn.disabled

    view.demo_btn.clicks += 1
    assert first.stop_event.is_set(), "going back to the demo must stop the training"
    assert session.decoder is tiny_decoder and session.busy == ""
    level, text = session.alerts[-1]
    assert level == "warning" and text.startswith("Training stopped: you went back to the demo decoder")
    assert "Shallow" in text and "discarded" in text
    assert view.stop_btn.disabled and not view.train_btn.disabled
    assert "discarded" in view.progress_text.object

    # Train again while the stopped run still ends its batch: a new run starts
    view.train_btn.clicks += 1
    assert not any("already running" in t for t in _texts(session))
    assert training.started.acquire(timeout=30)
    second = session._jobs["training"]
    assert second is not first and session.busy == "training" and not view.stop_btn.disabled
    training.batch_ends.set()
    assert first.join(60)
    assert session.decoder is tiny_decoder and session.busy == "training"  # the stopped run changed nothing
    assert not any(t.startswith("Training finished") or t.startswith("Training stopped after") for t in _texts(session))

    view.stop_btn.clicks += 1  # Stop keeps what the second run trained
    assert second.join(60)
    assert session.decoder is not tiny_decoder and "(Shallow)" in session.decoder.label
    assert session.busy == "" and view.stop_btn.disabled and not view.train_btn.disabled
    assert session.alerts[-1][1].startswith("Training stopped after 1 epoch(s)")


def test_open_decoder_and_use_weights_say_why_they_wait_for_a_training(session, tiny_decoder, training):
    from dashboard.views.data import DataView

    session._demo = _ReadyDemo(tiny_decoder)
    session.load_demo()
    view = DataView(session=session)
    assert view.blocked_note.object == ""
    session.train()
    assert training.started.acquire(timeout=30)
    assert view.open_run.disabled and view.use_weights.disabled
    assert "waits until the training ends" in view.blocked_note.object
    session.run = "runs/x"  # a link to a run while training: refused, the URL names what is shown
    assert session.run == "" and session.alerts[-1][1].startswith("Wait for the training")
    session.stop_training()
    training.batch_ends.set()
    assert session._jobs["training"].join(60)
    assert view.blocked_note.object == "" and not view.open_run.disabled


# ---- 2. a page reloaded during a probe -------------------------------------------------
class _PageDoc:
    """A served Bokeh document as the app sees it: next-tick callbacks wait in ``ticks``;
    :meth:`destroy` does what Bokeh's ``Document.destroy`` does when the page has gone (drops
    the session context and the roots), before the app's session-destroyed hook runs."""

    def __init__(self):
        self.session_context = object()
        self._roots = []
        self.ticks = []

    @property
    def roots(self):
        return list(self._roots)

    def add_next_tick_callback(self, fn):
        self.ticks.append(fn)

    def destroy(self):
        self.session_context = None
        del self._roots


def test_work_for_a_destroyed_document_is_skipped_and_without_a_document_runs_at_once():
    from bokeh.document import Document

    ran = []
    apply_in_doc(None, lambda: ran.append("no document"))
    apply_in_doc(Document(), lambda: ran.append("never served"))  # a test rendering a view
    served = _PageDoc()
    apply_in_doc(served, lambda: ran.append("served"))
    assert ran == ["no document", "never served"] and len(served.ticks) == 1

    class ServerSession:  # what Bokeh's server session registers on its document
        def _document_patched(self, event):
            pass

    gone, owner = Document(), ServerSession()
    gone.callbacks.on_change_dispatch_to(owner)
    gone.destroy(owner)  # as Bokeh does when the page was closed or reloaded
    apply_in_doc(gone, lambda: ran.append("destroyed"))
    served.destroy()
    apply_in_doc(served, lambda: ran.append("destroyed too"))
    assert ran == ["no document", "never served"] and len(served.ticks) == 1


def test_a_probe_of_a_page_that_went_stops_and_draws_nothing_on_its_worker(session, tiny_decoder):
    """Reloaded during a probe: the probe's maps were drawn from its worker into the destroyed
    document (IndexError in the server log) and the probe went on computing for nobody."""
    from dashboard.views.units import UnitsView

    session.set_decoder(tiny_decoder)
    doc = _PageDoc()
    session.attach_document(doc)
    view = UnitsView(session=session)
    view._doc = doc  # as __panel__ takes it when the page is served
    drawn = []
    view._draw_all = lambda: drawn.append(threading.current_thread().name)
    view._draw_unit = lambda: drawn.append(threading.current_thread().name)
    going = threading.Event()
    session.param.watch(lambda e: e.new > 0 and going.set(), "probe_progress")
    session.probe_iterations = 500  # minutes: it must stop by itself
    session.run_probe(control=False)
    assert going.wait(120)
    doc.destroy()  # the page was reloaded: Bokeh destroys its document
    job = session._jobs["probe"]
    assert job.join(120), "the probe of a destroyed page must stop"
    assert job.error is None
    assert not [name for name in drawn if name.startswith("unitscope-")], drawn
    assert not session._probe_run.finished


# ---- 3. a probe (and pruning) of the decoder a training replaces -------------------------
def test_a_training_that_replaces_the_decoder_says_what_of_the_old_one_was_dropped(session, tiny_decoder, training):
    """A probe started during a training, and the pruning, went without a word when the
    training finished ("Training finished" only)."""
    from dashboard.views.prune import prune_state_of
    from dashboard.views.units import UnitsView

    session.set_decoder(tiny_decoder)
    prune = prune_state_of(session)
    prune.activate()
    assert prune.join() and prune.ready
    assert prune.toggle("conv_2", 1) and prune.join()
    units = UnitsView(session=session)
    session.train()
    assert training.started.acquire(timeout=30)
    assert "A new decoder is training" in units.probe_text.object  # said beside Run probe
    going = threading.Event()
    session.param.watch(lambda e: e.new > 0 and going.set(), "probe_progress")
    session.probe_iterations = 500
    session.run_probe(control=False)
    assert going.wait(120) and session.probe_state == "running"

    session.stop_training()
    training.batch_ends.set()
    assert session._jobs["training"].join(60)
    assert session.decoder is not tiny_decoder
    level, text = session.alerts[-1]
    assert level == "warning" and text.startswith("The new decoder replaces tiny demo: "), text
    assert "the probe of the previous decoder was stopped" in text and "its pruning (1 unit pruned)" in text
    assert session._jobs["probe"].join(120)
    assert session.probe is None and session.probe_state == "none"
    assert "A new decoder is training" not in units.probe_text.object


def test_a_training_that_replaces_an_untouched_decoder_adds_no_alert(session, tiny_decoder, training):
    session.set_decoder(tiny_decoder)
    session.train()
    assert training.started.acquire(timeout=30)
    session.stop_training()
    training.batch_ends.set()
    assert session._jobs["training"].join(60)
    assert len(session.alerts) == 1 and session.alerts[-1][1].startswith("Training stopped after 1 epoch(s)")


def test_a_probe_result_made_while_another_decoder_is_set_is_not_given_to_it(session, tiny_decoder, monkeypatch):
    """The probe checked its decoder, then made its maps: a decoder set meanwhile (a training
    that finished) was shown with the old decoder's probe."""
    from dashboard.decoder import Decoder

    session.set_decoder(tiny_decoder)
    making, release = threading.Event(), threading.Event()
    kept = Session._kept

    def slow_kept(self, run):
        making.set()
        assert release.wait(60)
        return kept(self, run)

    monkeypatch.setattr(Session, "_kept", slow_kept)
    session.probe_iterations = 500
    session.run_probe(control=False)
    assert making.wait(120)  # the probe makes its first maps of tiny_decoder
    new = Decoder(tiny_decoder.ws, label="trained meanwhile")
    session.set_decoder(new)
    release.set()
    assert session._jobs["probe"].join(120)
    assert session.decoder is new and session.probe is None and session.probe_state == "none"
