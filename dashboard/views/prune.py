"""Prune: silence units and watch the held-out metric, with ablation bars, curves and a fine-tune.

Units are chosen by clicking them (the sensitivity scatter or the ablation bars: a click
prunes, a second click restores), by class, as the top-k most sensitive of the layer, or the
whole layer. Every edit re-measures the held-out metric at once (incremental
re-measurement, :class:`core.pruning.MaskEvaluator`); undo, reset, a mask file in and out,
and a short masked fine-tune show how much decoding recovers. The state lives in
:class:`dashboard.prune_state.PruneState`; this module only renders it.

[A] The view's plots are plain Bokeh figures whose data sources are updated in place (a
prune changes one colour), so a click never rebuilds a plot; the HoloViews versions in
:mod:`dashboard.views.prune_plots` draw the same data for the PNG/SVG export. Changes go through ``doc.add_next_tick_callback`` from any thread.
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
import time

import numpy as np
import panel as pn
import param
from bokeh.events import DoubleTap, Tap
from bokeh.core.property.vectorization import Value
from bokeh.models import BasicTicker, ColumnDataSource, HoverTool, PrintfTickFormatter, Range1d, TapTool
from bokeh.plotting import figure

from core.probing.stats import CLASSES

from ..prune_state import PruneState
from ..state import Session
from ._common import (CSS, Shown, UnitPicker, apply_in_doc, controls, lowered, number_box, placeholder,
                      select_on_double_tap)
from .export import Download
from .overview import CLASS_COLORS
from .prune_plots import (ORDER_STYLE, PRUNED_COLOR, bars_axis_label, bars_title, curve_plot,  # noqa: F401 - re-exported
                          curves_title, effect_bars, layer_drops, order_label, prune_scatter, ranked_by, scatter_title)
from .prune_text import (RECOVERY_MIN_DROP, analyses_html, finetune_html, fmt_metric,  # noqa: F401 - re-exported
                         metric_html, toggle_label)

__all__ = ["PruneView", "effect_bars", "prune_scatter", "curve_plot", "metric_html", "toggle_label", "fmt_metric",
           "prune_state_of", "finetune_html", "analyses_html", "RECOVERY_MIN_DROP"]

_nullcontext = contextlib.nullcontext
logger = logging.getLogger(__name__)


def prune_state_of(session: Session) -> PruneState:
    """The session's :class:`PruneState`, created on first use (one per session)."""
    return session.part("prune", lambda: PruneState(session=session))


def undo(session: Session, ps: PruneState) -> None:
    """Undo the last change of the session's mask, or say there is none."""
    if ps.ready and not ps.undo():
        session.alert("Nothing to undo.", "info")


