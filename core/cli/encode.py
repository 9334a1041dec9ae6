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

BUILTIN = ("synthetic-reading", "demo")


def add_parser(sub) -> None:
    p = sub.add_parser("encode", help="deep recurrent encoder with linear baselines and permutation importance")
    p.add_argument("--data", required=True, metavar="synthetic-reading|demo|PATH",
                   help="built-in data set or an encoding data file (.nc, -epo.fif)")
    p.add_argument("--out", default="encoding.nc", help="results file (netCDF, default encoding.nc)")
    p.add_argument("--quick", action="store_true", help="a small run (fewer subjects, words and passes)")
    p.add_argument("--subjects", type=int, default=None, help="synthetic-reading: number of subjects")
    p.add_argument("--words", type=int, default=None, help="synthetic-reading: words per subject")
    p.add_argument("--epochs", type=int, default=None, help="DRE passes over the training set")
    p.add_argument("--hidden", type=int, default=None, help="DRE conv/LSTM width")
    p.add_argument("--init-seconds", type=float, default=1 / 3,
                   help="initial brain state given to the models, seconds (default 1/3)")
    p.add_argument("--baselines", default="trf,rtrf", help="comma-separated: trf, rtrf, or 'none'")
    p.add_argument("--ablations", default="none", help="comma-separated: no_init, no_subject, or 'none'")
    p.add_argument("--no-importance", action="store_true", help="skip the permutation importance")
    p.add_argument("--repeats", type=int, default=1, help="permutations per feature")
    p.add_argument("--seed", type=int, default=0, help="seed of the data simulator and permutations")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.set_defaults(func=run)


def _names(text: str) -> list[str]:
    return [] if text.strip().lower() in ("", "none") else [t.strip() for t in text.split(",")]


def load_data(spec: str, *, quick: bool = False, subjects=None, words=None, seed: int = 0):
    """The encoding data set named by ``--data``."""
    from ..encoding import load_epochs, reaching_epochs, simulate_reading

    if spec == "synthetic-reading":
        return simulate_reading(n_subjects=subjects or (4 if quick else 10),
                                n_words=words or (300 if quick else 800), seed=seed)
    if spec == "demo":
        return reaching_epochs(seed=seed, duration=300.0 if quick else 600.0)
    if not Path(spec).exists() and os.sep not in spec and "." not in spec:
        from .._validation import UnitScopeError, suggest

        raise UnitScopeError(f"Unknown data {spec!r}: expected one of {list(BUILTIN)} or a file path."
                             f"{suggest(spec, BUILTIN)}")
    return load_epochs(spec)


def run(args) -> int:
    from .._validation import check_range
    from ..encoding import DREConfig, EncodingStudy
    from ..encoding.study import blas_threads
    from ..training import configure_threads

    threads = configure_threads(args.threads)
    check_range("init_seconds", args.init_seconds, low=0.0)
    data = load_data(args.data, quick=args.quick, subjects=args.subjects, words=args.words, seed=args.seed)
    sfreq = float(data.attrs["sfreq"])
    cfg = DREConfig(meg_init=int(round(args.init_seconds * sfreq)))
    if args.quick:
        cfg.n_epochs = 6
    if args.epochs is not None:
        cfg.n_epochs = args.epochs
    if args.hidden is not None:
        cfg.hidden = args.hidden
    study = EncodingStudy(cfg, baselines=_names(args.baselines), ablations=_names(args.ablations),
                          importance=not args.no_importance, n_repeats=args.repeats, seed=args.seed)

    def say(msg: str) -> None:
        print(f"[encode] {msg}", file=sys.stderr, flush=True)

    say(f"data {args.data}: {data.sizes['epoch']} epochs x {data.sizes['channel']} channels x "
        f"{data.sizes['time']} samples at {sfreq:g} Hz; torch_threads={threads}")
    with blas_threads(threads):
        result = study.run(data, progress=say)
    result.attrs["data"] = str(args.data)
    from ..training import atomic_write_netcdf
    atomic_write_netcdf(result, Path(args.out))
    print("\n".join(result_lines(result)))
    print(f"wrote {args.out}")
    return 0


def result_lines(result) -> list[str]:
    """An encoding result in words: each model's post-onset mean r, each feature's importance."""
    from ..encoding import peak_latency

    lines = [f"{model}: post-onset mean r {float(result['score'].sel(model=model)):.4f}"
             for model in result["model"].values]
    if "loss_increase" in result:
        for f in result["feature"].values:
            line = f"importance {f}: loss +{float(result['loss_increase'].sel(feature=f)):.2f}%"
            if f not in ("meg", "subject"):
                line += f", peaks at {1000 * peak_latency(result, str(f)):.0f} ms"
            lines.append(line)
    return lines
