"""The Prune view's words: the before/after metric card, the fine-tune line and why a
Compute button waits (HTML built from :class:`dashboard.prune_state.PruneState`)."""
from __future__ import annotations

import math

from core.cautions import NOT_CLEARLY

from ..prune_state import PruneState
from ._common import esc

__all__ = ["fmt_metric", "toggle_label", "unit_state_html", "metric_html", "RECOVERY_MIN_DROP", "recovery_text",
           "finetune_html", "analyses_html"]


def fmt_metric(value: float) -> str:
    """A metric for display; NaN reads as undefined (e.g. a constant output)."""
    return "undefined" if value is None or not math.isfinite(value) else f"{value:.4f}"


def toggle_label(layer: str, unit: int) -> str:
    """Label of the button that prunes the selected unit, or restores it when pruned.

    [A] The label names the selection, never the unit's state (the card says that): a
    button's label change makes the browser lay out the whole page again (Bokeh re-renders
    the button and computes the root layout, re-measuring every plot), which cost each page a
    quarter of its script and layout time per prune (Chromium trace: 114 -> 81 ms median).
    """
    return f"Prune / restore {layer}/{unit}"


def unit_state_html(ps: PruneState, layer: str | None, unit: int | None) -> str:
    """`` · conv_3/5: pruned`` (or ``in use``) for the selected unit of a prunable layer."""
    if layer is None or unit is None or layer == "conv_classifier":  # the output layer is never pruned
        return ""
    state = "pruned" if unit in ps.pruned.get(layer, []) else "in use"
    return f" · <span class='us-unit-state'>{esc(layer)}/{int(unit)}: {state}</span>"


def metric_html(ps: PruneState, layer: str | None = None, unit: int | None = None) -> str:
    """The before/after card: unpruned metric, current metric, change, units pruned, and
    whether the selected unit (``layer``/``unit``, optional) is pruned."""
    name = {"pearson_r": "Pearson r", "balanced_accuracy": "balanced accuracy"}.get(ps.metric_name, ps.metric_name)
    if not ps.ready:
        return "<p class='us-muted'>Preparing the pruning evaluator ...</p>"
    n = sum(len(v) for v in ps.pruned.values())
    before, after = ps.metric_base, ps.metric
    if math.isfinite(before) and math.isfinite(after):
        delta = f"{after - before:+.4f}"
    else:
        delta = "n/a"
    note = ""
    chance = ps.chance_note()
    if chance:
        note = (f"<p class='us-muted us-prune-chance'>The unpruned decoder's test {esc(name)} is {esc(chance)}: "
                f"what pruning takes from it {'may say' if chance.startswith(NOT_CLEARLY) else 'says'} nothing "
                "about what a decoder that works needs.</p>")
    if not math.isfinite(after):
        note += ("<p class='us-muted'>The metric is undefined: with these units pruned the decoder's output no "
                 "longer varies (nothing reaches the output).</p>")
    state = ""
    if ps.measuring:
        state = (f" · waiting for a free core (position {ps.queue_position})" if ps.queue_position
                 else " · measuring ...")
    ft = ""
    if ps.finetuned:
        ft = " · <b>fine-tuned copy</b>"
        if ps.finetune_mask_changed():  # tuned with another mask: say which (the summary below is of that one)
            ft += f" (tuned with {int(ps.finetune_result.get('n_pruned', 0))} unit(s) pruned)"
    # [A] the second line is always there, so the card keeps its height on a session's first
    # change: a taller card moved everything below it, and the browser re-laid out every plot
    # of the view on that click (a long task the later clicks do not have)
    prev = "<br><span class='us-muted'>last change: none yet</span>"
    if ps.last_change:
        prev = (f"<br><span class='us-muted'>last change: {esc(ps.last_change)} "
                f"({fmt_metric(ps.metric_previous)} → {fmt_metric(after)})</span>")
    return (
        f"<div class='us-prune-metric' style='font-size:15px'>Held-out {esc(name)} (test block): "
        f"unpruned <b class='us-metric-before'>{fmt_metric(before)}</b> → with the mask "
        f"<b class='us-metric-after' style='font-size:20px'>{fmt_metric(after)}</b> "
        f"(change <span class='us-metric-delta'>{delta}</span>) · "
        f"<span class='us-n-pruned'>{n}</span> unit(s) pruned{ft}{unit_state_html(ps, layer, unit)}{esc(state)}"
        f"{prev}</div>{note}")


