"""Cautions: one sentence each on what a number means when it means little (a test metric at
chance, a test block unlike the training block, a probe in which no unit passed or that was
stopped before its end, label trials that hold more than one event, a band outside a run's
band-pass), shared by the command line, the app and the report."""
from __future__ import annotations

from .metrics import FEW_TRIALS, METRIC_NAMES, chance_level

__all__ = ["chance_note", "shift_note", "no_discovery_note", "trial_overlap_note", "trials_note", "SHIFT_SD",
           "ONE_CLASS", "one_class_note", "MIN_VALIDITY_R", "probe_classes", "validity_undefined",
           "validity_text", "partial_probe_note", "probe_iterations_done", "passband_text", "in_passband",
           "passband_note", "input_edges", "upsampled_from", "dre_note", "CHANCE_ALPHA", "NOT_CLEARLY"]


def one_class_note(block: str = "test") -> str:
    """What a balanced accuracy on a block holding one class is: that class's recall, with no
    chance level to beat (1/1 would call every decoder "at or below chance")."""
    return f"undefined: the {block} block holds trials of one class only, so nothing is told apart"


ONE_CLASS = one_class_note()

# [A] a test block whose mean target lies this many SDs (of the training block) off the training
# block's mean is said to differ from it
SHIFT_SD = 1.0


# [A] a balanced accuracy above chance whose one-sided binomial p-value is at least this is
# "not clearly above chance"
CHANCE_ALPHA = 0.05
NOT_CLEARLY = "not clearly above chance"  # how that note begins (callers then say "may")


def chance_note(task: str, metric: float, n_classes: int | None = None, n_trials: int | None = None) -> str:
    """``"at or below chance, 1/8 = 0.125"`` when ``metric`` (a score of ``task``) is at or below
    :func:`chance_level`; for a balanced accuracy above it on ``n_trials`` trials (when given),
    ``"not clearly above chance, 1/12 = 0.083, one-sided binomial p = 0.24 on 147 trials"``
    when a one-sided binomial test of the trials it implies right (``round(metric * n_trials)``)
    against chance has p >= :data:`CHANCE_ALPHA`; what a NaN (a constant output) or a test block of one class
    (:data:`ONE_CLASS`) means; else ``""``.

    [A] The binomial test reads the balanced accuracy as an accuracy, exact for balanced
    classes and close otherwise: 0.102 on 147 trials of 12 classes had been reported without
    a word, though 15 right of 147 at 1/12 has p = 0.24."""
    if metric != metric:
        return "undefined: the output does not vary"
    if task == "classification" and n_classes == 1:
        return ONE_CLASS
    chance = chance_level(task, n_classes)
    if not chance == chance:
        return ""
    if metric <= chance:
        if task == "regression":
            return "at or below chance, r = 0"
        return f"at or below chance, 1/{n_classes} = {chance:.3f}"
    if task != "classification" or not n_trials:
        return ""
    from scipy.stats import binomtest

    n = int(n_trials)
    p = binomtest(min(n, int(round(metric * n))), n, chance, alternative="greater").pvalue
    if p < CHANCE_ALPHA:
        return ""
    return f"{NOT_CLEARLY}, 1/{n_classes} = {chance:.3f}, one-sided binomial p = {p:.2g} on {n} trials"


def trials_note(task: str, n_trials: int | None) -> str:
    """``"on 3 test trials: very uncertain"`` for a balanced accuracy on fewer than
    :data:`core.metrics.FEW_TRIALS` trials, else ``""``."""
    if task != "classification" or n_trials is None or n_trials >= FEW_TRIALS:
        return ""
    return f"on {int(n_trials)} test trial{'' if n_trials == 1 else 's'}: very uncertain"


def shift_note(shift: float | None) -> str:
    """What a test block's mean target ``shift`` (in SDs of the training block, from its mean;
    the targets are standardised on the training block) means from :data:`SHIFT_SD` on, else ""."""
    if shift is None or not abs(shift) >= SHIFT_SD:
        return ""
    return (f"the target's mean on the test block lies {shift:+.1f} SDs (of the training block) from its mean on "
            "the training block: the blocks differ (a drifting or step-wise target), so the test metric says "
            "little about how well the decoder would do on data like its training block")


