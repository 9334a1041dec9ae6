"""``unitscope encode --data synthetic-reading|demo|PATH``: fit and explain an encoding model.

Fits the Deep Recurrent Encoder (METHODS.md 3), its TRF and RTRF baselines and optional
ablations on one data set, evaluates them on the test split and computes the DRE's
permutation feature importance. Writes the result (:class:`core.encoding.EncodingStudy`
layout) atomically to ``--out`` (netCDF) and prints one line per model.

``PATH`` is an encoding data set (``.nc``, see :mod:`core.encoding._data`) or MNE epochs
(``-epo.fif``) with numeric event features in their metadata.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ._common import check_out_file

BUILTIN = ("synthetic-reading", "demo")


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="deep recurrent encoder with linear baselines and permutation importance")
    p.add_argument("--data", required=True, metavar="synthetic-reading|demo|PATH",
                   help="built-in data set or an encoding data file (.nc, -epo.fif)")
    p.add_argument("--out", default="encoding.nc", help="results file (netCDF, default encoding.nc)")
    p.add_argument("--quick", action="store_true", help="a small run (fewer subjects, words and passes)")
    p.add_argument("--subjects", type=int, default=None, help="synthetic-reading: number of subjects (default 10; --quick 4)")
    p.add_argument("--words", type=int, default=None, help="synthetic-reading: words per subject (default 800; --quick 300)")
    p.add_argument("--epochs", type=int, default=None, help="DRE passes over the training set (default 20; --quick 6)")
    p.add_argument("--hidden", type=int, default=None, help="DRE conv/LSTM width (default 64)")
    p.add_argument("--init-seconds", type=float, default=None,
                   help="initial brain state given to the models, seconds (default 1/3, or the part of "
                        "the epochs before their event if shorter)")
    p.add_argument("--baselines", default="trf,rtrf", help="comma-separated: trf, rtrf, or 'none' (default trf,rtrf)")
    p.add_argument("--ablations", default="none", help="comma-separated: no_init, no_subject, or 'none' (default none)")
    p.add_argument("--reject", type=float, default=16.0,
                   help="drop epochs with any |value| above this after robust scaling (artefacts; default 16, "
                        "0: keep every epoch)")
    p.add_argument("--no-importance", action="store_true", help="skip the permutation importance")
    p.add_argument("--repeats", type=int, default=1, help="permutations per feature (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data simulator and permutations (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.set_defaults(func=run)


INIT_SECONDS = 1 / 3  # default initial brain state, seconds

# integer options -> their least value (--words: simulate_reading's least)
LEAST = {"--subjects": 1, "--words": 20, "--epochs": 1, "--hidden": 1, "--repeats": 1, "--seed": 0, "--threads": 1}


def _names(text: str) -> list[str]:
    return [] if text.strip().lower() in ("", "none") else [t.strip() for t in text.split(",")]


def check_options(args) -> None:
    """Refuse out-of-range numbers and options that do not apply, before anything is loaded."""
    from .._validation import UnitScopeError

    for option, least in LEAST.items():
        value = getattr(args, option[2:])
        if value is not None and value < least:
            raise UnitScopeError(f"Invalid value for {option}: expected an integer of at least {least}, got {value}.")
    if not 0 <= args.reject < float("inf"):  # (nan kept every epoch and looked like "no rejection")
        raise UnitScopeError(f"Invalid value for --reject: expected 0 (keep every epoch) or a positive threshold, "
                             f"got {args.reject}.")
    if args.init_seconds is not None and not 0 <= args.init_seconds < float("inf"):
        raise UnitScopeError(f"Invalid value for --init-seconds: expected 0 or more seconds, got {args.init_seconds}.")
    if args.data != "synthetic-reading":
        given = [o for o, a in (("--subjects", "subjects"), ("--words", "words")) if getattr(args, a) is not None]
        if given:
            raise UnitScopeError(f"{' and '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to --data "
                                 f"synthetic-reading only, got --data {args.data}.")


def init_samples(init_seconds, data, say) -> int:
    """``--init-seconds`` in samples: the initial brain state lies before the event (t < 0).

    Not given: 1/3 s, or the part of the epochs before their event if shorter (said). Given
    and reaching past the event: an error (the models would be handed the response).
    """
    from .._validation import UnitScopeError
    from ..encoding._data import onset_index

    sfreq = float(data.attrs["sfreq"])
    before = onset_index(data)  # samples before the event
    if init_seconds is None:
        n = int(round(INIT_SECONDS * sfreq))
        if n > before:
            say(f"initial brain state {before / sfreq:g} s instead of {INIT_SECONDS:.3g} s: the epochs "
                f"start {before / sfreq:g} s before their event")
            n = before
        return n
    n = int(round(init_seconds * sfreq))
    if n > before:
        raise UnitScopeError(
            f"Invalid value for --init-seconds: expected at most {before / sfreq:g} s (the epochs start "
            f"{before / sfreq:g} s before their event), got {init_seconds:g}; the models would be given "
            "part of the response.")
    return n


def load_data(spec: str, *, quick: bool = False, subjects=None, words=None, seed: int = 0):
    """The encoding data set named by ``--data``."""
    from ..encoding import load_epochs, reaching_epochs, simulate_reading

    if spec == "synthetic-reading":
        return simulate_reading(n_subjects=(4 if quick else 10) if subjects is None else subjects,
                                n_words=(300 if quick else 800) if words is None else words, seed=seed)
    if spec == "demo":
        return reaching_epochs(seed=seed, duration=300.0 if quick else 600.0)
    if not Path(spec).exists() and os.sep not in spec and "." not in spec:
        from .._validation import UnitScopeError, suggest

        raise UnitScopeError(f"Unknown data {spec!r}: expected one of {list(BUILTIN)} or a file path."
                             f"{suggest(spec, BUILTIN)}")
    return load_epochs(spec)


def run(args) -> int:
    from ..encoding import DREConfig, EncodingStudy
    from ..encoding.study import blas_threads
    from ..training import configure_threads

    check_options(args)
    check_out_file(args.out)  # before the data are made and the models fitted (--quick: 90 s)
    threads = configure_threads(args.threads)

    def say(msg: str) -> None:
        print(f"[encode] {msg}", file=sys.stderr, flush=True)

    data = load_data(args.data, quick=args.quick, subjects=args.subjects, words=args.words, seed=args.seed)
    sfreq = float(data.attrs["sfreq"])
    say(f"data {args.data}: {data.sizes['epoch']} epochs x {data.sizes['channel']} channels x "
        f"{data.sizes['time']} samples at {sfreq:g} Hz; torch_threads={threads}")
    cfg = DREConfig(meg_init=init_samples(args.init_seconds, data, say))
    if args.quick:
        cfg.n_epochs = 6
    if args.epochs is not None:
        cfg.n_epochs = args.epochs
    if args.hidden is not None:
        cfg.hidden = args.hidden
    study = EncodingStudy(cfg, baselines=_names(args.baselines), ablations=_names(args.ablations),
                          importance=not args.no_importance, n_repeats=args.repeats, seed=args.seed,
                          reject=args.reject or None)
    with blas_threads(threads):
        result = study.run(data, progress=say)
    result.attrs["data"] = str(args.data)
    from ..training import atomic_write_netcdf
    atomic_write_netcdf(result, Path(args.out))
    print("\n".join(result_lines(result)))
    print(f"wrote {args.out}")
    return 0


def result_lines(result) -> list[str]:
    """An encoding result in words: each model's post-onset mean r, each feature's importance
    (its peak where permuting it raises the loss), the forcings left out and why."""
    import json

    from ..encoding import peak_latency

    from ..cautions import dre_note

    lines = [f"{model}: post-onset mean r {float(result['score'].sel(model=model)):.4f}"
             for model in result["model"].values]
    note = dre_note({str(m): float(result["score"].sel(model=m)) for m in result["model"].values})
    if note:
        lines.append(f"note: {note}")
    if "loss_increase" in result:
        for f in result["feature"].values:
            loss = float(result["loss_increase"].sel(feature=f))
            line = f"importance {f}: loss {loss:+.2f}%"
            if f not in ("meg", "subject"):
                course = result["loss_increase_map"].sel(feature=f).mean(("subject", "channel"))
                if loss > 0 and float(course.sel(time=slice(-1e-9, None)).max()) > 0:
                    line += f", peaks at {1000 * peak_latency(result, str(f)):.0f} ms"
                else:
                    line += ", no peak (permuting it does not raise the loss: the DRE does not use it)"
            lines.append(line)
        left_out = json.loads(result.attrs.get("importance_left_out", "{}") or "{}")
        if left_out:
            lines.append("importance left out: " + "; ".join(f"{k} ({v})" for k, v in left_out.items()))
    return lines
