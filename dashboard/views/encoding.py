"""Encoding: which stimulus/behaviour feature drives which channel when (Deep Recurrent Encoder).

Four plots of one encoding result (:mod:`core.encoding.results`):

* predicted vs actual signal of a chosen channel in a stored test epoch, the DRE beside the
  TRF and ridge-ARX baselines, the given initial brain state shaded;
* Pearson r across test epochs over time and channel for a chosen model (onset marked), with
  the post-onset mean r of every model above it;
* permutation-importance time courses per feature (loss increase, percent), with the true
  response latencies of the synthetic data marked;
* the selected feature's importance over time and channel.

The result shown is the shipped synthetic-reading result at first; a results file from the data
root or a fit run here replaces it. State: :class:`dashboard.encoding_state.EncodingState`.
[A] Plain Bokeh figures whose data sources are updated in place (as in the Units and Prune
views), under the document lock whichever thread the change comes from.
"""
from __future__ import annotations

import numpy as np
import panel as pn
import param
from bokeh.models import BoxAnnotation, ColorBar, ColumnDataSource, CustomJSHover, FixedTicker, HoverTool, LabelSet, \
    LinearColorMapper, Span
from bokeh.palettes import RdBu11, Viridis256
from bokeh.plotting import figure

from ..encoding_state import ALL_SUBJECTS, FIT_PRESETS, MODEL_LABELS, encoding_state_of
from ..state import Session
from ._common import CSS, apply_in_doc, controls, esc

__all__ = ["EncodingView", "MODEL_COLORS", "FEATURE_COLORS", "score_html"]

