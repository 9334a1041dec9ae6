"""The shipped demo probe (made by this probing code: ``python -m dashboard.demo_probe``; a test
of dashboard/test_views.py holds its code version) shows what the probing issue asks of a
trained decoder and its untrained control (METHODS 1.7 item 2, 1.8 (i))."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from core.probing import class_fractions

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "demo-probe"


def test_the_trained_decoder_has_three_classes_and_its_untrained_control_differs():
    """Amplitude, phase and bimodal units coexist in the trained Deep4 (conv_4: 49% / 1% / 50%);
    its untrained twin, probed the same way, has phase units only (random first-layer filters
    are phase-sensitive already, METHODS 1.7): amplitude and bimodal units emerge with training."""
    trained = class_fractions(xr.load_dataset(ASSETS / "deep4.nc", engine="h5netcdf"))
    control = class_fractions(xr.load_dataset(ASSETS / "deep4-control.nc", engine="h5netcdf"))
    hidden = [layer for layer in trained["layer"].values if layer != "conv_classifier"]
    for cls in ("amplitude", "phase", "bimodal"):
        assert float(trained.sel(layer=hidden, **{"class": cls}).max()) > 0.1, cls
    assert float(control.sel(layer=hidden, **{"class": ["amplitude", "bimodal"]}).max()) == 0.0
    assert float(control.sel(layer="conv_time_spat", **{"class": "phase"})) > 0.5
    assert float(trained.sel(layer="conv_4", **{"class": "amplitude"})) > 0.4 > \
        float(control.sel(layer="conv_4", **{"class": "amplitude"}))


def test_the_layer_trend_of_the_trained_decoder():
    """METHODS 1.9 item 2, the Hartmann layer trend, on the shipped probe (each unit's largest
    band-weighted |r|, mean per block): amplitude sensitivity rises from block to block (0.070,
    0.109, 0.157, 0.172); phase sensitivity falls from conv_time_spat to conv_4 (0.168 to
    0.103), but not block by block: conv_3 (0.154) lies above conv_2 (0.139)."""
    ds = xr.load_dataset(ASSETS / "deep4.nc", engine="h5netcdf")
    layers = np.asarray(ds["layer"].values).astype(str)
    blocks = ["conv_time_spat", "conv_2", "conv_3", "conv_4"]
    amp = [float(ds["amp_stat_all"].values[layers == b].mean()) for b in blocks]
    phase = [float(ds["phase_stat_all"].values[layers == b].mean()) for b in blocks]
    assert all(a < b for a, b in zip(amp, amp[1:])), amp
    assert phase[-1] < min(phase[:-1]) and phase[2] > phase[1], phase  # the end-to-end fall, and its exception


def test_where_amplitude_and_phase_sensitivity_peak_in_the_trained_decoder():
    """METHODS 1.9 item 2: amplitude sensitivity peaks at the amplitude-coded channels in their
    band in later layers, phase sensitivity at the phase-coded channels in theirs in early layers.

    Per block, the channel sensitivity in a band (core.probing.stats.channel_sensitivity: the
    largest |band-mean r| over units) on the scale the app ranks bands by (x sqrt(bins in the
    band), which gives every band the same noise level), compared over the demo's role bands
    and the bands between and above them. Measured on the shipped probe:
    - amplitude: high-gamma channels in 60-90 Hz from conv_2 on (conv_2 0.114, conv_3 0.137,
      conv_4 0.137, the 1-4 Hz waveform channels next: 0.036, 0.100, 0.132); not in
      conv_time_spat (every band below 0.05) nor at the output (the 1-4 Hz channels, 0.073
      against 0.070);
    - phase: the 1-4 Hz channels in 1-4 Hz in every hidden block (0.141, 0.132, 0.136, 0.109;
      high gamma's phase 0.116 in conv_time_spat, below 0.05 after it)."""
    from core.demo import ROLE_BANDS, simulate_reaching
    from core.probing.stats import channel_sensitivity

    ds = xr.load_dataset(ASSETS / "deep4.nc", engine="h5netcdf")
    roles = simulate_reaching(duration=60).signals["role"].values   # fixed by the grid layout
    bands = {**ROLE_BANDS, "4-15": (4.0, 15.0), "30-60": (30.0, 60.0), "95-120": (95.0, 120.0)}
    n_bins = {b: int(((ds["freq"] >= lo) & (ds["freq"] <= hi)).sum()) for b, (lo, hi) in bands.items()}

    def peak(var, layer):  # (role of the channel, band) of the strongest scaled sensitivity
        best = {b: channel_sensitivity(ds, var, band, layers=[layer]).values * np.sqrt(n_bins[b])
                for b, band in bands.items()}
        b = max(best, key=lambda k: best[k].max())
        return str(roles[int(best[b].argmax())]), b

    for layer in ("conv_2", "conv_3", "conv_4"):
        assert peak("amp_corr", layer) == ("high_gamma", "high_gamma"), layer
    for layer in ("conv_time_spat", "conv_2", "conv_3", "conv_4"):
        assert peak("phase_corr", layer) == ("low_freq", "low_freq"), layer
    assert peak("amp_corr", "conv_time_spat") != ("high_gamma", "high_gamma")


def test_amplitude_perturbation_keeps_the_trained_decoder_decoding():
    """METHODS 1.9 item 3 on the shipped Deep4 itself (not only on a toy): its test r on
    amplitude-perturbed training windows stays at least 0.95 of the unperturbed (0.995 with a
    short probe; the benchmark's full probe 0.9958)."""
    import torch

    from core.probing import ProbeConfig, probe_units
    from core.probing.pipeline import workspace_windows
    from core.workspace import Workspace

    torch.set_num_threads(1)
    ws = Workspace.demo()
    X, y = workspace_windows(ws, "train")
    ds = probe_units(ws.model, X, sfreq=ws.recording.sfreq, y=y, task=ws.task,
                     config=ProbeConfig(n_iterations=2, n_windows=40, n_null=1, layers=["conv_classifier"]))
    assert ds.attrs["metric_unperturbed"] > 0.9 and float(ds["amp_validity"]) >= 0.95
