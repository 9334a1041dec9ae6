"""A self-contained HTML report of a UnitScope session, readable offline in any browser.

The report gathers what a session found: the recording, the decoder and its held-out metric,
per-layer summaries (units, receptive field, unit classes), the selected units' amplitude
and phase maps, the pruned units and the metric change (with the fine-tune, if any), pruning
curves and the DUNL kernels. Figures are drawn with matplotlib (Agg, no GUI;
:mod:`core.report_figures`) and embedded as base64 PNG; styles are inline. The file loads nothing from the network and runs no script,
so it opens offline, mails as one attachment, and prints. All text taken from files or
settings (channel names, paths, labels) is HTML-escaped.

Configure, then call: build a :class:`ReportContent` (by hand, or from a workspace with
:meth:`ReportContent.from_workspace`), then :func:`render_report` (HTML text) or
:func:`write_report` (an atomic write to a file).
"""
from __future__ import annotations

import datetime as _dt
import html
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from ._files import atomic_write_bytes
from ._validation import UnitScopeError
from .cautions import NOT_CLEARLY, ONE_CLASS, partial_probe_note
from .report_figures import (batch_fractions_fig, batch_metric_fig, confusion_fig, curves_fig, figure_png,
                             fractions_fig, kernels_fig, prediction_fig, unit_maps_fig)

__all__ = ["ReportContent", "render_report", "render_batch_report", "write_report", "figure_png", "MAX_UNIT_MAPS"]

