"""The Encoding view's state (one per browser session, no Panel code).

:class:`EncodingState` holds the encoding result shown (an :mod:`core.encoding.results`
Dataset), where it came from, the selection (channel, subject, example, feature, model) and a
background fit. Sources:

* the result shipped with UnitScope for the synthetic reading data
  (``assets/demo-encoding/synthetic-reading.nc``, made by ``python -m dashboard.encoding_demo``),
  shown at once and shared read-only by every session;
* a results file (``.nc``) under the data root (:mod:`dashboard.files` rules);
* a fit run here: :class:`core.encoding.EncodingStudy` on the synthetic reading data or the
  demo reaching recording, in a worker thread that first takes a ``"long"`` slot of the
  process-wide :func:`dashboard.queue.work_queue`, so other sessions keep their cores.

Everything a user gets wrong becomes a session alert; nothing raises into the page. The
summaries drawn by the view (:meth:`EncodingState.prediction`, :meth:`r_map`,
:meth:`importance`) are computed here from the result, so they are testable without a browser.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import param

from core._validation import UnitScopeError

from .files import resolve_in_root
from .queue import Cancelled, work_queue
from .state import Session

__all__ = ["EncodingState", "encoding_state_of", "FitPreset", "FIT_PRESETS", "FIT_STATES", "MODEL_LABELS",
           "ALL_SUBJECTS", "shipped_result", "list_results"]

logger = logging.getLogger(__name__)

FIT_STATES = ("idle", "waiting", "running", "stopped", "done", "error")
MODEL_LABELS = {"dre": "DRE", "trf": "TRF", "rtrf": "ridge ARX", "no_init": "DRE without initial state",
                "no_subject": "DRE without subject"}
ALL_SUBJECTS = "all subjects (mean)"
MAX_RESULT_BYTES = 500e6  # [A] results files larger than this are refused (they are loaded into memory)
SHIPPED_LABEL = "shipped example: synthetic reading data (python -m dashboard.encoding_demo)"


@dataclass
class FitPreset:
    """What the Fit button runs for one data choice [A]: small enough for a class on 2 cores."""

    label: str
    n_subjects: int = 4       # synthetic reading: subjects
    n_words: int = 300        # synthetic reading: words per subject
    duration: float = 600.0   # demo reaching: seconds of recording
    n_epochs: int = 6         # DRE passes over the training set
    hidden: int = 64          # DRE width
    init_seconds: float = 1 / 3  # initial brain state given to the models (as ``unitscope encode``)

    def load(self, key: str):
        from core.encoding import reaching_epochs, simulate_reading

        if key == "synthetic-reading":
            return simulate_reading(n_subjects=self.n_subjects, n_words=self.n_words, seed=0)
        return reaching_epochs(seed=0, duration=self.duration)

    def config(self, sfreq: float):
        from core.encoding import DREConfig

        return DREConfig(n_epochs=self.n_epochs, hidden=self.hidden, meg_init=int(round(self.init_seconds * sfreq)))


FIT_PRESETS = {
    "synthetic-reading": FitPreset("synthetic reading data (4 subjects x 300 words, 6 DRE passes)"),
    "demo": FitPreset("demo reaching recording (band envelopes, 600 s, 20 DRE passes)", duration=600.0, n_epochs=20),
}


class _Stopped(Exception):
    """Raised from the study's progress callback when the user pressed Stop."""


_SHIPPED: dict = {}
_SHIPPED_LOCK = threading.Lock()


def shipped_result(path: Path | None = None):
    """The shipped result (loaded once per process, shared read-only), or None when absent."""
    from core.encoding.results import load_results

    from .encoding_demo import ENCODING_ASSET

    path = Path(path or ENCODING_ASSET)
    if not path.is_file():
        return None
    key = (str(path), path.stat().st_mtime_ns)
    with _SHIPPED_LOCK:
        if key not in _SHIPPED:
            _SHIPPED.clear()
            _SHIPPED[key] = load_results(path)
        return _SHIPPED[key]


def list_results(root, *, max_files: int = 200, max_depth: int = 4) -> list[str]:
    """netCDF files (``.nc``) under ``root``, relative paths, sorted and bounded."""
    from .files import walk_root

    root = Path(root).resolve()
    out: list[str] = []
    for here, filenames in walk_root(root, max_depth=max_depth):
        for f in filenames:
            if f.lower().endswith(".nc"):
                out.append(str((here / f).relative_to(root)))
                if len(out) >= max_files:
                    return sorted(out)
    return sorted(out)