MODEL_COLORS = {"dre": "#1f5f8b", "trf": "#ff7f0e", "rtrf": "#2ca02c"}
FEATURE_COLORS = ["#d62728", "#1f77b4", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f"]
NO_FILES = "(no .nc files under the data root)"
CHOOSE = "choose a results file ..."


def _fig(title: str, **kw):
    f = figure(title=title, sizing_mode="stretch_width", toolbar_location="right",
               tools="pan,wheel_zoom,box_zoom,reset,save", **kw)
    f.title.text_font_size = "10pt"
    return f


def score_html(scores: dict) -> str:
    """Post-onset mean r of each model as a row of cards (escaped)."""
    if not scores:
        return ""
    cards = "".join(
        f'<span class="us-enc-score" data-model="{esc(m)}" style="display:inline-block;margin-right:18px">'
        f'<span class="us-muted">{esc(MODEL_LABELS.get(m, m))}</span> <b style="font-size:17px">{r:.3f}</b></span>'
        for m, r in scores.items())
    from core.cautions import dre_note

    note = dre_note(scores)
    warn = (f'<div class="us-alert us-alert-warning us-dre-note" role="note">{esc(note[0].upper() + note[1:])}.</div>'
            if note else "")
    return f"<div><span class='us-muted'>post-onset mean r (test epochs):</span> {cards}{warn}</div>"


def _epochs_text(value, rejected=None) -> str:
    """``'{"train": 10, "valid": 3, "test": 5}'`` -> ``"5 test epochs (train 10, valid 3)"``, and
    the artefact epochs dropped (``attrs["rejected_epochs"]``) where there were any."""
    import json

    try:
        n = json.loads(value) if isinstance(value, str) else dict(value or {})
        text = f"{int(n['test'])} test epochs (train {int(n['train'])}, valid {int(n['valid'])})"
    except (TypeError, ValueError, KeyError):
        return ""
    try:
        dropped = json.loads(rejected) if isinstance(rejected, str) else dict(rejected or {})
        if sum(int(v) for v in dropped.values()):
            text += "; artefact epochs dropped: " + ", ".join(f"{k} {int(v)}" for k, v in dropped.items())
    except (TypeError, ValueError, AttributeError):
        pass
    return text


class EncodingView(pn.viewable.Viewer):
    """Encoding results: source controls, predicted vs actual, r maps and feature importance."""

    session = param.ClassSelector(class_=Session)
    title = "Encoding"

    def __init__(self, **params):
        super().__init__(**params)
        self.es = es = encoding_state_of(self.session)
        self._doc = None
        self._syncing = False
        # ---- source controls -------------------------------------------------------------
        self.shipped_btn = pn.widgets.Button(
            label="Shipped example", width=150,
            description="Show the result shipped with UnitScope (synthetic reading data)")
        self.file_select = pn.widgets.Select(css_classes=["us-enc-file"], label="Results file under the data root",
                                             width=320)
        self.refresh_btn = pn.widgets.Button(label="↻", width=40, description="List the data root's .nc files again")
        self.fit_data = pn.widgets.Select(css_classes=["us-enc-fitdata"], label="Fit on", value=es.fit_data,
                                          options={p.label: k for k, p in FIT_PRESETS.items()}, width=440)
        self.fit_btn = pn.widgets.Button(label="Fit", color="primary", width=80)
        self.stop_btn = pn.widgets.Button(label="Stop", color="danger", width=80)
        self.progress = pn.indicators.Progress(value=0, max=1000, width=240, height=18, bar_color="primary")
        self.source_text = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.fit_text = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width", css_classes=["us-enc-fit"])
        self.scores = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        # ---- selection controls ------------------------------------------------------------
        self.channel = pn.widgets.Select(css_classes=["us-enc-channel"], label="Channel", width=170)
        self.example = pn.widgets.Select(css_classes=["us-enc-example"], label="Test epoch", width=190)
        self.subject = pn.widgets.Select(css_classes=["us-enc-subject"], label="Subject (maps)", width=190)
        self.model = pn.widgets.Select(css_classes=["us-enc-model"], label="r map of", width=200)
        self.feature = pn.widgets.Select(css_classes=["us-enc-feature"], label="Feature", width=170)
        self.at_channel = pn.widgets.Checkbox.from_param(es.param.imp_at_channel, width=320,
                                                         label="importance at the selected channel only")
        self.context = pn.widgets.Checkbox.from_param(es.param.imp_context, width=360,
                                                      label="also the initial brain state and the subject")
        self.caption = pn.pane.HTML("", stylesheets=[CSS], sizing_mode="stretch_width")
        self.shipped_btn.on_click(lambda e: es.load_shipped())
        self.file_select.param.watch(self._load, "value")  # [A] choosing a file loads it: one event, no race
        self.refresh_btn.on_click(lambda e: self._list_files())
        self.fit_btn.on_click(lambda e: es.fit())
        self.stop_btn.on_click(lambda e: es.stop_fit())
        self.fit_data.param.watch(lambda e: setattr(es, "fit_data", e.new), "value")
        for w, name in ((self.channel, "channel"), (self.subject, "subject"), (self.model, "model"),
                        (self.feature, "feature")):
            w.param.watch(lambda e, name=name: self._chosen(name, e.new), "value")
        self.example.param.watch(self._example_chosen, "value")
        self._build_figures()
        es.param.watch(self._sync_fit, ["fit_state", "fit_progress", "fit_message", "queue_position"])
        es.param.watch(self._sync_selection, "version")
        es.param.watch(self._sync_values, ["channel", "subject", "model", "feature", "example"])
        es.param.watch(self._redraw, ["version", "channel", "subject", "model", "feature", "example",
                                      "imp_at_channel", "imp_context"])
        es.param.watch(self._show_source, "label")
        self._list_files()
        if es.result is None:
            es.load_shipped()
        self._sync_fit()
        self._sync_selection()
        self._draw()

    # ---- figures ---------------------------------------------------------------------------
    def _build_figures(self):
        self.pred_srcs = {m: ColumnDataSource(dict(t=[], y=[])) for m in ("actual", *MODEL_COLORS)}
        f = _fig("Predicted vs actual", height=300, x_axis_label="time from the event (s)",
                 y_axis_label="signal")
        f.line("t", "y", source=self.pred_srcs["actual"], color="black", line_width=2, legend_label="actual")
        for m, color in MODEL_COLORS.items():
            f.line("t", "y", source=self.pred_srcs[m], color=color, line_width=2, alpha=0.9,
                   legend_label=MODEL_LABELS[m], line_dash="solid" if m == "dre" else "dashed")
        self.init_box = BoxAnnotation(left=0, right=0, fill_color="#cccccc", fill_alpha=0.35)
        f.add_layout(self.init_box)
        f.add_layout(Span(location=0, dimension="height", line_color="#555555", line_dash="dotted"))
        f.legend.orientation = "horizontal"
        f.legend.click_policy = "hide"
        f.legend.label_text_font_size = "9pt"
        f.legend.border_line_alpha = 0
        f.legend.padding = f.legend.margin = 2
        f.add_layout(f.legend[0], "above")  # above the frame: inside, it hid the curves' first half second
        self.pred_fig = f
        self.maps = {}
        for kind, palette, title in (("r", list(RdBu11), "r over time and channel"),
                                     ("imp", list(Viridis256), "importance over time and channel")):
            src = ColumnDataSource(dict(image=[np.zeros((1, 1))], x=[0.0], y=[-0.5], dw=[1.0], dh=[1.0]))
            mapper = LinearColorMapper(palette=palette, low=-1, high=1, nan_color="#ffffff")
            fm = _fig(title, height=380, x_axis_label="time from the event (s)", y_axis_label="channel")
            fm.image(image="image", x="x", y="y", dw="dw", dh="dh", source=src, color_mapper=mapper)
            # the hovered row's channel name (its index before names are set), as on the Units maps
            names_js = CustomJSHover(args=dict(names=[]), code="const i = Math.round(value); "
                                     "return (i >= 0 && i < names.length) ? names[i] : String(i);")
            fm.add_tools(HoverTool(tooltips=[("time (s)", "$x{0.000}"), ("channel", "$y{custom}"),
                                             ("value", "@image{0.000}")], formatters={"$y": names_js}))
            fm.add_layout(ColorBar(color_mapper=mapper, width=10, title="r" if kind == "r" else "loss +%"), "right")
            fm.add_layout(Span(location=0, dimension="height", line_color="black", line_width=2, line_dash="dashed"))
            init = Span(location=0, dimension="height", line_color="#444444", line_width=1, line_dash="dotted",
                        visible=False)
            fm.add_layout(init)
            fm.x_range.range_padding = fm.y_range.range_padding = 0
            self.maps[kind] = dict(fig=fm, src=src, mapper=mapper, init=init, names=names_js)
        self.imp_src = ColumnDataSource(dict(xs=[], ys=[], feature=[], color=[], width=[], total=[]))
        self.truth_src = ColumnDataSource(dict(x0=[], y0=[], x1=[], y1=[], color=[], text=[]))
        fi = _fig("Permutation importance", height=300, x_axis_label="time from the event (s)",
                  # [A] short: the 300 px plot under a 3-line title and a legend cut the longer
                  # "loss increase (% of the reference loss)" at both ends; the hover says of what
                  y_axis_label="loss increase (%)")
        fi.multi_line("xs", "ys", source=self.imp_src, color="color", line_width="width", legend_field="feature")
        fi.segment("x0", "y0", "x1", "y1", source=self.truth_src, color="color", line_dash="dashed", line_width=2)
        fi.add_layout(LabelSet(x="x0", y="y1", text="text", source=self.truth_src, text_font_size="8pt",
                               text_color="color", x_offset=3, text_baseline="top"))
        fi.add_layout(Span(location=0, dimension="height", line_color="#555555", line_dash="dotted"))
        fi.add_tools(HoverTool(tooltips=[("feature", "@feature"), ("overall loss increase (% of the reference loss)", "@total{0.00}")]))
        fi.legend.orientation = "horizontal"
        fi.legend.click_policy = "hide"
        fi.legend.label_text_font_size = "8pt"
        fi.legend.border_line_alpha = 0
        fi.legend.padding = fi.legend.margin = 2
        fi.add_layout(fi.legend[0], "above")  # above the frame: inside, it covered the courses at 1024 pixels
        self.imp_fig = fi
        self.pred_pane = pn.pane.Bokeh(self.pred_fig, sizing_mode="stretch_width")
        self.r_pane = pn.pane.Bokeh(self.maps["r"]["fig"], sizing_mode="stretch_width")
        self.imp_pane = pn.pane.Bokeh(self.imp_fig, sizing_mode="stretch_width")
        self.imp_map_pane = pn.pane.Bokeh(self.maps["imp"]["fig"], sizing_mode="stretch_width")

    def _apply(self, fn):
        """Run a change of Bokeh models under the document lock (any thread)."""
        apply_in_doc(self._doc, fn)

    # ---- widgets <-> state -------------------------------------------------------------------
    def _list_files(self):
        files = self.es.files()
        self._syncing = True
        try:
            self.file_select.options = [CHOOSE, *files] if files else [NO_FILES]
            shown = self.es.path if self.es.label.startswith("file ") else ""
            self.file_select.value = shown if shown in files else (CHOOSE if files else NO_FILES)
            self.file_select.disabled = not files
            self.file_select.description = (
                "Choosing a file loads it" if files else
                "No .nc files under the data root: write one with 'unitscope encode --out ...', then press ↻")
        finally:
            self._syncing = False
        self._source_text()

    def _show_source(self, *_):
        """The file list shows the loaded file, or the prompt for another source."""
        opts = self.file_select.options
        shown = self.es.path if self.es.label.startswith("file ") and self.es.path in opts else None
        self._syncing = True
        try:
            self.file_select.value = shown or (CHOOSE if CHOOSE in opts else NO_FILES)
        finally:
            self._syncing = False

    def _load(self, event):
        value = event.new
        if self._syncing or not value or value in (NO_FILES, CHOOSE):
            return
        if not self.es.load_file(value):  # an alert says why; the list shows the choice again
            self._list_files()

    def _chosen(self, name, value):
        if self._syncing or value is None:
            return
        setattr(self.es, name, value)

    def _example_chosen(self, event):
        if self._syncing or event.new is None:
            return
        labels = self.es.examples()
        if event.new in labels:
            self.es.example = labels.index(event.new)

    def _sync_selection(self, *_):
        es = self.es
        self._syncing = True  # programmatic widget updates must not write back
        try:
            ds = es.result
            has = ds is not None
            self.channel.param.update(options=es.channels(), value=es.channel or None, disabled=not has)
            ex = es.examples()
            self.example.param.update(options=ex, value=ex[min(es.example, len(ex) - 1)] if ex else None,
                                      disabled=not ex)
            self.subject.param.update(options=es.subjects(), value=es.subject if has else None, disabled=not has)
            models = es.models()
            self.model.param.update(options={MODEL_LABELS.get(m, m): m for m in models},
                                    value=es.model if es.model in models else None, disabled=not has)
            feats = es.features(ds)
            self.feature.param.update(options=feats, value=es.feature if es.feature in feats else None,
                                      disabled=not feats)
            none = "No result yet: load a results file or press Fit"
            self.channel.description = self.subject.description = self.model.description = None if has else none
            self.example.description = None if ex else (none if not has else
                                                        "This result stores no example test epochs")
            self.feature.description = None if feats else (none if not has else
                                                           "This result holds no permutation importance")
            self.at_channel.disabled = self.context.disabled = not feats  # the caption says why
        finally:
            self._syncing = False
        self.scores.object = score_html(es.scores())
        self._source_text()

    def _sync_values(self, *events):
        """One selection changed: only the widgets' values follow (their options stay)."""
        es = self.es
        self._syncing = True
        try:
            for e in events:
                if e.name == "example":
                    ex = self.example.options
                    if ex:
                        self.example.value = ex[min(es.example, len(ex) - 1)]
                elif e.name == "model":
                    if es.model in self.model.options.values():
                        self.model.value = es.model
                else:
                    widget = getattr(self, e.name)
                    if e.new in widget.options:
                        widget.value = e.new
        finally:
            self._syncing = False

    def _source_text(self):
        from core.encoding.study import code_version as encoding_code_version

        es = self.es
        ds = es.result
        if ds is None:
            text = "No encoding result yet: load a results file or press <b>Fit</b>."
        else:
            bits = [f"Showing: <b>{esc(es.label)}</b>"]
            n = _epochs_text(ds.attrs.get("n_epochs"), ds.attrs.get("rejected_epochs"))
            if n:
                bits.append(esc(n))
            if "predicted" not in ds:
                bits.append("this result stores no example epochs: no predicted-vs-actual plot")
            if "loss_increase" not in ds:
                bits.append("no permutation importance in this result (fitted with --no-importance)")
            if ds.attrs.get("code_version") != encoding_code_version():
                bits.append("computed by other encoding code (an earlier UnitScope): fit again to update it")
            text = " · ".join(bits)
        if self.file_select.disabled:
            text += (f"<br>No results files (.nc) under the data root {esc(self.session.root)}: write one with "
                     "<code>unitscope encode --data synthetic-reading --out FILE.nc</code> there.")
        self.source_text.object = f"<p class='us-muted'>{text}</p>"

    def _sync_fit(self, *_):
        es = self.es
        active = es.fit_state in ("waiting", "running")
        self.fit_btn.disabled = active
        self.fit_btn.description = "A fit is running in this session; Stop it first" if active else (
            "Fit the DRE, TRF and ridge ARX here (about a minute on two cores); the page stays usable")
        self.stop_btn.disabled = not active
        self.stop_btn.description = "Stop the running fit" if active else "Nothing to stop: no fit is running"
        self.fit_data.disabled = active
        self.fit_data.description = "Locked while a fit runs" if active else "Data the Fit button uses"
        self.progress.value = int(round(es.fit_progress * 1000))
        self.progress.visible = es.fit_state != "idle"
        msg = es.fit_message or ("Fit runs the encoder on the chosen data in the background, through the "
                                 "server's work queue; other tabs stay responsive.")
        self.fit_text.object = f"<span class='us-muted'>{esc(msg)}</span>"

    # ---- drawing ----------------------------------------------------------------------------------
    # which plots each change redraws [A]: a click sends only what changed
    _DRAWS = {"channel": ("prediction", "importance"), "example": ("prediction",),
              "subject": ("r", "importance", "imp"), "model": ("r",), "feature": ("importance", "imp"),
              "imp_at_channel": ("importance",), "imp_context": ("importance",)}

    def _redraw(self, *events):
        names = {e.name for e in events}
        if not names or "version" in names:
            self._apply(self._draw)
            return
        parts = {p for n in names for p in self._DRAWS.get(n, ())}
        if "channel" in names and not self.es.imp_at_channel:
            parts.discard("importance")
        self._apply(lambda: self._draw(parts))

    def _draw(self, parts=("prediction", "r", "importance", "imp")):
        if "prediction" in parts and "r" in parts:  # everything: a new result
            self._caption()
        if "prediction" in parts:
            self._draw_prediction()
        if "r" in parts:
            self._draw_map("r", self.es.r_map())
        if "importance" in parts:
            self._draw_importance()
        if "imp" in parts:
            self._draw_map("imp", self.es.importance_map())

    def _draw_prediction(self):
        es = self.es
        p = es.prediction()
        f = self.pred_fig
        if p is None:
            for src in self.pred_srcs.values():
                src.data = dict(t=[], y=[])
            f.title.text = ("Predicted vs actual: no stored test epochs in this result" if es.result is not None
                            else "Predicted vs actual: no result yet")
            return
        self.pred_srcs["actual"].data = dict(t=p["time"], y=p["actual"])
        for m in MODEL_COLORS:
            y = p["predicted"].get(m)
            self.pred_srcs[m].data = dict(t=p["time"] if y is not None else [], y=y if y is not None else [])
        if p["init_end"] is not None:
            self.init_box.update(left=float(p["time"][0]), right=p["init_end"])
        else:
            self.init_box.update(left=0, right=0)
        labels = es.examples()
        ex = labels[min(es.example, len(labels) - 1)] if labels else ""
        f.title.text = f"Predicted vs actual:\n{es.channel}, {ex}"  # two lines: one ran past the plot at 1024 px

    def _caption(self):
        es = self.es
        end = es.init_end()
        parts = ["Dashed line: the event (t = 0); the post-onset mean r counts from there."]
        if end is not None:
            t0 = float(es.result["time"].values[0])
            parts.append(f"Grey band / dotted line: the initial brain state given to the models "
                         f"({1000 * (end - t0):.0f} ms), so r is high there by construction.")
        if es.result is not None and es.importance() is not None and es.importance()["truth"]:
            parts.append("Below, dashed verticals: the true response latency of each feature (synthetic data).")
        self.caption.object = f"<p class='us-muted'>{' '.join(parts)}</p>" if es.result is not None else ""

    def _channel_ticks(self, fig, names):
        ax = fig.yaxis[0]
        if len(names) <= 64:
            step = 1 if len(names) <= 24 else 4
            ax.ticker = FixedTicker(ticks=list(range(0, len(names), step)))
            ax.major_label_overrides = {i: n for i, n in enumerate(names)}

    def _draw_map(self, kind, da):
        es, m = self.es, self.maps[kind]
        who = es.subject if es.subject != ALL_SUBJECTS else "all subjects"
        if da is None:
            m["src"].data = dict(image=[np.zeros((1, 1))], x=[0.0], y=[-0.5], dw=[1.0], dh=[1.0])
            m["fig"].title.text = ("r over time and channel: no result yet" if kind == "r" else
                                   "Importance over time and channel: no importance in this result")
            return
        vals = da.values.T.astype(np.float32)  # (channel, time)
        t = da["time"].values.astype(float)
        dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
        m["src"].data = dict(image=[vals], x=[t[0] - dt / 2], y=[-0.5], dw=[dt * len(t)], dh=[float(vals.shape[0])])
        finite = vals[np.isfinite(vals)]
        lim = float(np.abs(finite).max()) if finite.size else 1.0
        end = es.init_end()
        m["init"].update(location=end if end is not None else 0.0, visible=end is not None)
        if kind == "r":
            m["mapper"].update(low=-(lim or 1.0), high=lim or 1.0)
            score = es.scores().get(es.model, float("nan"))
            m["fig"].title.text = f"r of {MODEL_LABELS.get(es.model, es.model)} ({who});\npost-onset mean {score:.3f}"
        else:
            # [A] from 0: a negative loss increase is permutation noise, drawn like no importance
            m["mapper"].update(low=0.0, high=max(float(finite.max()) if finite.size else 0.0, 1e-6))
            m["fig"].title.text = f"Importance of {es.feature} ({who})"
        self._channel_ticks(m["fig"], [str(c) for c in da["channel"].values])
        m["names"].args = dict(names=[str(c) for c in da["channel"].values])

    def _draw_importance(self):
        es = self.es
        where = es.channel if es.imp_at_channel and es.channel else None
        imp = es.importance(channel=where)
        f = self.imp_fig
        if imp is None:
            self.imp_src.data = dict(xs=[], ys=[], feature=[], color=[], width=[], total=[])
            self.truth_src.data = dict(x0=[], y0=[], x1=[], y1=[], color=[], text=[])
            f.title.text = "Permutation importance: not in this result"
            return
        feats = list(imp["courses"])
        colors = {ft: FEATURE_COLORS[i % len(FEATURE_COLORS)] for i, ft in enumerate(feats)}
        self.imp_src.data = dict(xs=[imp["time"]] * len(feats), ys=[imp["courses"][ft] for ft in feats],
                                 feature=[f"{ft} ({imp['total'][ft]:+.2f} %)" for ft in feats],
                                 color=[colors[ft] for ft in feats],
                                 width=[4.0 if ft == es.feature else 1.5 for ft in feats],
                                 total=[imp["total"][ft] for ft in feats])
        ys = np.concatenate([imp["courses"][ft] for ft in feats]) if feats else np.zeros(1)
        ys = ys[np.isfinite(ys)]
        lo, hi = (float(ys.min()), float(ys.max())) if ys.size else (0.0, 1.0)
        truth = imp["truth"]
        top = [hi - 0.1 * i * (hi - lo) for i in range(len(truth))]  # labels one above the other
        self.truth_src.data = dict(x0=list(truth.values()), x1=list(truth.values()), y0=[lo] * len(truth),
                                   y1=top, color=[colors[ft] for ft in truth],
                                   # short: "true word_freq latency 400 ms" ran past a half-width plot
                                   text=[f"{ft}: true {1000 * v:.0f} ms" for ft, v in truth.items()])
        who = es.subject if es.subject != ALL_SUBJECTS else "all subjects"
        f.title.text = f"Importance over time\n({who}, {where or 'all channels'})\nbold: {es.feature}"

    def __panel__(self):
        if self._doc is None and pn.state.curdoc is not None:
            self._doc = pn.state.curdoc
        source = pn.Row(self.shipped_btn, self.file_select, pn.Column(pn.Spacer(height=18), self.refresh_btn),
                        sizing_mode="stretch_width")
        fit = pn.Row(self.fit_data, pn.Column(pn.Spacer(height=18), pn.Row(self.fit_btn, self.stop_btn)),
                     pn.Column(pn.Spacer(height=26), self.progress), sizing_mode="stretch_width")
        select = controls(self.channel, self.example, self.subject, self.model, self.feature)
        return pn.Column(source, fit, self.fit_text, self.source_text, self.scores, select,
                         pn.Row(self.pred_pane, self.r_pane, sizing_mode="stretch_width"), self.caption,
                         pn.Row(self.at_channel, self.context, sizing_mode="stretch_width"),
                         pn.Row(self.imp_pane, self.imp_map_pane, sizing_mode="stretch_width"),
                         sizing_mode="stretch_width")
