"""Data and model: choose the recording, the target, the input channels, band-pass and sampling
rate, and the architecture; train with live curves."""
from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from ..decoder import KIND_LABELS
from ..files import SESSION_UPLOAD_FACTOR, WEIGHTS_SUFFIXES, max_upload_bytes
from ..state import Session
from ._common import CSS, Shown, apply_in_doc, choice, esc, kv_table, number_box

# the shipped demo Deep4's kept epoch (assets/demo-deep4/config.json; a test holds it): retrained
# with its recipe for at least this many epochs, the demo gives the shipped decoder again (measured:
# bit for bit with 2 torch threads; with the app's 1 thread on 2 cores, test r 0.96987 for 0.96994)
SHIPPED_BEST_EPOCH = 23

__all__ = ["DataView", "training_curves"]


def training_curves(history: list, batches: list, metric_name: str = "validation metric",
                    best_epoch: int | None = None) -> hv.Layout:
    """Loss per batch (thin) and per epoch, and the validation metric per epoch; a dashed line
    marks ``best_epoch`` (0-based, the epoch whose weights were kept) when given.

    Every call returns the same elements with the same options, whatever the data [A]: the app
    draws the calls' results as frames of one DynamicMap, which keeps the elements and options of
    its first frame. A page opened before its decoder had loaded showed empty axes ever after
    (no best-epoch line, no legend, the curves not redrawn). So the best-epoch line is always
    there (at NaN, drawn nowhere, without one), and an empty curve holds one NaN point: the
    browser draws the legend entry of a curve without data as a label without its line.
    """
    def xy(x, y):
        return (x, y) if len(x) else ([np.nan], [np.nan])

    b = np.asarray(batches, dtype=float).reshape(-1, 2)
    ep = np.array([h["epoch"] + 1 for h in history], dtype=float)
    tl = np.array([h["train_loss"] for h in history], dtype=float)
    vl = np.array([h["valid_loss"] for h in history], dtype=float)
    vm = np.array([h["valid_metric"] for h in history], dtype=float)
    # per-batch losses exist only for decoders trained in this session: the thin line, not in the legend
    loss = (hv.Curve(xy(b[:, 0], b[:, 1]), "epoch", "loss", label="train (batch)").opts(
                color="#9ecae1", line_width=1, show_legend=False)
            * hv.Curve(xy(ep, tl), "epoch", "loss", label="train (epoch)").opts(color="#1f77b4", line_width=2)
            * hv.Curve(xy(ep, vl), "epoch", "loss", label="validation").opts(color="#ff7f0e", line_width=2)
            * hv.Scatter(xy(ep, vl), "epoch", "loss").opts(color="#ff7f0e", size=6))
    best = best_epoch + 1.0 if best_epoch is not None and 0 <= best_epoch < len(ep) else np.nan
    metric = (hv.Curve(xy(ep, vm), "epoch", "metric", label=metric_name).opts(color="#2ca02c", line_width=2)
              * hv.Scatter(xy(ep, vm), "epoch", "metric").opts(color="#2ca02c", size=6)
              * hv.VLine(best).opts(color="#555555", line_dash="dashed", line_width=1))
    # framewise on the elements: set on the overlays only, the axes kept the first frame's ranges
    each = [hv.opts.Curve(framewise=True), hv.opts.Scatter(framewise=True)]
    return (loss.opts(*each, hv.opts.Overlay(title="Loss", legend_position="top_right", framewise=True,
                                             responsive=True, height=260))
            + metric.opts(*each, hv.opts.Overlay(title="Validation metric", framewise=True, responsive=True,
                                                 height=260, show_legend=False))).cols(2)



