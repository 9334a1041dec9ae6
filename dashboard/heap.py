"""Keep Python's garbage collector from pausing the server while a class prunes.

[A] A full (generation 2) collection scans every object the collector tracks. With torch,
MNE, Bokeh and Panel loaded, and every open page's Bokeh document, HoloViews plots and Panel
widgets on the heap, such collections paused the server for 260-1120 ms, 21 times in three
minutes of a script that opened a page every 5-10 s (the server log's ``garbage collection
(generation 2) paused the server``; a second process loaded one core), and once in a round
of five concurrent prunes (one session's prune then took 1.1 s on the server alone). With
this module: none over 250 ms in the same script. So:

* at start-up, and whenever a page has finished loading, what is on the heap is frozen
  (``gc.freeze``): a page's objects live as long as the page, and frozen objects are never
  scanned (reference counting still frees what is dropped);
* a closed page's objects, which hold reference cycles (Bokeh models and their document),
  can only be freed by a full collection of unfrozen objects: once a page has closed, a
  full collection runs when the work queue has been idle for a while (no prune, refit or
  long job running or waiting; at most two minutes after the page closed), then the heap
  is frozen again. That pause lands where no one is waiting for a result, instead of in
  the middle of a click. ("Idle" knows only queued work: a click that queues nothing, such
  as selecting a unit, can still meet that one pause.)
"""
from __future__ import annotations

import gc
import logging
import threading
import time

__all__ = ["HeapKeeper", "heap_keeper"]

logger = logging.getLogger(__name__)


class HeapKeeper:
    """Freeze the heap after page loads; collect closed pages' objects when the server is idle.

    Parameters
    ----------
    queue : dashboard.queue.WorkQueue, optional
        Whose activity defines "idle" (default: the process-wide queue, looked up when needed).
    idle_s : float
        Seconds without queued work before a collection may run.
    retry_s : float
        Seconds between checks while the server is busy.
    max_wait_s : float
        A collection waits for an idle moment at most this long after a page closed (a
        server that is never idle still frees closed pages' memory).
    """

    def __init__(self, queue=None, *, idle_s: float = 5.0, retry_s: float = 5.0, max_wait_s: float = 120.0):
        self.queue = queue
        self.idle_s = float(idle_s)
        self.retry_s = float(retry_s)
        self.max_wait_s = float(max_wait_s)
        self._lock = threading.Lock()
        self._pending = False
        self._since = 0.0  # when the pending collection was asked for
        self.collections = 0  # full collections run for closed pages (tests, logs)

    def startup(self) -> None:
        """Collect once and freeze what is loaded (modules, extensions)."""
        gc.collect()
        gc.freeze()

    def page_loaded(self) -> None:
        """Freeze what is on the heap now (the page's long-lived objects); young garbage first."""
        gc.collect(1)
        gc.freeze()

    def page_closed(self) -> None:
        """A page's session was destroyed: collect its objects at the next idle moment."""
        with self._lock:
            if self._pending:
                return
            self._pending, self._since = True, time.monotonic()
        self.later(self.retry_s, self.collect_when_idle)

    @staticmethod
    def later(delay: float, fn) -> None:
        """Call ``fn`` after ``delay`` seconds in a daemon timer thread [A] (a full collection
        stops every Python thread whichever thread runs it; the server's event loop is not
        reliably at hand where sessions end)."""
        timer = threading.Timer(delay, fn)
        timer.daemon = True
        timer.start()

    def idle(self) -> bool:
        """No queued work running or waiting, and none for ``idle_s`` seconds."""
        from .queue import work_queue

        q = self.queue if self.queue is not None else work_queue()
        return q.n_running == 0 and q.n_waiting == 0 and q.idle_seconds() >= self.idle_s

    def collect_when_idle(self) -> bool:
        """Run the full collection now if the server is idle, else check again later.

        Returns True when it ran.
        """
        waited, idle = time.monotonic() - self._since, self.idle()
        if not idle and waited < self.max_wait_s:
            self.later(self.retry_s, self.collect_when_idle)
            return False
        with self._lock:
            self._pending = False
        t0 = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self.collections += 1
        logger.info("closed pages: full garbage collection %s, %d objects freed, %.0f ms",
                    "while idle" if idle else f"after waiting {waited:.0f} s for an idle moment", found,
                    1e3 * (time.perf_counter() - t0))
        return True


_KEEPER: HeapKeeper | None = None
_KEEPER_LOCK = threading.Lock()


def heap_keeper() -> HeapKeeper:
    """The process-wide :class:`HeapKeeper` (on the process-wide work queue)."""
    global _KEEPER
    with _KEEPER_LOCK:
        if _KEEPER is None:
            _KEEPER = HeapKeeper()
        return _KEEPER
