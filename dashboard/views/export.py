"""Export: download results (netCDF), any plot (PNG or SVG; previewed as the download draws
it), the checkpoint with its mask, and a self-contained HTML report; or save them all to a
folder under the data root.

The exports themselves live in :mod:`dashboard.export`; this view renders buttons and turns
errors into alerts.
"""
from __future__ import annotations

import io

import holoviews as hv
import numpy as np
import panel as pn
import param

from core._validation import UnitScopeError

from .. import export
from ..state import Session, apply_in_doc
from ._common import CSS, choice, controls, esc, lowered

__all__ = ["ExportView", "PLOTS", "plot_for", "Download"]


class Download(pn.widgets.FileDownload):
    """A FileDownload that sends no file when its callback returns None or an empty buffer
    (a callback that fails says why in an alert and returns one): the browser saves nothing.

    [A] Panel 1.9's FileDownload sends whatever its callback returns: the empty buffer of a
    failed export was saved as a 0-byte unitscope-curves.nc beside the "Export failed" alert,
    and None raises "Cannot transfer unknown object of type NoneType" in the server. The
    browser starts a download only when the widget's ``_transfers`` count changes, which
    ``_sync_data`` does (tests/dashboard/test_prune_jobs.py checks it on the installed Panel).
    """

    def _sync_data(self, fileobj):
        if fileobj is None:
            return
        if hasattr(fileobj, "getvalue") and not len(fileobj.getvalue()):
            return
        super()._sync_data(fileobj)


def _decoder(s):
    if s.decoder is None:
        raise UnitScopeError(s.no_decoder_note("No decoder yet."))
    return s.decoder


def _prediction(s):
    from .overview import prediction_plot

    return prediction_plot(_decoder(s).predictions())


def _fractions(s):
    from .overview import fraction_plot, fraction_table

    if s.probe is None:
        raise UnitScopeError("No probe result yet: run the probe (Units view).")
    return fraction_plot(fraction_table(s.probe), "Unit classes per layer (trained decoder)")


def _unit_map(kind):
    def make(s):
        from ._common import known_roles
        from .units import _band_edges, channel_ticks, unit_maps

        if s.probe is None or f"{s.layer}/{s.unit}" not in s.probe["unit"].values:
            raise UnitScopeError(f"No probe maps for {s.layer}/{s.unit}: run the probe (Units view).")
        amp, phase = unit_maps(s.probe, s.layer, s.unit)
        da = amp if kind == "amplitude" else phase
        vals = np.nan_to_num(da.values.astype(float))  # (channel, freq)
        lim = float(np.abs(vals).max()) or 1.0
        freqs = da["freq"].values.astype(float)
        df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 1.0
        n_ch = vals.shape[0]
        # as the app draws it: rows named by channel, the colour's sign symmetric about 0 (red: r > 0),
        # the probe's bands dashed, the channels' known roles outlined over their bands
        sign = "r(noise, response)" if kind == "amplitude" else "r(|phase shift|, similarity)"
        image = hv.Image(vals[::-1], ["freq", "channel"], "r",
                         bounds=(freqs[0] - df / 2, -0.5, freqs[0] - df / 2 + df * len(freqs), n_ch - 0.5)).opts(
            cmap="RdBu_r", clim=(-lim, lim), colorbar=True, xlabel="frequency (Hz)", ylabel="channel",
            yticks=list(channel_ticks([str(c) for c in da["channel"].values], most=16).items()), aspect=1.1)
        edges, _ = _band_edges(s.probe)
        parts = [image] + [hv.VLine(e).opts(color="black", line_dash="dashed", line_width=1) for e in edges]
        known = known_roles(s.decoder.ws.recording.signals) if s.decoder is not None else None
        if known is not None and len(known["roles"]) == n_ch:
            b = known["boxes"]
            parts.append(hv.Rectangles([(b["left"][i], b["bottom"][i], b["right"][i], b["top"][i], b["color"][i])
                                        for i in range(len(b["left"]))], vdims="color").opts(
                color="color", line_color="color", fill_alpha=0, line_width=2.5))
        return hv.Overlay(parts).opts(title=f"{s.layer}/{s.unit} {kind} sensitivity\n{sign}")
    return make


