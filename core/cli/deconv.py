"""``unitscope deconv RUN_DIR --signal SIGNAL``: event-locked kernels and per-event codes (DUNL).

SIGNAL is ``output``, ``unit:LAYER:INDEX`` (e.g. ``unit:conv_3:5``, or the app's
``unit:conv_3/5``) or ``channel:NAME:BAND`` (e.g. ``channel:G03:high_gamma`` or ``channel:G03:60-90``). The signal of a block (default
the test block) is deconvolved with known timing at the recording's events; the result
(kernels over lag, codes per event, observed and fitted traces) is written as netCDF
(default ``RUN_DIR/deconv_<signal>.nc``; ``deconv_<signal>_<block>.nc`` for another block than
test). ``--mask FILE`` first fits the intact decoder, then refits warm-started under the saved
pruning mask and writes the refit. A channel's name matches as ``unitscope info`` matches names
(case and trailing dots ignored: ``C3`` is EEGMMIDB's ``C3..``); a band must lie below Nyquist,
its edges in order.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from .._validation import UnitScopeError
from ._common import (Progress, bar, check_band, check_out_file, passband_check, resolve_channels, seed_arg,
                      undefined_note)


def add_parser(sub) -> None:
    from ..deconv.config import LIKELIHOODS

    p = sub.add_parser("deconv", help="deconvolve a unit, the output or a band envelope into event-locked "
                                      "kernels and per-event codes (netCDF)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by 'unitscope train'")
    p.add_argument("--signal", required=True,
                   help="output | unit:LAYER:INDEX (or LAYER/INDEX) | channel:NAME:BAND (BAND a name such as "
                        "high_gamma or LO-HI Hz)")
    p.add_argument("--block", default="test", help="train, valid, test or all (default test)")
    p.add_argument("--events", action="append", default=None, metavar="TYPE",
                   help="event type to lock a kernel to (repeatable; default every type)")
    p.add_argument("--lag-start", type=float, default=-0.5, help="kernel start relative to the onset, s (default -0.5)")
    p.add_argument("--kernel-seconds", type=float, default=2.0, help="kernel duration, s (default 2)")
    p.add_argument("--bin-seconds", type=float, default=0.04, help="bin width, s (default 0.04)")
    p.add_argument("--likelihood", default="gaussian", choices=LIKELIHOODS,
                   help="gaussian, poisson or bernoulli (default gaussian)")
    p.add_argument("--two-sided", action="store_true", help="allow negative codes (default: codes >= 0)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 30; with --mask also the warm-started refit's, default 8)")
    p.add_argument("--mask", default=None, metavar="FILE",
                   help="pruning mask (JSON): refit warm-started under it (written as deconv_<signal>_masked.nc)")
    p.add_argument("--seed", type=seed_arg, default=0, help="seed of the kernels' start and the trial order "
                                                            "(default 0)")
    p.add_argument("--out", default=None, help="output netCDF (default RUN_DIR/deconv_<signal>.nc; "
                                                "deconv_<signal>_<block>.nc for another --block than test)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: DUNL's small tensors run fastest on one)")
    p.set_defaults(func=run)


def summary_lines(ds) -> list[str]:
    """A DUNL result in words: per kernel its events, peak lag and codes; the fit."""
    import json

    import numpy as np

    from ..deconv.signals import values_vary

    lines = []
    for k in ds["kernel"].values:
        h = ds["kernels"].sel(kernel=k).values
        codes = ds["codes"].sel(kernel=k).values
        codes = codes[np.isfinite(codes)]
        peak = float(ds["lag"].values[np.argmax(np.abs(h))])
        line = (f"kernel {k}: {len(codes)} events, peak at {peak:+.2f} s, "
                f"codes mean {codes.mean():.3g} (sd {codes.std():.3g})")
        values = ds["value"].values[np.isfinite(ds["codes"].sel(kernel=k).values)]
        if len(codes) > 2 and np.all(np.isfinite(values)) and values_vary(values) and values_vary(codes):
            line += f", r(code, event value) = {np.corrcoef(codes, values)[0, 1]:.3f}"
        lines.append(line)
    a = ds.attrs
    left_out = json.loads(a.get("types_left_out", "[]") or "[]")
    if left_out:
        lines.append(f"no kernel for event type(s) {', '.join(map(str, left_out))}: no event of "
                     f"{'it' if len(left_out) == 1 else 'them'} in the block")
    if {"best_epoch", "n_segments", "fit_seconds"} <= set(a):
        # epoch 0 is the kernels the fit started from (random, or the previous fit's in a refit)
        start = (" (the kernels it started from: no epoch lowered the validation loss)"
                 if int(a["best_epoch"]) == 0 else "")
        n_seg = int(a["n_segments"])
        lines.append(f"fit: R^2 {_r2_text(ds)}, best epoch {a['best_epoch']}{start}, {n_seg} segment"
                     f"{'' if n_seg == 1 else 's'}, {a['fit_seconds']:.2f} s")
        if a.get("valid_loss_on") == "training segments":  # (one segment: nothing to hold out)
            lines.append(f"caution: {a.get('valid_loss_note', 'valid_loss is measured on the training data')}")
    elif "r2" in a:  # the app's export keeps each fit's R^2 only
        lines.append(f"fit: R^2 {_r2_text(ds)}")
    return lines


def _r2_text(ds) -> str:
    """A DUNL fit's R^2, or why it is undefined: the deconvolved signal does not vary (the output
    or a unit of a decoder with every unit of a block masked), or the fit has no finite value."""
    import numpy as np

    r2 = float(ds.attrs["r2"])
    if r2 == r2:
        return f"{r2:.3f}"
    observed = ds["observed"].values if "observed" in ds else np.array([])
    observed = observed[np.isfinite(observed)]
    if observed.size and not np.ptp(observed) > 0:
        masked = "under the mask " if "refit" in ds.attrs else ""
        return undefined_note(f"{masked}it is a constant: nothing to fit", what="the deconvolved signal")
    return "undefined: the fit has no finite value"


def _named_band_to_nyquist(spec, signal: str, sfreq: float):
    """A band given by name (channel:C3:high_gamma) cut at Nyquist, as the probe cuts its bands
    (high gamma is 60-64 Hz at 128 Hz), with a note; a band given by edges is taken as given.
    [A] It was refused ("lower it below 64 Hz"), advice a name cannot follow."""
    import sys

    from ..deconv.signals import BANDS

    name = signal.rsplit(":", 1)[-1]
    nyquist = sfreq / 2
    if name not in BANDS or spec.band[1] <= nyquist or spec.band[0] >= nyquist:
        return spec
    band = (spec.band[0], nyquist)
    print(f"note: {name} is {band[0]:g}-{band[1]:g} Hz at this run's {sfreq:g} Hz (cut at Nyquist, as the probe cuts it)",
          file=sys.stderr)
    return replace(spec, band=band)


def check_options(args) -> None:
    """The numbers of the options, in their own names, before the run folder is read (the
    engine said "'kernel_seconds' must lie in [5.0, inf], got 2.0" for --bin-seconds 5)."""
    import math

    if args.out is not None:
        check_out_file(args.out)
    if not (math.isfinite(args.bin_seconds) and args.bin_seconds > 0):
        raise UnitScopeError(f"Invalid value for --bin-seconds: expected a bin width of more than 0 s, got "
                             f"{args.bin_seconds:g}.")
    if not (math.isfinite(args.kernel_seconds) and args.kernel_seconds >= args.bin_seconds):
        raise UnitScopeError(f"Invalid value for --kernel-seconds: a kernel spans at least one bin (--bin-seconds "
                             f"{args.bin_seconds:g}), got {args.kernel_seconds:g}; give a longer --kernel-seconds "
                             "or a shorter --bin-seconds.")
    if not math.isfinite(args.lag_start):
        raise UnitScopeError(f"Invalid value for --lag-start: expected seconds from the onset, got {args.lag_start:g}.")
    if args.epochs is not None and args.epochs < 1:
        raise UnitScopeError(f"--epochs {args.epochs}: give at least 1 epoch.")


def run(args) -> int:
    from ..deconv import DeconvConfig
    from ..deconv.apply import EventDeconvolution, parse_signal
    from ..training import configure_threads
    from ..workspace import Workspace

    check_options(args)
    configure_threads(args.threads)
    spec = parse_signal(args.signal)
    ws = Workspace.load(args.run_dir)
    if args.bin_seconds < 1.0 / ws.recording.sfreq:  # the engine's bound
        raise UnitScopeError(f"Invalid value for --bin-seconds: a bin holds at least one sample, "
                             f"{1 / ws.recording.sfreq:g} s at this run's sampling rate of {ws.recording.sfreq:g} Hz, "
                             f"got {args.bin_seconds:g}.")
    if spec.kind == "channel":  # C3 for C3..; a band the recording holds (said before any fit)
        spec = _named_band_to_nyquist(spec, args.signal, ws.recording.sfreq)
        check_band(*spec.band, ws.recording.sfreq, given=f"--signal {args.signal}")
        if spec.band[0] == 0:
            raise UnitScopeError(f"--signal {args.signal}: a band-pass band needs a low edge above 0 Hz.")
        passband_check(ws, spec.band, given=f"--signal {args.signal}")
        spec = replace(spec, channel=resolve_channels([spec.channel], ws.recording.ch_names)[0])
    if ws.task != "regression" and spec.kind != "channel":  # a channel's envelope is the input: any decoder
        raise UnitScopeError(
            f"Deconvolving the {spec.kind} needs a dense decoder of a continuous target; the run in "
            f"{args.run_dir!r} decodes labels ({ws.task}). A channel's band envelope works for any run: "
            "--signal channel:NAME:BAND.")
    masks = None
    if args.mask:  # a mask of another decoder is refused before the unmasked fit, not after it
        from ..pruning import MaskSet

        masks = MaskSet.load(args.mask, model=ws.model)
    # another block than the default test block gets its own file: --block all no longer
    # overwrote the test block's result
    # and a masked refit too: it replaced the unpruned network's result of the same signal
    name = (str(spec) if args.block == "test" else f"{spec}_{args.block}") + ("_masked" if args.mask else "")
    out = Path(args.out) if args.out else Path(args.run_dir) / f"deconv_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.nc"
    check_out_file(out, given="--out" if args.out else "The output file")
    n_kernels = len(args.events) if args.events else len(set(ws.recording.events.type.tolist()))
    config = DeconvConfig(n_kernels=max(n_kernels, 1), likelihood=args.likelihood, n_iter=20,
                          epochs=30 if args.epochs is None else args.epochs,
                          batch_size=8, lr=0.02, code_sign=(2 if args.two_sided else 1,) * max(n_kernels, 1))
    dec = EventDeconvolution.from_workspace(
        ws, block=args.block, event_types=args.events, lag_start=args.lag_start,
        kernel_seconds=args.kernel_seconds, bin_seconds=args.bin_seconds, config=config, rng=args.seed)

    show = Progress()

    def say(p) -> None:
        show(p["fraction"], f"deconv {bar(p['fraction'])} {100 * p['fraction']:5.1f}% valid loss {p['valid_loss']:.4g}")

    try:
        result = dec.run(spec, progress=say)
    finally:
        show.close()
    if masks is not None:
        print("\n".join(summary_lines(result)))
        result = dec.refit(result, masks=masks, epochs=args.epochs)
        print(f"refit under {masks.n_pruned} masked units ({result.attrs['refit']}, "
              f"{result.attrs['refit_seconds']:.2f} s):")
    print("\n".join(summary_lines(result)))
    from ..training import atomic_write_netcdf
    atomic_write_netcdf(result, out)
    print(f"wrote {out}")
    return 0
