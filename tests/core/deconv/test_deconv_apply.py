"""DUNL applied to a decoder: signals, alignment, segments, refit, CLI, and the demo."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from core._validation import UnitScopeError
from core.deconv import DeconvConfig, kernel_error
from core.deconv.apply import EventDeconvolution, band_envelope, parse_signal
from core.models import build_model, get_layer, layer_map
from core.recording import Events, Recording
from core.workspace import ASSETS_DIR

SFREQ = 250.0
DEMO_RUN = ASSETS_DIR / "demo-deep4"


def _recording(rng, *, n_chans=4, duration=120.0, n_events=30):
    """Noise channels; channel C0 carries a 70 Hz carrier whose amplitude rises after each
    event by a known bump of known size."""
    n = int(duration * SFREQ)
    t = np.arange(n) / SFREQ
    onsets = np.sort(rng.choice(np.arange(3.0, duration - 4.0, 3.5), n_events, replace=False))
    amps = rng.uniform(0.5, 2.0, n_events)
    env = np.full(n, 0.3)
    lag = np.arange(int(1.0 * SFREQ)) / SFREQ
    bump = (lag / 0.2) * np.exp(1 - lag / 0.2)
    for o, a in zip(onsets, amps):
        i = int(round(o * SFREQ))
        env[i:i + len(bump)] += a * bump
    x = 0.1 * rng.standard_normal((n_chans, n))
    x[0] += env * np.sin(2 * np.pi * 70 * t)
    signals = xr.DataArray(x.astype(np.float32), dims=("channel", "time"),
                           coords={"channel": [f"C{i}" for i in range(n_chans)], "time": t},
                           attrs={"sfreq": SFREQ})
    events = Events(onsets, np.full(n_events, "go"), amps)
    return Recording(signals, None, events), bump


@pytest.fixture(scope="module")
def tiny_model():
    return build_model("deep4", n_chans=4, n_outputs=1, n_times=600, seed=0)


def test_parse_signal():
    assert parse_signal("output").kind == "output"
    assert parse_signal("unit:conv_3:5") == parse_signal("unit:conv_3:5")
    assert parse_signal("unit:conv_3:5").index == 5
    assert parse_signal("unit:conv_3/5") == parse_signal("unit:conv_3:5")  # the app's unit id, copied
    assert str(parse_signal("unit:conv_4/175")) == "unit:conv_4:175"
    # the unit id alone, as deconv --help offers it ("'signal kind' parameter ... got 'conv_3/5'" before)
    assert parse_signal("conv_3/5") == parse_signal("unit:conv_3:5")
    with pytest.raises(UnitScopeError, match=r"Invalid signal 'conv3': expected 'output', 'unit:LAYER:INDEX' "
                                             r"\(e.g. unit:conv_3:5, unit:conv_3/5 or conv_3/5\)"):
        parse_signal("conv3")
    with pytest.raises(UnitScopeError, match="Invalid signal 'unit:conv_3/x'"):
        parse_signal("unit:conv_3/x")
    # named bands are the probe's: "beta" in a probe's peak and in channel:C3:beta is one band
    from core.probing.bands import BANDS as PROBE_BANDS

    for name, edges in PROBE_BANDS.items():
        assert parse_signal(f"channel:G03:{name}").band == edges
    assert parse_signal("channel:G03:high_gamma").band == (60.0, 120.0)
    assert parse_signal("channel:G03:60-90").band == (60.0, 90.0)
    assert str(parse_signal("channel:G03:beta")) == "channel:G03:13-30"
    with pytest.raises(UnitScopeError, match="Invalid signal 'unit:conv_3'"):
        parse_signal("unit:conv_3")
    with pytest.raises(UnitScopeError, match="Did you mean 'unit'"):
        parse_signal("units:conv_3:1")
    with pytest.raises(UnitScopeError, match="Unknown band 'hgamma'"):
        parse_signal("channel:G03:hgamma")


def test_band_envelope_recovers_amplitude_modulation():
    t = np.arange(int(10 * SFREQ)) / SFREQ
    amp = 1.0 + 0.5 * np.sin(2 * np.pi * 0.5 * t)
    x = amp * np.sin(2 * np.pi * 70 * t) + 0.3 * np.sin(2 * np.pi * 10 * t)
    env = band_envelope(x, SFREQ, (60, 80))
    inner = slice(250, -250)
    np.testing.assert_allclose(env[inner], amp[inner], atol=0.05)
    with pytest.raises(UnitScopeError, match="needs a sampling rate of at least 260 Hz"):
        band_envelope(x, SFREQ, (100, 130))
    # a band up to Nyquist (a probe's band cut there) is all above its low edge: a high-pass
    y = amp * np.sin(2 * np.pi * 110 * t) + 0.3 * np.sin(2 * np.pi * 70 * t)
    np.testing.assert_allclose(band_envelope(y, SFREQ, (100, SFREQ / 2))[inner], amp[inner], atol=0.05)


def test_band_envelope_of_many_rows_smoothed():
    """Rows are independent (filtered in chunks), power outside the band gives no envelope,
    and the Gaussian smoothing scales a slow modulation as it scales a sine."""
    t = np.arange(int(20 * SFREQ)) / SFREQ
    a = 1 + 0.5 * np.sin(2 * np.pi * 0.3 * t)
    x = np.vstack([a * np.sin(2 * np.pi * 75 * t), a * np.sin(2 * np.pi * 20 * t), a * np.sin(2 * np.pi * 75 * t)])
    env = band_envelope(x, SFREQ, (60, 90), chunk=2)
    inner = slice(750, -750)
    assert env.shape == x.shape
    np.testing.assert_allclose(env[0], band_envelope(x[0], SFREQ, (60, 90)))
    np.testing.assert_allclose(env[2], env[0])
    np.testing.assert_allclose(env[0, inner], a[inner], atol=0.02)
    assert np.abs(env[1, inner]).max() < 0.02  # 20 Hz: outside the band
    smooth = band_envelope(x, SFREQ, (60, 90), smooth_s=0.1)  # a Gaussian of sd s scales a sine by exp(-(2 pi f s)^2 / 2)
    a_smooth = 1 + 0.5 * np.exp(-(2 * np.pi * 0.3 * 0.1) ** 2 / 2) * np.sin(2 * np.pi * 0.3 * t)
    np.testing.assert_allclose(smooth[0, inner], a_smooth[inner], atol=0.02)
    noise = np.random.default_rng(0).standard_normal(len(t))
    assert band_envelope(noise, SFREQ, (60, 90), smooth_s=0.1).std() < 0.5 * band_envelope(noise, SFREQ, (60, 90)).std()
    with pytest.raises(UnitScopeError, match="'smooth_s' must lie in"):
        band_envelope(x, SFREQ, (60, 90), smooth_s=-1)
    with pytest.raises(UnitScopeError, match=r"x must have shape \(n_times,\) or \(n_rows, n_times\)"):
        band_envelope(x[None], SFREQ, (60, 90))


def test_channel_envelope_kernels_and_codes_match_the_truth(tiny_model):
    rng = np.random.default_rng(0)
    rec, bump = _recording(rng)
    dec = EventDeconvolution(tiny_model, rec, lag_start=-0.2, kernel_seconds=1.4, bin_seconds=0.04,
                             config=DeconvConfig(n_iter=50, epochs=25, batch_size=8, lr=0.03))
    res = dec.run("channel:C0:60-80")
    assert res["kernels"].dims == ("kernel", "lag") and res["codes"].dims == ("event", "kernel")
    assert res["kernel"].values.tolist() == ["go"]
    lag = res["lag"].values
    assert lag[0] == pytest.approx(-0.2) and lag[1] - lag[0] == pytest.approx(0.04)
    # the true kernel on the same lag grid: zero before the onset, the bump after it
    true = np.interp(lag + 0.02, np.arange(len(bump)) / SFREQ, bump, left=0.0, right=0.0)
    assert kernel_error(true, res["kernels"].values[0]) < 0.25
    codes = res["codes"].values[:, 0]
    assert np.corrcoef(codes, res["value"].values)[0, 1] > 0.95
    np.testing.assert_allclose(res["onset"].values, np.sort(rec.events.onset))
    assert res.attrs["r2"] > 0.7 and res.attrs["signal"] == "channel:C0:60-80"
    # a channel envelope does not depend on the network: a refit leaves it unchanged
    from core.pruning import MaskSet

    masks = MaskSet.for_model(tiny_model).prune("conv_2", [0, 1])
    assert dec.refit(res, masks=masks).attrs["refit"] == "unaffected"


def test_decoder_signals_are_causally_aligned(tiny_model):
    rng = np.random.default_rng(1)
    rec, _ = _recording(rng, duration=40.0, n_events=5)
    dec = EventDeconvolution(tiny_model, rec, block=slice(2000, 6000), chunk_samples=700)
    out = dec.signal("output").values
    rf = layer_map(tiny_model)[-1].receptive_field
    s = 2500  # a window starting at input sample s predicts samples s + rf - 1 onwards
    X = torch.from_numpy(rec.signals.values[None, :, s:s + 900])
    with torch.no_grad():
        expected = tiny_model(X)[0, 0].numpy()
    actual = out[s + rf - 1 - 2000:][:len(expected)]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    # a unit of conv_3: the module's output sample j belongs to input sample j + rf_unit - 1
    info = {i.name: i for i in layer_map(tiny_model)}["conv_3"]
    unit = dec.signal("unit:conv_3:7").values
    captured = {}
    h = get_layer(tiny_model, info.nonlin_module).register_forward_hook(lambda m, i, o: captured.update(x=o))
    try:
        with torch.no_grad():
            tiny_model(X)
    finally:
        h.remove()
    act = captured["x"][0, 7].reshape(-1).numpy()
    rf_unit = 900 - act.size + 1
    np.testing.assert_allclose(unit[s + rf_unit - 1 - 2000:][:act.size], act, rtol=1e-4, atol=1e-5)
    # the block starts after the receptive field: no sample is missing
    assert np.isfinite(out).all()


def test_masked_signal_from_cache_equals_hooked_forward(tiny_model):
    from core.pruning import MaskSet

    rng = np.random.default_rng(2)
    rec, _ = _recording(rng, duration=40.0, n_events=5)
    dec = EventDeconvolution(tiny_model, rec, block=slice(1000, 7000), chunk_samples=1500)
    plain = EventDeconvolution(tiny_model, rec, block=slice(1000, 7000), chunk_samples=1500,
                               cache_activations=False)
    dec.signal("output")  # an unmasked pass primes the cache
    masks = MaskSet.for_model(tiny_model).prune("conv_3", [1, 4, 9]).prune("conv_4", [0, 3])
    for name in ("output", "unit:conv_4:2"):
        cached = dec.signal(name, masks=masks).values
        reference = plain.signal(name, masks=masks).values
        np.testing.assert_allclose(cached, reference, rtol=1e-5, atol=1e-6)
    assert not np.allclose(dec.signal("output").values, dec.signal("output", masks=masks).values)


def test_bad_events_and_blocks(tiny_model):
    rng = np.random.default_rng(3)
    rec, _ = _recording(rng, duration=40.0, n_events=5)
    bad = Recording(rec.signals, None, Events([5.0, 55.0], ["go", "go"], [1.0, 1.0]))
    with pytest.raises(UnitScopeError, match=r"1 event\(s\) lie outside the recording \(onsets \[55.0\] s from its "
                                             r"start; it lasts 40.000 s\)"):
        EventDeconvolution(tiny_model, bad)
    # onsets count from the first sample whatever the time axis reads there (as trials are cut):
    # read on the axis, a recording starting at 100 s had every event "outside the recording"
    later = Recording(rec.signals.assign_coords(time=rec.signals["time"].values + 100.0), None, rec.events)
    shifted, same = EventDeconvolution(tiny_model, later)._events, EventDeconvolution(tiny_model, rec)._events
    assert shifted.keys() == same.keys() and all(np.array_equal(shifted[k], same[k]) for k in same)
    assert len(same["first"]) == 5
    with pytest.raises(UnitScopeError, match="No event of types \\['go'\\] has its whole kernel window"):
        EventDeconvolution(tiny_model, rec, block=slice(0, 500))
    with pytest.raises(UnitScopeError, match=r"The kernel \(50 bins of 0.04 s\) is longer than the block \(10 bins"):
        EventDeconvolution(tiny_model, rec, block=slice(0, 100))
    with pytest.raises(UnitScopeError, match="No events of type \\['stop'\\]"):
        EventDeconvolution(tiny_model, rec, event_types=["stop"])
    with pytest.raises(UnitScopeError, match="Unknown block 'tset'"):
        EventDeconvolution(tiny_model, rec, block="tset", blocks={"test": slice(0, 10)})
    # the config's unknown timing was replaced by "known" without a word
    with pytest.raises(UnitScopeError, match=r"event onsets \(timing 'known'\); the config gives timing='unknown'"):
        EventDeconvolution(tiny_model, rec, config=DeconvConfig(timing="unknown", n_events=2))
    dec = EventDeconvolution(tiny_model, rec)
    with pytest.raises(UnitScopeError, match="Unit index 99 is out of range: conv_2 has 50 units"):
        dec.signal("unit:conv_2:99")
    with pytest.raises(UnitScopeError, match="Unknown channel 'G1'"):
        dec.signal("channel:G1:beta")
    dec = EventDeconvolution(tiny_model, rec, config=DeconvConfig(likelihood="poisson"))
    with pytest.raises(UnitScopeError, match="'poisson' likelihood needs non-negative counts"):
        dec.run("output")


def test_an_event_type_with_no_event_in_the_block_gets_no_kernel(tiny_model, caplog):
    """A type the block lacks (a short test block, a rare trigger) would get a kernel that is
    its initial guess, with empty codes ("0 events ... codes mean nan"): the recording's own
    types leave it out and say so; asking for it is refused. Types come in natural order."""
    import logging

    from core.cli.deconv import summary_lines

    rng = np.random.default_rng(4)
    rec, _ = _recording(rng, duration=60.0, n_events=12)
    on = rec.events.onset
    types = np.where(on < 30.0, "10", "2").astype(object)
    types[on > 50.0] = "rare"  # only in the last 10 s
    rec = Recording(rec.signals, None, Events(on, types, rec.events.value))
    assert EventDeconvolution(tiny_model, rec).event_types == ["2", "10", "rare"]  # 2 before 10
    block = slice(0, int(45 * SFREQ))
    with caplog.at_level(logging.WARNING, logger="core.deconv.apply"):
        dec = EventDeconvolution(tiny_model, rec, block=block,
                                 config=DeconvConfig(n_iter=10, epochs=2, batch_size=8, lr=0.03))
    assert dec.event_types == ["2", "10"] and dec.types_left_out == ["rare"] and dec.config.n_kernels == 2
    assert "No event of type ['rare']" in caplog.text
    res = dec.run("channel:C0:60-80")
    assert res["kernel"].values.tolist() == ["2", "10"]
    assert all(np.isfinite(res["codes"].sel(kernel=k).values).any() for k in ["2", "10"])
    lines = summary_lines(res)
    assert lines[2] == "no kernel for event type(s) rare: no event of it in the block"
    # best epoch 0 is the kernels the fit started from (it read as if an epoch had been chosen)
    assert "started from" not in lines[3] or res.attrs["best_epoch"] == 0
    kept = res.assign_attrs(best_epoch=0)
    assert "best epoch 0 (the kernels it started from: no epoch lowered the validation loss)" in summary_lines(kept)[3]
    with pytest.raises(UnitScopeError, match=r"No event of type \['rare'\] has its whole kernel window .* inside "
                                             r"the block \(0.0-45.0 s\); leave it out of the event types"):
        EventDeconvolution(tiny_model, rec, block=block, event_types=["2", "rare"])


# --------------------------------------------------------------------------- the demo
@pytest.fixture(scope="module")
def demo_ws():
    if not (DEMO_RUN / "model.pt").is_file():
        pytest.skip("the shipped demo decoder is not available")
    from core.workspace import Workspace

    return Workspace.load(DEMO_RUN)


@pytest.mark.slow
def test_demo_output_codes_track_peak_speed_and_refit_warm_starts(demo_ws):
    from core.pruning import MaskSet

    dec = EventDeconvolution.from_workspace(demo_ws, block="test",
                                            config=DeconvConfig(n_iter=30, epochs=12, batch_size=8, lr=0.03))
    res = dec.run("output")
    assert np.corrcoef(res["codes"].values[:, 0], res["value"].values)[0, 1] > 0.7
    peak_lag = float(res["lag"].values[np.argmax(res["kernels"].values[0])])
    assert 0.2 < peak_lag < 1.0  # bell-shaped speed profile peaks mid-movement
    masks = MaskSet.for_model(demo_ws.model).prune("conv_4", list(range(0, 200, 10)))
    refit = dec.refit(res, masks=masks)
    assert refit.attrs["refit"] == "warm_start" and refit.attrs["warm_start"] == 1
    # the warm start begins at the previous kernels: the refit's epoch-0 kernel is the old one
    assert kernel_error(res["kernels"].values[0], refit["kernels"].values[0]) < 0.3
    assert refit.attrs["masks"] == '{"conv_4": [' + ", ".join(str(i) for i in range(0, 200, 10)) + "]}"
    # a conv_2 unit is upstream of conv_4's mask: unaffected
    unit = dec.run("unit:conv_2:3", epochs=2)
    assert dec.refit(unit, masks=masks).attrs["refit"] == "unaffected"


@pytest.mark.slow
def test_cli_deconv_writes_netcdf(tmp_path, capsys):
    if not (DEMO_RUN / "model.pt").is_file():
        pytest.skip("the shipped demo decoder is not available")
    from core.cli import main

    out = tmp_path / "dec.nc"
    assert main(["deconv", str(DEMO_RUN), "--signal", "channel:G04:high_gamma", "--epochs", "3",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "kernel movement_onset:" in text and f"wrote {out}" in text
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["kernels"].dims == ("kernel", "lag") and ds.attrs["signal"] == "channel:G04:60-120"
    assert main(["deconv", str(DEMO_RUN), "--signal", "unit:conv_9:1"]) == 2
    assert "Unknown layer 'conv_9'" in capsys.readouterr().err


def test_cli_deconv_under_a_mask_keeps_its_own_file_its_weights_and_epochs(tmp_path, capsys):
    """A masked refit is written beside the unpruned result, not over it; it names the
    weights it came from (a run trained again then leaves it out of reports, as its other
    results), and --epochs sets the refit's epochs too."""
    if not (DEMO_RUN / "model.pt").is_file():
        pytest.skip("the shipped demo decoder is not available")
    import shutil

    from core.cli import main
    from core.probing._base import model_hash
    from core.pruning import MaskSet
    from core.workspace import Workspace

    run = tmp_path / "run"
    shutil.copytree(DEMO_RUN, run)
    ws = Workspace.load(run)
    MaskSet.for_model(ws.model).prune("conv_4", [1, 2]).save(tmp_path / "m.json")
    assert main(["deconv", str(run), "--signal", "output", "--epochs", "2"]) == 0
    assert main(["deconv", str(run), "--signal", "output", "--epochs", "3", "--mask", str(tmp_path / "m.json")]) == 0
    text = capsys.readouterr().out
    assert f"wrote {run / 'deconv_output.nc'}" in text and f"wrote {run / 'deconv_output_masked.nc'}" in text
    with xr.open_dataset(run / "deconv_output.nc", engine="h5netcdf") as plain, \
            xr.open_dataset(run / "deconv_output_masked.nc", engine="h5netcdf") as masked:
        assert plain.attrs["masks"] == "{}" and masked.attrs["masks"] == '{"conv_4": [1, 2]}'
        assert plain.attrs["model_hash"] == masked.attrs["model_hash"] == model_hash(ws.model)
        assert json.loads(plain.attrs["config"])["epochs"] == 2 and json.loads(masked.attrs["config"])["epochs"] == 3
    assert main(["deconv", str(run), "--signal", "output", "--epochs", "0"]) == 2
    assert "--epochs 0: give at least 1 epoch" in capsys.readouterr().err


