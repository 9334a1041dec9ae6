"""``unitscope occlude RUN_DIR``: which inputs does the decoder need? (band occlusion)

Removes a band from some channels of every held-out window (the rfft bins in the band set
to zero; ``core.probing.validity.band_occlusions``) and prints the held-out metric with and
without it, one line per case:

* ``--channels G03,G04 --band 60 90`` (or ``--whole``: zero the channels altogether);
* ``--roles``: each channel role's band from that role's channels (recordings whose channels
  carry ``role``/``band_lo``/``band_hi`` coordinates, such as the demo).

``--json`` prints the results as one JSON object instead.
"""
from __future__ import annotations

import json

from .._validation import UnitScopeError


def add_parser(sub) -> None:
    p = sub.add_parser("occlude", help="remove a band from channels and re-measure decoding (what the decoder needs)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by 'unitscope train'")
    p.add_argument("--channels", default=None, help="comma-separated channel names")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--band", nargs=2, type=float, metavar=("LO", "HI"), help="band edges in Hz")
    what.add_argument("--whole", action="store_true", help="zero the channels at all frequencies")
    p.add_argument("--roles", action="store_true", help="each channel role's band from its channels (the demo)")
    p.add_argument("--block", default="test", help="held-out block measured (default test)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.set_defaults(func=run)


def _cases(args, ws) -> dict:
    from ..probing.validity import band_text, named_cases, role_cases

    cases = {}
    if args.channels:
        chans = [c.strip() for c in args.channels.split(",") if c.strip()]
        if not chans:
            raise UnitScopeError(f"--channels {args.channels!r} names no channel.")
        if args.band is None and not args.whole:
            raise UnitScopeError("Give --band LO HI (Hz) or --whole with --channels.")
        band = None if args.whole else tuple(args.band)
        cases = named_cases(ws.recording.ch_names, {f"{band_text(band)} of {','.join(chans)}": (chans, band)})
    elif args.band is not None or args.whole:
        raise UnitScopeError("--band and --whole need --channels NAMES.")
    if args.roles:
        roles = role_cases(ws.recording.signals)
        if not roles:
            raise UnitScopeError("--roles needs channel roles (role, band_lo, band_hi coordinates, as in the demo); "
                                 "this recording has none: use --channels and --band.")
        cases.update({f"{role} band": case for role, case in roles.items()})
    if not cases:
        raise UnitScopeError("Nothing to do: give --channels NAMES with --band LO HI or --whole, and/or --roles.")
    return cases


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
    if args.json:
        print(json.dumps({"block": args.block, "metric": name, "reference": round(reference, 4),
                          "occluded": {k: round(v, 4) for k, v in occluded.items()},
                          "drop": {k: round(reference - v, 4) + 0.0 for k, v in occluded.items()}}))  # no -0.0
        return 0
    print(f"{args.block} {name}: {reference:.4f} with nothing removed")
    width = max(len(k) for k in occluded)
    for label, value in occluded.items():
        print(f"without {label:<{width}}  {value:.4f}  (change {value - reference:+.4f})")
    return 0
