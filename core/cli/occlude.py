"""``unitscope occlude RUN_DIR``: which inputs does the decoder need? (band occlusion)

Removes a band from some channels of every held-out window (the rfft bins in the band set
to zero; ``core.probing.validity.band_occlusions``) and prints the held-out metric with and
without it, one line per case:

* ``--channels G03,G04 --band 60 90`` (or ``--whole``: zero the channels altogether; without
  ``--channels``, every input channel). Names match as ``unitscope info`` matches them to
  10-05 positions (case and trailing dots ignored: ``C3`` is EEGMMIDB's ``C3..``);
* ``--roles``: each channel role's band from that role's channels (recordings whose channels
  carry ``role``/``band_lo``/``band_hi`` coordinates, such as the demo).

``--json`` prints the results as one JSON object instead (an undefined metric, that of a
constant output, as null, and why under ``undefined``).
"""
from __future__ import annotations

import json
import sys

from .._validation import UnitScopeError
from ..cautions import passband_note
from ._common import (check_band, metric_chance_caution, metric_str, passband_check, resolve_channels,
                      undefined_note)


def add_parser(sub) -> None:
    p = sub.add_parser("occlude", help="remove a band from channels and re-measure decoding (what the decoder needs)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by 'unitscope train'")
    p.add_argument("--channels", default=None,
                   help="comma-separated channel names for --band / --whole (default: every input channel; "
                        "case and trailing dots ignored, so C3 is C3..)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--band", nargs=2, type=float, metavar=("LO", "HI"),
                      help="band edges in Hz, from 0 up to Nyquist (half the sampling rate)")
    what.add_argument("--whole", action="store_true", help="zero the channels at all frequencies")
    p.add_argument("--roles", action="store_true", help="each channel role's band from its channels (the demo)")
    p.add_argument("--block", default="test", help="held-out block measured (default test)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.set_defaults(func=run)


def _cases(args, ws) -> dict:
    from ..probing.validity import band_text, named_cases, role_cases

    cases = {}
    if args.channels is not None and args.band is None and not args.whole:
        raise UnitScopeError("Give --band LO HI (Hz) or --whole with --channels.")
    if args.band is not None or args.whole:
        band = None
        if args.band is not None:
            given = f"--band {args.band[0]:g} {args.band[1]:g}"
            band = check_band(*args.band, ws.recording.sfreq, given=given)
            passband_check(ws, band, given=given)  # a run band-passed at training: the filter removed the rest
        if args.channels is None:
            chans, label = list(ws.recording.ch_names), "all channels"
        else:
            chans = resolve_channels([c.strip() for c in args.channels.split(",") if c.strip()], ws.recording.ch_names)
            if not chans:
                raise UnitScopeError(f"--channels {args.channels!r} names no channel.")
            label = ",".join(chans)
        cases = named_cases(ws.recording.ch_names, {f"{band_text(band)} of {label}": (chans, band)})
    if args.roles:
        roles = role_cases(ws.recording.signals)
        if not roles:
            raise UnitScopeError("--roles needs channel roles (role, band_lo, band_hi coordinates, as in the demo); "
                                 "this recording has none: use --channels and --band.")
        cases.update({f"{role} band": case for role, case in roles.items()})
        for role, (_, band) in roles.items():  # said, not refused: the recording's roles, not a band typed
            note = (passband_note(band, ws.spec.l_freq, ws.spec.h_freq, native_sfreq=ws.native_sfreq())
                    if band is not None else "")
            if note:
                print(f"caution: --roles, {role} band: {note}", file=sys.stderr)
    if not cases:
        raise UnitScopeError("Nothing to do: give --band LO HI or --whole (of --channels NAMES, default all), "
                             "and/or --roles.")
    return cases


# why a metric is NaN (the decoder's output does not vary): occluded, or with nothing removed
REMOVED = "with these inputs removed it is a constant"
CONSTANT = "it is a constant on these windows"


def run(args) -> int:
    from ..probing.validity import band_occlusions
    from ..pruning.evaluator import METRIC_NAMES
    from ..training import configure_threads
    from ..workspace import Workspace

    configure_threads(args.threads)
    ws = Workspace.load(args.run_dir)
    cases = _cases(args, ws)
    X, y = ws.eval_set(args.block)
    occluded, reference = band_occlusions(ws.model, X, y, sfreq=ws.recording.sfreq, cases=cases, task=ws.task)
    name = METRIC_NAMES[ws.task]
    caution = metric_chance_caution(ws.task, reference, y, args.block, name, doing="removing a band changes")
    if caution:  # on stderr, as unitscope prune's: --json keeps stdout one JSON object
        print(caution, file=sys.stderr)
    if args.json:  # a NaN (a constant output) is null: JSON has no NaN
        def num(v):
            return round(v, 4) + 0.0 if v == v else None  # no -0.0

        out = {"block": args.block, "metric": name, "reference": num(reference),
               "occluded": {k: num(v) for k, v in occluded.items()},
               "drop": {k: num(reference - v) for k, v in occluded.items()}}
        undefined = {k: undefined_note(REMOVED) for k, v in occluded.items() if v != v}
        if reference != reference:
            undefined = {"reference": undefined_note(CONSTANT), **undefined}
        if undefined:
            out["undefined"] = undefined
        print(json.dumps(out, allow_nan=False))
        return 0
    print(f"{args.block} {name}: {metric_str(reference, CONSTANT)} with nothing removed")
    width = max(len(k) for k in occluded)
    for label, value in occluded.items():
        change = f"  (change {value - reference:+.4f})" if value == value and reference == reference else ""
        print(f"without {label:<{width}}  {metric_str(value, REMOVED)}{change}")
    return 0