def test_codes_are_drawn_against_values_that_vary_else_onsets():
    from core.deconv.apply import codes_axis

    def fit(values):
        return xr.Dataset(coords={"event": np.arange(3), "value": ("event", values), "onset": ("event", [1.0, 2.0, 3.0])})

    assert codes_axis(fit([0.2, 0.5, 0.4])) == "value"  # the demo's peak speeds
    assert codes_axis(fit([0.5, 0.5, 0.5])) == "onset"  # a file's annotations: all the same duration
    assert codes_axis(fit([np.nan, np.nan, 0.3])) == "onset"
    # values fixed per event type (EEGMMIDB: T0 1.38 s, T1 and T2 5.12 s) vary across types
    # only, where no kernel's codes meet them: onsets; one type whose values vary: values
    typed = fit([1.38, 5.12, 5.12]).assign_coords(type=("event", ["T0", "T1", "T2"]))
    assert codes_axis(typed) == "onset"
    assert codes_axis(typed.assign_coords(value=("event", [1.38, 5.12, 4.0]), type=("event", ["T0", "T1", "T1"]))) == "value"


# ------------------------------------------------- names, event types, lag grid, attrs
FAST = DeconvConfig(n_iter=10, epochs=2, batch_size=8, lr=0.03)


def test_channel_names_match_as_the_cli_matches_them(tiny_model, shared_data):
    """channel:NAME:BAND matches names as ``unitscope`` does (core.io.match_channels: case and
    the trailing dots of EDF names ignored): EEGMMIDB's C3 is 'C3..'; a result names the
    channel it read; an unknown name suggests the closest by the same rule."""
    from core.io import read_recording

    rec = read_recording(shared_data / "eeg_motor_eegmmidb" / "test_edf_overlapping_annotations.edf")
    assert "C3" not in rec.ch_names and "C3.." in rec.ch_names
    dec = EventDeconvolution(tiny_model, rec, event_types=["T1", "T2"], config=FAST)
    loose = dec.signal("channel:C3:8-13")
    np.testing.assert_array_equal(loose.values, dec.signal("channel:C3..:8-13").values)
    assert loose.attrs["signal"] == "channel:C3..:8-13"
    np.testing.assert_array_equal(dec.signal("channel:fc5:alpha").values, dec.signal("channel:Fc5.:alpha").values)
    res = dec.run("channel:c3:8-13")
    assert res.attrs["signal"] == "channel:C3..:8-13" and res["kernel"].values.tolist() == ["T1", "T2"]
    # 'C3' used to suggest 'Cp3.' (the closest raw name); 'Cp33' is Cp3. by the matching rule
    # and the message says only the decoder's inputs can be read (a channel of the file left out of
    # them, 'Fz' for a run of 7 picks, had read as a misspelling of an input)
    with pytest.raises(UnitScopeError, match=r"Unknown channel 'Cp33' \(case and trailing dots ignored\): a channel: "
                                             rf"signal is read from .* for a run its {len(rec.ch_names)} input "
                                             r"channel\(s\) .*Did you mean 'Cp3\.'\?"):
        dec.signal("channel:Cp33:8-13")
    # case alone (the demo's g14 for G14): a synthetic recording named C0..C3
    rng = np.random.default_rng(5)
    small, _ = _recording(rng, duration=40.0, n_events=5)
    dec = EventDeconvolution(tiny_model, small, config=FAST)
    assert dec.signal("channel:c0:60-80").attrs["signal"] == "channel:C0:60-80"