def _scatter(s):
    from ..export import _prune
    from .prune import prune_scatter

    return prune_scatter(s.probe, s.layer, _prune(s).pruned.get(s.layer, []))


def _bars(s):
    from ..export import _prune
    from .prune import effect_bars
    from .units import unit_table

    ps = _prune(s)
    dec = _decoder(s)
    drop = ps.effects if ps.effects_layer == s.layer else None
    table = unit_table(s.probe, s.layer) if s.probe is not None and s.layer in set(s.probe["layer"].values) else None
    return effect_bars(drop, s.layer, ps.pruned.get(s.layer, []), dec.n_units.get(s.layer, 0), table=table,
                       by=ps.curves_by)


def _curves(s):
    from ..export import _prune
    from .prune import curve_plot

    ps = _prune(s)
    if ps.curves is None:
        raise UnitScopeError("No pruning curves yet: compute them in the Prune view.")
    return curve_plot(ps.curves)


def _kernel(which, part):
    def make(s):
        from ..export import _kernels
        from .kernels import codes_plot, kernel_plot, kernel_state_of, signal_title

        if which == "channel":  # the input's own kernels: any decoder
            ks = kernel_state_of(s)
            res, prev = ks.channel, None
            if res is None:
                raise UnitScopeError("No input channel kernels yet: fit them in the Kernels view first.")
            title = signal_title(res.attrs.get("signal", "channel"))
        else:
            ks = _kernels(s)
            res = ks.output if which == "output" else ks.unit
            prev = ks.output_previous if which == "output" else ks.unit_previous
            if res is None:
                raise UnitScopeError("No kernels yet: open the Kernels view first.")
            title = "Decoder output" if which == "output" else signal_title(ks.unit_signal)
        return kernel_plot(res, prev, title=title) if part == "kernel" else codes_plot(res, prev, title=title)
    return make


# plot name -> builder(session) -> HoloViews object
PLOTS = {
    "Predicted vs true (Overview)": _prediction,
    "Unit classes per layer (Overview)": _fractions,
    "Amplitude map of the selected unit (Units)": _unit_map("amplitude"),
    "Phase map of the selected unit (Units)": _unit_map("phase"),
    "Units of the layer, pruned crossed (Prune)": _scatter,
    "Ablation effects of the layer (Prune)": _bars,
    "Pruning curves (Prune)": _curves,
    "Decoder output kernel (Kernels)": _kernel("output", "kernel"),
    "Decoder output codes (Kernels)": _kernel("output", "codes"),
    "Selected unit kernel (Kernels)": _kernel("unit", "kernel"),
    "Selected unit codes (Kernels)": _kernel("unit", "codes"),
    "Input channel kernel (Kernels)": _kernel("channel", "kernel"),
    "Input channel codes (Kernels)": _kernel("channel", "codes"),
}


def plot_for(session: Session, name: str):
    """The HoloViews object of plot ``name`` for the session's current state."""
    if name not in PLOTS:
        raise UnitScopeError(f"Unknown plot {name!r}; the plots are {list(PLOTS)}.")
    return PLOTS[name](session)


