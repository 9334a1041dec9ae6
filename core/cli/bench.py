"""``unitscope bench NAME [--quick]``: run one benchmark; the last line is one JSON object."""
from __future__ import annotations

import importlib
import json
import pkgutil
import sys

from .._validation import UnitScopeError, suggest


def _available() -> list[str]:
    from .. import bench

    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark on the demo recording (JSON on the last line)")
    p.add_argument("name", help="benchmark name: " + ", ".join(_available()))
    p.add_argument("--quick", action="store_true", help="reduced version for CI")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training import configure_threads

    names = _available()
    if args.name not in names:
        raise UnitScopeError(f"Unknown benchmark {args.name!r}; available: {names}.{suggest(args.name, names)}")
    configure_threads(args.threads)
    module = importlib.import_module(f"core.bench.{args.name}")

    def progress(msg) -> None:
        print(f"[bench {args.name}] {msg}", file=sys.stderr, flush=True)

    result = module.run(quick=args.quick, progress=progress)
    print(json.dumps(result))
    return 0