def no_discovery_note(ds) -> str:
    """Why a classified probe (a Dataset with ``unit_class_all``) in which no unit passed the test
    may lack power, or "" when some unit passed: the windows and iterations it rests on and the
    null spread of one unit's correlation, about 1 / sqrt(windows x iterations)."""
    if "unit_class_all" not in ds or bool((ds["unit_class_all"] != "insensitive").any()):
        return ""
    n_win = int(ds.attrs.get("n_windows", 0))
    n_it = int(ds.attrs.get("amp_iterations", ds.attrs.get("amp_n_iterations", 0)))
    alpha = ds.attrs.get("alpha", 0.05)
    out = f"no unit passed the test (false-discovery rate {float(alpha):g})"
    if n_win and n_it:
        out += (f". With {n_win} windows x {n_it} iterations a correlation's null spread is about "
                f"{1 / (n_win * n_it) ** 0.5:.3f}")
    return out


def trial_overlap_note(events, types, tmin: float, tmax: float) -> str:
    """When label trials from ``tmin`` to ``tmax`` s around the events of ``types`` (None:
    every type) hold other events, most of them (median at least one; e.g. 4-s trials of
    auditory stimuli 0.5 s apart): each trial also holds the next (or previous) events; else ""
    (:meth:`core.recording.Events.others_in_trials`). EEGMMIDB's T1/T2 trials of 4 s hold none
    (the next event comes 5.1 s later), though its events are 1.4 s apart (median)."""
    if events is None or tmin is None or tmax is None:
        return ""
    n = events.others_in_trials(types, tmin, tmax)
    if not n or n < 1:
        return ""
    return (f"trials of {tmax - tmin:g} s ({tmin:g} to {tmax:g} s from their events) also hold {n:g} other "
            f"event{'' if n == 1 else 's'} each (median)")


# [A] an unperturbed Pearson r below this is too small to divide by: the r of a decoder that has
# learnt nothing spreads about as far on the few windows a probe uses, so the ratio is noise
# (the gaze run's r 0.0108 gave amplitude 0.833, phase -10.504)
MIN_VALIDITY_R = 0.1


def probe_classes(ds) -> int | None:
    """The classes of the probed labels (the ``n_classes`` attr ``unitscope probe`` writes), else
    the outputs of the decoder's output layer when it was probed, else None."""
    if ds.attrs.get("n_classes") is not None:
        return int(ds.attrs["n_classes"])
    if "layer" in ds.coords:
        n = int((ds["layer"].values == "conv_classifier").sum())
        return n or None
    return None


def validity_undefined(ds) -> str:
    """Why the probe's validity ratio (perturbed over unperturbed decoding metric) means nothing,
    or "": the unperturbed metric is undefined (the output does not vary), at or below chance
    (:func:`core.cautions.chance_note`), or a Pearson r too small to divide by
    (:data:`MIN_VALIDITY_R`)."""
    task, ref = ds.attrs.get("task"), ds.attrs.get("metric_unperturbed")
    if task not in METRIC_NAMES or ref is None:
        return ""
    ref, name = float(ref), METRIC_NAMES[task]
    note = chance_note(task, ref, probe_classes(ds))
    if note.startswith("undefined"):
        return f"undefined: the unperturbed {name} is {note}"
    if note:
        return f"undefined: the unperturbed {name} {ref:.4f} is {note}, and a ratio over it means nothing"
    if task == "regression" and ref < MIN_VALIDITY_R:
        return (f"undefined: the unperturbed {name} {ref:.4f} is too small to divide by (below {MIN_VALIDITY_R:g}): "
                "the ratio would be noise")
    return ""


