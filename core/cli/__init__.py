"""The ``unitscope`` command line.

Each subcommand lives in its own module of this package exposing ``add_parser(subparsers)``;
the parser's ``func(args) -> int`` does the work. User errors (:class:`UnitScopeError`,
missing files) print one line to stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import re
import sys
from pathlib import Path

from .._validation import UnitScopeError

__all__ = ["main"]

# Subcommand modules, in the order ``unitscope --help`` lists them. A module that is not
# present (a feature not installed) is skipped.
SUBCOMMANDS = ("info", "train", "import_weights", "probe", "occlude", "prune", "deconv", "encode", "report", "batch", "bench")


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (a value of the wrong type, a choice not offered, a required option
    left out) in one line, as UnitScope's: argparse printed its usage block first, 10 lines
    for ``train``, above the one that says what was wrong. ``--help`` still shows the usage."""

    def error(self, message):
        from .._validation import suggest

        hint = ""
        m = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)", message)
        if m:  # a misspelt subcommand or choice: the closest one named
            hint = suggest(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
        self.exit(2, f"{self.prog}: error: {message}.{hint} ('{self.prog} --help' lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # a value, not an option (argparse's own test)


def _options(parser) -> list[str]:
    """The long options of ``parser`` (``--help`` left out)."""
    return [s for a in getattr(parser, "_actions", []) for s in a.option_strings
            if s.startswith("--") and s != "--help"]


def _unknown_option_text(parser: argparse.ArgumentParser, command: str | None, option: str) -> str:
    """``unrecognized option '--bogus'`` and, as argparse's "did you mean", the closest option of
    the subcommand, else the subcommands that take it."""
    sub = parser.subcommands.get(command) or parser
    prog = f"unitscope {command}" if command else "unitscope"
    mine = {o[2:]: o for o in _options(sub)}
    close = difflib.get_close_matches(option.lstrip("-"), list(mine), n=1, cutoff=0.6)
    if close:
        hint = f" Did you mean {mine[close[0]]!r}?"
    else:
        others = [name for name, p in parser.subcommands.items() if option in _options(p)]
        hint = (f" It is an option of unitscope {', '.join(others)}, not of {prog}." if others and command
                else f" {prog} --help lists its options.")
    return f"unrecognized option {option!r}.{hint}"


def _unrecognized(parser: argparse.ArgumentParser, args, extra: list[str]) -> int:
    """Argparse's "unrecognized arguments" (it exits), in one line (returns 2) where it can say
    more: an unknown option is named, with the closest valid one; for a subcommand that reads its
    recording from --data, a path given in its place gets one line saying so."""
    command = getattr(args, "command", None)
    sub = parser.subcommands.get(command)
    prog = f"unitscope {command}" if command else "unitscope"
    option = next((a.split("=", 1)[0] for a in extra if a.startswith("-") and a != "-"
                   and not _NEGATIVE_NUMBER.match(a)), None)
    if option is not None:  # the words after it are its values, not stray paths
        print(f"{prog}: error: {_unknown_option_text(parser, command, option)}", file=sys.stderr)
        return 2
    paths = [a for a in extra if not a.startswith("-")]
    if sub is not None and paths and any("--data" in a.option_strings for a in sub._actions):
        print(f"unitscope {command}: error: unrecognized argument {paths[0]!r}: give a recording with --data PATH "
              f"(unitscope {command} --data {paths[0]} ...)", file=sys.stderr)
        return 2
    return (sub or parser).error(f"unrecognized arguments: {' '.join(extra)}")


def _check_run_dir(parser: argparse.ArgumentParser, args) -> None:
    """A subcommand's RUN_DIR that does not exist is said so (with a folder of a close name
    beside it), before the subcommand takes it for a folder without config.json."""
    sub = parser.subcommands.get(getattr(args, "command", None))
    if not any(a.dest == "run_dir" and not a.option_strings for a in getattr(sub, "_actions", [])):
        return
    path = Path(args.run_dir)
    if path.is_file():  # a recording given in its place: "'x.edf/probe.nc': 'x.edf' is a file, not a folder"
        raise UnitScopeError(f"{str(path)!r} is a file, not a run folder: unitscope {args.command} reads the folder "
                             f"that unitscope train --out writes (unitscope train --data {path} --out FOLDER makes "
                             "one).")
    if path.exists():
        return
    parent = path.parent
    beside = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
    close = difflib.get_close_matches(path.name, beside, n=1, cutoff=0.6)
    hint = (f". Did you mean {str(parent / close[0])!r}?" if close
            else "." if parent.is_dir() else f", nor does the folder {str(parent)!r} above it.")
    raise UnitScopeError(f"Run folder {str(path)!r} does not exist{hint}")


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
        _check_run_dir(parser, args)
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
