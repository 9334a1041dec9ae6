"""MaskEvaluator.fork: per-session evaluators sharing one cache, isolated masks."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.pruning import MaskEvaluator

TOL = 1e-5


def _shared_storage(a, b) -> set:
    """Cache entries (activations and conv outputs) whose tensor storage ``a`` and ``b`` share."""
    out = set()
    for name in ("_a", "_z"):
        da, db = getattr(a, name), getattr(b, name)
        out |= {(name, k) for k in da if k in db and da[k].data_ptr() == db[k].data_ptr()}
    return out


def test_fork_shares_the_cache_and_starts_at_the_parent_state(deep4, dense_set):
    parent = MaskEvaluator(deep4, *dense_set)
    state = parent.new_masks().prune("conv_2", [3, 4])
    parent.evaluate(state)
    fork = parent.fork()
    assert fork.masks == state and fork.baseline == parent.baseline
    assert fork.evaluate() == parent.evaluate()
    assert fork.model is parent.model and fork.X is parent.X
    n_entries = len(parent._a) + len(parent._z)
    assert n_entries > 0 and len(_shared_storage(parent, fork)) == n_entries  # nothing copied


def test_fork_masks_never_leak_to_the_parent_or_siblings(deep4, dense_set):
    parent = MaskEvaluator(deep4, *dense_set)
    base_pred = parent.predict().copy()
    a, b = parent.fork(), parent.fork()
    ma = a.new_masks().prune("conv_3", [1, 7]).prune("conv_4", 5)
    mb = b.new_masks().prune("conv_time_spat", 2)
    ra, rb = a.evaluate(ma), b.evaluate(mb)
    assert a.toggle("conv_2", 9) != ra  # an incremental update on top of a's own state
    ma.toggle("conv_2", 9)
    # the parent and the sibling still hold their own state, cache and predictions
    assert parent.masks == parent.new_masks() and parent.evaluate() == parent.baseline
    np.testing.assert_array_equal(parent.predict(), base_pred)
    assert b.masks == mb and b.evaluate() == rb
    assert a.masks == ma
    # and each equals a fresh evaluator built with its masks
    for ev, masks in ((a, ma), (b, mb)):
        fresh = MaskEvaluator(deep4, *dense_set, masks=masks)
        assert ev.evaluate() == pytest.approx(fresh.evaluate(), abs=TOL)
        np.testing.assert_allclose(ev.predict(), fresh.predict(), atol=1e-5)
        assert ev.evaluate() == pytest.approx(ev.full_evaluate(), abs=TOL)


def test_a_fork_of_a_fork_and_a_refresh_stay_isolated(deep4, dense_set):
    parent = MaskEvaluator(deep4, *dense_set)
    a = parent.fork()
    a.evaluate(a.new_masks().prune("conv_3", 2))
    aa = a.fork()
    assert aa.masks == a.masks
    aa.toggle("conv_3", 2)  # back to nothing pruned
    assert aa.evaluate() == pytest.approx(parent.baseline, abs=TOL)
    assert a.masks.pruned("conv_3").tolist() == [2]
    r = a.evaluate()
    assert a.refresh() == pytest.approx(r, abs=TOL)  # rebuilds a's cache only
    assert parent.evaluate() == parent.baseline and aa.evaluate() == pytest.approx(parent.baseline, abs=TOL)


def test_forks_used_from_threads_at_once_match_serial_results(deep4, dense_set):
    torch.set_num_threads(1)
    parent = MaskEvaluator(deep4, *dense_set)
    rng = np.random.default_rng(5)
    sizes = {l.name: l.n_units for l in parent.layers}
    names = sorted(sizes)
    plans = []
    for _ in range(4):  # four sessions, six edits each
        masks, seq = parent.new_masks(), []
        for _ in range(6):
            layer = names[rng.integers(len(names))]
            masks = masks.copy().toggle(layer, int(rng.integers(sizes[layer])))
            seq.append(masks)
        plans.append(seq)
    forks = [parent.fork() for _ in plans]
    got = [[] for _ in plans]
    full_refs = [None] * len(plans)
    barrier = threading.Barrier(len(plans))

    def session(i):
        barrier.wait()
        for masks in plans[i]:
            got[i].append(forks[i].evaluate(masks))
        full_refs[i] = forks[i].full_evaluate()  # hooks the shared model: serialised across the family

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(plans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, seq in enumerate(plans):
        serial = MaskEvaluator(deep4, *dense_set)
        expected = [serial.evaluate(m) for m in seq]
        np.testing.assert_allclose(got[i], expected, atol=TOL)
        assert full_refs[i] == pytest.approx(expected[-1], abs=TOL)
    assert parent.masks == parent.new_masks() and parent.evaluate() == parent.baseline
    assert all(not m._forward_hooks for m in parent.model.modules())


def _cache_copy(ev) -> dict:
    return {(name, k): t.clone() for name in ("_a", "_z") for k, t in getattr(ev, name).items()}


def test_in_place_updates_touch_only_an_evaluators_own_tensors(deep4, dense_set):
    """A committed one-unit change updates the evaluator's own cached tensors in their
    buffers; tensors shared with a parent or a fork, and predictions already handed out, never
    change, and every metric still equals a fresh evaluator's."""
    parent = MaskEvaluator(deep4, *dense_set)
    parent.toggle("conv_3", 1)  # the parent's own tensors (no fork yet)
    a = parent.fork()
    shared = _cache_copy(parent)
    pred = a.predict()
    pred_copy = pred.copy()
    masks = a.masks
    for layer, unit in [("conv_3", 2), ("conv_3", 5), ("conv_2", 4), ("conv_3", 2), ("conv_4", 0)]:
        masks.toggle(layer, unit)
        a.evaluate(masks)
    # a now owns its conv_4 conv output: the next conv_3 change is written into that buffer
    key = max(a._z)  - 1  # the conv_4 segment (the last one is the output)
    ptr = a._z[key].data_ptr()
    masks.toggle("conv_3", 9)
    a.evaluate(masks)
    assert a._z[key].data_ptr() == ptr
    np.testing.assert_array_equal(pred, pred_copy)
    for (name, k), t in shared.items():  # the parent's cache is bit-for-bit what it was
        assert torch.equal(getattr(parent, name)[k], t), (name, k)
    fresh = MaskEvaluator(deep4, *dense_set, masks=masks)
    assert a.evaluate() == pytest.approx(fresh.evaluate(), abs=TOL)
    np.testing.assert_allclose(a.predict(), fresh.predict(), atol=1e-5)
    # the parent, which shares with a, still measures its own state exactly
    assert parent.evaluate() == pytest.approx(MaskEvaluator(deep4, *dense_set, masks=parent.masks).evaluate(), abs=TOL)
    # a fork of a: neither may now write the tensors they share
    b = a.fork()
    before = _cache_copy(a)
    mb = b.masks.toggle("conv_3", 11)
    b.evaluate(mb)
    for (name, k), t in before.items():
        assert torch.equal(getattr(a, name)[k], t), (name, k)


