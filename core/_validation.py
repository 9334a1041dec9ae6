"""Validation helpers for public inputs (message grammar: name + expected + got).

Every user-facing error in UnitScope is a :class:`UnitScopeError` (a ``ValueError``), so the
CLI can print one line and exit 2 and the dashboard can show an alert, while programming
errors still surface as tracebacks.
"""
from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Sequence

__all__ = [
    "UnitScopeError",
    "validate_type",
    "check_option",
    "check_range",
    "ensure_int",
    "suggest",
    "config_from_dict",
]


class UnitScopeError(ValueError):
    """A problem with what the user gave (file, parameter, data), explained in one line."""


def suggest(value: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or an empty string: an option
    equal to ``value`` but for case first, else the closest by :func:`difflib.get_close_matches`."""
    options = [str(o) for o in options]
    same = [o for o in options if o.casefold() == str(value).casefold()]
    match = same or difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _join(options: Sequence[str]) -> str:
    options = [repr(o) for o in options]
    if len(options) <= 1:
        return "".join(options)
    return ", ".join(options[:-1]) + " and " + options[-1]


def check_option(name: str, value, allowed: Sequence):
    """Return ``value`` if it is one of ``allowed``; raise a helpful error otherwise."""
    if value in allowed:
        return value
    hint = suggest(value, allowed) if isinstance(value, str) else ""
    raise UnitScopeError(
        f"Invalid value for the {name!r} parameter. Allowed values are {_join(list(allowed))}, "
        f"but got {value!r} instead.{hint}"
    )


def validate_type(name: str, value, types, type_name: str | None = None):
    """Raise if ``value`` is not an instance of ``types``; return it otherwise."""
    if not isinstance(value, types):
        expected = type_name or (
            " or ".join(t.__name__ for t in types) if isinstance(types, tuple) else types.__name__
        )
        raise UnitScopeError(
            f"{name!r} must be an instance of {expected}, got {type(value).__name__} instead."
        )
    return value


def ensure_int(name: str, value) -> int:
    """Return ``value`` as int; reject bools and non-integral values."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UnitScopeError(f"{name!r} must be an int, got {value!r} ({type(value).__name__}).")
    return int(value)


def check_range(name: str, value, *, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """Raise if ``value`` lies outside [low, high] (bounds optional); return it otherwise."""
    if value is None or isinstance(value, (str, bytes)):  # "1e-3" from a form or a config file
        raise UnitScopeError(f"{name!r} must be a number, got {value!r} ({type(value).__name__}).")
    bad = False
    if low is not None:
        bad |= value < low if low_inclusive else value <= low
    if high is not None:
        bad |= value > high if high_inclusive else value >= high
    if bad:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise UnitScopeError(f"{name!r} must lie in {lb}{lo}, {hi}{hb}, got {value!r}.")
    return value


def config_from_dict(cls, d, what: str):
    """``cls(**d)`` for a dataclass of options, an unknown key refused by name with the known
    ones (and the closest, for a misspelling): ``what`` names the options in the message
    (``"probe"`` gives "Unknown probe options ['iterations']; known: [...]")."""
    from dataclasses import fields

    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(d) - set(known))
    if unknown:
        hint = suggest(unknown[0], known) if len(unknown) == 1 else ""
        raise UnitScopeError(f"Unknown {what} options {unknown}; known: {known}.{hint}")
    return cls(**d)
