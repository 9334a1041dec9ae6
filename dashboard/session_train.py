"""A session's decoders: run folders trained earlier, training, imported weights.

:class:`SessionTrain` holds methods of :class:`dashboard.state.Session` (which inherits
them; it reads and sets the session's parameters), kept apart by topic.
"""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace


from core._validation import UnitScopeError
from core.cautions import NOT_CLEARLY, ONE_CLASS, partial_probe_note

from .decoder import KIND_LABELS, Decoder, run_decoder, run_probe_source
from .files import WEIGHTS_SUFFIXES, is_run_folder, list_runs, list_weights, resolve_in_root, run_recording

__all__ = ["SessionTrain"]

logger = logging.getLogger(__name__)


class SessionTrain:
    """Methods of :class:`dashboard.state.Session` (a mixin: see the module notes)."""

    # ---- decoders trained earlier ----------------------------------------------------------
    def runs(self) -> list[str]:
        """Run folders under the data root (``unitscope train --out``, ``unitscope batch``)."""
        return list_runs(self.root)

    def open_run(self, path: str) -> None:
        """Open a run folder under the data root (in a thread): its decoder, on the recording it
        was trained on (found under the data root), with ``probe.nc`` / ``probe_untrained.nc``
        beside it as the probe result when they were made for these weights."""
        import json

        from core.workspace import DataSpec

        if self.running("training") or self.busy in ("training", "opening"):
            self.alert("Wait for the training (or the decoder being opened) to finish first.", "warning")
            self.run = self._run_shown  # the URL names what is shown
            return
        try:
            run = resolve_in_root(self.root, path, what="run folder",
                                  choose="type its path, or press List runs to pick one under the data root")
            if not is_run_folder(run):
                raise UnitScopeError(f"{str(path)!r} is not a run folder: it must hold config.json and model.pt "
                                     "(as `unitscope train --out RUN_DIR` writes them).")
            for f in run.iterdir():  # the files read from it, too, stay under the data root (a link out
                if f.is_symlink():   # of it, as model.pt or probe.nc, had been followed)
                    resolve_in_root(self.root, f, what=f"file {f.name!r} of the run folder")
            try:
                cfg = json.loads((run / "config.json").read_text())
                data, model_kind = cfg["data"], str(cfg["model"]["kind"])
                spec = DataSpec.from_record(data)
            except (ValueError, KeyError, TypeError) as exc:
                raise UnitScopeError(f"The run config {str(path)!r}/config.json cannot be read: {exc}") from exc
            if spec.source != "demo":
                spec = DataSpec.from_record({**data, "source": str(run_recording(self.root, run, spec.source,
                                                                                cfg.get("source_path")))})
        except UnitScopeError as exc:
            self._run_failed(str(exc))
            return
        name = run.name
        shown = str(path).strip()
        self.param.update(busy="opening", status=f"Opening the decoder in {name} ...")

        def work(stop):
            kind = KIND_LABELS.get(model_kind, model_kind)
            dec = run_decoder(run, spec, label=f"{name} ({kind})")
            dec.predictions()
            probe, control, note = dec.saved_probe(run / "probe.nc", run / "probe_untrained.nc")
            return dec, probe, control, note

        def done(out):  # on the page's event loop (_on_loop): an error in it is shown
            dec, probe, control, note = out
            what = (f"with its probe (probe.nc{' and the untrained control' if control is not None else ''})"
                    if probe is not None else (note or "no probe.nc beside it: run the probe in the Units view"))
            if probe is not None and note:
                what += f"; {note}"
            partial = partial_probe_note(probe) if probe is not None else ""
            if partial:  # (unitscope probe never writes one there now, earlier versions did)
                what += f"; its probe.nc was {partial}: Run probe in the Units view for a complete one"
            if (run / "mask.json").is_file():  # e.g. an unzipped "Checkpoint and mask" export
                what += "; a mask.json is beside it: load it in the Prune view (Mask file)"

            self.busy = ""
            source = "" if probe is None else run_probe_source(name) + (
                ", computed by other probing code" if note else "") + (
                ", stopped before its end" if partial else "")  # said wherever the probe is named
            try:
                self.set_decoder(dec, probe=probe, control=control, probe_source=source, run=shown)
            except Exception:
                self._run_failed(None)  # the decoder in use kept, the status and the URL said again
                raise  # (shown by _on_loop)
            self.alert(f"Opened {name}: {self._test_metric(dec)}; {what}.", "success")

        def failed(msg):
            self.busy = ""
            self._run_failed(None)

        # [A] on the page's event loop, redrawn once it has loaded (see attach_document): a run
        # already open in another session opens at once, often while this page still loads
        self._start("open", work, on_done=self._on_loop(done, "open"), on_error=self._on_loop(failed, "open"))

    def _run_failed(self, message: str | None) -> None:
        """A run folder did not open: say why (``message``, unless already said), keep the
        decoder in use (the demo when there is none yet, e.g. a link to a run that is gone)."""
        if message:
            shown = ("The decoder shown stays." if self.decoder is not None else
                     "The demo decoder is shown." if self.busy != "loading" else "")
            self.alert(f"{message} {shown}".strip())
        if self.run and self.run != self._run_shown:  # an address's run: not tried again when the
            self._run_refused = self.run              # page syncs its address once more (said twice)
        self.run = self._run_shown  # the URL names what is shown
        if self.decoder is not None:
            self.status = self._decoder_status(self.decoder)  # (it said "Opening ..." meanwhile)
        elif self.busy != "loading":
            self.load_demo()

    def save_probe_to_run(self) -> None:
        """Write the probe result beside the run folder shown (see
        :func:`dashboard.export.save_probe_beside_run`); says what it wrote, or why not."""
        from .export import save_probe_beside_run

        try:
            paths = save_probe_beside_run(self)
        except UnitScopeError as exc:
            self.alert(f"Probe not saved: {exc}")
            return
        self.probe_source = run_probe_source(paths[0].parent.name)
        self.alert(f"Saved {' and '.join(p.name for p in paths)} in {self.run}: the run opens with them.", "success")

    # ---- training --------------------------------------------------------------------------
    def _train_progress_cb(self, p: dict) -> None:
        now = time.monotonic()
        if "history" in p:
            self.train_history = list(p["history"])
        if "batch" in p:
            x = p["epoch"] + p["batch"] / max(p["n_batches"], 1)
            self._batches.append((x, float(p["train_loss"])))
        if "history" in p or now - self._last_push > self.live_interval:
            self._last_push = now
            self.param.update(train_progress=min(float(p.get("fraction", 0.0)), 1.0),
                              train_batches=list(self._batches))

    def train(self) -> None:
        """Build a decoder on the chosen data and train it in a worker thread."""
        from core.workspace import Workspace

        if self.running("training") or self.busy == "training":  # (its end is shown on the next tick)
            self.alert("Training is already running.", "warning")
            return
        try:
            spec = self.data_spec()
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        label = ("Demo reaching recording" + (f", {self.demo_ipsi:.0%} ipsilateral" if self.demo_ipsi else "")
                 if self.source == "demo" else self.recording_info["label"])
        config = self.train_config()
        kind = KIND_LABELS[self.model_kind]
        self._batches = []
        # this run, while it is the session's: a run discarded (back to the demo) changes nothing
        run = self._training = SimpleNamespace(kind=kind, max_epochs=config.max_epochs)
        self.param.update(busy="training", train_progress=0.0, train_history=[], train_batches=[], train_outcome="")

        def current() -> bool:
            return self._training is run

        def work(stop):
            def progress(p):
                if self._gone():  # the page went: its session's training stops
                    stop.set()
                elif current():
                    self._train_progress_cb(p)

            ws = Workspace.create(spec, config)
            result = ws.train(progress=progress, stop=stop)
            if not current() or self._gone():
                return None  # discarded: no decoder made, nothing measured
            dec = Decoder(ws, label=f"{label} ({kind})")
            dec.predictions()
            return dec, result

        def done(out):
            if out is None or not current():
                return
            self._training = None
            dec, result = out
            dec.batches = list(self._batches)
            dropped = self._dropped_with_decoder()
            self.busy = ""
            self.train_batches = list(self._batches)
            self.set_decoder(dec)
            how = "stopped" if result.stopped else "finished"
            n = len(result.history)
            why = (" (stopped by you)" if result.stopped else
                   f" (early stopping: the validation metric had not improved for {config.patience} epochs)"
                   if result.early_stopped else "")
            self.train_outcome = (f"Last run: {how} after {n} of at most {config.max_epochs} epochs{why}; "
                                  f"weights of epoch {result.best_epoch + 1} kept.")
            note = dec.chance_note()
            # a test block of one class measures nothing (core.cautions.ONE_CLASS), which is not
            # "learnt nothing" (unitscope info and the report say "not measured")
            self.alert(f"Training {how} after {n} epoch(s): {self._test_metric(dec)}"
                       + ("." if not note or note == ONE_CLASS else
                          ": the decoder may have learnt nothing that holds on the test block."
                          if note.startswith(NOT_CLEARLY) else
                          ": the decoder has learnt nothing that holds on the test block."),
                       "warning" if note else "success")
            if dropped:  # [A] they went without a word: a probe run meanwhile, its pruning
                self.alert(f"The new decoder replaces {dropped[0]}: {'; '.join(dropped[1:])}.", "warning")

        def failed(message):
            if current():
                self._training = None
                self.param.update(busy="", train_outcome=f"Last run: failed ({message}).")

        self._start("training", work, on_done=self._on_loop(done, "training"), on_error=self._on_loop(failed, "training"))

    def _dropped_with_decoder(self) -> list[str]:
        """What the session computed for its decoder that a new decoder drops: ``[the decoder's
        name, phrase, ...]``, or [] when nothing of it would be lost (a shipped probe comes back
        with its decoder)."""
        dec = self.decoder
        if dec is None:
            return []
        out = []
        if self.running("probe") and self.probe_state == "running":
            out.append("the probe of the previous decoder was stopped (it was running)")
        elif self.probe is not None and self.probe_source == "run in this session":
            out.append("the probe you ran on it is dropped")
        prune = self._parts.get("prune")
        if prune is not None:
            n = sum(len(v) for v in getattr(prune, "pruned", {}).values())
            what = ([f"its pruning ({n} unit{'s' if n != 1 else ''} pruned)"] if n else []) + (
                ["its pruning curves"] if getattr(prune, "curves", None) is not None
                or getattr(prune, "curves_running", "") else []) + (
                ["its fine-tuned copy"] if getattr(prune, "finetuned", False) else [])
            if what:
                out.append(", ".join(what) + (" is" if len(what) == 1 else " are") + " dropped")
        if self.occlusions:
            out.append("its band-occlusion results are dropped")
        return [dec.label] + out if out else []

    def weights_files(self) -> list[str]:
        """State dict files under the data root (see :func:`dashboard.files.list_weights`)."""
        return list_weights(self.root)

    def import_weights(self, path: str) -> None:
        """Put weights trained elsewhere (a braindecode Deep4Net / ShallowFBCSPNet state dict,
        a file under the data root) into the decoder built for the chosen data and decoder
        kind, measure them and show that decoder (``unitscope import`` in the app;
        :meth:`core.workspace.Workspace.load_weights`)."""
        from core.training import TrainConfig
        from core.workspace import Workspace

        if self.busy in ("inspecting", "training", "opening", "importing"):
            self.alert(f"Wait until {self.busy} is done.", "warning")
            return
        try:
            full = resolve_in_root(self.root, path, what="weights file",
                                   choose="type its path, or press List files beside Use weights to pick one under the data root")
            if not full.is_file():
                raise UnitScopeError(f"{str(path)!r} is a folder; choose a weights file (a state dict: "
                                     f"{', '.join(WEIGHTS_SUFFIXES)}), or open a run folder above.")
            spec = self.data_spec()
        except UnitScopeError as exc:
            self.alert(str(exc))
            return
        label = "Demo reaching recording" if self.source == "demo" else self.recording_info["label"]
        config = TrainConfig(model=self.model_kind)
        kind = KIND_LABELS[self.model_kind]
        self.busy = "importing"

        def work(stop):
            ws = Workspace.create(spec, config)
            ws.load_weights(full)
            dec = Decoder(ws, label=f"{label} ({kind}, weights of {full.name})")
            dec.predictions()
            return dec

        def done(dec):
            self.busy = ""
            self.set_decoder(dec)
            self.alert(f"The weights of {full.name} in a {kind} decoder: {self._test_metric(dec)}.",
                       "warning" if dec.chance_note() else "success")

        self._start("import", work, on_done=self._on_loop(done, "import"),
                    on_error=self._on_loop(lambda m: setattr(self, "busy", ""), "import"))

    def stop_training(self) -> None:
        job = self._jobs.get("training")
        if job is not None and job.running:
            job.stop()