def test_an_empty_list_of_event_types_says_so_and_names_the_types(tiny_model):
    rng = np.random.default_rng(6)
    rec, _ = _recording(rng, duration=40.0, n_events=5)
    with pytest.raises(UnitScopeError, match=r"event_types is empty \(got \[\]\): give at least one of the "
                                             r"recording's event types \{'go': 5\}, or None for all of them\."):
        EventDeconvolution(tiny_model, rec, event_types=[])
    none = Recording(rec.signals, None, Events([], [], []))
    with pytest.raises(UnitScopeError, match=r"event_types is empty \(got \[\]\), and the recording has no events"):
        EventDeconvolution(tiny_model, none, event_types=[])
    with pytest.raises(UnitScopeError, match="The recording has no events to lock kernels to"):
        EventDeconvolution(tiny_model, none)


def test_the_kernel_window_starts_at_or_before_the_lag_asked(tiny_model):
    """-0.5 s with 0.04 s bins is -12.5 bins: rounded half to even it started at -0.48 s, after
    the lag asked; it starts at -0.52 s. Exact multiples stay exact (a float quotient such as
    -0.28 / 0.04 = -7.000000000000001 included)."""
    rng = np.random.default_rng(7)
    rec, _ = _recording(rng, duration=60.0, n_events=10)
    dec = EventDeconvolution(tiny_model, rec, config=FAST)
    assert dec.lag0 == -13 and dec.K == 50
    res = dec.run("channel:C0:60-80")
    assert res["lag"].values[0] == pytest.approx(-0.52) and res["lag"].values[0] <= -0.5
    assert res.attrs["lag_start"] == pytest.approx(-0.52) and res.attrs["lag_start_requested"] == -0.5
    for asked, start in ((-0.28, -0.28), (-0.2, -0.2), (0.1, 0.08), (0.0, 0.0), (-0.3, -0.32)):
        got = EventDeconvolution(tiny_model, rec, lag_start=asked, config=FAST)
        assert got.lag0 * got.bin_seconds == pytest.approx(start), asked