class PruneView(pn.viewable.Viewer):
    """Select units to prune, watch the metric, curves, ablation bars, fine-tune."""

    session = param.ClassSelector(class_=Session)
    title = "Prune"

    def __init__(self, **params):
        super().__init__(**params)
        s = self.session
        self.ps = ps = prune_state_of(s)
        self.picker = UnitPicker(s, hidden_only=True, on_sync=self._selection_changed)
        self.layer, self.unit = self.picker.layer, self.picker.unit
        self.shown = Shown(s, ["decoder", "layer"])  # "no decoder yet", "the output layer cannot be pruned"
        # wide enough for the longest label, "Prune / restore conv_time_spat/39"
        self.toggle_btn = pn.widgets.Button(label="Prune / restore unit", color="primary", width=250)
        self.cls = pn.widgets.Select(label="Class", options=["amplitude", "phase", "bimodal", "insensitive"], width=130)
        self.cls_btn = pn.widgets.Button(label="Prune class", width=120)
        self.k = pn.widgets.IntInput(label="k", value=5, start=1, width=80)
        self.by = pn.widgets.Select.from_param(ps.param.curves_by, label="Ranked by", width=120)
        self.top_btn = pn.widgets.Button(label="Prune top-k", width=120)
        self.layer_btn = pn.widgets.Button(label="Prune whole layer", color="danger", width=150)
        self.undo_btn = pn.widgets.Button(label="Undo", width=80)
        self.reset_btn = pn.widgets.Button(label="Reset", width=80)
        self.metric = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.mask_in = pn.widgets.FileInput(accept=".json", multiple=False, width=230)
        self.mask_out = Download(label="Download mask (JSON)", filename="unitscope-mask.json",
                                 callback=self._mask_file, width=200, color="light")
        self.effects_btn = pn.widgets.Button(label="Compute ablation effects", width=210)
        self.effects_progress = pn.indicators.Progress(value=0, max=1000, width=200, height=14, bar_color="warning")
        self.effects_stop = pn.widgets.Button(label="Stop", color="danger", width=80, visible=False)
        self.curves_btn = pn.widgets.Button(label="Compute pruning curves", width=210)
        self.curves_progress = pn.indicators.Progress(value=0, max=1000, width=200, height=14, bar_color="warning")
        self.curves_stop = pn.widgets.Button(label="Stop", color="danger", width=80, visible=False)
        self.analyses_note = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.epochs = number_box(ps, "finetune_epochs", self.session, label="Fine-tune epochs", width=90)
        self.ft_btn = pn.widgets.Button(label="Fine-tune", color="primary", width=110)
        self.ft_stop = pn.widgets.Button(label="Stop", color="danger", width=80, disabled=True)
        self.ft_discard = pn.widgets.Button(label="Discard fine-tune", width=150, disabled=True)
        self.ft_progress = pn.indicators.Progress(value=0, max=1000, width=220, height=16, bar_color="primary")
        self.ft_text = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")

        self.toggle_btn.on_click(lambda e: ps.toggle(s.layer, s.unit))
        self.cls_btn.on_click(lambda e: ps.prune_class(s.layer, self.cls.value))
        self.top_btn.on_click(lambda e: ps.prune_top(s.layer, int(self.k.value or 1)))
        self.layer_btn.on_click(lambda e: ps.prune_layer(s.layer))
        self.undo_btn.on_click(lambda e: undo(s, ps))
        self.reset_btn.on_click(lambda e: self._reset())
        self.mask_in.param.watch(self._mask_loaded, "value")
        self.effects_btn.on_click(lambda e: ps.compute_effects(s.layer))
        self.curves_btn.on_click(lambda e: ps.compute_curves(s.layer))
        self.effects_stop.on_click(lambda e: ps.stop_effects())
        self.curves_stop.on_click(lambda e: ps.stop_curves())
        self.ft_btn.on_click(lambda e: ps.start_finetune())
        self.ft_stop.on_click(lambda e: ps.stop_finetune())
        self.ft_discard.on_click(lambda e: ps.discard_finetune())
        ps.param.watch(self._on_state, ["ready", "metric", "metric_base", "measuring", "queue_position", "pruned",
                                        "last_change", "finetuned", "n_undo"])
        ps.param.watch(self._sync_progress, ["effects_progress", "curves_progress", "effects", "curves",
                                             "effects_layer", "curves_layer", "effects_running", "curves_running"])
        ps.param.watch(self._sync_finetune, ["finetune_state", "finetune_progress", "finetune_result", "finetuned"])
        ps.param.watch(lambda e: ps.finetune_state == "queued" and self._sync_finetune(), "queue_position")
        # the summary says when the mask changed since the fine-tune (nothing to redo without one)
        ps.param.watch(lambda e: ps.finetune_result and self._sync_finetune(), "pruned")
        s.param.watch(self._view_changed, "view")
        self._selection_changed()
        self._sync_metric()
        self._sync_progress()
        self._sync_finetune()
        if s.view == "prune":
            ps.activate()

        self._doc = None
        self._dirty: set = set()
        self._render_lock = threading.Lock()
        self._render_pending = False  # an immediate render is scheduled
        self._render_delayed = False  # a render of an edit waiting for its metric is scheduled
        self._build_figures()
        s.param.watch(self._redraw_units, ["layer", "probe", "decoder_version"])
        ps.param.watch(self._redraw_units, ["effects", "effects_layer", "ready"])
        ps.param.watch(self._relabel_bars, ["curves_by"])
        ps.param.watch(self._redraw_curves, ["curves", "curves_layer", "metric"])
        ps.param.watch(lambda e: self._apply(self._draw_curves), ["curves_running"])  # the title says so
        s.param.watch(self._redraw_curves, ["layer"])
        self._draw_units()
        self._draw_curves()

    # ---- figures ---------------------------------------------------------------------------
    @staticmethod
    def _fig(title: str, **kw):
        f = figure(title=title, sizing_mode="stretch_width", toolbar_location="right",
                   tools="pan,wheel_zoom,box_zoom,reset,save", **kw)
        f.title.text_font_size = "11pt"
        return f

    def _build_figures(self):
        # one row per unit of the layer, shared by the scatter and the bars: a prune is one patch
        self.unit_src = ColumnDataSource(self._empty_units())
        f = self._fig("Units (run the probe to place them)", height=320, x_axis_label="amplitude sensitivity",
                      y_axis_label="phase sensitivity")
        f.add_tools(HoverTool(tooltips=[("unit", "@index"), ("class", "@cls"), ("amplitude", "@amp{0.000}"),
                                        ("phase", "@phase{0.000}")]))
        f.add_tools(TapTool())
        select_on_double_tap(f, self.unit_src, x="amp", y="phase", size=11)  # quick second clicks
        f.scatter("amp", "phase", source=self.unit_src, size=11, marker="marker", fill_color="color",
                  line_color="line", line_width="lw", nonselection_fill_alpha=1.0,
                  nonselection_line_alpha=1.0, selection_fill_color="color", selection_line_color="line")
        # The legend is drawn by glyphs of its own: grouped by the units' "cls" column, a class's entry
        # took the looks of its first unit, and turned into a dark cross once that unit was pruned. Each
        # holds one point at NaN, which draws nothing (the browser draws no legend glyph without data).
        for cls in CLASSES:
            f.scatter([np.nan], [np.nan], size=11, marker="circle", fill_color=CLASS_COLORS[cls],
                      line_color="white", legend_label=cls)
        f.scatter([np.nan], [np.nan], size=11, marker="x", line_color=PRUNED_COLOR, line_width=2.5,
                  legend_label="pruned")
        f.legend.label_text_font_size = "8pt"
        f.legend.update(padding=4, spacing=0, glyph_width=12, label_height=14, glyph_height=14)  # more room for units
        f.legend.visible = False  # shown with a probe's classes
        f.add_layout(f.legend[0], "right")  # beside the plot: inside, it hid the units in its corner
        self.unit_src.selected.on_change("indices", self._on_point)
        self.scatter_fig = f
        # [A] a numeric x (unit k's column spans k - 0.5 .. k + 0.5) with integer ticks: on a
        # categorical axis all 200 of conv_4's unit numbers were printed over each other (Bokeh
        # ignores major_label_overrides there, bokeh/bokeh#14385), unreadable on a projector
        fb = self._fig("ablation effects", height=250, x_range=Range1d(-0.5, 0.5), x_axis_label="unit",
                       y_axis_label="metric drop (validation)")
        fb.vbar(x="index", top="drop", width=0.8, source=self.unit_src, fill_color="bar", line_alpha=0,
                nonselection_fill_alpha=1.0, selection_fill_color="bar")
        fb.xaxis.ticker = BasicTicker(min_interval=1, desired_num_ticks=12)
        fb.xgrid.visible = False
        fb.add_tools(HoverTool(tooltips=[("unit", "@unit"), ("drop", "@drop{0.0000}")]))
        fb.yaxis.formatter = PrintfTickFormatter(format="%.2g")  # 0.0005, not 5.000e-4
        fb.on_event(Tap, self._on_bar)
        fb.on_event(DoubleTap, self._on_bar)  # a second click within 300 ms arrives as a double tap
        self.bar_fig = fb
        self.band_src = ColumnDataSource(dict(q=[], lo=[], hi=[]))
        self.curve_srcs = {o: ColumnDataSource(dict(q=[], m=[])) for o in ORDER_STYLE}
        self.star_src = ColumnDataSource(dict(q=[], m=[]))
        fc = self._fig("Pruning curves: not computed yet\n(Compute pruning curves, below)", height=380,
                       x_axis_label="fraction of the layer's units pruned", y_axis_label="test block metric")
        fc.varea("q", "lo", "hi", source=self.band_src, color="#7f7f7f", alpha=0.25, legend_label="random (95% band)")
        self.curve_items = {}  # order -> its legend item (relabelled for a ranking by ablation)
        for order, (color, label) in ORDER_STYLE.items():
            fc.line("q", "m", source=self.curve_srcs[order], color=color, line_width=2.5, legend_label=label)
            self.curve_items[order] = fc.legend[0].items[-1]
        fc.scatter("q", "m", source=self.star_src, marker="star", size=18, color="black", legend_label="this session")
        fc.legend.label_text_font_size = "8pt"
        # below the plot, two entries a row, and a click on an entry hides its curve: no corner is
        # free of curves for every ranking (at the bottom left it covered the steep drop of "most
        # important first", 0.28 at 10%, the lesson's number; at the top right, random's band), and
        # beside the plot it squeezed the plot to a strip at 1024 pixels
        fc.legend.update(border_line_alpha=0.3, padding=4, spacing=10, label_height=14, glyph_height=14,
                         click_policy="hide", ncols=2, orientation="horizontal")
        fc.add_layout(fc.legend[0], "below")
        fc.legend.visible = False  # shown with the curves
        self.curve_fig = fc
        # side by side in a row that wraps (__panel__): each grows from PLOT_MIN_WIDTH, and the curves
        # go below the scatter where the row is narrower than two of them (Bokeh's layout writes the
        # row's whole width into a stretched plot's style: overridden)
        side = [f":host {{ flex: 1 1 {self.PLOT_MIN_WIDTH}px !important; width: auto !important; "
                f"min-width: {self.PLOT_MIN_WIDTH}px; }}"]
        self.scatter = pn.pane.Bokeh(self.scatter_fig, sizing_mode="stretch_width", stylesheets=side)
        self.bars = pn.pane.Bokeh(self.bar_fig, sizing_mode="stretch_width")
        self.curves = pn.pane.Bokeh(self.curve_fig, sizing_mode="stretch_width", stylesheets=side)

    def _apply(self, fn):
        """Run a change of Bokeh models under the document lock (any thread)."""
        apply_in_doc(self._doc, fn)

    def _units_data(self):
        """(layer, scatter table or None, bar drops, n_units) for the session's layer."""
        s, ps = self.session, self.ps
        dec = s.decoder
        layer = s.layer
        n = dec.n_units.get(layer, 0) if dec is not None and layer in self._prunable() else 0
        table = None
        if s.probe is not None and n and layer in set(s.probe["layer"].values):
            from .units import unit_table

            table = unit_table(s.probe, layer)
        effects = ps.effects if ps.effects_layer == layer else None
        return layer, table, layer_drops(effects, layer, n), n, effects is not None

    def _redraw_units(self, *_):
        self._apply(self._draw_units)

    @staticmethod
    def _empty_units() -> dict:
        return dict(unit=["-"], index=[0], drop=[0.0], amp=[np.nan], phase=[np.nan], cls=["none"],
                    color=["#ff7f0e"], bar=["#ff7f0e"], marker=["circle"], line=["white"], lw=[1.0])

    @staticmethod
    def _look(pruned: bool) -> dict:
        """Glyph properties of a unit: pruned units are dark bars and crosses."""
        if pruned:
            return {"bar": PRUNED_COLOR, "marker": "x", "line": PRUNED_COLOR, "lw": 2.5}
        return {"bar": "#ff7f0e", "marker": "circle", "line": "white", "lw": 1.0}

    def _draw_units(self):
        layer, table, drop, n, has_effects = self._units_data()
        pruned = set(self.ps.pruned.get(layer, []))
        self._shown = (layer, n, frozenset(pruned))
        if not n:
            self.bar_fig.x_range.update(start=-0.5, end=0.5)
            self.unit_src.data = self._empty_units()
        else:
            looks = [self._look(i in pruned) for i in range(n)]
            amp = table["amp"] if table is not None else np.full(n, np.nan)
            phase = table["phase"] if table is not None else np.full(n, np.nan)
            cls = list(table["cls"]) if table is not None else ["unclassified"] * n
            units = [str(i) for i in range(n)]
            self.bar_fig.x_range.update(start=-0.5, end=n - 0.5)
            self.unit_src.data = dict(unit=units, index=list(range(n)), drop=list(drop), amp=amp, phase=phase,
                                      cls=cls, color=[CLASS_COLORS.get(c, "#999999") for c in cls],
                                      **{k: [lk[k] for lk in looks] for k in ("bar", "marker", "line", "lw")})
        self.bar_fig.xaxis.axis_label = bars_axis_label(layer, table, drop if has_effects else None, self.ps.curves_by)
        self.bar_fig.title.text = bars_title(layer, has_effects, click="a unit's column")
        self.scatter_fig.title.text = "Units (run the probe to place them)" if table is None else scatter_title(layer)
        self.scatter_fig.legend.visible = table is not None

    def _relabel_bars(self, *_):
        """"Ranked by" changed: the bars' label names the new ranking (see :func:`bars_axis_label`)."""
        def relabel():
            layer, table, drop, _n, has_effects = self._units_data()
            self.bar_fig.xaxis.axis_label = bars_axis_label(layer, table, drop if has_effects else None,
                                                            self.ps.curves_by)
        self._apply(relabel)

    def _recolor(self):
        """Patch the looks of the units whose state changed (one event for both plots)."""
        layer, n, shown = getattr(self, "_shown", (None, 0, frozenset()))
        if layer != self.session.layer:
            self._draw_units()
            return
        pruned = frozenset(self.ps.pruned.get(layer, []))
        changed = sorted(i for i in shown ^ pruned if i < n)
        if changed:
            looks = {i: self._look(i in pruned) for i in changed}
            self.unit_src.patch({k: [(i, looks[i][k]) for i in changed] for k in ("bar", "marker", "line", "lw")})
        self._shown = (layer, n, pruned)

    EDIT_RENDER_DELAY_MS = 150
    PLOT_MIN_WIDTH = 420  # [A] px of the scatter (legend included) and the curves each, side by side

    def _on_state(self, *events):
        """Every change of the prune state is drawn in one go: one message to the browser [A].

        The metric card, the buttons and the unit glyphs are updated together under
        ``pn.io.hold`` in one callback holding the document lock (coalesced when changes
        arrive faster). [A] Without ``freeze``: every change here is a string, a flag or a
        column patch, none of which changes the document's model graph, while a freeze
        makes Bokeh walk the whole document (every view of the app) when it ends: that walk
        was most of a render's 50-200 ms on the event loop, twice per prune and session.
        [A] The render of an edit waits up to ``EDIT_RENDER_DELAY_MS`` for its metric, so a
        quick re-measurement reaches the browser in the same message as the edit (one card
        and glyph redraw per prune instead of a "measuring ..." state redrawn at once).
        """
        if any(e.name == "pruned" for e in events):
            self._dirty.add("units")
        self._dirty.add("metric")
        doc = self._doc if (self._doc is not None and self._doc.session_context is not None) else None
        delay = doc is not None and self.ps.measuring  # an edit (or a queue position) whose metric is on its way
        with self._render_lock:
            if self._render_pending or (delay and self._render_delayed):
                return
            if delay:
                self._render_delayed = True
            else:
                self._render_pending = True
        if delay:  # the next tick is the thread-safe entry (apply_in_doc: skipped for a page that went,
            # where Bokeh has torn its callbacks down); the timeout is set on the loop
            apply_in_doc(doc, lambda: doc.add_timeout_callback(self._render, self.EDIT_RENDER_DELAY_MS))
        else:
            self._apply(self._render)

    def _render(self):
        t0 = time.perf_counter()
        with self._render_lock:
            self._render_pending = self._render_delayed = False
            dirty, self._dirty = self._dirty, set()
        if not dirty:
            return  # a delayed edit render whose metric was drawn first
        doc = self._doc if (self._doc is not None and self._doc.session_context is not None) else None
        with pn.io.hold(doc) if doc is not None else _nullcontext():
            if "units" in dirty:
                self._recolor()
            if "metric" in dirty:
                self._sync_metric(True)
        if logger.isEnabledFor(logging.DEBUG):
            t1 = time.perf_counter()
            measured = self.ps.timing.get("measured_at", t1)
            logger.debug("prune render v%d: %.1f ms after the measurement, %.1f ms to render (%s), %.1f ms after the edit",
                         self.ps.measured_version, 1e3 * (t0 - measured), 1e3 * (t1 - t0), sorted(dirty),
                         1e3 * (t1 - getattr(self.ps, "_t_edit", t1)))

    def _redraw_curves(self, *_):
        if self.ps.curves is None and not len(self.star_src.data["q"]) and \
                self.curve_fig.title.text == self._curves_placeholder():
            return  # nothing drawn and nothing to draw (the common case while pruning)
        self._apply(self._draw_curves)

    def _draw_curves(self):
        ps, s = self.ps, self.session
        curves = ps.curves if ps.curves_layer == s.layer else None
        if curves is None:
            if len(self.star_src.data["q"]) or len(self.band_src.data["q"]):  # only clear what is drawn
                for src in self.curve_srcs.values():
                    src.data = dict(q=[], m=[])
                self.band_src.data = dict(q=[], lo=[], hi=[])
                self.star_src.data = dict(q=[], m=[])
            self.curve_fig.title.text = self._curves_placeholder()
            self.curve_fig.legend.visible = False  # a legend of nothing drawn reads as a broken plot
            return
        self.curve_fig.legend.visible = True
        q = curves["fraction"].values
        for order, src in self.curve_srcs.items():
            m = curves["metric"].sel(order=order).values if order in curves["order"].values else []
            src.data = dict(q=q if len(m) else [], m=m)
        if "random_lo" in curves:
            self.band_src.data = dict(q=q, lo=curves["random_lo"].values, hi=curves["random_hi"].values)
        n = s.decoder.n_units.get(s.layer, 1) if s.decoder is not None else 1
        cur = (len(ps.pruned.get(s.layer, [])) / n, ps.metric)
        self.star_src.data = dict(q=[cur[0]], m=[cur[1]]) if all(map(math.isfinite, cur)) else dict(q=[], m=[])
        by = ranked_by(curves)
        self.curve_fig.title.text = curves_title(curves, s.layer)
        for order, item in self.curve_items.items():
            if item.label.value != order_label(order, by):
                item.label = Value(order_label(order, by))

    def _curves_placeholder(self) -> str:
        """The curves' title while none are drawn: not computed, or being computed (which)."""
        running, layer = self.ps.curves_running, self.session.layer
        if running == layer:
            return f"Pruning curves of {layer}: computing ...\n(Stop, below, cancels)"
        if running:
            return f"Pruning curves: not computed yet\n(those of {running} are being computed first)"
        return "Pruning curves: not computed yet\n(Compute pruning curves, below)"

    # ---- widgets <-> state -----------------------------------------------------------
    def _view_changed(self, event):
        if event.new == "prune":
            self.ps.activate()
            self._sync_metric()

    def _prunable(self) -> list[str]:
        return self.picker.layers()

    def _selection_changed(self, *_):
        self._sync_metric(*_)  # the card says whether the newly selected unit is pruned (hidden: when shown)
        if self.session.layer in self._prunable():
            self._auto_effects()

    def _auto_effects(self):
        """Show the ablation effects of the layer at once when some session already computed them."""
        ps = self.ps
        if ps.shared is not None and ("ablation", self.session.layer) in ps.shared.cache:
            ps.compute_effects(self.session.layer)

    def _sync_toggle_label(self):
        s, ps = self.session, self.ps
        ok = s.layer in self._prunable() and ps.ready
        self.toggle_btn.label = toggle_label(s.layer, s.unit)
        for w in (self.toggle_btn, self.cls_btn, self.top_btn, self.layer_btn, self.ft_btn):
            w.disabled = not ok
        self._sync_compute_buttons()
        # [A] Undo and Reset stay enabled once the evaluator is ready and say so when there is
        # nothing to undo: a button's state change makes the browser lay out the whole page
        # again (Bokeh re-renders the button and computes the root layout), which on a
        # session's first prune cost two extra layouts of every plot of the view
        self.undo_btn.disabled = self.reset_btn.disabled = not ps.ready

    def _reset(self):
        ps = self.ps
        if not ps.pruned and not ps.finetuned:
            self.session.alert("Nothing to reset: no unit is pruned.", "info")
            return
        ps.reset()

    def _sync_metric(self, *_):
        if self.session.view != "prune" and _:
            return  # updated when the view is shown: hidden widgets cost the server time on every prune
        self.metric.object = metric_html(self.ps, self.session.layer, self.session.unit)
        self._sync_toggle_label()

    def _sync_progress(self, *_):
        ps = self.ps
        self.effects_progress.value = int(round(ps.effects_progress * 1000))
        self.curves_progress.value = int(round(ps.curves_progress * 1000))
        # shown while the work runs: an empty bar under an idle button reads as a broken widget,
        # and a full one left under it after the plot came said nothing
        self.effects_progress.visible = 0 < ps.effects_progress < 1
        self.curves_progress.visible = 0 < ps.curves_progress < 1
        self._sync_compute_buttons()
        self.effects_stop.visible = bool(ps.effects_running)
        self.curves_stop.visible = bool(ps.curves_running)
        self.analyses_note.object = analyses_html(ps)

    def _sync_compute_buttons(self) -> None:
        """One computation of each at a time: its Compute button waits for it (analyses_note says why)."""
        ps = self.ps
        ok = self.session.layer in self._prunable() and ps.ready
        self.effects_btn.disabled = not ok or bool(ps.effects_running)
        self.curves_btn.disabled = not ok or bool(ps.curves_running)

    def _sync_finetune(self, *_):
        ps = self.ps
        running = ps.finetune_state in ("queued", "running")
        self.ft_btn.disabled = running or not ps.ready
        self.ft_stop.disabled = not running
        self.ft_discard.disabled = not ps.finetuned or running
        self.ft_progress.value = int(round(ps.finetune_progress * 1000))
        self.ft_progress.visible = running or ps.finetune_progress > 0
        self.ft_text.object = finetune_html(ps)

    def _mask_file(self):
        import io

        try:
            return io.StringIO(self.ps.mask_json())
        except Exception as exc:  # noqa: BLE001 - shown as an alert, never a traceback
            self.session.alert(f"No mask to download: {exc}")
            return None  # no file (an empty one was downloaded): see Download

    def _mask_loaded(self, event):
        if event.new:
            self.ps.load_mask(event.new)

    # ---- clicks on plots ---------------------------------------------------------------
    def _on_bar(self, event):
        """A click in a unit's column of the bar chart (unit k spans [k - 0.5, k + 0.5])."""
        layer, n, _ = getattr(self, "_shown", (None, 0, None))
        if event.x is None or not n or layer != self.session.layer:
            return
        unit = int(math.floor(event.x + 0.5))
        if 0 <= unit < n:
            self._toggle_unit(unit)

    def _on_point(self, attr, old, new):
        if not new:
            return
        unit = int(self.unit_src.data["index"][new[0]])
        self._apply(lambda: setattr(self.unit_src.selected, "indices", []))  # the next click on it fires again
        self._toggle_unit(unit)

    def _toggle_unit(self, unit: int) -> None:
        s = self.session
        s.unit = unit
        self.ps.toggle(s.layer, unit)

    def __panel__(self):
        s = self.session
        if self._doc is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc

        row1 = controls(self.layer, self.unit, *lowered(self.toggle_btn, self.layer_btn, self.undo_btn, self.reset_btn))
        row2 = controls(self.cls, *lowered(self.cls_btn), self.k, self.by, *lowered(self.top_btn))
        row3 = controls(pn.pane.HTML("<b>Mask file</b>", margin=(12, 5, 5, 5), width=80), self.mask_in, self.mask_out)
        no_decoder = placeholder("No decoder yet: pruning starts once one is shown (the demo decoder, as soon as it "
                                 "has loaded, or one trained or opened in Data & model).")
        output_note = pn.pane.HTML("<p class='us-muted'>The output layer (conv_classifier) cannot be pruned: "
                                   "choose a hidden layer.</p>")
        self.shown.set((no_decoder, lambda: s.decoder is None), (output_note, lambda: s.layer == "conv_classifier"))
        # each Compute button with room for its Stop beside it (shown while it computes: nothing moves then)
        analyses = pn.Column(pn.Row(pn.Column(pn.Row(self.effects_btn, self.effects_stop), self.effects_progress,
                                              width=320),
                                    pn.Column(pn.Row(self.curves_btn, self.curves_stop), self.curves_progress,
                                              width=320),
                                    sizing_mode="stretch_width"),
                             self.analyses_note, sizing_mode="stretch_width")
        finetune = pn.Column(pn.pane.HTML("<h4>Recover by fine-tuning</h4>", margin=(0, 5)),
                             pn.Row(self.epochs, pn.Column(pn.Spacer(height=18), pn.Row(self.ft_btn, self.ft_stop,
                                                                                          self.ft_discard)),
                                    pn.Column(pn.Spacer(height=28), self.ft_progress)),
                             self.ft_text, sizing_mode="stretch_width")
        # [A] side by side where both get PLOT_MIN_WIDTH, else one below the other: at 1024 pixels
        # the scatter (its legend beside it) was squeezed to 140 pixels, its ticks overlapping. A
        # Bokeh row that wraps: in Panel's FlexBox the figures drew blank (measured in Chromium)
        plots = pn.Row(self.scatter, self.curves, sizing_mode="stretch_width",
                       stylesheets=[":host { flex-wrap: wrap; }"])
        return pn.Column(no_decoder, self.metric, row1, row2, row3, output_note, plots,
                         self.bars, analyses, finetune, sizing_mode="stretch_width")