@pytest.mark.parametrize("error, warned", [(RuntimeError("out of memory (simulated)"), True),
                                           (KeyboardInterrupt(), False)])
def test_a_failed_update_rebuilds_the_cache_of_the_previous_state(deep4, dense_set, monkeypatch, caplog, error,
                                                                   warned):
    """An error inside an update rebuilds the cache of the state before it, with a warning;
    a Ctrl-C too, without one (`unitscope prune --curve` stopped by Ctrl-C had said
    "re-measurement failed" before "interrupted")."""
    ev = MaskEvaluator(deep4, *dense_set)
    masks = ev.new_masks().prune("conv_3", [1, 2])
    ev.evaluate(masks)
    expected = ev.evaluate()
    seg = ev._segments[-2]  # the conv_4 segment: its update runs in place on ev's own tensors
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise error

    monkeypatch.setattr(seg.conv, "update", broken)
    caplog.clear()
    with pytest.raises(type(error)):
        ev.evaluate(masks.copy().toggle("conv_3", 3))
    monkeypatch.undo()
    assert ("re-measurement failed" in caplog.text) is warned
    assert calls and ev.masks == masks and ev.evaluate() == pytest.approx(expected, abs=TOL)
    assert ev.toggle("conv_3", 3) == pytest.approx(
        MaskEvaluator(deep4, *dense_set, masks=masks.copy().toggle("conv_3", 3)).evaluate(), abs=TOL)


def test_reserve_makes_the_first_change_of_a_fork_update_in_place(deep4, dense_set):
    """``reserve`` copies what a change writes (the block before the output) ahead of time:
    the fork's first conv_3 change then lands in those buffers, the parent's cache stays
    bit-for-bit unchanged, and the metric equals a fresh evaluator's."""
    parent = MaskEvaluator(deep4, *dense_set)
    shared = _cache_copy(parent)
    a = parent.fork()
    key = max(a._z) - 1  # the conv_4 segment
    assert a._z[key].data_ptr() == parent._z[key].data_ptr()
    n = a.reserve()
    assert n == a._z[key].numel() * 4 + a._a["conv_4"].numel() * 4
    assert a._z[key].data_ptr() != parent._z[key].data_ptr()
    ptr = a._z[key].data_ptr()
    masks = a.new_masks().prune("conv_3", [2, 7])
    value = a.evaluate(masks)
    assert a._z[key].data_ptr() == ptr  # updated in place (the activation too where its steps allow)
    assert a.reserve() == 0  # already its own
    for (name, k), t in shared.items():
        assert torch.equal(getattr(parent, name)[k], t), (name, k)
    assert value == pytest.approx(MaskEvaluator(deep4, *dense_set, masks=masks).evaluate(), abs=TOL)
    # a change further up still works (the blocks between are copied as usual)
    masks.toggle("conv_2", 1)
    assert a.evaluate(masks) == pytest.approx(MaskEvaluator(deep4, *dense_set, masks=masks).evaluate(), abs=TOL)
    assert parent.evaluate() == pytest.approx(parent.baseline, abs=0)


def test_reserve_names_the_valid_layers(deep4, dense_set):
    ev = MaskEvaluator(deep4, *dense_set).fork()
    with pytest.raises(Exception, match="Unknown layer 'conv_9'.*conv_time_spat"):
        ev.reserve("conv_9")
    assert ev.reserve("conv_time_spat") > 0