def test_attrs_give_the_blocks_units_and_where_the_validation_loss_was_measured(tiny_model):
    """``block`` is in samples (``block_units``, ``block_seconds``); with a single segment (one
    long P300 run: every window overlaps the next) valid_loss is measured on the training data
    and the attrs say so."""
    rng = np.random.default_rng(8)
    rec, _ = _recording(rng, duration=60.0, n_events=12)
    block = slice(int(5 * SFREQ), int(55 * SFREQ))
    res = EventDeconvolution(tiny_model, rec, block=block, config=FAST).run("channel:C0:60-80")
    assert res.attrs["block"] == [1250, 13750] and res.attrs["block_units"] == "samples"
    assert res.attrs["block_seconds"] == pytest.approx([5.0, 55.0])
    assert res.attrs["n_segments"] > 1 and res.attrs["n_valid_segments"] >= 1
    assert res.attrs["valid_loss_on"] == "held-out segments"
    assert "held out" in res.attrs["valid_loss_note"]
    # flashes every 0.6 s: each 2 s window overlaps the next, one segment
    onsets = np.arange(2.0, 50.0, 0.6)
    flashes = Recording(rec.signals, None, Events(onsets, np.full(len(onsets), "flash"), np.ones(len(onsets))))
    one = EventDeconvolution(tiny_model, flashes, config=FAST).run("channel:C0:60-80")
    assert one.attrs["n_segments"] == 1 and one.attrs["n_valid_segments"] == 0
    assert one.attrs["valid_loss_on"] == "training segments"
    assert "valid_loss is measured on the training data" in one.attrs["valid_loss_note"]
    assert np.isfinite(one.attrs["valid_loss"])
    # the command line's summary says it too (it had printed "1 segments" and nothing more)
    from core.cli.deconv import summary_lines

    lines = summary_lines(one)
    assert any(", 1 segment, " in line for line in lines)
    assert f"caution: {one.attrs['valid_loss_note']}" in lines
    assert not any(line.startswith("caution: valid_loss") for line in summary_lines(res))