logger = logging.getLogger(__name__)
MAX_UNIT_MAPS = 12  # selected units drawn at most (the rest are listed) [A]

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 16px; }
h1 { color: #1f5f8b; border-bottom: 2px solid #1f5f8b; padding-bottom: 6px; }
h2 { color: #1f5f8b; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
td, th { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f6f9; }
.muted { color: #666; font-size: 13px; }
.caution { color: #8a4b00; font-size: 14px; }
.metric { font-size: 22px; font-weight: bold; }
figure { margin: 10px 0 20px; } figcaption { color: #555; font-size: 13px; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value, digits: int = 3, missing: str = "undefined") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _esc(value)
    return missing if not math.isfinite(v) else f"{v:.{digits}f}"


@dataclass
class ReportContent:
    """Everything a report shows; every field is optional but the title.

    Attributes
    ----------
    title : str
    recording : dict
        Summary of the recording (``Recording.summary()`` keys: n_chans, ch_names, sfreq,
        duration_s, target, events, ...), plus an optional ``source``.
    decoder : dict
        ``kind``, ``task``, ``metric_name``, ``metrics`` (dict: block -> value), ``n_params``
        and ``layers`` (list of dicts with ``name``, ``n_units``, ``receptive_field`` in
        samples); ``sfreq`` in Hz to express receptive fields in seconds.
    probe, control : xarray.Dataset, optional
        Probe results (``core.probing``) of the decoder and of its untrained control.
    selected_units : list of str
        Unit ids ``"LAYER/INDEX"`` whose amplitude and phase maps are drawn.
    pruned : dict of str to list of int
        Units masked in the session, per layer.
    metric_before, metric_after : float
        Held-out metric of the unpruned and of the pruned (and fine-tuned) decoder.
    finetune : dict, optional
        ``before``, ``after``, ``n_steps``, ``history`` of a masked fine-tune.
    prediction : dict, optional
        ``time`` (s), ``true``, ``pred`` arrays of the test block (regression) for a plot; or
        ``classes``, ``true`` and ``pred`` (class indices) of the test trials (labels) for a
        confusion matrix.
    curves : list of xarray.Dataset
        Pruning curves (``core.pruning.pruning_curve`` outputs).
    kernels : list of (xarray.Dataset, xarray.Dataset or None)
        DUNL results (``core.deconv.apply``): current and, optionally, before the last change.
    occlusions : list of dict
        Band-occlusion results (``label``, ``channels``, ``band`` (lo, hi) Hz or None for
        whole channels, ``metric`` without the band, ``reference``, ``drop``), as
        :func:`core.probing.validity.band_occlusions` measures them.
    value_label : str
        What the events' values are (e.g. "peak speed"), for the codes plots.
    notes : list of str
    created : str
        Time stamp (default: now, ISO format).
    """

    title: str = "UnitScope session report"
    recording: dict = field(default_factory=dict)
    decoder: dict = field(default_factory=dict)
    probe: object = None
    control: object = None
    selected_units: list = field(default_factory=list)
    pruned: dict = field(default_factory=dict)
    metric_before: float = float("nan")
    metric_after: float = float("nan")
    finetune: dict | None = None
    prediction: dict | None = None
    curves: list = field(default_factory=list)
    kernels: list = field(default_factory=list)
    occlusions: list = field(default_factory=list)
    value_label: str = "event value"
    notes: list = field(default_factory=list)
    created: str = ""

    @classmethod
    def from_workspace(cls, ws, *, masks=None, metric_after: float | None = None, **fields) -> "ReportContent":
        """Fill ``recording``, ``decoder``, ``prediction`` and the metrics from a Workspace.

        Parameters
        ----------
        ws : core.workspace.Workspace
        masks : core.pruning.MaskSet, optional
            The session's mask: ``pruned`` is filled from it, and ``metric_after`` is
            measured on the test block unless given.
        metric_after : float, optional
        **fields
            Any other :class:`ReportContent` field (probe, selected_units, curves, ...).
        """
        from .cautions import chance_note
        from .io import source_label
        from .metrics import score
        from .probing._base import model_hash
        from .workspace import weights_provenance

        rec = ws.recording
        summary = rec.summary()
        summary["source"] = ("demo (simulated reaching, ECoG grid)" if ws.spec.source == "demo"
                             else source_label(ws.spec.source, ws.spec.bids))
        if ws.task == "classification":  # which events, and the trials cut around them
            kinds = (f"the events {ws.spec.target.split(':', 1)[1].replace(',', ', ')}"
                     if ":" in (ws.spec.target or "") else "every event type")
            summary["target"] = (f"labels of {kinds} (trials {ws.spec.tmin:g} to {ws.spec.tmax:g} s "
                                 "from each onset)")
        cfg = dict(getattr(ws.model, "unitscope_config", {}) or {})
        pred, true = ws.predict("test")
        before = float(score(ws.task, pred, true))
        decoder = {
            "kind": cfg.get("kind", type(ws.model).__name__), "task": ws.task,
            "metric_name": "Pearson r" if ws.task == "regression" else "balanced accuracy",
            "metrics": {k: v for k, v in (ws.metrics or {}).items() if k in ("valid", "test")} or {"test": before},
            "n_params": int(sum(p.numel() for p in ws.model.parameters())),
            "layers": [{"name": li.name, "n_units": int(li.n_units), "receptive_field": int(li.receptive_field)}
                       for li in ws.layers],
            "sfreq": float(rec.sfreq), "n_times": cfg.get("n_times"),
            "weights": weights_provenance(ws.metrics or {}, ws.history or []),
            "model_hash": model_hash(ws.model),
            "chance": chance_note(ws.task, before, *((len(np.unique(true)), len(true)) if ws.task == "classification"
                                                     else (None,))),
        }
        prediction = None
        if ws.task == "classification":  # the confusion matrix of the test trials
            prediction = {"classes": [str(c) for c in ws.data.classes], "true": np.asarray(true),
                          "pred": np.asarray(pred).argmax(axis=1)}
        if ws.task == "regression":
            d = ws.data
            starts = d.window_starts("test")
            idx = starts[:, None] + d.receptive_field - 1 + np.arange(d.n_preds)[None]
            prediction = {"time": idx.ravel() / rec.sfreq, "true": np.asarray(true), "pred": np.asarray(pred),
                          "target": str(getattr(rec.target, "name", "target"))}
        pruned = {}
        if masks is not None:
            pruned = {k: masks.pruned(k).tolist() for k in masks.layers if len(masks.pruned(k))}
            if metric_after is None and masks.n_pruned:
                from .pruning import MaskEvaluator

                X, y = ws.eval_set("test")
                metric_after = MaskEvaluator(ws.model, X, y, task=ws.task).evaluate(masks)
        fields.setdefault("value_label", "peak speed" if ws.spec.source == "demo" else
                          "event value (an annotation's duration, a trigger's code)")
        return cls(recording=summary, decoder=decoder, prediction=prediction, pruned=pruned, metric_before=before,
                   metric_after=before if metric_after is None else float(metric_after), **fields)


def _img(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'


# ---- sections ---------------------------------------------------------------------------------
def _table(rows: Sequence[Sequence], header: Sequence[str] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _counts(value) -> str:
    """``{"eeg": 64, "misc": 2}`` as "eeg 64, misc 2" (anything else as text)."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _section_recording(rec: Mapping) -> str:
    if not rec:
        return ""
    names = list(rec.get("ch_names", []))
    shown = ", ".join(names[:40]) + (f" ... ({len(names)} in all)" if len(names) > 40 else "")
    rows = [("source", rec.get("source", "")), ("channels", f"{rec.get('n_chans', len(names))}: {shown}"),
            ("channel types", _counts(rec.get("ch_types", ""))), ("sampling rate", f"{rec.get('sfreq', '')} Hz"),
            ("duration", f"{rec.get('duration_s', '')} s"), ("target", rec.get("target") or "event labels"),
            ("events", _counts(rec.get("events", "")) or "none")]
    if rec.get("bad_segments"):
        rows.append(("left out", f"{rec['bad_segments']} stretch(es) marked bad, {rec.get('bad_seconds', 0):g} s "
                                 "(no window or trial touches them)"))
    if rec.get("bads"):
        rows.append(("marked bad in the file, picked", ", ".join(rec["bads"])))
    return "<h2>Recording</h2>" + _table(rows)


def _section_decoder(c: ReportContent) -> str:
    d = c.decoder
    if not d:
        return ""
    metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in d.get("metrics", {}).items())
    rows = [("architecture", d.get("kind", "")), ("task", d.get("task", "")),
            ("metric", f"{d.get('metric_name', '')}: {metrics}"), ("parameters", d.get("n_params", "")),
            ("input window", f"{d.get('n_times', '')} samples")]
    if d.get("chance"):  # a one-class test block measures nothing: unitscope info's words
        said = ("what the decoder learnt is not measured" if d["chance"] == ONE_CLASS else
                "the decoder may have learnt nothing that holds on the test block"
                if d["chance"].startswith(NOT_CLEARLY) else
                "the decoder has learnt nothing that holds on the test block")
        rows.append(("caution", f"test {d.get('metric_name', 'metric')} {_fmt(c.metric_before)} is {d['chance']}: "
                                f"{said}"))
    if d.get("weights"):
        rows.append(("provenance", d["weights"]))
    if d.get("model_hash"):  # results files of these weights carry the same model_hash attr
        rows.append(("weights' hash", d["model_hash"]))
    code = getattr(c.probe, "attrs", {}).get("code_version")
    if code:
        rows.append(("probe", f"computed by probing code {code}"))
    for what, ds in (("probe", c.probe), ("untrained control's probe", c.control)):
        note = partial_probe_note(ds) if ds is not None else ""
        if note:
            rows.append(("caution", f"the {what} result is partial, {note}: its unit classes and maps rest on fewer "
                                    "perturbations than asked for"))
    out = "<h2>Decoder and metric</h2>" + _table(rows)
    if c.prediction is not None and "classes" in c.prediction:
        n = len(c.prediction["true"])
        out += _img(confusion_fig(c.prediction), f"Confusion matrix of the {n} test trials.")
    elif c.prediction is not None:
        out += _img(prediction_fig(c.prediction), "Predicted and true target on the test block (first minute).")
    return out


def _section_layers(c: ReportContent) -> str:
    layers = c.decoder.get("layers", [])
    if not layers:
        return ""
    sfreq = c.decoder.get("sfreq")
    frac = None
    if c.probe is not None and "unit_class_all" in c.probe:
        from .probing import class_fractions

        frac = class_fractions(c.probe)
    rows = []
    for li in layers:
        rf = li["receptive_field"]
        rf_text = f"{rf} samples" + (f" ({rf / sfreq:.2f} s)" if sfreq else "")
        row = [li["name"], li["n_units"], rf_text]
        if frac is not None:
            if li["name"] in frac["layer"].values:
                f = frac.sel(layer=li["name"])
                row.append(", ".join(f"{str(k)} {float(f.sel({'class': k})):.0%}" for k in frac["class"].values))
            else:
                row.append("")
        row.append(len(c.pruned.get(li["name"], [])))
        rows.append(row)
    header = ["layer", "units", "receptive field"] + (["unit classes (probe)"] if frac is not None else []) + \
        ["units pruned"]
    out = "<h2>Layer summaries</h2>" + _table(rows, header)
    partial = partial_probe_note(c.probe) if frac is not None else ""
    if partial:
        out += f"<p class='muted'>Unit classes of a partial probe result, {_esc(partial)}.</p>"
    if frac is not None:
        out += _img(fractions_fig(c.probe, c.control),
                    "Fractions of amplitude-, phase-, bimodal-sensitive and insensitive units per layer.")
    return out


def _section_occlusion(c: ReportContent) -> str:
    if not c.occlusions:
        return ""
    from .probing.validity import band_text

    name = c.decoder.get("metric_name", "metric")
    rows = []
    for r in c.occlusions:
        chans = [str(x) for x in r["channels"]]
        shown = ", ".join(chans) if len(chans) <= 8 else f"{len(chans)} channels: " + ", ".join(chans[:4]) + ", ..."
        rows.append((r["label"], shown, band_text(r["band"]), _fmt(r["metric"]), _fmt(-float(r["drop"]))))
    return ("<h2>Band occlusion</h2><p>What the unpruned decoder needs: the test-block "
            f"{_esc(name)} with each band removed from the listed channels (every window's Fourier bins in the "
            f"band set to zero), against {_fmt(c.occlusions[0]['reference'])} with nothing removed.</p>"
            + _table(rows, ["removed", "channels", "band", f"{name} without", "change"]))


def _section_units(c: ReportContent) -> str:
    if not c.selected_units:
        return ""
    out = "<h2>Selected units</h2>"
    if c.probe is None:
        return out + "<p class='muted'>No probe result: the units' maps are not available.</p>"
    known = set(str(u) for u in c.probe["unit"].values)
    shown = [u for u in c.selected_units if u in known][:MAX_UNIT_MAPS]
    missing = [u for u in c.selected_units if u not in known]
    for uid in shown:
        row = c.probe.sel(unit=uid)
        cls = str(row["unit_class_all"].values) if "unit_class_all" in c.probe else "not classified"
        caption = (f"{uid}: class {cls}; amplitude sensitivity {float(row['amp_stat_all']):.3f}, phase sensitivity "
                   f"{float(row['phase_stat_all']):.3f} (correlation maps, channel x frequency; dashed: band edges).")
        out += _img(unit_maps_fig(c.probe, uid), caption)
    rest = [u for u in c.selected_units if u in known][MAX_UNIT_MAPS:]
    if rest:
        out += f"<p class='muted'>Also selected (maps not drawn): {_esc(', '.join(rest))}</p>"
    if missing:
        out += f"<p class='muted'>Not in the probe result: {_esc(', '.join(missing))}</p>"
    return out


def _section_pruning(c: ReportContent) -> str:
    n = sum(len(v) for v in c.pruned.values())
    if not n and not c.curves and not c.finetune:
        return ""
    name = c.decoder.get("metric_name", "metric")
    out = "<h2>Pruning</h2>"
    if n:
        delta = c.metric_after - c.metric_before
        out += (f"<p>Held-out {_esc(name)}: unpruned <span class='metric'>{_fmt(c.metric_before)}</span> → with "
                f"{n} unit(s) pruned <span class='metric'>{_fmt(c.metric_after)}</span> "
                f"(change {_fmt(delta) if math.isfinite(delta) else 'n/a'}).</p>")
        out += _table([(layer, len(idx), ", ".join(map(str, idx))) for layer, idx in c.pruned.items()],
                      ["layer", "pruned", "units"])
    if c.finetune:
        f = c.finetune
        out += (f"<p>Masked fine-tune ({_esc(f.get('n_steps', '?'))} steps): {_fmt(f.get('before'))} → "
                f"{_fmt(f.get('after'))}.</p>")
    for ds in c.curves:
        out += _img(curves_fig(ds), f"Pruning curves of {ds.attrs.get('layers', '')}: held-out metric vs fraction "
                                     "pruned; random orders as mean and 95% band.")
    return out


def _section_kernels(c: ReportContent) -> str:
    if not c.kernels:
        return ""
    out = "<h2>Event-locked kernels (DUNL)</h2>"
    for current, previous in c.kernels:
        from .deconv.signals import codes_axis

        sig = current.attrs.get("signal", "signal")
        masks = str(current.attrs.get("masks", "{}"))
        against = (c.value_label if codes_axis(current) == "value" else
                   "event onset (the events' values do not vary)")
        before = "; dashed: before the last change" if previous is not None else ""
        caption = (f"{sig}: kernels locked to {', '.join(map(str, current['kernel'].values))} (left{before}) and "
                   f"per-event codes against {against} (right). R² {_fmt(current.attrs.get('r2'), 2)}; "
                   f"{'no unit pruned' if masks.strip() in ('', '{}') else 'mask ' + masks}.")
        out += _img(kernels_fig(current, previous, c.value_label), caption)
    return out


def render_report(content: ReportContent) -> str:
    """The report as one HTML document (inline PNG figures and CSS; no script, no link out).

    Returns
    -------
    html : str
    """
    if not isinstance(content, ReportContent):
        raise UnitScopeError(f"Expected a ReportContent, got {type(content).__name__}.")
    created = content.created or _dt.datetime.now().isoformat(timespec="seconds")
    sections = []
    for fn in (_section_recording, _section_decoder, _section_layers, _section_occlusion, _section_units,
               _section_pruning, _section_kernels):
        try:
            arg = content.recording if fn is _section_recording else content
            sections.append(fn(arg))
        except Exception as exc:  # noqa: BLE001 - one broken part must not lose the whole report
            logger.exception("report section %s failed", fn.__name__)
            sections.append(f"<p class='muted'>This part could not be drawn: {_esc(exc)}</p>")
    notes = "".join(f"<p>{_esc(n)}</p>" for n in content.notes)
    return _document(content.title, f"<p class='muted'>Made by UnitScope {_esc(__version__)} on {_esc(created)}.</p>{notes}"
                     + "".join(sections))


def _document(title: str, body: str) -> str:
    """One self-contained HTML page: the title as its heading, inline styles, no script."""
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>{body}</body></html>\n")


def render_batch_report(ds, *, title: str | None = None, created: str | None = None) -> str:
    """A batch's report (:func:`core.batch.run_batch`'s summary) as one HTML document:
    the held-out metric per recording and decoder (mean, sd, range over seeds), every run,
    and the unit classes per layer of each decoder (mean and sd over its probed runs).
    Self-contained as :func:`render_report` is."""
    from .batch import summarise_batch

    summary = summarise_batch(ds)
    groups = summary["groups"]
    created = created or _dt.datetime.now().isoformat(timespec="seconds")
    title = title or "UnitScope batch report"
    n_failed = len(summary["failed"])
    parts = [f"<p class='muted'>Made by UnitScope on {_esc(created)}: "
             f"{ds.sizes['run']} runs, {n_failed} failed; scheduler {_esc(ds.attrs.get('scheduler', ''))}.</p>"]
    rows = [(g["source"], g["model"], g["metric"], g["n"] - g["n_failed"], g["n_failed"], _fmt(g["mean"], missing="-"),
             _fmt(g["sd"], missing="-"), f"{_fmt(g['min'])} .. {_fmt(g['max'])}" if np.isfinite(g["min"]) else "-")
            for g in groups]
    parts.append("<h2>Held-out metric per recording and decoder</h2>"
                 + _table(rows, ["recording", "decoder", "metric", "finished", "failed", "mean", "sd", "range"]))
    notes = {run: note for g in groups for run, note in g["notes"].items()}
    if notes:  # the runs whose test metric means little (the Runs table below says which)
        parts.append(f"<p class='caution'>Caution: the test metric of {len(notes)} of "
                     f"{sum(len(g['finished']) for g in groups)} finished run(s) means little (see the Runs table's "
                     "note): at or below chance, not clearly above it, or on few trials.</p>")
    if any(g["n"] > g["n_failed"] for g in groups):
        parts.append(_img(batch_metric_fig(ds, groups), "Test metric of every finished run (dots) and the "
                          "mean of each recording and decoder (red)."))
    frac, sd = summary["fractions"], summary["fractions_sd"]
    if frac is not None:  # decoders none of whose runs finished a probe are left out
        probed = [m for m in frac["model"].values if np.isfinite(frac.sel(model=m).values).any()]
        frac, sd = frac.sel(model=probed), sd.sel(model=probed)
        parts.append("<h2>Unit classes per layer</h2>" + _img(batch_fractions_fig(frac),
                     "Mean fraction of units per class in each layer, over the probed runs of each decoder."))
        rows = []
        for model in frac["model"].values:
            for layer in frac["layer"].values:
                at = dict(model=model, layer=layer)
                if not np.isfinite(frac.sel(**at).values).any():
                    continue  # a layer of another decoder
                cells = [_fmt(float(frac.sel(**at, **{"class": c})), 2, missing="-")
                         + (f" ± {_fmt(v, 2)}" if np.isfinite(v := float(sd.sel(**at, **{"class": c}))) else "")
                         for c in frac["class"].values]
                rows.append([str(model), str(layer), *cells])
        parts.append(_table(rows, ["decoder", "layer", *[str(c) for c in frac["class"].values]])
                     + "<p class='muted'>Mean ± sd over runs (no sd with one run).</p>")
    run_rows = []
    for i, name in enumerate(ds["run"].values):
        get = lambda k, d="": ds[k].values[i] if k in ds or k in ds.coords else d  # noqa: E731
        epochs = int(get("epochs", -1))
        n_test = int(get("n_test", -1))
        run_rows.append([str(name), str(get("source")), str(get("model")), str(get("seed")),
                         _fmt(get("valid", np.nan), missing="-"), _fmt(get("test", np.nan), missing="-"),
                         n_test if n_test > 0 else "-", epochs if epochs >= 0 else "-",
                         _fmt(get("train_seconds", np.nan), 1, missing="-"), str(get("error")) or "-",
                         notes.get(str(name), "") or "-"])
    parts.append("<h2>Runs</h2>" + _table(run_rows, ["run", "recording", "decoder", "seed", "valid", "test",
                                                      "test trials / windows", "epochs", "train s", "error", "note"])
                 + "<p class='muted'>Each run's folder sits beside batch.nc: <code>unitscope report FOLDER/RUN</code> "
                   "reports one run, and the app opens it (Data &amp; model, Or open a decoder trained earlier).</p>")
    return _document(title, "".join(parts))


def write_report(content: ReportContent | str, path: str | Path) -> Path:
    """Write the report atomically (temporary file, then rename).

    Parameters
    ----------
    content : ReportContent or str
        The content, or HTML already rendered.
    path : str or Path
        Output file; its folder is created if missing.

    Returns
    -------
    path : Path

    Raises
    ------
    UnitScopeError
        When the folder cannot be created or written (the message names it and why).
    """
    path = Path(path)
    text = content if isinstance(content, str) else render_report(content)
    folder = path.parent
    if path.is_dir():
        raise UnitScopeError(f"The report path {str(path)!r} is a folder; give a file name such as "
                             f"{str(path / 'report.html')!r}.")
    def folder_error(exc):
        return UnitScopeError(f"Cannot write the report to the folder {str(folder)!r}: "
                              f"{exc.strerror or exc}. Choose a folder you can write to.")

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder_error(exc) from exc
    try:
        atomic_write_bytes(path, text.encode("utf-8"))
    except OSError as exc:
        if not os.access(folder, os.W_OK):  # the temporary file could not be made there
            raise folder_error(exc) from exc
        raise UnitScopeError(f"Cannot write the report {str(path)!r}: {exc.strerror or exc}.") from exc
    return path
