"""What several subcommands share: progress on stderr, channel names matched as ``unitscope
info`` matches them, band checks, and the number of trials or windows a held-out metric rests on.
"""
from __future__ import annotations

import contextlib
import sys
import time

from .._validation import UnitScopeError

from ..cautions import NOT_CLEARLY, ONE_CLASS, chance_note, one_class_note, shift_note
# a balanced accuracy on fewer than FEW_TRIALS test trials gets a caution
from ..metrics import FEW_TRIALS, chance_level


def json_text(obj) -> str:
    """``obj`` as strict JSON: NaN and infinite numbers (an undefined metric, the sd of one run)
    are ``null``, as JSON has no NaN (``json.dumps`` writes a bare NaN that JSON readers
    refuse); numpy numbers are plain numbers; anything else unknown is its ``str``."""
    import json
    import math

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # a numpy scalar
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return json.dumps(clean(obj), allow_nan=False, default=str)


def bar(fraction: float, width: int = 30) -> str:
    """``[#####.....]``: ``fraction`` (0-1) of ``width`` characters filled."""
    n = int(round(min(max(fraction, 0.0), 1.0) * width))
    return "[" + "#" * n + "." * (width - n) + "]"


class Progress:
    """Progress lines on stderr.

    On a terminal one line is rewritten in place at every call. Elsewhere (a log file, a
    pipe) a new line is written only when the work has advanced by ``step`` (a fraction of
    it) or ``seconds`` have passed since the last line, and once at the end: about ten
    lines per task, however many steps it has.
    """

    def __init__(self, *, step: float = 0.1, seconds: float = 5.0, clock=time.monotonic):
        self.step, self.seconds, self.clock = step, seconds, clock
        self.tty = sys.stderr.isatty()
        self._last_fraction = None
        self._last_time = None
        self._open = False  # a terminal line waits for its newline

    def __call__(self, fraction: float, text: str) -> None:
        if self.tty:
            print(f"\r{text}", end="", file=sys.stderr, flush=True)
            self._open = True
            return
        now = self.clock()
        due = (self._last_fraction is None or fraction >= 1.0 > self._last_fraction
               or fraction - self._last_fraction >= self.step - 1e-9 or now - self._last_time >= self.seconds)
        if due:
            print(text, file=sys.stderr, flush=True)
            self._last_fraction, self._last_time = fraction, now

    def line(self, text: str) -> None:
        """A line that is always written (the end of an epoch), after any line in progress."""
        print(f"\r{text}" if self._open else text, file=sys.stderr, flush=True)
        self._open = False

    def close(self) -> None:
        """End the terminal line in progress, if any."""
        if self._open:
            print(file=sys.stderr, flush=True)
            self._open = False


def resolve_channels(requested, ch_names) -> list[str]:
    """Channel names as ``unitscope info`` matches names to 10-05 positions
    (:func:`core.io.match_channels`: case and the trailing dots of EDF names ignored): ``C3`` is
    EEGMMIDB's ``C3..``. An exact name wins; a loose one that matches several channels is an
    error; a name that matches none is returned as given, for the caller's own message. A
    channel named twice (``G03,g03``) is taken once ("without 60-90 Hz of G03,G03" before)."""
    from ..io import match_channels

    return list(dict.fromkeys(match_channels(requested, ch_names)))


def undefined_note(why: str, what: str = "the decoder's output") -> str:
    """What a NaN metric means, in words: ``"undefined: the decoder's output does not vary (WHY)"``
    (a Pearson r or R^2 of a constant; ``unitscope prune --curve``'s '-' entries)."""
    return f"undefined: {what} does not vary ({why})"


def metric_str(value: float, why: str, fmt: str = ".4f") -> str:
    """``value`` formatted, or :func:`undefined_note` (``why``) when it is NaN."""
    return format(value, fmt) if value == value else undefined_note(why)


SEED_MAX = 2**32 - 1  # the largest seed every generator UnitScope seeds takes (numpy, torch)


