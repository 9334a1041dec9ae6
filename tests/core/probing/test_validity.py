"""Validity check: the decoding metric on perturbed inputs relative to unperturbed."""
import numpy as np
import pytest
import torch

from core._validation import UnitScopeError
from core.metrics import pearson_r
from core.probing import AmplitudeProbe, PhaseProbe, ProbeRun
from core.probing.validity import (ValidityCheck, band_occlusion, band_occlusions, band_text, decoding_metric,
                                   named_cases, role_cases)

from probing_toys import F0, SFREQ, BandpassUnit


def test_decoding_metric(rng):
    pred = rng.standard_normal((5, 1, 20))
    y = pred[:, 0] + 0.5 * rng.standard_normal((5, 20))
    assert decoding_metric("regression", pred, y) == pytest.approx(pearson_r(pred[:, 0], y))
    with pytest.raises(UnitScopeError, match=r"do not match the predictions \(5, 20\)"):
        decoding_metric("regression", pred, y[:, :10])
    scores = np.zeros((4, 2, 3))
    scores[[0, 1], 0] = 1.0
    scores[[2, 3], 1] = 1.0
    assert decoding_metric("classification", scores, np.array([0, 0, 1, 1])) == 1.0
    assert decoding_metric("classification", scores, np.array([1, 1, 0, 0])) == 0.0


def test_validity_check_ratio(rng):
    pred = rng.standard_normal((6, 1, 30))
    check = ValidityCheck("regression", pred[:, 0], pred)
    assert check.reference == pytest.approx(1.0) and np.isnan(check.ratio)
    assert check.update(pred) == pytest.approx(1.0)
    check.update(pred + rng.standard_normal(pred.shape))
    assert 0.5 < check.ratio < 1.0 and not check.valid


def _ratio(tones, noise_scale):
    model = BandpassUnit(square=True)
    with torch.no_grad():
        y = model(torch.as_tensor(tones))[:, 0].numpy()  # the unit's own output as target
    amp = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=3, rng=0,
                         noise_scale=noise_scale)
    phase = PhaseProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=3, rng=1)
    ds = ProbeRun([amp, phase], tones, y=y).run()
    assert ds.attrs["metric_unperturbed"] == pytest.approx(1.0)
    return float(ds["amp_validity"]), float(ds["phase_validity"])


def test_validity_reported_with_every_probe_and_falls_with_noise(tones):
    small, phase = _ratio(tones, 0.1)
    large, _ = _ratio(tones, 3.0)
    assert 0.95 < small <= 1.0
    assert large < small
    # a power unit does not care about phase: its output survives phase perturbation
    assert phase > 0.9


def test_without_targets_the_ratio_is_nan(tones):
    model = BandpassUnit()
    ds = AmplitudeProbe(model, sfreq=SFREQ, layers=model.layers, n_iterations=1).run(tones)
    assert np.isnan(float(ds["amp_validity"]))


def test_band_occlusion_finds_the_band_and_channel_a_unit_needs(tones):
    model = BandpassUnit(square=True)  # power at F0 on channel 0, blind to the others
    with torch.no_grad():
        y = model(torch.as_tensor(tones))[:, 0].numpy()  # its own output as target: r = 1
    at_f0 = (F0 - 2, F0 + 2)
    occluded, ref = band_occlusion(model, tones, y, sfreq=SFREQ, channels=[0], band=at_f0)
    assert ref == pytest.approx(1.0)
    assert abs(occluded) < 0.3  # the tone is gone: what is left does not follow it
    # the same band of a channel the unit does not read, or a whole such channel: no change
    assert band_occlusion(model, tones, y, sfreq=SFREQ, channels=[1, 2], band=at_f0)[0] == pytest.approx(1.0)
    assert band_occlusion(model, tones, y, sfreq=SFREQ, channels=[2])[0] == pytest.approx(1.0)
    # a band far from F0 on the unit's own channel barely matters
    assert band_occlusion(model, tones, y, sfreq=SFREQ, channels=[0], band=(30, 40))[0] > 0.99


def test_band_occlusions_match_one_case_at_a_time_and_check_every_case_first(tones):
    model = BandpassUnit(square=True)
    with torch.no_grad():
        y = model(torch.as_tensor(tones))[:, 0].numpy()
    cases = {"own band": ([0], (F0 - 2, F0 + 2)), "other channels": ([1, 2], (F0 - 2, F0 + 2)), "whole other channel": ([2], None)}
    occluded, ref = band_occlusions(model, tones, y, sfreq=SFREQ, cases=cases)
    for name, (channels, band) in cases.items():
        assert (occluded[name], ref) == pytest.approx(band_occlusion(model, tones, y, sfreq=SFREQ, channels=channels,
                                                                     band=band))
    assert occluded["own band"] < 0.3 and occluded["other channels"] == pytest.approx(1.0)
    with pytest.raises(UnitScopeError, match="out of range"):  # the bad case is found before any forward pass
        band_occlusions(model, tones, y, sfreq=SFREQ, cases={"ok": ([0], None), "bad": ([7], None)})
    with pytest.raises(UnitScopeError, match="cases is empty"):
        band_occlusions(model, tones, y, sfreq=SFREQ, cases={})


