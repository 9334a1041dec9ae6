"""``unitscope info PATH``: channels, types, duration, sampling rate, events."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe a recording (channels, types, duration, sfreq, events)")
    p.add_argument("path", help="recording file, BIDS folder, or 'demo'")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import simulate_reaching
    from ..io import read_recording

    rec = simulate_reaching() if args.path == "demo" else read_recording(args.path)
    s = rec.summary()
    if args.json:
        print(json.dumps(s))
        return 0
    names = s["ch_names"]
    print(f"channels   {s['n_chans']}: {', '.join(names[:16])}{' ...' if len(names) > 16 else ''}")
    print(f"types      {', '.join(f'{k} x{v}' for k, v in s['ch_types'].items())}")
    print(f"sfreq      {s['sfreq']:g} Hz")
    print(f"duration   {s['duration_s']:.1f} s ({s['n_times']} samples)")
    if s["target"]:
        print(f"target     {s['target']}")
    ev = s["events"]
    print(f"events     {sum(ev.values())}" + (f": {', '.join(f'{k} x{v}' for k, v in ev.items())}" if ev else ""))
    return 0
