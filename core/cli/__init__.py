"""The ``unitscope`` command line.

Each subcommand lives in its own module of this package exposing ``add_parser(subparsers)``;
the parser's ``func(args) -> int`` does the work. User errors (:class:`UnitScopeError`,
missing files) print one line to stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from .._validation import UnitScopeError

__all__ = ["main"]

# Subcommand modules, in the order ``unitscope --help`` lists them. A module that is not
# present (a feature not installed) is skipped.
SUBCOMMANDS = ("info", "train", "import_weights", "probe", "occlude", "prune", "deconv", "encode", "report", "batch", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unitscope",
        description="Train, probe, prune and deconvolve convolutional decoders of brain signals.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.add_parser(sub)
    parser.subcommands = dict(sub.choices)  # name -> its parser, for _unrecognized
    return parser


def _takes_data(parser: argparse.ArgumentParser, args) -> bool:
    """Whether the subcommand of ``args`` reads one recording from an optional ``--data`` that
    was not given (``train``, ``import``): an existing path given alone in its place is taken."""
    sub = parser.subcommands.get(getattr(args, "command", None))
    action = next((a for a in getattr(sub, "_actions", []) if "--data" in a.option_strings), None)
    return action is not None and not action.required and action.nargs is None and getattr(args, "data", 0) is None


def _unrecognized(parser: argparse.ArgumentParser, args, extra: list[str]) -> int:
    """Argparse's "unrecognized arguments" (it exits), but for a subcommand that reads its
    recording from --data, a path given in its place gets one line saying so (returns 2)."""
    command = getattr(args, "command", None)
    sub = parser.subcommands.get(command)
    paths = [a for a in extra if not a.startswith("-")]
    if sub is not None and paths and any("--data" in a.option_strings for a in sub._actions):
        print(f"unitscope {command}: error: unrecognized argument {paths[0]!r}: give a recording with --data PATH "
              f"(unitscope {command} --data {paths[0]} ...)", file=sys.stderr)
        return 2
    return (sub or parser).error(f"unrecognized arguments: {' '.join(extra)}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and set(extra) & {"-v", "--verbose"}:  # -v after the subcommand's name: the same option
        args.verbose = True
        extra = [a for a in extra if a not in ("-v", "--verbose")]
    if len(extra) == 1 and _takes_data(parser, args) and Path(extra[0]).exists():
        args.data, extra = extra[0], []  # `unitscope train rec.edf ...`: the recording, as --data names it
    if extra:
        return _unrecognized(parser, args, extra)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UnitScopeError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"unitscope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"unitscope {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co., which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
