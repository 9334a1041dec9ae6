"""Permutation p-values, FDR and unit classes on planted statistics."""
import numpy as np
import pytest
import xarray as xr
from scipy.stats import false_discovery_control

from core._validation import UnitScopeError
from core.probing.stats import (CLASSES, class_fractions, classify, fdr_bh, ground_truth_auc,
                                permutation_pvalues)


def test_fdr_matches_scipy(rng):
    p = rng.uniform(size=(200, 3)) ** 3
    reject, q = fdr_bh(p, 0.05, axis=0)
    for j in range(3):
        np.testing.assert_allclose(q[:, j], false_discovery_control(p[:, j]), rtol=1e-12)
    assert np.array_equal(reject, q <= 0.05)
    p[0, 0] = np.nan
    reject, q = fdr_bh(p, 0.05, axis=0)
    assert np.isnan(q[0, 0]) and not reject[0, 0]


def test_permutation_pvalues_pool_units():
    null = xr.DataArray(np.arange(12.0).reshape(3, 4), dims=("null", "unit"))
    stat = xr.DataArray([-1.0, 5.0, 11.0, 20.0], dims=("unit",))
    p = permutation_pvalues(stat, null)
    # 12 pooled draws: #{null >= s} = 12, 7, 1, 0
    np.testing.assert_allclose(p.values, np.array([13, 8, 2, 1]) / 13)
    with pytest.raises(UnitScopeError, match="n_null=0"):
        permutation_pvalues(stat, null.isel(null=slice(0, 0)))
    # a constant unit (null and statistic all zero) is left out of the pool: no test, p NaN
    p = permutation_pvalues(xr.concat([stat, xr.zeros_like(stat[:1])], "unit"),
                            xr.concat([null, xr.zeros_like(null[:, :1])], "unit"))
    np.testing.assert_allclose(p.values, np.array([13, 8, 2, 1, np.nan]) / 13)
    dead = permutation_pvalues(xr.zeros_like(stat), xr.zeros_like(null))
    assert np.isnan(dead.values).all()


def test_constant_units_neither_shrink_the_null_nor_count_as_tests(rng):
    """90 constant units (dead, or pruned) beside the others: pooled as zeros they made 20% of
    units under H0 significant at 0.05 (also when constant in one band only); counted by the
    FDR step as p = 1 they cut 30 true discoveries to 19."""
    stat = np.abs(rng.standard_normal((120, 5)))
    null = np.abs(rng.standard_normal((8, 120, 5)))
    stat[30:, 0], null[:, 30:, 0] = 0, 0  # units 30-119: constant in band 0 only
    p = permutation_pvalues(xr.DataArray(stat, dims=("unit", "band")), xr.DataArray(null, dims=("null", "unit", "band")))
    alone = permutation_pvalues(xr.DataArray(stat[:30, :1], dims=("unit", "band")),
                                xr.DataArray(null[:, :30, :1], dims=("null", "unit", "band")))
    np.testing.assert_allclose(p.values[:30, 0], alone.values[:, 0])  # band 0: as if the constant ones were not there
    assert np.isnan(p.values[30:, 0]).all() and np.isfinite(p.values[:, 1:]).all()
    real = np.abs(rng.standard_normal(30)) + 2.2
    draws = np.abs(rng.standard_normal((200, 30)))
    found = []
    for n_dead in (0, 90):
        s = xr.DataArray(np.r_[real, np.zeros(n_dead)], dims="unit")
        nl = xr.DataArray(np.c_[draws, np.zeros((200, n_dead))], dims=("null", "unit"))
        found.append(fdr_bh(permutation_pvalues(s, nl).values, 0.05)[0][:30])
    np.testing.assert_array_equal(found[0], found[1])
    assert found[0].sum() >= 25


def _planted(rng, n=40):
    """amp strong for units 0-5, phase for 6-11, both for 12-17, neither for the rest."""
    bands = ["alpha", "beta"]
    layer = ["conv_2"] * 20 + ["conv_3"] * (n - 20)
    coords = {"unit": [f"{l}/{i}" for i, l in enumerate(layer)], "layer": ("unit", layer),
              "index": ("unit", np.arange(n)), "band": bands}
    ds = xr.Dataset(coords=coords)
    for pre, strong in (("amp", list(range(0, 6)) + list(range(12, 18))),
                        ("phase", list(range(6, 18)))):
        null = np.abs(rng.standard_normal((4, n, 2)))
        stat = 0.2 * np.abs(rng.standard_normal((n, 2)))  # below most null draws
        stat[strong, 1] = 8.0  # beta only
        ds[f"{pre}_stat"] = (("unit", "band"), stat)
        ds[f"{pre}_null"] = (("null", "unit", "band"), null)
        ds[f"{pre}_stat_all"] = (("unit",), stat.max(1))
        ds[f"{pre}_null_all"] = (("null", "unit"), null.max(2))
    return ds