class LimitedFileDropper(pn.widgets.FileDropper):
    """A FileDropper that holds the upload limit on the server: the chunks of a file past
    ``limit_bytes`` are let go as they arrive and ``on_refused(name, bytes_arrived)`` is called.
    The browser's own ``max_file_size`` is a property any client may change: a page that did
    sent 60 MB to a server limited to 1 MB, which held all of it before refusing it [A]."""

    def __init__(self, limit_bytes: int | None = None, on_refused=None, **params):
        super().__init__(**params)
        self.limit_bytes = limit_bytes  # (a plain attribute: a parameter would be sent to the browser)
        self._on_refused = on_refused
        self._arrived: dict[str, int] = {}

    def _process_event(self, event):
        data = event.data
        if event.event_name == "delete_event":
            self._file_buffer.pop(data["name"], None)  # (a file removed while it arrived: let go)
            self._arrived.pop(data["name"], None)
        elif self.limit_bytes:
            name = data["name"]
            if data["chunk"] == 1:
                self._arrived[name] = 0
            if self._arrived.get(name) is None:  # refused already: its further chunks are dropped
                return
            self._arrived[name] += len(data["data"] or b"")
            held = sum(n for n in self._arrived.values() if n)  # every unfinished file together (many
            # names each under the limit, never finished, had piled up: 54 MB under a 1 MB limit)
            if self._arrived[name] > self.limit_bytes or held > SESSION_UPLOAD_FACTOR * self.limit_bytes:
                self._file_buffer.pop(name, None)
                size, self._arrived[name] = self._arrived[name], None
                if self._on_refused is not None:
                    self._on_refused(name, size)
                return
            if data["chunk"] == data["total_chunks"]:
                self._arrived.pop(name, None)
        super()._process_event(event)

