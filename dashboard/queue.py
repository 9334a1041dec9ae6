"""A process-wide queue for heavy work, so a class on one server never thrashes its cores.

Every browser session runs its long work (fine-tunes, pruning curves, ablation sweeps,
kernel fits) and its quick re-measurements in worker threads; each of them first takes a
*slot* here. There are as many slots as cores (``UNITSCOPE_WORK_SLOTS`` overrides), and torch
runs one intra-op thread per slot, so N running jobs use N cores and the rest wait their
turn, with their position in line shown to their session.

Two kinds of work [A]:

* ``"interactive"`` (a prune re-measurement, a kernel refit: well under a second) is served
  first, in arrival order, and may hold at most ``max_interactive`` slots (default: all but
  one, so the server's event loop, which delivers every result, keeps a core);
* ``"long"`` (fine-tune, curves, ablation sweep: seconds to minutes) waits behind every
  interactive request and may hold at most ``max_long`` slots (default: all but one), so a
  click is never stuck behind other students' fine-tunes.

A waiting request is cancelled when its ``stop`` event is set (the session closed or the user
pressed Stop). No Panel code: sessions forward ``on_position`` calls to their parameters.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

from core._validation import UnitScopeError, check_option

__all__ = ["WorkQueue", "Cancelled", "work_queue", "KINDS"]

logger = logging.getLogger(__name__)
KINDS = ("interactive", "long")


def _env_int(name: str, default):
    """An integer setting from the environment, with a clear error when it is not one."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UnitScopeError(f"{name}={text!r} is not a whole number; expected e.g. {name}=2.") from None
    if value < 1:
        raise UnitScopeError(f"{name}={value} must be at least 1.")
    return value


class Cancelled(Exception):
    """The request was withdrawn (its stop event was set) before it got a slot."""


class _Ticket:
    __slots__ = ("seq", "kind", "owner", "label", "position")

    def __init__(self, seq: int, kind: str, owner, label: str):
        self.seq, self.kind, self.owner, self.label = seq, kind, owner, label
        self.position = 0

    @property
    def key(self) -> tuple:
        return (0 if self.kind == "interactive" else 1, self.seq)