class ExportView(pn.viewable.Viewer):
    """Downloads and a save-to-folder action."""

    session = param.ClassSelector(class_=Session)
    title = "Export"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.plot = pn.widgets.Select(label="Plot", options=list(PLOTS), width=360)
        self.fmt = choice(pn.widgets.RadioButtonGroup(options=["png", "svg"], value="png", width=140))
        self.plot_dl = Download(label="Download plot", filename="unitscope-plot.png",
                                callback=self._plot_file, width=200)
        self.fmt.param.watch(self._fmt_changed, "value")
        self.plot.param.watch(self._fmt_changed, "value")
        # the plot as the download draws it (matplotlib, not the app's Bokeh): drawn in a thread
        # on asking, then again for each plot chosen
        self.preview_btn = pn.widgets.Button(label="Preview", width=120)
        self.preview_btn.on_click(lambda e: self.show_preview())
        self.preview = pn.pane.PNG(None, width=560, visible=False)
        self.preview_note = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.preview_job = None
        self._preview_seq = 0
        self._redraw_asked = False  # a drawing again is on its way (see _preview_stale)
        self._waiting = False  # Preview asked for before a decoder was loaded
        self._doc = None  # the page's document (set when the view is drawn): worker results are drawn on it
        self.plot.param.watch(lambda e: self.show_preview() if self.preview_job is not None or self._waiting
                              else None, "value")
        s.param.watch(self._preview_stale, ["layer", "unit", "probe", "decoder_version"])
        from .prune import prune_state_of  # (the Prune view's state: the bars, scatter and curves drawn)

        prune_state_of(s).param.watch(self._preview_stale, ["mask_version", "effects", "curves"])
        self.downloads = [
            Download(label="Probe result (netCDF)", filename="unitscope-probe.nc",
                     callback=self._guard(lambda: io.BytesIO(export.netcdf_bytes(export.probe_dataset(s)))),
                     width=260),
            Download(label="Pruning curves and ablation (netCDF)", filename="unitscope-curves.nc",
                     callback=self._guard(lambda: io.BytesIO(export.netcdf_bytes(export.curves_dataset(s)))),
                     width=300),
            Download(label="Kernels (netCDF)", filename="unitscope-kernels.nc",
                     callback=self._guard(lambda: io.BytesIO(export.netcdf_bytes(export.kernels_dataset(s)))),
                     width=200),
            Download(label="Checkpoint and mask (zip)", filename="unitscope-run.zip",
                     callback=self._guard(lambda: io.BytesIO(export.checkpoint_zip(s))), width=240),
            Download(label="Session report (HTML)", filename="unitscope-report.html",
                     callback=self._guard(lambda: io.StringIO(export.report_html(s))), width=230,
                     color="primary"),
        ]
        self.folder = pn.widgets.TextInput(label="Folder under the data root", value="exports", width=320,
                                           placeholder="a folder under the data root, e.g. exports/today")
        self.save_btn = pn.widgets.Button(label="Save report and results", color="primary", width=220)
        self.save_btn.on_click(self._save)
        self.saved = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")

    def _guard(self, fn):
        """A download callback whose errors become alerts (and an empty buffer, which
        :class:`Download` does not send)."""
        def callback():
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - never a traceback in the page
                from ..jobs import error_message

                self.session.alert(f"Export failed: {error_message(exc)}")
                return io.BytesIO(b"")
        return callback

    def _fmt_changed(self, *_):
        stem = self.plot.value.split(" (")[0].lower().replace(" ", "-")
        self.plot_dl.filename = f"unitscope-{stem}.{self.fmt.value}"

    def show_preview(self) -> None:
        """Draw the chosen plot as its PNG download, in a worker thread; a plot that cannot be
        drawn yet says why in place of the preview."""
        from ..jobs import Job

        self._preview_seq += 1
        seq, name, s = self._preview_seq, self.plot.value, self.session
        self._waiting = s.decoder is None
        if self._waiting:  # [A] drawn when a decoder arrives (see _preview_stale); the demo's
            # loading page said "No probe maps ...: run the probe" of the probe it was loading
            self.preview.param.update(object=None, visible=False)
            self.preview_note.object = (f"<p class='us-muted'>{esc(name)} is drawn here as soon as a decoder "
                                        "is loaded.</p>")
            return
        self.preview_note.object = f"<p class='us-muted'>Drawing {esc(name)} ...</p>"

        # the worker's result is drawn on the page's event loop, under the document lock: set from
        # the worker, a failed preview raised Bokeh's "_pending_writes should be non-None" in the server
        doc = self._doc or pn.state.curdoc

        def done(png):
            def draw():
                if seq == self._preview_seq:  # a later choice draws its own
                    self.preview.param.update(object=png, visible=True)
                    self.preview_note.object = (f"<p class='us-muted'>{esc(name)}, as the download draws it "
                                                "(PNG shown; SVG alike):</p>")
            apply_in_doc(doc, draw)

        def failed(message):
            def draw():
                if seq == self._preview_seq:
                    self.preview.param.update(object=None, visible=False)
                    self.preview_note.object = f"<p class='us-muted'>No preview: {esc(message)}</p>"
            apply_in_doc(doc, draw)

        self.preview_job = Job("export-preview", lambda stop: export.plot_bytes(plot_for(s, name), "png"),
                               on_done=done, on_error=failed).start()

    def _preview_stale(self, *_):
        """The layer, unit, probe, decoder, mask, ablation drops or curves changed.

        A preview still being drawn, or asked for before a decoder was loaded, is drawn (again)
        from the new state [A]: its reader is waiting for it (Preview clicked while the demo
        decoder loaded: the decoder arrived mid-drawing, and the page said "The plots changed
        since the preview" of a preview it never showed). A preview drawn before, or a note
        saying why there was none, is put away (drawing it again at every unit clicked would
        load the server for a plot no one looks at)."""
        job = self.preview_job
        if job is None and not self._waiting:
            return  # nothing asked for yet
        if self._waiting or job.running:
            self._preview_seq += 1  # the drawing under way is not shown
            if not self._redraw_asked:  # (the layer and unit of one address change come as two events)
                self._redraw_asked = True

                def again():
                    self._redraw_asked = False
                    self.show_preview()
                apply_in_doc(self._doc, again)  # (on the page's loop: a probe's worker may ask)
            return
        self._preview_seq += 1  # a drawing whose result waits for the page's next tick is not shown either

        def put_away():
            self.preview.param.update(object=None, visible=False)
            self.preview_note.object = ("<p class='us-muted'>The plots changed since the preview: Preview "
                                        "draws it again.</p>")
        apply_in_doc(self._doc, put_away)

    def _plot_file(self):
        return self._guard(lambda: io.BytesIO(export.plot_bytes(plot_for(self.session, self.plot.value),
                                                                 self.fmt.value)))()

    def _save(self, *_):
        s = self.session
        try:
            paths = export.save_to_folder(s, self.folder.value)
        except Exception as exc:  # noqa: BLE001
            from ..jobs import error_message

            s.alert(f"Export failed: {error_message(exc)}")
            self.saved.object = ""
            return
        items = "".join(f"<li>{esc(p)}</li>" for p in paths)
        self.saved.object = f"<p class='us-muted'>Saved:</p><ul class='us-saved'>{items}</ul>"
        s.alert(f"Saved the report and {len(paths) - 1} other file(s) to {paths[0].parent}.", "success")

    def __panel__(self):
        if self._doc is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc
        return pn.Column(
            pn.pane.HTML("<h4>Results</h4><p class='us-muted'>The report opens offline in any browser: figures "
                         "and styles are inside the file.</p>", stylesheets=[CSS]),
            pn.FlexBox(*self.downloads),
            pn.pane.HTML("<h4>A plot as PNG or SVG</h4><p class='us-muted'>Every plot's toolbar also saves a PNG "
                         "of what is on screen.</p>", stylesheets=[CSS]),
            controls(self.plot, *lowered(self.fmt, self.plot_dl, self.preview_btn)),
            self.preview_note, self.preview,
            pn.pane.HTML("<h4>Save everything on the server</h4><p class='us-muted'>Each save makes a new folder "
                         "(unitscope-date-time) in the folder chosen: nothing saved before is replaced.</p>",
                         stylesheets=[CSS]),
            controls(self.folder, *lowered(self.save_btn)), self.saved,
            sizing_mode="stretch_width")