def test_named_cases_and_band_text():
    assert named_cases(["A", "B", "C"], {"x": (["C", "A"], (8, 12)), "y": (["B"], None)}) == {
        "x": ([2, 0], (8, 12)), "y": ([1], None)}
    with pytest.raises(UnitScopeError, match=r"Channels \['Z'\] are not inputs of the decoder; its channels are"):
        named_cases(["A"], {"x": (["A", "Z"], None)})
    with pytest.raises(UnitScopeError, match="'x': choose at least one channel"):
        named_cases(["A"], {"x": ([], (1, 4))})
    assert band_text((60.0, 90.0)) == "60-90 Hz" and band_text(None) == "all frequencies"


def test_role_cases_from_channel_coordinates(short_demo):
    from core.demo import ROLE_BANDS

    cases = role_cases(short_demo.signals)
    roles = short_demo.signals["role"].values
    assert set(cases) == set(ROLE_BANDS)  # noise has no band
    for role, (idx, band) in cases.items():
        assert band == ROLE_BANDS[role] and (roles[idx] == role).all() and len(idx) == (roles == role).sum()
    assert role_cases(short_demo.signals.drop_vars("role")) == {}


@pytest.mark.parametrize("kwargs, message", [
    (dict(channels=[], band=(8, 12)), "channels is empty"),
    (dict(channels=[3], band=(8, 12)), r"\[3\] are out of range for 3 channels"),
    (dict(channels=[0], band=(70, 80)), r"below Nyquist \(64 Hz\), got \(70, 80\)"),
    (dict(channels=[0], band=(12, 8)), "0 <= lo < hi"),
    (dict(channels=[0], band=(10.1, 10.2)), "No frequency bin of windows of 256 samples"),
])
def test_band_occlusion_bad_input(tones, kwargs, message):
    model = BandpassUnit(square=True)
    y = np.zeros((len(tones), 1))
    with pytest.raises(UnitScopeError, match=message):
        band_occlusion(model, tones, y, sfreq=SFREQ, **kwargs)


def test_the_shipped_demo_decoder_needs_its_high_gamma_band_and_not_that_of_noise_channels():
    from core.demo import ROLE_BANDS
    from core.workspace import Workspace

    ws = Workspace.demo()
    X, y = ws.eval_set("test")
    roles = ws.recording.signals["role"].values
    sf = ws.recording.sfreq

    def drop(role, band):
        occluded, reference = band_occlusion(ws.model, X, y, sfreq=sf, channels=(roles == role).nonzero()[0],
                                             band=band)
        assert reference == pytest.approx(ws.evaluate("test"), abs=1e-4)
        return reference - occluded

    assert drop("high_gamma", ROLE_BANDS["high_gamma"]) > 0.05  # the speed code it decodes from
    assert abs(drop("noise", ROLE_BANDS["high_gamma"])) < 0.01  # background only


def test_a_band_power_decoder_needs_beta_only_where_beta_alone_marks_movements():
    """Ground truth for band occlusion on trained decoders: ShallowFBCSPNet (squaring and mean
    pooling: band power) on the plain demo decodes from high gamma; when half of the movements
    are ipsilateral (beta alone marks them, core.demo), removing beta costs it most."""
    from core.demo import ROLE_BANDS
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    def drops(ipsi_fraction):
        ws = Workspace.create(DataSpec(duration=300.0, ipsi_fraction=ipsi_fraction), TrainConfig(model="shallow", seed=1))
        ws.train()
        X, y = ws.eval_set("test")
        roles = ws.recording.signals["role"].values
        out = {}
        for role in ("high_gamma", "beta"):
            occluded, reference = band_occlusion(ws.model, X, y, sfreq=ws.recording.sfreq,
                                                 channels=(roles == role).nonzero()[0], band=ROLE_BANDS[role])
            out[role] = reference - occluded
        return out

    plain, ipsi = drops(0.0), drops(0.5)
    assert plain["high_gamma"] > 0.15 and plain["beta"] < 0.1
    assert ipsi["beta"] > 0.2 and ipsi["beta"] > ipsi["high_gamma"]