def seed_arg(text: str) -> int:
    """argparse ``type`` of ``--seed``: an integer in [0, 2**32 - 1] (torch refused a negative
    seed with a traceback, and one above 2**63 with "Overflow when unpacking long long")."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {SEED_MAX}, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {SEED_MAX}, got {value}")
    return value


def check_out_file(path, *, given: str = "--out", example: str = "result.nc"):
    """``path`` as a ``Path`` when a file can be written there, checked before any work: not an
    existing folder, and no part of its folder an existing file (either failed only after the
    whole computation, with a traceback). Missing folders are made when the file is written."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise UnitScopeError(f"{given} {str(path)!r} is a folder; give a file name (for example "
                             f"{str(path / example)!r}).")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UnitScopeError(f"{given} {str(path)!r}: {str(parent)!r} is a file, not a folder.")
    _check_writable(path.parent, path, given)
    return path


def _check_writable(folder, path, given: str) -> None:
    """A file can be made in ``folder`` (or, where it does not exist yet, in the nearest folder
    above it that does), tried with a temporary file: a folder one cannot write to failed only
    when the result was written, after the whole computation (a probe of hours), naming a
    hidden temporary file. [A] The file is written and removed at once."""
    import tempfile
    from pathlib import Path

    existing = next((p for p in (Path(folder), *Path(folder).parents) if p.exists()), Path("."))
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".unitscope-check-"):
            pass
    except OSError as exc:
        raise UnitScopeError(f"{given} {str(path)!r}: cannot write in the folder {str(existing)!r} "
                             f"({exc.strerror or exc}); choose a folder you can write to.") from None


def check_out_dir(path, *, given: str = "--out"):
    """``path`` as a ``Path`` when a folder can be made or used there (not an existing file, nor
    inside one), checked before any work."""
    from pathlib import Path

    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == path else f"lies inside {str(p)!r}, a file"
            raise UnitScopeError(f"{given} {str(path)!r} {what}; give a folder.")
    _check_writable(path, path, given)
    return path


def check_band(lo: float, hi: float, sfreq: float, *, given: str, below_nyquist: bool = False) -> tuple:
    """``(lo, hi)`` in Hz when it is a band the data hold, else a UnitScopeError naming
    ``given`` (the option as typed). ``below_nyquist``: the upper edge must lie strictly below
    Nyquist (a band-pass filter), else it may reach it (rfft bins)."""
    lo, hi = float(lo), float(hi)
    nyq = sfreq / 2
    if lo < 0 or hi < 0:
        raise UnitScopeError(f"{given}: band edges are frequencies in Hz and cannot be negative.")
    if lo > hi:
        raise UnitScopeError(f"{given}: the band edges are reversed (low edge {lo:g} Hz above the high edge "
                             f"{hi:g} Hz); give the low edge first: {hi:g} then {lo:g}.")
    if lo == hi:
        raise UnitScopeError(f"{given}: the band is empty (both edges {lo:g} Hz); give a low edge below the high edge.")
    if hi > nyq or (below_nyquist and hi >= nyq):
        raise UnitScopeError(f"{given}: the band must lie below Nyquist ({nyq:g} Hz) at this run's sampling rate "
                             f"of {sfreq:g} Hz, but its high edge is {hi:g} Hz; lower it "
                             f"{'below' if below_nyquist else 'to at most'} {nyq:g} Hz.")
    return lo, hi


def passband_check(ws, band, *, given: str) -> None:
    """A band of a run band-passed at training (``unitscope train --l-freq/--h-freq``): refused
    when the filter removed all of it (it measures nothing of the decoder), a caution on stderr
    when it reaches outside the pass-band (``unitscope probe`` keeps its bands within it)."""
    import sys

    from ..cautions import in_passband, passband_note, passband_text

    l_freq, h_freq = ws.input_band()  # (for a recording resampled up, below its own Nyquist frequency)
    note = passband_note(band, ws.spec.l_freq, ws.spec.h_freq, native_sfreq=ws.native_sfreq())
    if not note:
        return
    if in_passband(band, l_freq, h_freq) is None:
        within = "within " if l_freq and h_freq else ""  # ("below 30 Hz", not "within below 30 Hz")
        raise UnitScopeError(f"{given}: {note}; give a band {within}{passband_text(l_freq, h_freq)}.")
    print(f"caution: {given}: {note}", file=sys.stderr)


def per_class_line(metrics: dict) -> str:
    """``"1 3/5, 2 0/4, 16 2/6"``: each class's test trials called right out of its trials, in
    natural order (the recalls balanced accuracy averages), or "" when the run does not say."""
    from ..recording import natural_key

    per = metrics.get("test_per_class")
    if not per:
        return ""
    return ", ".join(f"{c} {k}/{n}" for c, (k, n) in sorted(per.items(), key=lambda kv: natural_key(kv[0])))