class WorkQueue:
    """Limit concurrently running heavy jobs to ``n_slots``.

    Parameters
    ----------
    n_slots : int, optional
        Jobs running at once (default ``UNITSCOPE_WORK_SLOTS`` or the number of cores).
    max_long : int, optional
        Slots long jobs may hold at once (default ``max(1, n_slots - 1)``).
    max_interactive : int, optional
        Slots interactive jobs may hold at once (default ``UNITSCOPE_INTERACTIVE_SLOTS`` or
        ``max(1, n_slots - 1)``).
    poll : float
        Seconds between checks of a waiting request's stop event.
    """

    def __init__(self, n_slots: int | None = None, *, max_long: int | None = None,
                 max_interactive: int | None = None, poll: float = 0.1):
        if n_slots is None:
            n_slots = _env_int("UNITSCOPE_WORK_SLOTS", os.cpu_count() or 2)
        if n_slots < 1:
            raise UnitScopeError(f"{n_slots=} must be at least 1.")
        self.n_slots = int(n_slots)
        self.max_long = max(1, self.n_slots - 1) if max_long is None else int(max_long)
        if max_interactive is None:
            max_interactive = _env_int("UNITSCOPE_INTERACTIVE_SLOTS", None)
        self.max_interactive = max(1, self.n_slots - 1) if max_interactive is None else int(max_interactive)
        self.poll = float(poll)
        self._cond = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._running: list[_Ticket] = []
        self._seq = itertools.count()
        self._listeners: dict[int, Callable[[int], None]] = {}
        self._last_active = time.monotonic()  # when a slot was last taken or given back

    # ---- queries ---------------------------------------------------------------------
    def snapshot(self) -> dict:
        """``{"running": [(label, kind)], "waiting": [(label, kind)]}`` in service order."""
        with self._cond:
            return {"running": [(t.label, t.kind) for t in self._running],
                    "waiting": [(t.label, t.kind) for t in sorted(self._waiting, key=lambda t: t.key)]}

    @property
    def n_running(self) -> int:
        with self._cond:
            return len(self._running)

    @property
    def n_waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    def idle_seconds(self) -> float:
        """Seconds since a slot was last taken or given back (0 while work runs or waits)."""
        with self._cond:
            if self._running or self._waiting:
                return 0.0
            return time.monotonic() - self._last_active

    # ---- scheduling ------------------------------------------------------------------
    def _admissible(self, t: _Ticket) -> bool:
        if len(self._running) >= self.n_slots:
            return False
        limit = self.max_long if t.kind == "long" else self.max_interactive
        return sum(r.kind == t.kind for r in self._running) < limit

    def _next(self) -> _Ticket | None:
        """The request served next: the first admissible one in (kind, arrival) order."""
        for t in sorted(self._waiting, key=lambda t: t.key):
            if self._admissible(t):
                return t
        return None

    def _update_positions(self) -> list:
        """Renumber the waiting requests; returns the (listener, position) calls to make."""
        calls = []
        for i, t in enumerate(sorted(self._waiting, key=lambda t: t.key), start=1):
            if t.position != i:
                t.position = i
                cb = self._listeners.get(id(t))
                if cb is not None:
                    calls.append((cb, i))
        return calls

    @staticmethod
    def _call(calls) -> None:
        """Notify listeners outside the lock (they may touch a session's parameters)."""
        for cb, pos in calls:
            try:
                cb(pos)
            except Exception:  # noqa: BLE001 - a listener must not break the queue
                logger.exception("queue position listener failed")

    @contextlib.contextmanager
    def slot(self, *, kind: str = "long", label: str = "", owner=None, stop: threading.Event | None = None,
             on_position: Callable[[int], None] | None = None):
        """Context manager holding one slot for the duration of the ``with`` block.

        Parameters
        ----------
        kind : {"interactive", "long"}
        label : str
            Shown in :meth:`snapshot` and logs.
        owner : object, optional
            The session the work belongs to (for :meth:`snapshot` only).
        stop : threading.Event, optional
            When set while waiting, the request is withdrawn and :class:`Cancelled` raised.
        on_position : callable, optional
            Called with the 1-based position in line whenever it changes, and with 0 once
            the slot is taken. Called from queue threads; keep it short.
        """
        check_option("kind", kind, KINDS)
        with self._cond:
            t = _Ticket(next(self._seq), kind, owner, label)
            self._waiting.append(t)
            if on_position is not None:
                self._listeners[id(t)] = on_position
        try:
            while True:
                with self._cond:
                    if self._next() is t:
                        self._waiting.remove(t)
                        self._running.append(t)
                        self._last_active = time.monotonic()
                        calls = self._update_positions()
                        break
                    calls = self._update_positions()
                    if stop is not None and stop.is_set():
                        raise Cancelled(f"{label or kind} was cancelled while waiting for a free core.")
                    if not calls:
                        self._cond.wait(self.poll)
                self._call(calls)
        except BaseException:
            with self._cond:
                if t in self._waiting:
                    self._waiting.remove(t)
                self._listeners.pop(id(t), None)
                calls = self._update_positions()
                self._cond.notify_all()
            self._call(calls)
            raise
        self._call(calls + ([(on_position, 0)] if on_position is not None else []))
        try:
            yield t
        finally:
            with self._cond:
                self._running.remove(t)
                self._last_active = time.monotonic()
                self._listeners.pop(id(t), None)
                calls = self._update_positions()
                self._cond.notify_all()
            self._call(calls)


_QUEUE: WorkQueue | None = None
_QUEUE_LOCK = threading.Lock()


SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005 [A]


def work_queue() -> WorkQueue:
    """The process-wide queue shared by every browser session.

    [A] On first use it also shortens Python's thread switch interval: a re-measurement runs
    dozens of short torch operations, each releasing and re-taking the GIL, while the event
    loop serialises other sessions' updates in Python; with the default 5 ms slices every
    re-take can wait a full slice, which made a 50 ms re-measurement take several hundred.
    """
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            import sys

            if sys.getswitchinterval() > SWITCH_INTERVAL:
                sys.setswitchinterval(SWITCH_INTERVAL)
            _QUEUE = WorkQueue()
        return _QUEUE
