"""A trained decoder and what the views read from it, each computed once (no Panel code).

:class:`Decoder` wraps a :class:`core.workspace.Workspace` with lazily computed, cached
derived data: test-block predictions, channel positions, the most-activating windows and
(for the demo) the probe result shipped in ``assets/demo-probe/``. Caches live on the
object, which is replaced whenever the model changes, so nothing stale is ever shown.

:class:`DemoProvider` loads (or, without a cached run, trains) the demo decoder once per
process in a worker thread and shares it read-only between browser sessions; sessions
subscribe to its progress. A session that trains gets its own new Workspace; probes and
activation hooks run on deep copies, so the shared model is never touched.
"""
from __future__ import annotations

import logging
import threading
import weakref
from pathlib import Path

import numpy as np

from .jobs import Job

__all__ = ["Decoder", "DemoProvider", "demo_provider", "run_decoder", "PROBE_ASSETS", "PerDecoder", "KIND_LABELS",
           "run_probe_source"]

logger = logging.getLogger(__name__)
PROBE_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "demo-probe"
KIND_LABELS = {"deep4": "Deep4", "shallow": "Shallow"}  # core.models.MODEL_KINDS as the app names them


def run_probe_source(run_name: str) -> str:
    """``Session.probe_source`` of a probe read from (or saved to) a run folder's probe.nc."""
    return f"probe.nc of {run_name}"


