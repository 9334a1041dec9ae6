import json

import numpy as np
import pytest

from core._validation import UnitScopeError
from core.preprocessing import Standardizer, bandpass, check_signals, pick_channels, resample, split_blocks


def test_split_blocks_contiguous_and_complete():
    blocks = split_blocks(1000)
    assert blocks == {"train": slice(0, 600), "valid": slice(600, 800), "test": slice(800, 1000)}
    with pytest.raises(UnitScopeError, match="three positive numbers"):
        split_blocks(1000, (0.5, 0.5))


def test_standardizer_fitted_on_train_block_only(short_demo):
    rec = short_demo.copy() if hasattr(short_demo, "copy") else short_demo
    blocks = split_blocks(rec.n_times)
    # make the test block very different: standardisation must not look at it
    data = rec.signals.values.copy()
    data[:, blocks["test"]] += 1.0
    shifted = type(rec)(rec.signals.copy(data=data), rec.target, rec.events)
    out = Standardizer().fit(shifted, blocks["train"]).transform(shifted)
    train = out.signals.values[:, blocks["train"]]
    np.testing.assert_allclose(train.mean(1), 0, atol=1e-4)
    np.testing.assert_allclose(train.std(1), 1, atol=1e-3)
    assert out.signals.values[:, blocks["test"]].mean() > 100  # 1 V offset in units of ~20 uV
    steps = json.loads(out.signals.attrs["preprocessing"])
    assert steps[-1]["step"] == "standardize" and steps[-1]["fitted_on"] == "train"


def test_pick_bandpass_resample(short_demo):
    rec = pick_channels(short_demo, ["G03", "G01"])
    assert rec.ch_names == ["G03", "G01"]
    with pytest.raises(UnitScopeError, match=r"\['G99'\] are not in the recording"):
        pick_channels(short_demo, ["G99"])
    filt = bandpass(rec, 60.0, 90.0)
    spec = np.abs(np.fft.rfft(filt.signals.values[0]))
    f = np.fft.rfftfreq(filt.n_times, 1 / filt.sfreq)
    assert spec[(f > 65) & (f < 85)].mean() > 20 * spec[(f > 5) & (f < 40)].mean()
    with pytest.raises(UnitScopeError, match="'h_freq' must lie in"):
        bandpass(rec, 1.0, 200.0)
    # edges the wrong way round: MNE makes a band-stop of them (the band removed); refused
    with pytest.raises(UnitScopeError, match="l_freq=90 Hz must be below h_freq=60 Hz for a band-pass"):
        bandpass(rec, 90.0, 60.0)
    down = resample(rec, 125.0)
    assert down.sfreq == 125.0 and down.n_times == rec.n_times // 2
    assert down.target.sizes["time"] == down.n_times


def test_nan_and_flat_channels_are_named(short_demo):
    data = short_demo.signals.values.copy()
    data[4, 100] = np.nan
    bad = type(short_demo)(short_demo.signals.copy(data=data), short_demo.target, short_demo.events)
    with pytest.raises(UnitScopeError, match=r"\['G05'\] contain NaN or Inf"):
        check_signals(bad)
    data = short_demo.signals.values.copy()
    data[7] = 0.0
    flat = type(short_demo)(short_demo.signals.copy(data=data), short_demo.target, short_demo.events)
    with pytest.raises(UnitScopeError, match=r"\['G08'\] are flat"):
        check_signals(flat)


def test_a_constant_channel_at_an_offset_is_flat_and_a_constant_target_is_refused(short_demo):
    """A channel held at 25 uV (an EDF's DC-flat electrode) is flat like an all-zero one (its
    float32 std came out 3.6e-12 and it passed, then was fed in as zeros); a target that never
    varies is refused before training (the metric was NaN and later commands blamed the decoder)."""
    data = short_demo.signals.values.copy()
    data[2] = np.float32(25e-6)
    dc = type(short_demo)(short_demo.signals.copy(data=data), short_demo.target, short_demo.events)
    with pytest.raises(UnitScopeError, match=r"\['G03'\] are flat"):
        check_signals(dc)
    still = type(short_demo)(short_demo.signals, short_demo.target.copy(data=np.full(short_demo.n_times, 2.0, np.float32)),
                             short_demo.events)
    with pytest.raises(UnitScopeError, match=r"target 'hand_speed' is constant \(every sample 2\)"):
        check_signals(still)
    check_signals(short_demo)  # the demo itself passes