def test_classes_per_unit_and_band(rng):
    ds = classify(_planted(rng))
    beta = ds["unit_class"].sel(band="beta").values
    assert set(beta[0:6]) == {"amplitude"} and set(beta[6:12]) == {"phase"}
    assert set(beta[12:18]) == {"bimodal"} and set(beta[18:]) == {"insensitive"}
    assert set(ds["unit_class"].sel(band="alpha").values) == {"insensitive"}
    assert (ds["unit_class_all"].values == beta).all()
    assert ds["amp_q"].dims == ("unit", "band") and ds["amp_sig_all"].dtype == bool
    assert ds.attrs["alpha"] == 0.05


def test_class_fractions(rng):
    ds = classify(_planted(rng))
    frac = class_fractions(ds)
    assert frac.dims == ("layer", "class") and list(frac["class"].values) == list(CLASSES)
    assert list(frac["layer"].values) == ["conv_2", "conv_3"]
    np.testing.assert_allclose(frac.sum("class"), 1.0)
    # conv_2 holds units 0-19: 6 amplitude, 6 phase, 6 bimodal, 2 insensitive
    np.testing.assert_allclose(frac.sel(layer="conv_2"), [0.3, 0.3, 0.3, 0.1])
    assert float(class_fractions(ds, band="alpha").sel(layer="conv_3", **{"class": "insensitive"})) == 1
    with pytest.raises(UnitScopeError, match="classify"):
        class_fractions(_planted(rng))


def test_classify_needs_both_passes(rng):
    with pytest.raises(UnitScopeError, match="'phase_stat'"):
        classify(_planted(rng).drop_vars(["phase_stat"]))


def test_ground_truth_auc(rng):
    roles = np.array(["high_gamma"] * 3 + ["low_freq"] * 3 + ["noise"] * 4)
    freqs = np.arange(0, 126.0)
    r = 0.01 * rng.standard_normal((5, 10, len(freqs)))
    r[2, :3, 60:91] += 0.2  # one unit reads the high-gamma channels' 60-90 Hz amplitude
    ds = xr.Dataset({"amp_corr": (("unit", "channel", "freq"), r)}, coords={"freq": freqs})
    assert ground_truth_auc(ds, "amp_corr", roles, {"high_gamma": (60, 90)}) == 1.0
    assert ground_truth_auc(ds, "amp_corr", roles, {"low_freq": (1, 4)}) < 0.9
    with pytest.raises(UnitScopeError, match="No frequency bin"):
        ground_truth_auc(ds, "amp_corr", roles, {"x": (200, 300)})


@pytest.mark.parametrize("resolution,n_constant", [("band", 0), ("freq", 0), ("band", 90)])
def test_null_is_calibrated_for_units_unrelated_to_the_input(tones, resolution, n_constant):
    from probing_toys import SFREQ, NoiseUnits

    from core.probing import AmplitudeProbe, PhaseProbe, ProbeRun

    model = NoiseUnits(n_units=30, n_constant=n_constant)
    kw = dict(sfreq=SFREQ, layers=model.layers, n_iterations=3, n_null=8, resolution=resolution)
    ds = classify(ProbeRun([AmplitudeProbe(model, rng=0, **kw), PhaseProbe(model, rng=1, **kw)],
                           tones).run())
    if n_constant:  # constant (dead) units: no test (p NaN), insensitive, and the others' null not shrunk by
        assert np.isnan(ds["amp_p_all"].values[30:]).all() and np.isnan(ds["phase_p"].values[30:]).all()
        assert (ds["unit_class_all"].values[30:] == "insensitive").all()
        ds = ds.isel(unit=slice(0, 30))  # (with them pooled, 21% of these had p < 0.05)
    for pre in ("amp", "phase"):
        p = ds[f"{pre}_p"].values.ravel()  # 30 units x 5 bands under H0
        assert 0.3 < p.mean() < 0.7
        assert (p < 0.05).mean() < 0.15
        # observed and null statistics have the same scale
        ratio = float(ds[f"{pre}_stat"].median() / ds[f"{pre}_null"].median())
        assert 0.8 < ratio < 1.25
    assert (ds["unit_class_all"] == "insensitive").mean() > 0.9