class Decoder:
    """One trained workspace and its derived, read-only data.

    Parameters
    ----------
    ws : core.workspace.Workspace
    label : str
        Shown in the app ("Demo (Deep4)", "recording.edf (Shallow)").
    """

    def __init__(self, ws, *, label: str, cache_dir: str | Path | None = None):
        self.ws, self.label = ws, label
        self.demo_model: str | None = None  # "deep4" / "shallow" for the demo's shipped decoders
        self.cache_dir = Path(cache_dir) if cache_dir else None  # on-disk cache of predictions
        # [A] one lock per derived result: the most-activating windows take seconds to compute
        # (warmed in a worker when the demo loads) and must not hold up the predictions every
        # new page asks for
        self._pred_lock = threading.RLock()
        self._inputs_lock = threading.RLock()
        self._top_lock = threading.RLock()
        self._pred = None
        self._top = None
        self._probe_X = None
        self._positions = None
        self.layers = list(ws.layers)
        self.layer_names = [li.name for li in self.layers]
        self.n_units = {li.name: int(li.n_units) for li in self.layers}
        # (fractional epoch, train loss) per batch, when this app trained the decoder (a
        # checkpoint keeps only the per-epoch history, ``ws.history``)
        self.batches: list = []

    # ---- basic facts ----------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.ws.task

    @property
    def sfreq(self) -> float:
        return float(self.ws.recording.sfreq)

    @property
    def ch_names(self) -> list[str]:
        return list(self.ws.recording.ch_names)

    @property
    def model_kind(self) -> str:
        return str(getattr(self.ws.model, "unitscope_config", {}).get("kind", self.ws.config.model))

    def metric_name(self) -> str:
        return "Pearson r" if self.task == "regression" else "balanced accuracy"

    def chance_note(self) -> str:
        """What the test metric means when it is no better than chance (e.g. "at or below
        chance, 1/8 = 0.125"), else "" (:func:`core.cautions.chance_note`)."""
        from core.cautions import chance_note

        pred = self.predictions()
        if self.task != "classification":
            return chance_note(self.task, pred["metric"])
        true = np.asarray(pred["true"])
        return chance_note(self.task, pred["metric"], len(np.unique(true)), len(true))

    def metric_notes(self) -> str:
        """What to keep in mind when reading the test metric, for after it in brackets: at or
        below chance (:meth:`chance_note`), or resting on few trials; "" when neither."""
        from core.cautions import trials_note

        notes = [self.chance_note(), trials_note(self.task, len(self.predictions()["true"]))]
        return "; ".join(n for n in notes if n)

    def target_shift(self) -> float | None:
        """The test block's mean target in SDs of the training block, from its mean (None for
        labels), as ``unitscope train`` stores it (``test_target_shift``)."""
        if self.task != "regression":
            return None
        true = np.asarray(self.predictions()["true"], dtype=np.float64)
        prep = self.ws.prep
        return float((np.nanmean(true) - prep["target_mean"]) / prep["target_std"]) if true.size else None

    # ---- derived data (computed once) -------------------------------------------------
    def predictions(self) -> dict:
        """Test-block predictions.

        Returns
        -------
        dict
            Regression: ``time`` (s, from the recording start), ``pred`` and ``true`` (target
            units), ``metric``. Classification: ``pred`` (class index), ``true``,
            ``classes``, ``metric``.
        """
        with self._pred_lock:
            if self._pred is None and self.cache_dir is not None:
                self._pred = self._load_predictions()
            if self._pred is None:
                from core.metrics import score

                ws = self.ws
                pred, true = ws.predict("test")
                out = {"metric": float(score(ws.task, pred, true)), "task": ws.task}
                if ws.task == "regression":
                    d = ws.data
                    starts = d.window_starts("test")
                    idx = starts[:, None] + d.receptive_field - 1 + np.arange(d.n_preds)[None]
                    out.update(time=(idx.ravel() / self.sfreq).astype(np.float64),
                               pred=np.asarray(pred, np.float32), true=np.asarray(true, np.float32),
                               target=str(getattr(ws.recording.target, "name", "target")))
                else:
                    out.update(pred=np.asarray(pred).argmax(axis=1), true=np.asarray(true),
                               classes=list(ws.data.classes))
                self._pred = out
                self._save_predictions(out)
            return self._pred

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        import core.workspace
        from core._files import source_version
        from core.probing._base import model_hash

        # [A] keyed by the weights and by the code that reads, prepares and windows the data
        # (core/*.py): predictions cached by an earlier UnitScope are never shown
        return self.cache_dir / f"predictions-{model_hash(self.ws.model)}-{source_version(core.workspace.__file__)}.npz"

    def _load_predictions(self) -> dict | None:
        path = self._cache_file()
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
            out["metric"], out["task"] = float(out["metric"]), str(out["task"])
            for k in ("target",):
                if k in out:
                    out[k] = str(out[k])
            if "classes" in out:
                out["classes"] = [str(c) for c in out["classes"]]
            return out
        except Exception:  # noqa: BLE001 - a broken cache only costs a recomputation
            logger.warning("ignoring unreadable prediction cache %s", path)
            return None

    def _save_predictions(self, out: dict) -> None:
        path = self._cache_file()
        if path is None:
            return
        try:
            import io

            from core.training import atomic_write_bytes

            buf = io.BytesIO()
            np.savez(buf, **{k: np.asarray(v) for k, v in out.items()})
            atomic_write_bytes(path, buf.getvalue())
        except OSError:
            logger.warning("cannot write the prediction cache %s", path)

    def probe_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """Training windows and aligned targets for probing: X (W, C, T), y."""
        with self._inputs_lock:
            if self._probe_X is None:
                from core.probing.pipeline import workspace_windows

                self._probe_X = workspace_windows(self.ws, "train")
            return self._probe_X

    def top_windows(self, stop=None):
        """Most-activating windows of every unit of the probing windows
        (:class:`core.activations.MostActivating`; None when stopped)."""
        with self._top_lock:
            if self._top is None:
                from core.activations import MostActivating

                X, _ = self.probe_inputs()
                self._top = MostActivating(self.ws.model, self.layers).run(X, stop=stop)
            return self._top

    @property
    def top_ready(self) -> bool:
        return self._top is not None

    def positions(self) -> dict:
        """Channel positions for the channel map (:func:`core.layout.channel_layout`): ``x``,
        ``y`` arrays and the ``kind`` ("grid", "head", "montage" or "index")."""
        if self._positions is None:  # the recording does not change: one layout per decoder
            from core.layout import channel_layout

            self._positions = channel_layout(self.ws.recording.signals)
        return self._positions

    def shipped_probe(self):
        """The probe result shipped for the demo, when it matches this model; else (None, None)."""
        return self.saved_probe(PROBE_ASSETS / f"{self.model_kind}.nc",
                                PROBE_ASSETS / f"{self.model_kind}-control.nc")[:2]

    def saved_probe(self, path: Path, control_path: Path | None = None):
        """A probe result saved to ``path`` (and its untrained control), when made for this model.

        Returns ``(probe, control, note)``: ``(None, None, note)`` when the file is missing,
        unreadable or was made for other weights (``note`` says which; empty when missing). A
        probe computed by other probing code (``code_version``) is returned with a note saying so.
        """
        path = Path(path)
        if not path.is_file():
            return None, None, ""
        from core._files import load_netcdf
        from core.probing._base import stale_probe

        try:
            ds = load_netcdf(path)
            control = load_netcdf(control_path) if control_path and Path(control_path).is_file() else None
        except Exception as exc:  # noqa: BLE001 - a broken file only means no saved probe
            logger.exception("cannot read %s", path)
            return None, None, f"{path.name} could not be read ({exc.__class__.__name__})"
        why = stale_probe(ds, self.ws.model) if "model_hash" in ds.attrs else "weights"
        if why == "weights":
            logger.info("probe %s was made for another model; ignored", path)
            return None, None, f"{path.name} was made for other weights; ignored"
        if why == "code":
            return ds, control, (f"{path.name} was computed by other probing code (an earlier UnitScope): "
                                 "run the probe again in the Units view to update it")
        return ds, control, ""


