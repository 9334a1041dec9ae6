"""Worker threads for long work (training, probing, demo loading), stoppable and Panel-free.

A :class:`Job` runs ``fn(stop_event)`` in a daemon thread. ``on_done(result)`` or
``on_error(message)`` is called from that thread when it ends; Panel forwards parameter
changes made there to the browser. Cancel is cooperative: :meth:`Job.stop` sets the event
the work checks (every training batch, every probe pass).

At interpreter exit every job still running is asked to stop and given a few seconds to
end (:func:`stop_all`): a daemon thread killed inside torch at finalization aborts the
process ("terminate called without an active exception", exit status 134). This runs
before any library's own exit handler: h5py's unregisters its type converters, and a job
still reading a netCDF file then failed with tracebacks in the server log ("Conversion
function not found", "Can't decrement id ref count"), measured when a server was stopped
a few seconds after a page opened.

Errors never reach the page as tracebacks: a :class:`~core._validation.UnitScopeError` (or
another ``ValueError``/``OSError``) becomes its one-line message; anything else is logged
with its traceback on the server and reported as "Unexpected error ...".
"""
from __future__ import annotations

import atexit
import importlib
import logging
import threading
import time
import weakref
from typing import Callable

__all__ = ["Job", "error_message", "stop_all"]

logger = logging.getLogger(__name__)

# [A] Imported here, by the thread that imports this module (before any job thread runs): xarray
# imports dask lazily, on its first check of whether an array is a dask one, and a job and a
# page's callback doing that first check at once once failed with "ImportError: cannot import
# name 'is_dask_collection' from 'dask.base'" (a module two threads import at once can be seen
# half made; seen once in the server log of a browser test). 0.06 s.
try:
    importlib.import_module("dask.base")
except ImportError:  # dask is optional (the "distributed" extra); without it, nothing to race
    pass

_RUNNING: "weakref.WeakSet[Job]" = weakref.WeakSet()  # jobs started and not yet ended
EXIT_GRACE_S = 10.0  # [A] how long the interpreter's exit waits for running jobs, in all


def error_message(exc: BaseException) -> str:
    """The message shown to a user for an exception raised by the engine."""
    if isinstance(exc, (ValueError, OSError, KeyError)):
        text = str(exc) or type(exc).__name__
        return text.strip().splitlines()[0] if isinstance(exc, OSError) else text.strip()
    return f"Unexpected error ({type(exc).__name__}: {exc}); details are in the server log."


class Job:
    """One piece of work in its own thread.

    Parameters
    ----------
    name : str
        Shown in logs and thread names.
    fn : callable
        ``fn(stop: threading.Event) -> result``.
    on_done, on_error : callable, optional
        Called from the worker thread with the result, or with the error message.
    """

    def __init__(self, name: str, fn: Callable[[threading.Event], object], *,
                 on_done: Callable[[object], None] | None = None,
                 on_error: Callable[[str], None] | None = None):
        self.name = name
        self.fn, self.on_done, self.on_error = fn, on_done, on_error
        self.stop_event = threading.Event()
        self.result = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._main, name=f"unitscope-{name}", daemon=True)

    def start(self) -> "Job":
        _RUNNING.add(self)
        self.thread.start()
        return self

    def _main(self) -> None:
        try:
            self._run()
        finally:
            _RUNNING.discard(self)

    def _run(self) -> None:
        try:
            self.result = self.fn(self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - every error becomes a visible alert
            self.error = error_message(exc)
            if not isinstance(exc, (ValueError, OSError, KeyError)):
                logger.exception("job %s failed", self.name)
            else:  # the user sees it as an alert; the server log keeps it too (one line, no traceback)
                logger.info("job %s ended with an error shown to its page: %s", self.name, self.error)
            if self.on_error is not None:
                try:
                    self.on_error(self.error)
                except Exception:  # pragma: no cover - reporting must not kill the thread
                    logger.exception("error callback of job %s failed", self.name)
            return
        if self.on_done is not None:
            try:
                self.on_done(self.result)
            except Exception as exc:  # noqa: BLE001
                logger.exception("done callback of job %s failed", self.name)
                self.error = error_message(exc)
                if self.on_error is not None:
                    self.on_error(self.error)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        """Ask the work to stop (cooperative)."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self.thread.ident is None:
            return True
        self.thread.join(timeout)
        return not self.thread.is_alive()


def stop_all(timeout: float = EXIT_GRACE_S) -> list[str]:
    """Ask every running job to stop and wait up to ``timeout`` seconds in all for them.

    Registered to run at interpreter exit. Returns the names of jobs still running after
    the wait (their work does not check its stop event often enough; logged).
    """
    jobs = list(_RUNNING)
    for job in jobs:
        job.stop()
    deadline = time.monotonic() + timeout
    for job in jobs:
        job.join(max(0.0, deadline - time.monotonic()))
    left = [job.name for job in jobs if job.running]
    if left:
        logger.warning("jobs still running at exit after %.0f s: %s", timeout, ", ".join(left))
    return left


# [A] threading's exit hooks run when the main thread ends, before every atexit handler;
# atexit alone runs handlers last-registered-first, so a library imported after this module
# (h5py: lazily, with the first netCDF read) tore down its state while jobs still ran.
# ``threading._register_atexit`` is private (concurrent.futures uses it); atexit otherwise.
getattr(threading, "_register_atexit", atexit.register)(stop_all)