# [A] The smallest drop of the metric (unpruned minus pruned, in units of the metric: Pearson r or
# balanced accuracy) of which a fine-tune's "share of the drop recovered" is given. Below it the
# share is a ratio of noise: a 0.0007 drop read as "-331% of the drop recovered"; 0.01 is about
# the run-to-run spread of the demo decoder's test r and a visible step on the pruning curves.
RECOVERY_MIN_DROP = 0.01


def recovery_text(r: dict) -> str:
    """What a fine-tune recovered of the drop its pruning caused (``r``: ``finetune_result``)."""
    drop, gain = r["unpruned"] - r["before"], r["after"] - r["before"]
    if not (math.isfinite(drop) and math.isfinite(gain)):
        return ""
    if drop < RECOVERY_MIN_DROP:
        return (f" The pruning cost almost nothing (a drop of {drop:.4f}, under {RECOVERY_MIN_DROP}), so there "
                "was no drop worth recovering.")
    if gain < 0:
        return f" (it lost a further {-gain:.4f} of the {drop:.4f} drop)"
    return f" ({gain / drop:.0%} of the {drop:.4f} drop recovered)"


def finetune_html(ps: PruneState) -> str:
    """The fine-tune line: its state, or its summary naming the mask it was made with."""
    r = ps.finetune_result
    if ps.finetune_state == "queued":
        pos = ps.queue_position
        text = f"Fine-tune waiting for a free core{f' (position {pos} in line)' if pos else ''} ..."
    elif ps.finetune_state == "running":
        text = f"Fine-tuning a copy of the decoder with the mask attached: {ps.finetune_progress:.0%}"
    elif r:
        n = int(r.get("n_pruned", 0))
        text = (f"Fine-tune {'stopped' if ps.finetune_state == 'stopped' else 'done'} ({r['n_steps']} steps, "
                f"{r['seconds']:.0f} s) with <span class='us-ft-mask'>{n} unit(s) pruned</span>: unpruned "
                f"{fmt_metric(r['unpruned'])}, pruned {fmt_metric(r['before'])} → after fine-tune "
                f"<b class='us-ft-after'>{fmt_metric(r['after'])}</b>{recovery_text(r)}. The shared decoder is "
                "unchanged; this session measures its own copy.")
        if ps.finetune_mask_changed():
            text += (f" <b class='us-ft-stale'>The mask has changed since:</b> these numbers are of the earlier "
                     f"mask ({n} unit(s) pruned); the card above measures the fine-tuned copy with the current "
                     "mask.")
    elif ps.finetune_state == "error":
        text = "The fine-tune failed (see the message above)."
    else:
        text = ("Optional: a short fine-tune of a copy with the pruned units kept silent shows how much "
                "decoding recovers.")
    return f"<span class='us-muted'>{text}</span>"


def analyses_html(ps: PruneState) -> str:
    """Why a Compute button is disabled: what this session is computing (one of each at a time)."""
    parts = []
    for what, layer, progress in (("ablation effects", ps.effects_running, ps.effects_progress),
                                  ("pruning curves", ps.curves_running, ps.curves_progress)):
        if layer:
            done = f" ({progress:.0%})" if 0 < progress < 1 else ""
            parts.append(f"Computing the {what} of {esc(layer)}{done} ... Stop cancels; the button is free "
                         "again when they are done.")
    return "<p class='us-muted us-analyses-note'>" + "<br>".join(parts) + "</p>" if parts else ""
