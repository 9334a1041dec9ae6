"""The Workspace facade: one recording, one decoder and its results, with a run folder.

The dashboard and the CLI both drive a Workspace. A run folder holds ``config.json`` (data
spec, preprocessing statistics, model and training config, metrics), ``model.pt`` (the best
state dict) and ``checkpoint.pt`` (to resume training). A training writes
``checkpoint.partial.pt`` until it ends and then replaces the three together, so a run folder
trained again keeps its previous complete run until the new one is complete; an interrupted
training leaves that file, which ``resume`` continues (:mod:`core.training`). ``version``
increases whenever the model changes so callers can key caches on it.

Reading a data spec into prepared data is :mod:`core.dataset`; reading and checking a run
folder's files, :mod:`core.run_folder`.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ._validation import UnitScopeError, suggest
from .dataset import DataSpec, input_picks, load_data, make_data, prepare, read_spec
from .metrics import score
from .models import build_model, layer_map
from .preprocessing import recorded_filter_phase
from .recording import Recording, recording_differences, target_types
from .run_folder import (DATA_OPTIONS, TRAIN_OPTIONS, check_same_classes, check_same_decoding, check_state_file,
                         config_record, find_run_recording, load_run_model, mismatch_parts, same_data, same_source,
                         state_mismatches, unfinished_note, weights_provenance)
from .training import (DEFAULT_LR, TrainConfig, TrainingInterrupted, TrainResult, checkpoint_summary,
                       commit_checkpoint, held_interrupt, predict, resume_checkpoint, run_lock, train)

__all__ = ["DataSpec", "Workspace", "load_data", "load_run_model", "state_mismatches", "default_cache_dir",
           "demo_recipe", "ASSETS_DIR", "weights_provenance", "check_state_file"]

logger = logging.getLogger(__name__)
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEMO_VERSION = 1  # bump when the simulator or the default training changes
# The recipe of the demo decoder shipped in assets/demo-deep4/ (its config.json's "train"; a test
# holds them equal): Workspace.demo() retrains with it when the shipped run is missing, and gets
# the shipped weights bit for bit on the 2-core CPU machines it was measured on (TrainConfig's
# defaults differ: 25 epochs, cosine lr)
DEMO_TRAIN = {"deep4": {"max_epochs": 30, "scheduler": "none", "lr": 1e-3}}


def demo_recipe(spec: DataSpec, model: str) -> dict:
    """The shipped demo decoder's recipe (:data:`DEMO_TRAIN`) for ``model`` on the plain demo
    (:meth:`DataSpec.is_plain_demo`), as ``Workspace.demo()``, the app's Train and ``unitscope
    train --data demo`` use it; ``{}`` otherwise (TrainConfig's defaults: 25 epochs, cosine)."""
    return dict(DEMO_TRAIN.get(model, {})) if spec.is_plain_demo() else {}


def default_cache_dir() -> Path:
    return Path(os.environ.get("UNITSCOPE_CACHE", Path.home() / ".cache" / "unitscope"))


class Workspace:
    """One recording, one decoder, its run folder and a version counter.

    Build with :meth:`create` (new decoder), :meth:`load` (a run folder) or :meth:`demo`.
    """

    def __init__(self, spec: DataSpec, config: TrainConfig, recording: Recording, task: str,
                 blocks: dict, prep: dict, model: torch.nn.Module, data, run_dir: Path | None = None):
        self.spec, self.config = spec, config
        self.recording, self.task, self.blocks, self.prep = recording, task, blocks, prep
        self.model, self.data, self.run_dir = model, data, run_dir
        self.layers = layer_map(model)
        self.version = 0
        self.metrics: dict = {}
        self.history: list = []

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def create(cls, spec: DataSpec | None = None, config: TrainConfig | None = None) -> "Workspace":
        spec = spec or DataSpec()
        config = (config or TrainConfig()).validate()
        rec, task, spec = read_spec(spec)  # spec: the target and picks named as the recording names them
        rec, task, blocks, prep = prepare(rec, task, spec, input_picks(rec, spec))
        n_times = config.n_times
        if task == "classification":
            n_times = int(round((spec.tmax - spec.tmin) * rec.sfreq))
        n_outputs = 1
        if task == "classification":
            types = target_types(spec.target)
            ev = rec.events.type if types is None else rec.events.type[np.isin(rec.events.type, types)]
            n_outputs = max(len(set(ev.tolist())), 2)
        try:
            model = build_model(config.model, n_chans=rec.n_chans, n_outputs=n_outputs, n_times=n_times,
                                dense=task == "regression", drop_prob=config.drop_prob, seed=config.seed)
        except UnitScopeError as exc:
            need = getattr(exc, "needed_samples", None)
            if task != "classification" or need is None:
                raise
            # a trial's samples come from its window and the sampling rate, not from n_times
            raise UnitScopeError(
                f"Trials from tmin={spec.tmin:g} s to tmax={spec.tmax:g} s at {rec.sfreq:g} Hz are {n_times} "
                f"samples, shorter than the {config.model} network needs ({need} samples, "
                f"{need / rec.sfreq:.2f} s at {rec.sfreq:g} Hz): lengthen the trial window (--tmin/--tmax)"
                f"{' or resample less (--sfreq)' if spec.sfreq else ''}.") from exc
        data = make_data(rec, task, blocks, prep, spec, model, n_times)
        return cls(spec, config, rec, task, blocks, prep, model, data)

    def native_sfreq(self) -> float | None:
        """The recording's own sampling rate when it was resampled *up* for this run, else None
        (:func:`core.cautions.upsampled_from`)."""
        from .cautions import upsampled_from

        return upsampled_from(self.recording.signals)

    def input_band(self) -> tuple[float | None, float | None]:
        """``(l_freq, h_freq)``: the edges of what the decoder's input holds (None: no edge), the
        band-pass's, and for a recording resampled up its own Nyquist frequency as the upper one."""
        from .cautions import input_edges

        return input_edges(self.spec.l_freq, self.spec.h_freq, self.native_sfreq())

    def probe_bands(self) -> dict[str, tuple[float, float]] | None:
        """The probe's bands within this run's band-pass (``l_freq``/``h_freq``) and, for a
        recording resampled up, below its own Nyquist frequency (:meth:`input_band`): a default
        band (:data:`core.probing.bands.BANDS`) outside is left out, one it cuts is clipped;
        None (the probe's defaults) for a run neither band-passed nor resampled up.

        [A] Perturbing frequencies the filter took out of every window the decoder was trained
        on measures its answer to input it never saw: a run band-passed at 1-40 Hz was probed
        and labelled in 30-60 Hz and high gamma all the same.
        """
        lo_cut, hi_cut = self.input_band()
        if lo_cut is None and hi_cut is None:
            return None
        from .probing.bands import BANDS

        from .cautions import in_passband  # the part of a band a band-pass keeps, as occlude and deconv take it

        nyquist = self.recording.sfreq / 2
        lo_cut, hi_cut = lo_cut or 0.0, min(hi_cut or nyquist, nyquist)
        kept = {name: in_passband(band, lo_cut, hi_cut) for name, band in BANDS.items()}
        out = {name: band for name, band in kept.items() if band is not None}
        if not out:
            raise UnitScopeError(f"No probe band lies in this run's band-pass ({lo_cut:g}-{hi_cut:g} Hz); the bands "
                                 f"are {', '.join(f'{k} {lo:g}-{hi:g} Hz' for k, (lo, hi) in BANDS.items())}.")
        return out

    @classmethod
    def load(cls, run_dir: str | Path, *, spec: DataSpec | None = None,
             check_recording: bool | None = None) -> "Workspace":
        """Open a run folder written by :meth:`save` (the model loads with weights_only=True).

        ``spec`` inspects the trained decoder on other data (another session or subject);
        its channels must match the ones the decoder was trained on.

        A run saved with what identifies its recording (``config.json``'s
        ``prep["recording"]``: samples, sampling rate, channels, per-channel mean and SD) is
        refused on a recording that differs (a file replaced or cut since), when opened on its
        own data: ``spec`` None, or the same options with a recording of the same file name found
        elsewhere (``check_recording=None``; True checks any ``spec``, False none). Runs saved
        without it (as the shipped demo run) load as before.
        """
        run_dir = Path(run_dir)
        given = spec
        cfg_path = run_dir / "config.json"
        if not cfg_path.is_file():
            raise UnitScopeError(
                f"{str(run_dir)!r} is not a UnitScope run folder (no config.json){unfinished_note(run_dir)}.")
        try:
            cfg = json.loads(cfg_path.read_text())
            spec = spec or DataSpec.from_record(cfg["data"])
            config = TrainConfig.from_dict(cfg["train"])
            mcfg = cfg["model"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UnitScopeError(f"Corrupt run config {str(cfg_path)!r}: {exc}") from exc
        if spec.source != "demo":
            found = find_run_recording(spec.source, run_dir, cfg.get("source_path"))
            if found != spec.source:
                spec = DataSpec.from_dict({**spec.to_dict(), "source": found})
        rec, task, spec = read_spec(spec)
        trained_on = mcfg.get("ch_names")
        if spec.picks is None and trained_on:
            try:
                default = input_picks(rec, spec)
            except UnitScopeError:  # e.g. every channel marked bad since: the trained ones by name
                default = None
            if default != list(trained_on):
                # a run trained before channels marked bad were left out by default, or on a file
                # whose marks changed since: the channels the decoder was trained on, by name
                # (read once: the same recording, picked otherwise)
                spec = DataSpec.from_dict({**spec.to_dict(), "picks": list(trained_on)})
        rec, task, blocks, prep = prepare(rec, task, spec, input_picks(rec, spec))
        if rec.ch_names != mcfg.get("ch_names", rec.ch_names) or rec.n_chans != mcfg["n_chans"]:
            raise UnitScopeError(
                f"The checkpoint in {str(run_dir)!r} was trained on {mcfg['n_chans']} channels "
                f"{mcfg.get('ch_names', [])[:8]}... but the data have {rec.n_chans} channels {rec.ch_names[:8]}..."
            )
        expected = (cfg.get("prep") or {}).get("recording")
        if check_recording is None:
            check_recording = given is None or same_data(given, DataSpec.from_record(cfg["data"]))
        if isinstance(expected, dict) and check_recording:
            diffs = recording_differences(prep["recording"], expected)
            if diffs:
                what = "The demo recording" if spec.source == "demo" else f"The recording {str(spec.source)!r}"
                raise UnitScopeError(
                    f"{what} is not the one the decoder in {str(run_dir)!r} was trained on: {'; '.join(diffs)}. "
                    "Put back the recording it was trained on, or train a decoder on this one.")
        model = load_run_model(run_dir, mcfg)
        check_same_decoding(cfg, run_dir, spec, rec, task, prep)
        data = make_data(rec, task, blocks, prep, spec, model, mcfg["n_times"])
        if task == "classification":
            check_same_classes(cfg, run_dir, data)
        ws = cls(spec, config, rec, task, blocks, prep, model, data, run_dir)
        ws.metrics, ws.history = cfg.get("metrics", {}), cfg.get("history", [])
        return ws

    @classmethod
    def demo(cls, *, model: str = "deep4", cache_dir: str | Path | None = None,
             progress: Callable[[dict], None] | None = None, stop: threading.Event | None = None) -> "Workspace":
        """The trained decoder of the demo recording.

        Looks for a shipped run in ``assets/demo-<model>/``, then in
        ``<cache_dir>/demo-<model>-v<N>/``; trains (the shipped run's recipe, ``DEMO_TRAIN``;
        for Deep4 about 2.5 minutes on 2 cores, and, measured there, the very weights shipped: the
        same ``model_hash``) and caches it when neither exists.
        """
        for folder in (ASSETS_DIR / f"demo-{model}", Path(cache_dir or default_cache_dir()) / f"demo-{model}-v{DEMO_VERSION}"):
            if (folder / "model.pt").is_file() and (folder / "config.json").is_file():
                cfg = json.loads((folder / "config.json").read_text())
                if cfg.get("demo_version") == DEMO_VERSION:
                    return cls.load(folder)
        ws = cls.create(DataSpec(), TrainConfig(model=model, **DEMO_TRAIN.get(model, {})))
        ws.train(progress=progress, stop=stop)
        ws.save(folder, demo_version=DEMO_VERSION)
        return ws

    # ---- training and saving ---------------------------------------------------------
    def train(self, *, progress=None, stop=None, resume: bool = False, run_dir=None) -> TrainResult:
        """Train the decoder (in place), then measure valid and test metrics.

        With a run folder (``run_dir``, else the workspace's own), the folder is locked for the
        training (:func:`core.training.run_lock`: a second training into it is refused), the
        state of every epoch goes to its ``checkpoint.partial.pt``, and only a training that
        ends (finished, early-stopped or stopped with ``stop``) replaces the run's
        ``model.pt``, ``config.json`` and ``checkpoint.pt``, together; an interrupted one (an
        exception, Ctrl-C) leaves the folder's previous run as it was. ``resume`` continues
        from the folder's checkpoint (:func:`core.training.resume_checkpoint`) and refuses one
        of other data or another decoder (:meth:`check_resume`).

        Ctrl-C raises :class:`core.training.TrainingInterrupted` with the model at the best
        epoch so far (eval mode), ``history`` its completed epochs and ``metrics`` marked
        ``interrupted`` (valid and test not measured: :meth:`evaluate` measures them).
        """
        run_dir = Path(run_dir) if run_dir else self.run_dir
        with run_lock(run_dir) if run_dir else contextlib.nullcontext():
            if resume and run_dir:
                self.check_resume(run_dir)
            try:
                result = train(self.model, self.data, self.config, progress=progress, stop=stop,
                               checkpoint_dir=run_dir, resume=resume, record=self.run_record() if run_dir else None)
            except TrainingInterrupted as exc:  # Ctrl-C: the best epoch so far is kept, and said so
                done = exc.result
                self.history, self.version = done.history, self.version + 1
                self.metrics = {"best_epoch": done.best_epoch, "epochs": len(done.history),
                                "train_seconds": done.seconds, "stopped": True, "interrupted": True}
                raise
            self.history = result.history
            self.version += 1
            self.metrics = {"valid": self.evaluate("valid"), "test": self.evaluate("test"),
                            "best_epoch": result.best_epoch, "epochs": len(result.history),
                            "train_seconds": result.seconds, "stopped": result.stopped, **self.held_out_counts()}
            if run_dir:
                self._write(run_dir, {}, commit=True)
        return result

    def run_record(self) -> dict:
        """What this decoder is trained on and how (JSON-able), as a training's checkpoint keeps
        it: ``data`` (the DataSpec), ``source_path`` (the recording, in full), ``model`` (the
        architecture and its channels), ``train`` (the TrainConfig), ``task`` and ``recording``
        (what identifies the recording, :func:`core.recording.recording_identity`)."""
        # where the recording was, in full: a source given relative to the folder train ran in is
        # found again from any other (find_run_recording)
        source = Path(str(self.spec.source)).expanduser()
        return {"data": self.spec.to_dict(),
                "source_path": str(source.resolve()) if self.spec.source != "demo" and source.exists() else None,
                "model": dict(self.model.unitscope_config, ch_names=list(self.recording.ch_names)),
                "train": self.config.to_dict(), "task": self.task, "recording": self.prep.get("recording")}

    def resume_differences(self, record: dict) -> list[str]:
        """How this workspace's data and decoder differ from those a checkpoint was trained with
        (``record``: :meth:`run_record`'s, or a run's config.json), one ``"NAME NOW now, THEN in
        the checkpoint"`` each; [] when a training of it can be resumed here. The number of
        epochs, the patience and the device may differ."""
        now, out = self.run_record(), []

        def differs(label, a, b):
            out.append(f"{label} {a!r} now, {b!r} in the checkpoint")

        then_data = record.get("data") or {}
        if then_data:  # read as it was trained (a band-pass recorded before filter_phase: zero phase)
            then_data = {**then_data, "filter_phase": recorded_filter_phase(then_data)}
        if then_data and not same_source(now, record):
            differs("data (--data)", now["data"]["source"], then_data.get("source"))
        for key, label in DATA_OPTIONS.items():
            a, b = now["data"].get(key), then_data.get(key, now["data"].get(key))
            if (list(a) if isinstance(a, tuple) else a) != (list(b) if isinstance(b, tuple) else b):
                differs(label, a, b)
        then_train = record.get("train") or {}
        for key, label in TRAIN_OPTIONS.items():
            a, b = now["train"].get(key), then_train.get(key, now["train"].get(key))
            if key == "lr":
                a = self.config.learning_rate
                b = DEFAULT_LR.get(then_train.get("model"), a) if b is None else float(b)
            if a != b:
                differs(label, a, b)
        then_model = record.get("model") or {}
        if not out:  # what the options above did not show: the channels or classes the data gave
            for key, label in (("ch_names", "input channels"), ("n_outputs", "outputs"), ("n_times", "window"),
                               ("dense", "dense")):
                if key in then_model and now["model"].get(key) != then_model[key]:
                    differs(label, now["model"].get(key), then_model[key])
        return out

    def check_resume(self, run_dir: str | Path, *, record: dict | None = None) -> None:
        """Refuse to resume the training in ``run_dir`` (its checkpoint,
        :func:`core.training.resume_checkpoint`) on other data or with another decoder than it
        was trained with (:meth:`resume_differences`), naming what differs. The record is the
        checkpoint's own; for a checkpoint that keeps none (written before UnitScope kept it),
        ``record`` or the run's config.json; nothing is checked when there is neither."""
        path = resume_checkpoint(run_dir)
        if path is None:
            return
        kept = checkpoint_summary(path)["record"]
        if kept is None and record is None and (Path(run_dir) / "config.json").is_file():
            try:
                record = config_record(json.loads((Path(run_dir) / "config.json").read_text()))
            except (ValueError, TypeError, AttributeError):
                record = None
        kept = kept or record
        diffs = self.resume_differences(kept) if kept else []
        if diffs:
            d = kept.get("data") or {}
            from .io import source_label

            what = ("the demo recording" if d.get("source") == "demo"
                    else repr(source_label(str(d.get("source")), d.get("bids"))))
            target = f"target {d['target']!r}" if d.get("target") else "its own target"
            raise UnitScopeError(
                f"Cannot resume the training in {str(path)!r} on other data or with another decoder: "
                f"{'; '.join(diffs)}. It was trained on {what}, {target}, with a "
                f"{(kept.get('train') or {}).get('model', '?')} decoder: resume it with those options (unitscope "
                "train --resume without --data takes them from the run), or train from the start (without "
                "--resume) or into another folder.")

    def held_out_counts(self) -> dict:
        """How many trials (labels) or windows (continuous targets) the valid and test metrics
        rest on, to store beside them in a run's metrics (:meth:`train` and :meth:`load_weights`
        do, so the cautions of ``unitscope info`` and the app hold for runs made from Python): ``n_valid``, ``n_test``, ``count_of``;
        for a continuous target also ``test_target_shift``: the test block's mean target in SDs of
        the training block's from its mean (the targets are standardised on the training block)."""
        _, y_test = self.eval_set("test")
        out = {"n_valid": int(len(self.eval_set("valid")[0])), "n_test": int(len(y_test)),
               "count_of": "trials" if self.task == "classification" else "windows"}
        if self.task == "regression" and np.size(y_test):
            out["test_target_shift"] = round(float(np.nanmean(y_test)), 3)
        if self.task == "classification":
            out["n_test_classes"] = int(len(np.unique(y_test)))
            pred, true = self.predict("test")
            guess = np.asarray(pred).argmax(axis=1)
            true = np.asarray(true).astype(int)
            classes = [str(c) for c in self.data.classes]
            # per class: the test trials called right and the trials of the class (its recall), the
            # numbers balanced accuracy averages
            out["test_per_class"] = {c: [int(np.sum((true == k) & (guess == k))), int(np.sum(true == k))]
                                     for k, c in enumerate(classes)}
        return out

    def load_weights(self, path: str | Path) -> None:
        """Put weights trained elsewhere into this workspace's decoder, then measure them.

        For model inspection: a braindecode Deep4Net / ShallowFBCSPNet trained outside
        UnitScope, saved as its ``state_dict()`` (``torch.save(model.state_dict(), path)``,
        skorch's ``save_params(f_params=...)``, or a dict holding it under ``model``,
        ``state_dict`` or ``model_state_dict``, as UnitScope's own ``checkpoint.pt``). The file
        loads with ``weights_only=True``; a ``module.`` prefix (DataParallel) is dropped. The
        decoder built for these data (channels, outputs, window, dense or trial-wise) must have
        the same parameter names (braindecode's older names are mapped as braindecode maps them)
        and shapes; dropout is not a parameter and does not matter.

        [A] The inputs are prepared as UnitScope prepares them (per-channel standardisation
        fitted on the training block, the DataSpec's filtering and resampling); weights trained
        on inputs prepared differently decode worse here, and the test metric shows it.

        Raises
        ------
        UnitScopeError
            Unreadable or unsafe file, no state dict in it, or parameters that do not fit.
        """
        from .training import load_state

        path = Path(path)
        check_state_file(path)
        state = load_state(path)
        if isinstance(state, dict):
            for key in ("model", "state_dict", "model_state_dict"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
            raise UnitScopeError(
                f"{str(path)!r} holds no state dict (a mapping of parameter names to tensors); save the "
                "trained network with torch.save(model.state_dict(), path).")
        state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
        legacy = getattr(self.model, "mapping", None) or {}  # braindecode's names before 0.8
        state = {legacy.get(k, k): v for k, v in state.items()}
        own = self.model.state_dict()
        missing, unexpected, shapes = state_mismatches(state, own)
        if missing or unexpected or shapes:
            cfg = self.model.unitscope_config
            parts = mismatch_parts(missing, unexpected, shapes)
            raise UnitScopeError(
                f"The weights in {str(path)!r} do not fit the {cfg['kind']} decoder of these data "
                f"({cfg['n_chans']} channels, {cfg['n_outputs']} output(s), {cfg['n_times']}-sample windows, "
                f"{'dense' if cfg['dense'] else 'trial-wise'}): {'; '.join(parts)}. Check the decoder kind "
                "(Deep4 or Shallow; --model), the input channels (--picks), the target and the window (--n-times, "
                "or --tmin/--tmax for labels).")
        self.model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
        self.model.eval()
        self.history = []
        self.version += 1
        self.metrics = {"valid": self.evaluate("valid"), "test": self.evaluate("test"),
                        "weights_from": str(path), **self.held_out_counts()}

    def save(self, run_dir: str | Path, **extra) -> Path:
        """Write ``model.pt`` and ``config.json`` into ``run_dir``, each atomically, as one step
        (:meth:`_write`); refused while another process trains into the folder."""
        return self._write(run_dir, extra, commit=False)

    def _write(self, run_dir: str | Path, extra: dict, *, commit: bool) -> Path:
        """Replace the run in ``run_dir`` by this one: config.json goes first (for that moment
        the folder is no run, rather than one whose config.json describes other weights), then
        model.pt and the new config.json are written, and with ``commit`` the training's
        ``checkpoint.partial.pt`` becomes ``checkpoint.pt``. Under the folder's lock, with a
        Ctrl-C held until the step ends."""
        import io

        from .training import json_default

        run_dir = Path(run_dir)
        record = self.run_record()  # the data spec, the recording in full, the model, as a checkpoint keeps them
        where = {"source_path": record["source_path"]} if record["source_path"] else {}
        # a label decoder's classes, output by output: opened on other data, the same classes are asked
        classes = {"classes": list(self.data.classes)} if self.task == "classification" else {}
        cfg = {"data": record["data"], **where, "train": record["train"], "model": record["model"],
               "task": self.task, "prep": self.prep, "metrics": self.metrics, "history": self.history,
               "layers": [l.to_dict() for l in self.layers], **classes, **extra}
        # both files in bytes first: one that cannot be written leaves the folder as it was
        weights = io.BytesIO()
        torch.save(self.model.state_dict(), weights)
        text = json.dumps(cfg, indent=2, default=json_default).encode()
        from ._files import atomic_target, write_synced

        with run_lock(run_dir), held_interrupt():
            # both written in full beside the run first: a full disk fails there and leaves the run as
            # it was (config.json had been removed before model.pt was written, and a failed write of
            # model.pt left a folder that was no run); then the renames, config.json last
            config, aside = run_dir / "config.json", run_dir / ".config.json.aside"
            model_replaced = False
            try:
                with atomic_target(config) as new_config:
                    write_synced(new_config, text)
                    with atomic_target(run_dir / "model.pt") as new_model:
                        write_synced(new_model, weights.getvalue())
                        if config.exists():  # a moment with no run, not a wrong one; put back on a failure
                            os.replace(config, aside)
                    model_replaced = True
            except BaseException:
                if not model_replaced and aside.exists() and not config.exists():
                    os.replace(aside, config)  # (model.pt's rename failed: the run as it was)
                raise
            aside.unlink(missing_ok=True)
            if commit:
                commit_checkpoint(run_dir)
            self.run_dir = run_dir
        return run_dir

    # ---- evaluation ------------------------------------------------------------------
    def windows(self, block: str = "train", *, n_times: int | None = None) -> np.ndarray:
        """Non-overlapping windows of a block, shape (W, C, n_times), float32 (none touching a
        stretch the file marks bad)."""
        self._check_block(block)
        if self.task == "classification":
            return self.data.eval_set(block)[0]
        n_times = n_times or self.data.n_times
        starts = self.data.tiling_starts(block, n_times)
        idx = starts[:, None] + np.arange(n_times)[None]
        return np.ascontiguousarray(self.data.X[:, idx].transpose(1, 0, 2))  # (W, C, T)

    def eval_set(self, block: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """Inputs and aligned targets: regression X (W, C, n_times), y (W, n_preds) z-scored;
        classification X (N, C, T), y (N,) int."""
        self._check_block(block)
        return self.data.eval_set(block)

    def predict(self, block: str = "test", model=None) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and truth: regression (W*n_preds,) each in target units; labels (N, n_classes), (N,)."""
        X, y = self.eval_set(block)
        out = predict(model or self.model, X)
        if self.task == "regression":
            s, m = self.prep["target_std"], self.prep["target_mean"]
            return out[:, 0, :].ravel() * s + m, y.ravel() * s + m
        return out, y

    def evaluate(self, block: str = "test", model=None) -> float:
        pred, y = self.predict(block, model)
        return score(self.task, pred, y)

    def _check_block(self, block: str) -> None:
        if block not in self.blocks:
            raise UnitScopeError(f"Unknown block {block!r}; the blocks are {list(self.blocks)}.{suggest(block, self.blocks)}")