def on_count(metrics: dict, block: str) -> str:
    """``" on 3 trials"`` for ``block`` ("valid", "test"), or "" when the run does not say."""
    n = metrics.get(f"n_{block}")
    return f" on {int(n)} {metrics.get('count_of', 'windows')}" if n is not None else ""


def metric_cautions(task: str, metrics: dict) -> list[str]:
    """What to keep in mind when reading a run's test metric, one sentence each: too few test
    trials for a stable balanced accuracy; a correlation at or below zero."""
    test = metrics.get("test")
    if test is None:
        return []
    out = []
    n = metrics.get("n_test")
    if task == "classification" and n is not None and n < FEW_TRIALS:
        out.append(f"the test balanced_accuracy rests on {int(n)} trial(s) only: with fewer than {FEW_TRIALS} "
                   "trials it is very uncertain")
    if task == "regression" and test == test and test <= 0:
        out.append(f"test pearson_r {test:.4f} is not above 0: the decoder predicts no better than chance "
                   "on the test block")
    k = metrics.get("n_test_classes")
    chance = chance_note(task, test, k, n) if task == "classification" and k and test == test else ""
    if chance == ONE_CLASS:
        out.append(f"test balanced_accuracy {test:.4f} is {chance}: what the decoder learnt is not measured")
    elif chance:
        may = "may predict" if chance.startswith(NOT_CLEARLY) else "predicts"
        out.append(f"test balanced_accuracy {test:.4f} is {chance}: the decoder {may} no better than chance on "
                   "the test block")
    note = shift_note(metrics.get("test_target_shift")) if task == "regression" else ""
    if note:
        out.append(note)
    return out


def chance_caution(ev, block: str) -> str:
    """A caution when the unpruned decoder measured by ``ev`` (a MaskEvaluator) decodes at or
    below chance on ``block`` (Pearson r 0; balanced accuracy 1 / the classes present), else "".
    Pruning such a decoder ranks nothing: what a unit "costs" is noise, or inverted by the sign."""
    return metric_chance_caution(ev.task, float(ev.baseline), ev.y, block, ev.metric_name,
                                 doing="pruning takes from it", whose="the unpruned decoder's")


def metric_chance_caution(task: str, metric: float, y, block: str, metric_name: str, *, doing: str,
                          whose: str = "the decoder's") -> str:
    """:func:`chance_caution` of any measurement of a decoder scoring ``metric`` against the
    targets ``y`` of ``block``; ``doing`` says what the measurement takes away (a band, units)."""
    import numpy as np

    k = len(np.unique(np.asarray(y)))
    note = chance_note(task, metric, k, len(np.asarray(y)) if task == "classification" else None)
    if not note:
        return ""
    if metric != metric:  # a NaN: a constant output
        return (f"caution: {whose} {block} {metric_name} is {note}: what {doing} says nothing about what a "
                "decoder that works needs")
    if note == ONE_CLASS:
        return (f"caution: {whose} {block} {metric_name} ({metric:.4f}) is {one_class_note(block)}: "
                f"what {doing} says nothing about what a decoder that works needs")
    if note.startswith(NOT_CLEARLY):
        return (f"caution: {whose} {block} {metric_name} is {metric:.4f}, {note}: what {doing} may say nothing "
                "about what a decoder that works needs")
    chance = chance_level(task, k)
    return (f"caution: {whose} {block} {metric_name} is {metric:.4f}, not above chance ({chance:g}): "
            f"what {doing} says nothing about what a decoder that works needs")


@contextlib.contextmanager
def option_names(names: dict):
    """UnitScopeErrors raised inside name the command line's options, not the fields they set:
    ``{"max_epochs": "--epochs"}`` turns "'max_epochs' must lie in [1, inf], got 0" into
    "--epochs must lie in [1, inf], got 0" (a user of ``--epochs 0`` met the field's name)."""
    try:
        yield
    except UnitScopeError as exc:
        text = str(exc)
        for field, option in names.items():
            text = text.replace(f"'{field}'", option)
        if text == str(exc):
            raise
        raise UnitScopeError(text) from exc