class DemoProvider:
    """Loads the demo decoder once per process (shared, read-only) in a worker thread.

    ``state`` is "idle", "loading", "training" (no cached run: training with progress),
    "ready" or "error". Listeners get ``(state, info)`` calls from the worker thread.
    """

    def __init__(self, model: str = "deep4"):
        self.model = model
        self.state = "idle"
        self.progress: dict = {}
        self.decoder: Decoder | None = None
        self.probe = (None, None)
        self.error: str | None = None
        self._lock = threading.Lock()
        self._listeners: list = []
        self._job: Job | None = None

    def subscribe(self, fn) -> None:
        with self._lock:
            self._listeners.append(fn)

    def unsubscribe(self, fn) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _notify(self, **info) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(self.state, info)
            except Exception:  # noqa: BLE001 - a closed session must not stop the others
                logger.exception("demo listener failed")

    def start(self) -> None:
        """Start loading unless already loading or ready (an error allows a retry)."""
        with self._lock:
            if self.state in ("loading", "training", "ready"):
                return
            self.state, self.error = "loading", None
        self._job = Job("demo", self._load, on_error=self._failed).start()

    def _on_progress(self, info: dict) -> None:
        self.state = "training"
        self.progress = info
        self._notify(progress=info)

    def _load(self, stop) -> Decoder:
        from core.workspace import Workspace

        self._notify()
        ws = Workspace.demo(model=self.model, progress=self._on_progress)
        from core.workspace import default_cache_dir

        dec = Decoder(ws, label=f"Demo reaching recording ({KIND_LABELS[self.model]})",
                      cache_dir=default_cache_dir())  # [A] test predictions cached per model hash
        dec.demo_model = self.model
        dec.predictions()
        self.probe = dec.shipped_probe()
        self.decoder = dec
        self.state = "ready"
        self._notify()
        try:  # warm the most-activating windows so the first unit click is instant
            if dec.top_windows(stop=stop) is not None:  # None: stopped (the server is exiting)
                self._notify(top_ready=True)
        except Exception:  # noqa: BLE001
            logger.exception("most-activating windows of the demo failed")
        import gc

        gc.freeze()  # the shared decoder lives as long as the server: keep it out of full collections
        return dec

    def _failed(self, message: str) -> None:
        self.state, self.error = "error", message
        self._notify(error=message)


_PROVIDERS: dict[str, DemoProvider] = {}
_PROVIDERS_LOCK = threading.Lock()


def demo_provider(model: str = "deep4") -> DemoProvider:
    """The process-wide provider of the demo decoder (read-only, shared by all sessions)."""
    with _PROVIDERS_LOCK:
        if model not in _PROVIDERS:
            _PROVIDERS[model] = DemoProvider(model)
        return _PROVIDERS[model]


_RUNS: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()
_RUNS_LOCK = threading.Lock()


def run_decoder(run_dir: Path, spec, *, label: str) -> Decoder:
    """The decoder of a run folder, shared by every session that opens it (read-only, as the
    demo's is) while one still shows it [A]: a class opening the same run loads its data once,
    and pruning results computed for it (``PerDecoder``) serve all of them. Weights rewritten
    since (another ``model.pt``) or other data make another decoder.
    """
    import json

    from core.workspace import Workspace

    run_dir = Path(run_dir).resolve()
    st = (run_dir / "model.pt").stat()
    key = (str(run_dir), st.st_mtime_ns, st.st_size, json.dumps(spec.to_dict(), sort_keys=True, default=str), label)
    with _RUNS_LOCK:
        dec = _RUNS.get(key)
    if dec is not None:
        return dec
    dec = Decoder(Workspace.load(run_dir, spec=spec), label=label)  # (outside the lock: seconds of loading)
    with _RUNS_LOCK:
        return _RUNS.setdefault(key, dec)


class PerDecoder:
    """One object per decoder, made on first use by ``factory(decoder)`` and dropped with it.

    Calling it from several sessions' threads at once returns the same object.
    """

    def __init__(self, factory):
        self._factory = factory
        self._objects: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, decoder):
        with self._lock:
            obj = self._objects.get(decoder)
            if obj is None:
                obj = self._objects[decoder] = self._factory(decoder)
            return obj