def _fraction(msg: str, n_models: int, n_done: int) -> float | None:
    """Progress fraction from an :class:`~core.encoding.EncodingStudy` message [A].

    The DRE's passes take the first 60 %; the other models (baselines, ablations) share the
    next 35 %, counted as they finish (``n_done`` models have reported their score, this
    message included); the permutation importance ends at 95 %. None: no change.
    """
    m = re.match(r"dre epoch (\d+)/(\d+)", msg)
    if m:
        return 0.6 * int(m.group(1)) / max(int(m.group(2)), 1)
    if re.match(r"\w+: post-onset mean r", msg):
        return 0.6 + 0.35 * max(n_done - 1, 0) / max(n_models - 1, 1)
    if msg.startswith("permutation importance"):
        return 0.95
    return None


class EncodingState(param.Parameterized):
    """What one session's Encoding view shows."""

    session = param.ClassSelector(class_=Session)
    result = param.Parameter(default=None, doc="The encoding result shown (xarray.Dataset) or None.")
    label = param.String(default="", doc="Where the result comes from.")
    version = param.Integer(default=0, bounds=(0, None), doc="Bumped whenever the result changes.")
    channel = param.String(default="", doc="Channel of the predicted-vs-actual plot and the importance course.")
    subject = param.String(default=ALL_SUBJECTS, doc="Subject of the maps, or the mean over subjects.")
    example = param.Integer(default=0, bounds=(0, None), doc="Stored test epoch shown (position in the result).")
    feature = param.String(default="", doc="Feature whose importance map is shown.")
    model = param.String(default="dre", doc="Model whose r map is shown.")
    imp_at_channel = param.Boolean(default=False, doc="Importance time courses at the selected channel (else all).")
    imp_context = param.Boolean(default=False, doc="Also draw the courses of the initial state and the subject.")
    path = param.String(default="", doc="Results file relative to the data root.")
    fit_data = param.Selector(default="synthetic-reading", objects=list(FIT_PRESETS), doc="Data the Fit button uses.")
    fit_state = param.Selector(default="idle", objects=list(FIT_STATES))
    fit_progress = param.Number(default=0.0, bounds=(0, 1))
    fit_message = param.String(default="", doc="Last progress line of the fit.")
    queue_position = param.Integer(default=0, bounds=(0, None), doc="Position in the work queue (0: running).")

    def __init__(self, **params):
        super().__init__(**params)
        self._job = None

    # ---- sources ---------------------------------------------------------------------
    def load_shipped(self) -> bool:
        """Show the shipped synthetic-reading result; False (and a message) when absent."""
        try:
            ds = shipped_result()
        except (UnitScopeError, OSError) as exc:
            self.session.alert(f"The shipped encoding result could not be read: {exc}")
            return False
        if ds is None:
            self.session.alert("No shipped encoding result (assets/demo-encoding/synthetic-reading.nc); make it "
                               "with 'python -m dashboard.encoding_demo', load a results file or press Fit.",
                               "warning")
            return False
        self.set_result(ds, SHIPPED_LABEL)
        return True

    def files(self) -> list[str]:
        """Results files (.nc) under the session's data root."""
        return list_results(self.session.root)

    def load_file(self, path: str | None = None) -> bool:
        """Load a results file under the data root; a bad file becomes an alert (False)."""
        from core.encoding.results import load_results

        text = self.path if path is None else path
        try:
            full = resolve_in_root(self.session.root, text, what="results file",
                                   choose="pick one in Results file under the data root")
            size = full.stat().st_size if full.is_file() else 0
            if size > MAX_RESULT_BYTES:
                raise UnitScopeError(f"{text!r} is {size / 1e6:.0f} MB; an encoding result is a few MB (the app "
                                     f"reads results up to {MAX_RESULT_BYTES / 1e6:.0f} MB).")
            ds = load_results(full)
        except (UnitScopeError, OSError, KeyError) as exc:
            self.session.alert(f"Encoding result not loaded: {exc}")
            return False
        self.path = text
        self.set_result(ds, f"file {text}")
        return True

    def set_result(self, ds, label: str) -> None:
        """Show ``ds``; keeps the selection where it still exists, else picks sensible defaults."""
        channels = [str(c) for c in ds["channel"].values]
        channel = self.channel if self.channel in channels else self._best_channel(ds)
        subjects = [str(s) for s in ds["subject"].values]
        subject = self.subject if self.subject in subjects else ALL_SUBJECTS
        feats = self.features(ds)
        feature = self.feature if self.feature in feats else next(
            (f for f in feats if f not in ("meg", "subject")), feats[0] if feats else "")
        models = [str(m) for m in ds["model"].values]
        model = self.model if self.model in models else ("dre" if "dre" in models else models[0])
        n_ex = ds.sizes.get("example", 0)
        self.param.update(result=ds, label=label, version=self.version + 1, channel=channel, subject=subject,
                          feature=feature, model=model, example=min(self.example, max(n_ex - 1, 0)))

    @staticmethod
    def _best_channel(ds) -> str:
        """The channel the DRE predicts best after onset (a channel worth looking at first)."""
        model = "dre" if "dre" in ds["model"].values else ds["model"].values[0]
        r = ds["r"].sel(model=model).sel(time=slice(-1e-9, None)).mean(("subject", "time"), skipna=True)
        vals = np.nan_to_num(r.values, nan=-np.inf)
        return str(ds["channel"].values[int(np.argmax(vals))])

    # ---- selection helpers --------------------------------------------------------------
    @staticmethod
    def features(ds) -> list[str]:
        return [str(f) for f in ds["feature"].values] if ds is not None and "loss_increase" in ds else []

    def channels(self) -> list[str]:
        return [] if self.result is None else [str(c) for c in self.result["channel"].values]

    def subjects(self) -> list[str]:
        return [] if self.result is None else [ALL_SUBJECTS] + [str(s) for s in self.result["subject"].values]

    def models(self) -> list[str]:
        return [] if self.result is None else [str(m) for m in self.result["model"].values]

    def examples(self) -> list[str]:
        """Labels of the stored test epochs: ``"epoch 245 (S01)"``."""
        from core.encoding.results import example_subjects

        ds = self.result
        if ds is None or "predicted" not in ds:
            return []
        subj = example_subjects(ds)
        return [f"epoch {int(e)}" + (f" ({subj[i]})" if subj else "") for i, e in enumerate(ds["example"].values)]

    def scores(self) -> dict[str, float]:
        """Post-onset mean r per model."""
        ds = self.result
        return {} if ds is None else {str(m): float(ds["score"].sel(model=m)) for m in ds["model"].values}

    # ---- what the plots draw -------------------------------------------------------------
    def prediction(self) -> dict | None:
        """Predicted and actual signal of the selected channel and example.

        Returns
        -------
        dict or None
            ``time`` (s), ``actual`` (n_times,), ``predicted`` {model: (n_times,)} with the DRE
            and the linear baselines (not the ablations), ``init_end`` (s, end of the given
            initial state or None), ``subject`` (str or None). None without stored examples.
        """
        ds = self.result
        if ds is None or "predicted" not in ds or not self.channel:
            return None
        k = min(self.example, ds.sizes["example"] - 1)
        act = ds["actual"].isel(example=k).sel(channel=self.channel)
        pred = {str(m): ds["predicted"].isel(example=k).sel(channel=self.channel, model=m).values.astype(float)
                for m in ds["model"].values if str(m) in ("dre", "trf", "rtrf")}
        from core.encoding.results import example_subjects

        subj = example_subjects(ds)
        return {"time": ds["time"].values.astype(float), "actual": act.values.astype(float), "predicted": pred,
                "init_end": self.init_end(), "subject": subj[k] if subj else None}

    def init_end(self) -> float | None:
        """Time (s) where the given initial brain state ends (``meg_init`` samples), or None."""
        ds = self.result
        meg_init = int(ds.attrs.get("meg_init", 0) or 0) if ds is not None else 0
        if meg_init <= 0:
            return None
        t = ds["time"].values.astype(float)
        return float(t[min(meg_init, len(t) - 1)])

    def _subject_mean(self, da):
        if self.subject != ALL_SUBJECTS and self.subject in [str(s) for s in da["subject"].values]:
            return da.sel(subject=self.subject)
        return da.mean("subject", skipna=True)

    def r_map(self, model: str | None = None):
        """r over (time, channel) of ``model`` (default: the selected one), for the subject choice.

        Returns an ``xarray.DataArray`` with dims ("time", "channel"), or None.
        """
        ds = self.result
        model = model or self.model
        if ds is None or model not in self.models():
            return None
        return self._subject_mean(ds["r"].sel(model=model)).transpose("time", "channel")

    def importance(self, *, channel: str | None = None) -> dict | None:
        """Loss-increase time courses per feature (percent), mean over the subject choice.

        Parameters
        ----------
        channel : str, optional
            One channel (default: mean over channels).

        Returns
        -------
        dict or None
            ``time`` (s), ``courses`` {feature: (n_times,)}, ``total`` {feature: overall loss
            increase in percent}, ``truth`` {feature: true latency in s} (synthetic data). The
            initial state ("meg") and the subject only with ``imp_context`` [A]: their loss
            increase is often ten times a stimulus feature's and would flatten those.
        """
        from core.encoding.results import importance_course, truth_latencies

        ds = self.result
        if ds is None or "loss_increase_map" not in ds:
            return None
        subject = self.subject if self.subject in [str(s) for s in ds["subject"].values] else None
        feats = [f for f in self.features(ds) if self.imp_context or f not in ("meg", "subject")]
        return {"time": ds["time"].values.astype(float),
                "courses": {f: importance_course(ds, f, subject=subject, channel=channel or None).values.astype(float)
                            for f in feats},
                "total": {f: float(ds["loss_increase"].sel(feature=f)) for f in feats},
                "truth": {f: t for f, t in truth_latencies(ds).items() if f in feats}}

    def importance_map(self):
        """Loss-increase map of the selected feature, dims ("time", "channel"), or None."""
        ds = self.result
        if ds is None or self.feature not in self.features(ds):
            return None
        return self._subject_mean(ds["loss_increase_map"].sel(feature=self.feature)).transpose("time", "channel")

    # ---- fitting in the background ----------------------------------------------------------
    @property
    def fitting(self) -> bool:
        return self._job is not None and self._job.running

    def fit(self) -> None:
        """Run the encoding study on ``fit_data`` in a worker thread (queued; stoppable)."""
        if self.fitting:
            self.session.alert("An encoding fit is already running in this session.", "warning")
            return
        key = self.fit_data
        preset = FIT_PRESETS[key]
        self.param.update(fit_state="waiting", fit_progress=0.0, queue_position=0,
                          fit_message=f"Waiting for a free core to fit on the {preset.label} ...")

        def work(stop: threading.Event):
            from core.encoding import EncodingStopped, EncodingStudy

            try:
                with work_queue().slot(kind="long", label=f"encoding fit ({key})", owner=self, stop=stop,
                                       on_position=self._position):
                    self.param.update(fit_state="running", fit_message=f"Preparing the {preset.label} ...")
                    data = preset.load(key)
                    study = EncodingStudy(preset.config(float(data.attrs["sfreq"])), seed=0)
                    n_models = 1 + len(study.baselines) + len(study.ablations)

                    done_models = [0]

                    def progress(msg: str) -> None:
                        if stop.is_set():
                            raise _Stopped()
                        if re.match(r"\w+: post-onset mean r", msg):
                            done_models[0] += 1
                        frac = _fraction(msg, n_models, done_models[0])
                        upd = {"fit_message": msg}
                        if frac is not None:
                            upd["fit_progress"] = max(self.fit_progress, frac)
                        self.param.update(**upd)

                    result = study.run(data, progress=progress, stop=stop)
            except (_Stopped, EncodingStopped, Cancelled):
                return None
            from .encoding_demo import add_example_subjects

            result = add_example_subjects(result, data)
            result.attrs["data"] = key
            return result

        def done(result) -> None:
            if result is None:
                self.param.update(fit_state="stopped", queue_position=0,
                                  fit_message="Fit stopped; the result shown is unchanged.")
                return
            self.set_result(result, f"fitted in this session on the {preset.label}")
            self.param.update(fit_state="done", fit_progress=1.0, queue_position=0,
                              fit_message="Fit done: showing its result.")

        def failed(msg: str) -> None:
            self.param.update(fit_state="error", queue_position=0, fit_message=f"Fit failed: {msg}")

        self._job = self.session._start("encoding", work, on_done=self.session._on_loop(done, "encoding"),
                                        on_error=self.session._on_loop(failed, "encoding"))
        if self._job is None:
            self.fit_state = "idle"

    def stop_fit(self) -> None:
        """Ask the running fit to stop (at the next DRE pass or model)."""
        if self._job is not None and self._job.running:
            self._job.stop()
            self.fit_message = "Stopping at the end of the current step ..."

    def _position(self, pos: int) -> None:
        upd = {"queue_position": int(pos)}
        if pos:
            upd["fit_message"] = f"Waiting for a free core (position {pos} in line) ..."
        self.param.update(**upd)  # one event: watchers of either see both values

    def join(self, timeout: float = 300.0) -> bool:
        """Wait for the fit thread (tests); True when it has ended."""
        return True if self._job is None else self._job.join(timeout)


def encoding_state_of(session: Session) -> EncodingState:
    """The session's :class:`EncodingState`, created on first use (one per session)."""
    return session.part("encoding", lambda: EncodingState(session=session))