def validity_text(ds, closer: str = "a smaller --noise-scale keeps them closer") -> str:
    """The probe's validity check in words (METHODS 1.9 item 3: the amplitude pass's perturbed
    over unperturbed metric, at least :data:`core.probing.validity.VALIDITY_THRESHOLD`), or why it is undefined, with the
    perturbed metrics (:func:`validity_undefined`). The phase pass's ratio is given but is no
    check: its draws scramble every bin's phase (the shipped demo's: 0.07). ``closer``: what
    keeps the amplitude pass's inputs closer to the data, in the caller's words."""
    passes = [(name, p) for name, p in (("amplitude", "amp"), ("phase", "phase")) if f"{p}_validity" in ds]
    why = validity_undefined(ds)
    if why:
        metrics = [f"{name} {float(ds[f'{p}_metric']):.4f}" for name, p in passes if f"{p}_metric" in ds]
        return why + (f" (perturbed {METRIC_NAMES[ds.attrs['task']]}: {', '.join(metrics)})" if metrics else "")
    from .probing.validity import VALIDITY_THRESHOLD  # the probe's own bound (0.95)

    parts = []
    if "amp_validity" in ds:
        ratio = float(ds["amp_validity"])
        parts.append(f"amplitude {ratio:.3f} (perturbed / unperturbed metric; "
                     + (f"at least {VALIDITY_THRESHOLD:g}: the probed inputs stay ones the decoder decodes)"
                        if ratio >= VALIDITY_THRESHOLD else
                        f"below {VALIDITY_THRESHOLD:g}: the noise takes the inputs away from what the decoder decodes, "
                        f"{closer})"))
    if "phase_validity" in ds:
        parts.append(f"phase {float(ds['phase_validity']):.3f} (no check: each draw gives every frequency a new phase, "
                     "a surrogate the decoder is not expected to decode)")
    return "; ".join(parts)


def probe_iterations_done(ds) -> int | None:
    """The iterations every pass of a probe result completed (the least over its passes, from
    the ``amp_iterations`` / ``phase_iterations`` attrs), or None for a file that does not say."""
    done = [int(ds.attrs[f"{p}_iterations"]) for p in ("amp", "phase") if f"{p}_iterations" in ds.attrs]
    return min(done) if done else None


def partial_probe_note(ds) -> str:
    """``"stopped before its end, after 12 of 40 iterations per pass (30%)"`` for a probe
    result (``unitscope probe``'s, the app's) whose ``progress`` attr is below 1 (interrupted, or
    stopped in the app), else ``""`` (a complete probe, or a file that is no probe)."""
    a = ds.attrs
    if "progress" not in a or not float(a["progress"]) < 1:
        return ""
    done = {p: int(a[f"{p}_iterations"]) for p in ("amp", "phase") if f"{p}_iterations" in a}
    planned = max((int(a[f"{p}_n_iterations"]) for p in ("amp", "phase") if f"{p}_n_iterations" in a), default=0)
    if len(set(done.values())) > 1:
        count = f"{done['amp']} (amplitude) and {done['phase']} (phase)"
    else:
        count = str(next(iter(done.values()), "?"))
    of = f" of {planned}" if planned else ""
    return f"stopped before its end, after {count}{of} iterations per pass ({float(a['progress']):.0%})"


def passband_text(l_freq: float | None, h_freq: float | None) -> str:
    """A run's band-pass in words: ``"8-30 Hz"``, ``"above 8 Hz"``, ``"below 30 Hz"``."""
    if l_freq and h_freq:
        return f"{l_freq:g}-{h_freq:g} Hz"
    return f"above {l_freq:g} Hz" if l_freq else f"below {h_freq:g} Hz"


def in_passband(band, l_freq: float | None, h_freq: float | None) -> tuple | None:
    """The part ``(lo, hi)`` Hz of ``band`` that a band-pass of ``l_freq``-``h_freq`` Hz (either
    None: no edge there) keeps, or None when it keeps none of it."""
    lo, hi = float(band[0]), float(band[1])
    lo, hi = max(lo, l_freq or 0.0), min(hi, h_freq if h_freq else float("inf"))
    return (lo, hi) if lo < hi else None


