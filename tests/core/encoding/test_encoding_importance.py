import numpy as np
import pytest

from core._validation import UnitScopeError
from core.encoding._base import Encoder
from core.encoding._data import make_epochs
from core.encoding.importance import default_features, peak_latency, permutation_importance


class OracleModel(Encoder):
    """Predicts the signal from feature 'a' of the epoch's own event only (a hand-checkable
    encoder): y[c, t] = a * h[t - onset], h a bump peaking 0.3 s after the event."""

    name = "oracle"

    def __init__(self, data, meg_init=0):
        self.meg_init = meg_init
        self._setup(data, data)
        self.calls = []

    def predict_arrays(self, meg, forcing, subject):
        self.calls.append(forcing.copy())
        i = self.feature_names_.index("a")
        a = forcing[:, i, self.onset_] * self.feature_scaler_.scale_[i]  # (epochs,) raw values
        h = np.exp(-0.5 * ((self.times_ - 0.3) / 0.05) ** 2)  # (times,)
        raw = a[:, None, None] * h[None, None, :] * np.ones((1, meg.shape[1], 1))
        # both subjects share one distribution: scale with the first subject's scaler, so the
        # oracle ignores its subject input
        return self.meg_scaler_.transform(raw, np.full(len(subject), self.subjects_[0]))


def _data(n=200, seed=0):
    """Signals = oracle response + noise; features a (drives it) and b (does not)."""
    rng = np.random.default_rng(seed)
    t = -0.5 + np.arange(40) / 20.0
    own = (t >= 0) & (t < 0.3)
    a, b = rng.uniform(1, 3, n), rng.uniform(1, 3, n)
    forcing = np.zeros((n, 4, 40), np.float32)  # first_mask, a, b, onset
    forcing[:, 0, own] = 1
    forcing[:, 1, own] = a[:, None]
    forcing[:, 2, own] = b[:, None]
    forcing[:, 3, own] = 1
    forcing[:, 1, 30:34] = 7.0  # a context event: must keep its value
    h = np.exp(-0.5 * ((t - 0.3) / 0.05) ** 2)
    meg = a[:, None, None] * h[None, None] + 0.1 * rng.standard_normal((n, 2, 40))
    return make_epochs(meg.astype(np.float32), forcing, subject=["s"] * (n // 2) + ["u"] * (n - n // 2),
                       sfreq=20.0, tmin=-0.5, feature_names=["first_mask", "a", "b", "onset"])


def test_importance_finds_the_driving_feature_at_its_latency():
    data = _data()
    model = OracleModel(data)
    imp = permutation_importance(model, data, features=["a", "b"], n_repeats=2, rng=0)
    assert imp["r_drop"].dims == ("feature", "subject", "time", "channel")
    assert imp["loss_increase"].sel(feature="a") > 100  # loss more than doubles
    assert abs(float(imp["loss_increase"].sel(feature="b"))) < 1e-6
    assert peak_latency(imp, "a") == pytest.approx(0.3)
    assert peak_latency(imp, "a", measure="r") == pytest.approx(0.3)
    # the loss-increase map follows the squared response: it peaks at 0.3 s in every channel
    course = imp["loss_increase_map"].sel(feature="a").mean(("subject", "channel"))
    assert course.sel(time=0.3, method="nearest") > 10 * course.sel(time=0.6, method="nearest")
    # and it averages to the overall loss increase (equal-sized subjects, t >= meg_init)
    assert float(imp["loss_increase_map"].sel(feature="a").mean()) == pytest.approx(
        float(imp["loss_increase"].sel(feature="a")), rel=1e-6)
    with pytest.raises(UnitScopeError, match="Allowed values are 'loss' and 'r'"):
        peak_latency(imp, "a", measure="power")
    drop_b = imp["r_drop"].sel(feature="b").values
    np.testing.assert_allclose(drop_b[np.isfinite(drop_b)], 0, atol=1e-12)
    with pytest.raises(UnitScopeError, match="No importance for 'c'"):
        peak_latency(imp, "c")


def test_permutation_spans_the_whole_test_set_and_spares_context_events():
    data = _data(n=200)
    model = OracleModel(data)
    permutation_importance(model, data, features=["a"], rng=1)
    ref, perm = model.calls  # reference pass, then the permuted pass
    onset = 10
    a_ref, a_perm = ref[:, 1, onset], perm[:, 1, onset]
    assert sorted(a_ref) == sorted(a_perm)  # a permutation of the test epochs' own values
    source = np.array([np.flatnonzero(a_ref == v)[0] for v in a_perm])
    assert np.max(np.abs(source - np.arange(200))) > 100  # not confined to batches of 32
    np.testing.assert_array_equal(perm[:, 1, 30:34], ref[:, 1, 30:34])  # context event kept
    own = ref[:, 0] > 0
    np.testing.assert_array_equal(perm[:, 1][own], np.repeat(a_perm, own.sum(axis=1)))


def test_default_features_and_meg_subject_permutations(reading_splits):
    data = _data()
    model = OracleModel(data, meg_init=5)
    # binary forcings (first_mask, onset) are not permuted; meg (initial state) and subject are
    assert default_features(model, data) == ["a", "b", "meg", "subject"]
    imp = permutation_importance(model, data, rng=0)
    # the oracle ignores the initial state and the subject: zero importance
    np.testing.assert_allclose(imp["loss_increase"].sel(feature=["meg", "subject"]).values, 0, atol=1e-9)
    with pytest.raises(UnitScopeError, match=r"Unknown features \['zz'\] to permute"):
        permutation_importance(model, data, features=["zz"])
    with pytest.raises(UnitScopeError, match="n_repeats=0 must be at least 1"):
        permutation_importance(model, data, n_repeats=0)