class DataView(pn.viewable.Viewer):
    """Choose data and decoder, train with a live progress bar and curves, stop."""

    session = param.ClassSelector(class_=Session)
    curves_shown = param.Integer(default=0, doc="Bumped on the document's event loop when the curves are to redraw.")
    title = "Data & model"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.source = choice(pn.widgets.RadioButtonGroup.from_param(
            s.param.source, options={"Demo recording": "demo", "File under data root": "file", "Upload": "upload"},
            label=""))
        self.path = pn.widgets.AutocompleteInput(
            label=f"Recording (relative to the data root {s.root})", options=[], restrict=False,
            case_sensitive=False, min_characters=0, search_strategy="includes",
            placeholder="e.g. sub-01/ecog.fif", sizing_mode="stretch_width")
        self.refresh = pn.widgets.Button(label="List files", width=100)
        self.open = pn.widgets.Button(label="Open", color="primary", width=100)
        self.dropper = None  # made when Upload is chosen (see _show_dropper)
        self.run_path = pn.widgets.AutocompleteInput(
            label="Or open a decoder trained earlier: a run folder under the data root", options=[], restrict=False,
            case_sensitive=False, min_characters=0, search_strategy="includes", placeholder="e.g. runs/sub-01/",
            sizing_mode="stretch_width", css_classes=["us-run-path"],
            description="A folder written by `unitscope train --out` or `unitscope batch` (config.json and model.pt). "
                        "It opens on the recording it was trained on, which must lie under the data root too; a "
                        "probe.nc beside it (`unitscope probe RUN_DIR`) is shown as its probe.")
        self.list_runs = pn.widgets.Button(label="List runs", width=100)
        self.open_run = pn.widgets.Button(label="Open decoder", color="primary", width=130)
        self.weights_path = pn.widgets.AutocompleteInput(
            label="Or weights trained elsewhere: a state dict file under the data root", options=[],
            restrict=False, case_sensitive=False, min_characters=0, search_strategy="includes",
            placeholder="e.g. models/deep4_sub-01.pt", sizing_mode="stretch_width", css_classes=["us-weights-path"],
            description="A braindecode Deep4Net / ShallowFBCSPNet saved with torch.save(model.state_dict(), path) "
                        "(or skorch's save_params): its weights go into the decoder chosen above, built for the data "
                        "of section 1, and are measured on the valid and test blocks (as `unitscope import`).")
        self.list_weights = pn.widgets.Button(label="List files", width=100)
        self.use_weights = pn.widgets.Button(label="Use weights", color="primary", width=130)
        self._dropper_slot = pn.Column(sizing_mode="stretch_width", margin=0)
        self.target = pn.widgets.Select(label="Target (continuous channel or event labels)", options=[],
                                        sizing_mode="stretch_width", css_classes=["us-target"])
        self.bids_pick = pn.widgets.Select(label="Recording in the BIDS folder", options=[], visible=False,
                                           sizing_mode="stretch_width", css_classes=["us-bids-pick"])
        self.archive_pick = pn.widgets.Select(label="Recording in the archive", options=[], visible=False,
                                              sizing_mode="stretch_width", css_classes=["us-archive-pick"])
        # preparation of a user file: channel picks, band-pass, resampling (core.workspace.DataSpec)
        self.picks = pn.widgets.MultiChoice(label="Input channels (type)", options={}, value=[],
                                            delete_button=True, search_option_limit=30,
                                            placeholder="search channels ...", sizing_mode="stretch_width",
                                            css_classes=["us-picks"])
        self.all_data = pn.widgets.Button(label="All data channels", width=150,
                                          description="Pick every EEG/ECoG/sEEG/MEG channel but the target and "
                                                      "those the file marks bad")
        self.l_freq = number_box(s, "l_freq", s, label="High-pass l_freq (Hz)", width=160,
                                                       placeholder="off", start=0.0, css_classes=["us-lfreq"])
        self.h_freq = number_box(s, "h_freq", s, label="Low-pass h_freq (Hz)", width=160,
                                                       placeholder="off", start=0.0, css_classes=["us-hfreq"])
        self.resample = number_box(s, "resample_to", s, label="Resample to (Hz)",
                                                         width=160, placeholder="keep", start=0.0,
                                                         css_classes=["us-resample"])
        # label trials (core.workspace.DataSpec tmin/tmax): shown for a target of event labels
        self.tmin = number_box(s, "tmin", s, label="Trials from (s after onset)", width=180,
                                                     step=0.1, css_classes=["us-tmin"])
        self.tmax = number_box(s, "tmax", s, label="to (s after onset)", width=160, step=0.1,
                                                     css_classes=["us-tmax"])
        self.trials = pn.Row(self.tmin, self.tmax)
        self.prep_note = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.ipsi = pn.widgets.FloatSlider.from_param(
            s.param.demo_ipsi, label="Ipsilateral movements (share marked by beta alone)", step=0.05, width=320,
            css_classes=["us-ipsi"])
        self._syncing = False
        self.model = choice(pn.widgets.RadioButtonGroup.from_param(
            s.param.model_kind, options={"Deep4": "deep4", "Shallow": "shallow"}, label=""))
        self.epochs = number_box(s, "max_epochs", s, label="Max epochs", width=120,
                                                   css_classes=["us-epochs"])
        self.train_btn = pn.widgets.Button(label="Train", color="success", width=110)
        self.stop_btn = pn.widgets.Button(label="Stop", color="danger", width=110, disabled=True)
        self.demo_btn = pn.widgets.Button(label="Back to the demo decoder", width=200,
                                          description="Show the demo decoder again; a training in progress is "
                                                      "stopped and the decoder it was training is discarded")
        self.progress = pn.indicators.Progress(value=0, max=1000, sizing_mode="stretch_width", height=20,
                                               bar_color="success")
        self.progress_text = pn.pane.HTML("", stylesheets=[CSS], margin=(0, 10))
        # why Open decoder and Use weights are off while a training runs (next to them)
        self.blocked_note = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width", margin=(0, 10),
                                         css_classes=["us-blocked-note"])
        self.info = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.plan = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width", css_classes=["us-plan"])

        self.refresh.on_click(lambda e: self._list_files())
        self.list_runs.on_click(lambda e: self._list_runs())
        self.open_run.on_click(lambda e: s.open_run(self.run_path.value_input or self.run_path.value))
        self.run_path.param.watch(lambda e: e.new and s.open_run(e.new), "value")  # Enter opens too
        self.list_weights.on_click(lambda e: self._list_weights())
        self.use_weights.on_click(lambda e: s.import_weights(self.weights_path.value_input or self.weights_path.value))
        self.weights_path.param.watch(lambda e: e.new and s.import_weights(e.new), "value")  # Enter uses them too
        self.open.on_click(lambda e: s.inspect(self.path.value_input or self.path.value))
        self.path.param.watch(lambda e: e.new and s.inspect(e.new), "value")  # Enter opens too
        s.param.watch(self._show_dropper, "source")
        self._show_dropper()
        self.target.param.watch(lambda e: None if self._syncing else setattr(s, "target", e.new or ""), "value")
        self.bids_pick.param.watch(self._bids_picked, "value")
        self.archive_pick.param.watch(
            lambda e: None if self._syncing or not e.new else s.choose_in_archive(e.new), "value")
        self.train_btn.on_click(lambda e: s.train())
        self.stop_btn.on_click(lambda e: s.stop_training())
        self.demo_btn.on_click(self._back_to_demo)
        s.param.watch(self._sync_info, ["recording_info", "target"])
        self.picks.param.watch(self._picked, "value")
        self.all_data.on_click(self._pick_all_data)
        s.param.watch(self._sync_prep, ["recording_info", "target", "picks", "l_freq", "h_freq", "resample_to",
                                        "source", "tmin", "tmax"])
        Shown(s, ["target", "source"]).set((self.trials, lambda: s.source != "demo" and s.target.startswith("events")))
        self._sync_prep()
        s.param.watch(self._sync_busy, ["busy", "train_progress", "train_history", "train_outcome"])
        s.param.watch(self._sync_plan, ["source", "demo_ipsi", "model_kind", "max_epochs", "recording_info", "target",
                                        "tmin", "tmax"])
        self._sync_plan()
        self._sync_info()
        self._sync_busy()
        # [A] The training thread's updates redraw the curves on the document's event loop
        # (the Kernels view's reason: a redraw from a worker can miss plots being created)
        self._doc = None
        s.param.watch(lambda *_: apply_in_doc(self._doc, self._bump_curves),
                      ["train_history", "train_batches", "decoder", "busy"])
        self.curves_note = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width",
                                        css_classes=["us-curves-note"])
        s.param.watch(self._sync_curves_note, ["decoder", "busy"])
        self._sync_curves_note()
        # [A] one DynamicMap per plot: in one Layout, the epoch axis kept the first decoder's range
        # (29 epochs) for the next one's 4, framewise or not, shared axes or not
        panes = [pn.pane.HoloViews(hv.DynamicMap(pn.bind(lambda k, i=i: self._shown_curves(k).values()[i],
                                                         self.param.curves_shown)),
                                   sizing_mode="stretch_width", height=280, linked_axes=False) for i in (0, 1)]
        self.curves = pn.Row(*panes, sizing_mode="stretch_width")

    def _bump_curves(self):
        self.curves_shown += 1

    def _shown_curves(self, shown):
        s = self.session
        if s.busy == "training":  # the run in progress
            return self._curves(s.train_history, s.train_batches)
        dec = s.decoder  # else the curves of the decoder in use, as saved with it
        if dec is None:
            return self._curves([], [])
        return self._curves(dec.ws.history, dec.batches, dec.ws.metrics.get("best_epoch"))

    def _sync_curves_note(self, *_):
        s, dec = self.session, self.session.decoder
        if s.busy == "training":
            txt = "The run in progress (the thin line: the loss of each batch); the decoder in use stays until it finishes."
        elif dec is None:
            txt = s.no_decoder_note("No decoder yet.")
        elif not dec.ws.history:
            txt = f"{dec.label}: its checkpoint holds no training history."
        else:
            best = dec.ws.metrics.get("best_epoch")
            metric = "Pearson r" if dec.task == "regression" else "balanced accuracy"
            txt = (f"{dec.label}: {len(dec.ws.history)} epoch(s), validation metric {metric}"
                   + (f", weights of epoch {int(best) + 1} (best on the validation block, dashed)" if best is not None else "")
                   + ("; the thin line: the loss of each batch" if dec.batches else
                      "; per-batch losses are kept only for decoders trained in this session")
                   + ".")
        self.curves_note.object = f'<span class="us-muted">{esc(txt)}</span>'

    def _curves(self, history, batches, best_epoch=None):
        name = "Pearson r" if (self.session.decoder is None or self.session.decoder.task == "regression") else "balanced accuracy"
        return training_curves(history, batches, name, best_epoch)

    def _back_to_demo(self, event=None):
        self.session.back_to_demo()

    def _offer(self, widget, found: list, missing: str) -> None:
        """Offer ``found`` (paths under the data root) in ``widget``, or say ``missing``."""
        widget.options = found
        if not found:
            self.session.alert(missing, "info")

    def _list_files(self):
        self._offer(self.path, self.session.recordings(),
                    f"No recordings found under the data root {self.session.root}.")

    def _list_runs(self):
        self._offer(self.run_path, self.session.runs(),
                    f"No run folders (config.json and model.pt) found under the data root {self.session.root}: "
                    "write one with `unitscope train ... --out RUN_DIR` there.")

    def _list_weights(self):
        self._offer(self.weights_path, self.session.weights_files(),
                    f"No weights files ({', '.join(WEIGHTS_SUFFIXES)}) found under the data root "
                    f"{self.session.root} (run folders' own model.pt are opened as runs above).")

    def _show_dropper(self, *_):
        """Create the file dropper the first time Upload is chosen [A]: while a dropper is on the
        page, FilePond animates at 60 frames per second (see dashboard/templates/unitscope.html),
        which idle pages of a class should not pay for."""
        if self.dropper is not None or self.session.source != "upload":
            return
        mb = max_upload_bytes() / 1024 / 1024
        self.dropper = LimitedFileDropper(max_file_size=f"{int(max(mb, 1))}MB", multiple=True, height=120,
                                          sizing_mode="stretch_width", limit_bytes=max_upload_bytes(),
                                          on_refused=self._refused_while_arriving)
        self.dropper.param.watch(self._uploaded, "value")
        self._dropper_slot[:] = [self.dropper]

    def _refused_while_arriving(self, name: str, size: int) -> None:
        limit = max_upload_bytes()
        mb = 1024 * 1024  # (as the dropper's "Files up to ... MB" counts them)
        self.session.alert(f"{name!r} is larger than the upload limit of {limit / mb:.4g} MB (more than "
                           f"{size / mb:.4g} MB arrived): refused while it arrived. Put large recordings under "
                           "the data root instead, or raise UNITSCOPE_MAX_UPLOAD_MB.")

    def _uploaded(self, event):
        files = dict(event.new or {})
        if not files:
            return
        self.session.upload_files(files)
        # [A] the session has saved them: the dropper lets go of their bytes (a class's sessions
        # would otherwise each hold every file dropped in memory until they end)
        self.dropper.param.update(value={}, mime_type={})

    def _bids_picked(self, event):
        if self._syncing or not event.new:
            return
        found = {r["label"]: r["entities"] for r in self.session.recording_info.get("bids_recordings", [])}
        if event.new in found:
            self.session.choose_bids(found[event.new])

    def _sync_choices(self, info: dict) -> None:
        """The BIDS folder's, or the uploaded archive's, recordings to choose from (hidden for
        anything else)."""
        listed = [r["label"] for r in info.get("bids_recordings", [])]
        packed = list(info.get("archive_recordings", []))
        self._syncing = True
        try:
            self.bids_pick.param.update(options=listed, visible=bool(listed),
                                        value=info["bids_chosen"]["label"] if listed else None)
            self.archive_pick.param.update(options=packed, visible=bool(packed),
                                           value=info["label"] if packed else None)
        finally:
            self._syncing = False

    def _sync_info(self, *_):
        info = self.session.recording_info
        if self.session.busy != "inspecting" or info:
            self._sync_choices(info)  # kept while another recording of the same folder is read
        if not info:
            self.info.object = '<p class="us-muted">No recording inspected yet.</p>'
            self._syncing = True
            try:
                self.target.options = []
            finally:
                self._syncing = False
            return
        chosen = info.get("bids_chosen")
        rows = [("File", info.get("label", ""))] + ([("Recording", f"{chosen['label']}: {chosen['path']}")]
                                                    if chosen else []) + [("Channels", info["n_chans"]),
                ("Channel types", ", ".join(f"{k}: {v}" for k, v in info["ch_types"].items())),
                ("Sampling rate", f"{info['sfreq']:g} Hz"), ("Duration", f"{info['duration_s']:.1f} s"),
                ("Events", ", ".join(f"{k}: {v}" for k, v in info["events"].items()) or "none")]
        if info.get("read_note"):
            rows.append(("Caution", info["read_note"]))
        if info.get("bad_segments"):
            rows.append(("Marked bad (time)", f"{info['bad_segments']} stretch(es), {info['bad_seconds']:.1f} s "
                                              "(BAD annotations; no window or trial touches them)"))
        if info.get("bads"):
            rows.append(("Marked bad", f"{', '.join(info['bads'])} (in the file; left out of the inputs "
                                       "unless you pick them)"))
        names = ", ".join(esc(c) for c in info["ch_names"])
        self.info.object = kv_table(rows) + f'<div class="us-chan">{names}</div>'
        opts = self.session.target_options()
        # new options must not write the widget's fallback (the first option) back as the target
        self._syncing = True
        try:
            self.target.param.update(options=opts,
                                     value=self.session.target if self.session.target in opts else None)
        finally:
            self._syncing = False

    def _picked(self, event):
        if not self._syncing:
            self.session.picks = list(event.new or [])

    def _pick_all_data(self, event=None):
        self.session.picks = self.session.default_picks()

    def _sync_prep(self, *_):
        """Picks, band-pass and resampling: options from the file, live problems, or why they are off."""
        s = self.session
        info = s.recording_info if s.source != "demo" else {}
        off = not info
        for w in (self.picks, self.all_data, self.l_freq, self.h_freq, self.resample, self.tmin, self.tmax):
            w.disabled = off
        self._syncing = True  # programmatic updates must not write back
        try:
            # labels are rendered as HTML by the widget: escape them (values stay the raw names)
            bads = set(info.get("bads", [])) if info else set()
            opts = ({esc(f"{c} ({t}{', marked bad' if c in bads else ''})"): c for c, t in s.pick_options()}
                    if info else {})
            self.picks.param.update(options=opts, value=[c for c in s.picks if c in opts.values()])
        finally:
            self._syncing = False
        if s.source == "demo":
            self.prep_note.object = (
                '<span class="us-muted">The demo recording comes prepared (32 simulated ECoG channels at 250 Hz, '
                'no extra filtering), so channel picks, band-pass and resampling are off here; they apply to '
                'your own recordings (File under data root or Upload).</span>')
            return
        if off:
            self.prep_note.object = ('<span class="us-muted">Open a recording to choose its input channels, '
                                     'band-pass and sampling rate.</span>')
            return
        problems = s.prep_problems()
        if problems:
            self.prep_note.object = "".join(
                f'<div class="us-alert us-alert-danger us-prep-problem" role="alert">{esc(p)}</div>' for p in problems)
            return
        band = ("off" if s.l_freq is None and s.h_freq is None else
                f"{'0' if s.l_freq is None else f'{s.l_freq:g}'}-{'Nyquist' if s.h_freq is None else f'{s.h_freq:g}'} Hz"
                f" (causal, as the decoder)")  # DataSpec.filter_phase: a sample filtered from its past only
        rate = f"{s.resample_to:g} Hz (resampled)" if s.resample_to else f"{info['sfreq']:g} Hz (as recorded)"
        trials = f" · trials {s.tmin:g} to {s.tmax:g} s from each onset" if s.target.startswith("events") else ""
        overlap = s.trial_overlap()
        self.prep_note.object = (f'<span class="us-muted us-prep-ok">{len(s.picks)} of {info["n_chans"]} channels '
                                 f'as input · band-pass {esc(band)} · sampling {esc(rate)}{esc(trials)}</span>'
                                 + (f'<div class="us-alert us-alert-warning us-trial-overlap" role="alert">'
                                    f'{esc(overlap)}</div>' if overlap else ""))

    def _sync_plan(self, *_):
        """What Train will do, in one line (the server's view of the choices above)."""
        s = self.session
        kind = KIND_LABELS[s.model_kind]
        if s.source == "demo":
            data = "the demo recording" + (f" with {s.demo_ipsi:.0%} ipsilateral movements" if s.demo_ipsi else "")
        elif s.recording_info:
            info = s.recording_info
            data = esc(info.get("label", "the recording")) + (
                f" ({esc(info['bids_chosen']['label'])})" if info.get("bids_chosen") else "") + (
                f", target {esc(s.target)}" if s.target else "") + (
                f" (trials {s.tmin:g} to {s.tmax:g} s from each onset)" if s.target.startswith("events") else "")
        else:
            data = "the recording you open above"
        recipe = ""
        if s.demo_recipe():
            recipe = (f", with the shipped decoder's recipe (a constant learning rate): with {SHIPPED_BEST_EPOCH} or "
                      "more epochs, the shipped decoder again (test r 0.970) in about 3 minutes")
        self.plan.object = (f"<span class='us-muted'>Train fits {kind} on {data}, up to {int(s.max_epochs)} epochs "
                            f"(early stopping on the validation block){recipe}.</span>")

    def _sync_busy(self, *_):
        s = self.session
        training = s.busy == "training"
        blocked = s.busy in ("inspecting", "training", "opening", "importing")  # loading the demo blocks nothing
        self.train_btn.disabled = blocked
        self.open_run.disabled = blocked
        self.use_weights.disabled = blocked
        self.stop_btn.disabled = not training
        self.demo_btn.disabled = s.busy in ("opening", "importing")  # that decoder would replace the demo
        self.open.disabled = blocked
        self.blocked_note.object = (
            '<span class="us-muted">Opening a decoder or weights waits until the training ends: <b>Stop</b> keeps '
            'its best weights so far; <b>Back to the demo decoder</b> stops it and discards its decoder.</span>'
            if training else "")
        self.progress.value = int(round(s.train_progress * 1000)) if (training or s.train_history) else 0
        self.progress.active = False
        if training:
            ep = len(s.train_history)
            last = s.train_history[-1] if s.train_history else None
            txt = f"Training: epoch {ep + 1} of at most {s.max_epochs}, {s.train_progress:.0%}"
            if last:
                txt += f" · last validation metric {last['valid_metric']:.3f}"
            self.progress_text.object = f'<span class="us-muted">{esc(txt)}</span>'
        elif s.busy:
            self.progress_text.object = f'<span class="us-muted">{esc(s.busy.capitalize())} ...</span>'
        else:  # how the last run ended: its bar stays where it stopped (17 of 25 epochs: 68%)
            self.progress_text.object = f'<span class="us-muted">{esc(s.train_outcome)}</span>' if s.train_outcome else ""

    def __panel__(self):
        if self._doc is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc
        file_box = pn.Column(pn.Row(self.path, self.refresh, self.open, sizing_mode="stretch_width"),
                             visible=self.session.param.source.rx() == "file", sizing_mode="stretch_width")
        upload_box = pn.Column(
            pn.pane.HTML(f'<span class="us-muted">One file (EDF, FIF, ...), all the files of a recording at once '
                         '(BrainVision .vhdr, .vmrk and .eeg; EEGLAB .set and .fdt), or a .zip of them (a BIDS '
                         f'folder, a CTF .ds folder). Files up to {max_upload_bytes() / 2 ** 20:.4g} MB; larger '
                         'recordings go under the data root.</span>', stylesheets=[CSS]),
            self._dropper_slot, visible=self.session.param.source.rx() == "upload", sizing_mode="stretch_width")
        demo_box = pn.pane.HTML(
            '<span class="us-muted">Simulated ECoG reaching task: 32 channels on a 4 x 8 grid, 10 minutes at '
            '250 Hz, target hand speed. High-gamma (60-90 Hz) and beta (15-25 Hz) amplitude and a 1-4 Hz '
            'movement-locked waveform carry the movement; the other channels are noise.</span>',
            stylesheets=[CSS], sizing_mode="stretch_width")
        ipsi_note = pn.pane.HTML(
            '<span class="us-muted">What-if: a share of the movements made with the other hand. Beta still drops '
            '(its desynchronisation is bilateral), high gamma and the 1-4 Hz waveform stay silent, so beta alone '
            'marks them. Train a decoder on it, then ask the Overview\'s band occlusion whether it needs beta '
            '(Shallow learns to; Deep4 does not).</span>', stylesheets=[CSS], sizing_mode="stretch_width",
            margin=(5, 10, 5, 30))  # clear of the slider's value (it read "0.50What-if")
        demo_box = pn.Column(demo_box, pn.Row(self.ipsi, ipsi_note, sizing_mode="stretch_width"),
                             visible=self.session.param.source.rx() == "demo", sizing_mode="stretch_width")
        prep = pn.Column(
            pn.pane.HTML("<b>Channels and filtering</b>", stylesheets=[CSS]),
            pn.Row(self.picks, pn.Column(pn.Spacer(height=18), self.all_data), sizing_mode="stretch_width"),
            pn.Row(self.l_freq, self.h_freq, self.resample), self.trials, self.prep_note, sizing_mode="stretch_width")
        data_card = pn.Column(
            pn.pane.Markdown("### 1. Data"), self.source, demo_box, file_box, upload_box,
            pn.Column(self.archive_pick, self.bids_pick, self.info, self.target, visible=self.session.param.source.rx() != "demo",
                      sizing_mode="stretch_width"),
            prep, sizing_mode="stretch_width")
        model_card = pn.Column(
            pn.pane.Markdown("### 2. Decoder"), pn.Row(self.model, self.epochs), self.plan,
            pn.Row(self.train_btn, self.stop_btn, self.demo_btn),
            pn.Row(self.progress, sizing_mode="stretch_width"), self.progress_text,
            pn.Row(self.run_path, pn.Column(pn.Spacer(height=18), pn.Row(self.list_runs, self.open_run, margin=0),
                                            margin=0), sizing_mode="stretch_width"),
            pn.Row(self.weights_path, pn.Column(pn.Spacer(height=18),
                                                pn.Row(self.list_weights, self.use_weights, margin=0), margin=0),
                   sizing_mode="stretch_width"),
            self.blocked_note, sizing_mode="stretch_width")
        return pn.Column(data_card, model_card, pn.pane.Markdown("### Training curves"), self.curves_note, self.curves, sizing_mode="stretch_width")