def test_missing_target_samples_are_left_out_like_bad_stretches(tmp_path):
    """A behavioural trace with dropouts (NaN): the missing samples become 'BAD_target_missing'
    stretches, no window touches them, the target's z-scoring ignores them, and training runs
    with finite losses; a target missing more than half the time is refused."""
    import mne

    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    sfreq, n = 100.0, 100 * 120
    rng = np.random.default_rng(2)
    speed = np.abs(np.sin(np.arange(n) / 50.0))
    data = np.vstack([rng.standard_normal((2, n)) * 1e-5, speed])
    data[2, 2000:3000] = np.nan  # a 10 s dropout in the training block
    data[2, 5000] = np.nan  # and one lost sample
    raw = mne.io.RawArray(data, mne.create_info(["C3", "C4", "speed"], sfreq, ["eeg", "eeg", "misc"]),
                          verbose="error")
    raw.save(tmp_path / "t_raw.fif", verbose="error")
    ws = Workspace.create(DataSpec(source=str(tmp_path / "t_raw.fif"), target="speed"),
                          TrainConfig(model="shallow", max_epochs=1))
    assert ws.recording.bad_segments == [(20.0, 10.0, "BAD_target_missing"), (50.0, 0.01, "BAD_target_missing")]
    missing = ~np.isfinite(data[2])
    for block in ("train", "valid", "test"):
        for s in ws.data.window_starts(block):
            assert not missing[s:s + ws.data.n_times].any()
    train = ws.blocks["train"]
    good = speed[train][~missing[train]]
    assert ws.prep["target_mean"] == pytest.approx(good.mean(), rel=1e-5)
    ws.train()
    assert np.isfinite(ws.metrics["test"]) and all(np.isfinite(h["train_loss"]) for h in ws.history)

    data[2, : int(0.6 * n)] = np.nan
    raw = mne.io.RawArray(data, raw.info, verbose="error")
    raw.save(tmp_path / "gone_raw.fif", verbose="error")
    with pytest.raises(UnitScopeError, match="The target 'speed' is missing \\(NaN or Inf\\) in 60% of its samples"):
        Workspace.create(DataSpec(source=str(tmp_path / "gone_raw.fif"), target="speed"), TrainConfig(model="shallow"))


@pytest.mark.parametrize("l_freq,h_freq", [(1.0, 40.0), (0.5, 100.0), (8.0, 30.0), (None, 40.0)])
def test_the_band_pass_is_causal_as_the_decoder_and_zero_phase_only_when_asked(short_demo, l_freq, h_freq):
    """METHODS 1.5: the decoder predicts the target at t from the input up to t. A zero-phase
    filter put half its length of the future into every sample (1.65 s for 1-40 Hz): a raw
    sample changed at t0 changed the filtered signal from t0 - 412 samples on."""
    rec = pick_channels(short_demo, ["G01"])
    t0 = rec.n_times // 2
    bumped = rec.signals.copy()
    bumped[0, t0] += 10.0
    from core.preprocessing import _copy

    other = _copy(rec, bumped)
    diff = {phase: np.abs(bandpass(other, l_freq, h_freq, phase=phase).signals.values[0].astype(np.float64)
                          - bandpass(rec, l_freq, h_freq, phase=phase).signals.values[0])
            for phase in ("causal", "zero")}
    causal, zero = diff["causal"], diff["zero"]
    assert causal[t0:].max() > 0.05  # it passes the change on ...
    assert causal[:t0].max() < 1e-4 * causal.max()  # ... and nothing before it (float32 rounding only)
    assert zero[:t0 - 20].max() > 1e-3 * zero.max()  # zero phase reaches back
    assert bandpass(rec, l_freq, h_freq).signals.values.tobytes() == \
        bandpass(rec, l_freq, h_freq, phase="causal").signals.values.tobytes()  # the default
    with pytest.raises(UnitScopeError, match="'phase' parameter"):
        bandpass(rec, l_freq, h_freq, phase="minimum")


def test_steps_a_few_channels_at_a_time_equal_the_whole_array(short_demo, monkeypatch):
    """Long recordings are filtered, resampled and standardised a chunk of channels at a time
    (float32 kept, float64 only per chunk); each channel is processed alone, so the result is
    the whole-array float64 computation's, bit for bit."""
    import mne

    import core.preprocessing as prep

    monkeypatch.setattr(prep, "_CHUNK_BYTES", 3 * 8 * short_demo.n_times)  # 3 channels a chunk: 32 = 10 x 3 + 2
    x64 = short_demo.signals.values.astype(np.float64)
    whole = mne.filter.filter_data(x64, short_demo.sfreq, 2.0, 40.0, phase="minimum", verbose="error")
    whole = whole.astype(np.float32)
    assert np.array_equal(bandpass(short_demo, 2.0, 40.0).signals.values, whole)
    whole = mne.filter.resample(x64, 100.0, short_demo.sfreq, verbose="error").astype(np.float32)
    down = resample(short_demo, 100.0)
    assert down.signals.dtype == np.float32 and np.array_equal(down.signals.values, whole)
    block = split_blocks(short_demo.n_times)["train"]
    std = Standardizer().fit(short_demo, block)
    np.testing.assert_array_equal(std.mean_, x64[:, block].mean(axis=1))
    np.testing.assert_array_equal(std.std_, x64[:, block].std(axis=1))
    whole = ((x64 - std.mean_[:, None]) / std.std_[:, None]).astype(np.float32)
    assert np.array_equal(std.transform(short_demo).signals.values, whole)
    calls = []
    assert prep.rowwise(x64[:7], lambda x, rows: calls.append(rows) or x * 2).dtype == np.float32
    assert calls == [slice(0, 3), slice(3, 6), slice(6, 7)]