@pytest.mark.parametrize("resolution", ["freq", "band"])
def test_classes_of_hand_built_units(resolution):
    from probing_toys import SFREQ, FourClassUnits, two_tone_windows

    from core.probing import AmplitudeProbe, PhaseProbe, ProbeRun

    model = FourClassUnits()
    kw = dict(sfreq=SFREQ, layers=model.layers, n_iterations=4, n_null=40, resolution=resolution)
    ds = ProbeRun([AmplitudeProbe(model, rng=0, **kw), PhaseProbe(model, rng=1, **kw)],
                  two_tone_windows()).run()
    ds = classify(ds)
    classes = ds["unit_class_all"].values.tolist()
    if resolution == "band":
        # a pure tone's single bin is diluted in a 30 Hz wide band mean: unit 2's amplitude
        # part (one bin of 60 in low gamma) may go unseen, its strong phase part may not
        assert classes[:2] == ["amplitude", "phase"] and classes[2] in ("bimodal", "phase")
        assert classes[3] == "insensitive"
        return
    assert classes == ["amplitude", "phase", "bimodal", "insensitive"]
    # per band: unit 2 reads phase at 10 Hz (alpha) and amplitude at 30 Hz (low gamma)
    assert ds["unit_class"].sel(unit="toy/2", band="alpha").item() == "phase"
    assert ds["unit_class"].sel(unit="toy/2", band="low_gamma").item() == "amplitude"
    assert ds["unit_class"].sel(unit="toy/0", band="low_gamma").item() == "insensitive"
    frac = class_fractions(ds)
    np.testing.assert_allclose(frac.sel(layer="toy"), [0.25, 0.25, 0.25, 0.25])


@pytest.mark.parametrize("resolution", ["band", "freq"])
def test_the_peak_of_a_units_sensitivity_gives_its_statistic(small_deep4, resolution):
    """``sensitivity_peak`` finds where ``*_stat_all`` comes from, for every unit: with band
    resolution |band mean r| x sqrt(bins), the bins counted as the probe averaged them (the
    phase probe leaves out DC and Nyquist: bands holding them here); with frequency resolution
    the largest |band mean|."""
    from core.probing import ProbeConfig, probe_units
    from core.probing.stats import band_bins, sensitivity_peak

    X = np.random.default_rng(3).standard_normal((8, 4, 560)).astype(np.float32)
    bands = {"slow": (0.0, 4.0), "mid": (13.0, 30.0), "top": (100.0, 125.0)}  # DC in slow, Nyquist in top
    cfg = ProbeConfig(n_iterations=2, n_null=2, layers=["conv_2"], bands=bands, resolution=resolution)
    ds = probe_units(small_deep4, X, sfreq=250.0, config=cfg)
    df = 250.0 / 560
    n_slow, n_mid, n_top = (int(np.floor(4.0 / df)) + 1, int(np.ceil(30.0 / df) - np.ceil(13.0 / df)),
                            280 - int(np.ceil(100.0 / df)) + 1)
    assert band_bins(ds, "amp").tolist() == [n_slow, n_mid, n_top]
    assert band_bins(ds, "phase").tolist() == [n_slow - 1, n_mid, n_top - 1]
    for prefix in ("amp", "phase"):
        for uid in ds["unit"].values:
            peak = sensitivity_peak(ds, uid, prefix)
            vals = np.abs(ds[f"{prefix}_band"].sel(unit=uid).values)
            if resolution == "band":
                assert peak["score"] == pytest.approx(float(ds[f"{prefix}_stat_all"].sel(unit=uid)), rel=1e-5)
            else:  # the statistic is a single bin's |r|; the peak is the largest band mean
                assert peak["score"] == pytest.approx(np.nanmax(vals), rel=1e-6)
            assert abs(peak["r"]) == pytest.approx(float(vals[list(ds["channel"].values).index(peak["channel"]),
                                                              list(ds["band"].values).index(peak["band"])]))
    bare = ds.copy()
    bare.attrs = {"sfreq": 250.0}  # a result saved without its window length
    with pytest.raises(UnitScopeError, match=r"lacks \['n_times'\]: it does not say how many frequency bins"):
        band_bins(bare, "amp")
