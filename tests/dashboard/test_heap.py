"""The heap keeper: pages' objects frozen after load, closed pages' cycles collected when idle."""
from __future__ import annotations

import gc
import threading
import weakref

import pytest

from dashboard.heap import HeapKeeper
from dashboard.queue import WorkQueue


class _Page:
    """A page's objects: a reference cycle, as Bokeh models and their document make."""

    def __init__(self):
        self.me = self


class _Later:
    """Records the keeper's scheduled checks instead of starting timers."""

    def __init__(self):
        self.calls = []

    def __call__(self, delay, fn):
        self.calls.append((delay, fn))


@pytest.fixture()
def unfrozen():
    """Leave the heap as the app keeps it: collected, then frozen."""
    yield
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def test_a_closed_pages_cycles_are_collected_only_when_the_server_is_idle(unfrozen):
    queue = WorkQueue(2)
    keeper = HeapKeeper(queue, idle_s=0.0, retry_s=5.0)
    keeper.later = later = _Later()
    page = _Page()
    ref = weakref.ref(page)
    keeper.page_loaded()
    assert gc.get_freeze_count() > 0
    del page
    gc.collect()
    assert ref() is not None  # frozen: an ordinary collection never scans it (this is the point)
    with queue.slot(kind="interactive"):  # a prune being measured
        keeper.page_closed()
        keeper.page_closed()  # a second closed page while one collection is pending: one collection
        assert len(later.calls) == 1
        assert keeper.collect_when_idle() is False and ref() is not None  # busy: checked again later
        assert len(later.calls) == 2
    assert keeper.collect_when_idle() is True
    assert ref() is None and keeper.collections == 1 and gc.get_freeze_count() > 0  # collected, heap frozen again


def test_idle_means_no_queued_work_for_a_while():
    queue = WorkQueue(2)
    keeper = HeapKeeper(queue, idle_s=3600.0)
    assert not keeper.idle()  # the queue was just made: not idle for an hour yet
    keeper.idle_s = 0.0
    assert keeper.idle()
    with queue.slot(kind="long"):
        assert not keeper.idle() and queue.idle_seconds() == 0.0


def test_a_closed_page_is_collected_by_a_timer_once_idle(unfrozen):
    keeper = HeapKeeper(WorkQueue(2), idle_s=0.0, retry_s=0.01)
    page = _Page()
    ref = weakref.ref(page)
    gc.freeze()
    del page
    done = threading.Event()
    run = keeper.collect_when_idle
    keeper.collect_when_idle = lambda: (run(), done.set())
    keeper.page_closed()
    assert done.wait(30) and ref() is None and keeper.collections == 1


def test_a_server_that_is_never_idle_still_collects_after_max_wait(unfrozen):
    queue = WorkQueue(2)
    keeper = HeapKeeper(queue, idle_s=0.0, max_wait_s=0.0)
    keeper.later = _Later()
    page = _Page()
    ref = weakref.ref(page)
    gc.freeze()
    del page
    with queue.slot(kind="long"):  # busy for good
        keeper.page_closed()
        assert keeper.collect_when_idle() is True and ref() is None