def passband_note(band, l_freq: float | None, h_freq: float | None, *, native_sfreq: float | None = None) -> str:
    """What a band ``(lo, hi)`` Hz means in a run band-passed at ``l_freq``-``h_freq`` Hz
    (``unitscope train --l-freq/--h-freq``), or "" when the band lies within the pass-band (or the
    run has none): wholly outside it (:func:`in_passband` None), the filter removed it from every
    window the decoder was trained and is tested on, so nothing of the decoder is measured there;
    partly outside, only the part within it is.

    ``native_sfreq``: the rate of a recording resampled *up* for the run (:func:`upsampled_from`);
    its Nyquist frequency is then an upper edge as well [A]: above it the input holds what the
    resampling made, never recorded (a 128 Hz EDF at --sfreq 256 was probed, occluded and
    deconvolved in "high gamma", 60-120 Hz, where it holds 1e-4 of the power of 30-60 Hz)."""
    given_h = h_freq
    l_freq, h_freq = input_edges(l_freq, h_freq, native_sfreq)
    capped = h_freq != given_h
    if l_freq is None and h_freq is None:
        return ""
    lo, hi = float(band[0]), float(band[1])
    kept = in_passband(band, l_freq, h_freq)
    passband = passband_text(l_freq, h_freq)
    filtered_below = l_freq is not None and hi <= l_freq  # (below a high-pass edge: the filter's doing)
    if capped and not filtered_below:
        where = (f"the band the recording holds ({passband}: it was sampled at {native_sfreq:g} Hz and resampled up "
                 "for this run)")
        removed = ("the recording never held it, and what is there was made by the resampling: it measures "
                   "nothing")
        # (with a high-pass edge as well, the part below it was filtered out)
        rest = "was filtered out or never recorded" if l_freq is not None and lo < l_freq else "was never recorded"
    else:
        where = f"this run's band-pass ({passband})"
        removed, rest = ("the filter removed it from the data the decoder was trained and is tested on, and what is "
                         "left there is filter leakage: it measures nothing"), "was filtered out"
    if kept is None:
        return f"the band {lo:g}-{hi:g} Hz lies outside {where}: {removed}"
    if kept == (lo, hi):
        return ""
    return (f"the band {lo:g}-{hi:g} Hz reaches outside {where}: only {kept[0]:g}-{kept[1]:g} Hz of it is in the data "
            f"the decoder saw, the rest {rest}")


def input_edges(l_freq: float | None, h_freq: float | None,
                native_sfreq: float | None = None) -> tuple[float | None, float | None]:
    """``(l_freq, h_freq)`` of what a run's input holds: its band-pass edges (None: no edge), and
    for a recording resampled up from ``native_sfreq`` its own Nyquist frequency as the upper
    edge where that is lower."""
    if native_sfreq and (h_freq is None or native_sfreq / 2 < h_freq):
        h_freq = native_sfreq / 2
    return l_freq, h_freq


def upsampled_from(signals) -> float | None:
    """The sampling rate a recording had before it was resampled *up* for a run (its
    ``signals.attrs["preprocessing"]`` steps, :mod:`core.preprocessing`), or None."""
    import json

    steps = json.loads(signals.attrs.get("preprocessing", "[]") or "[]")
    for step in steps:
        if step.get("step") == "resample" and float(step["to"]) > float(step["from"]):
            return float(step["from"])
    return None


def dre_note(scores: dict) -> str:
    """``"the DRE scores below the RTRF baseline (r 0.039 vs 0.201): ..."`` when the Deep
    Recurrent Encoder (``scores["dre"]``, post-onset mean r) does not beat the best linear
    baseline fitted beside it, else ``""``. METHODS 3.9.1 expects DRE > RTRF > TRF; a small
    fit (the tests' 3 subjects x 120 words, or a few passes) gives the DRE less than the
    ridge, and its importance maps then explain a model that learnt little."""
    names = {"trf": "TRF", "rtrf": "RTRF"}
    base = {m: float(r) for m, r in scores.items() if m in names and r == r}
    dre = float(scores.get("dre", float("nan")))
    if not base or dre != dre:
        return ""
    best = max(base, key=base.get)
    if dre > base[best]:
        return ""
    return (f"the DRE scores below the {names[best]} baseline (r {dre:.3f} vs {base[best]:.3f}): it has learnt no "
            "more than the linear model from these data, and its importance explains little; fit it on more "
            "words, subjects or passes (the shipped result, DRE above both: 6 subjects x 600 words, 20 passes)")
