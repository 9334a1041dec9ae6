import json

import numpy as np
import pytest
import xarray as xr

from core._validation import UnitScopeError
from core.cli import main
from core.encoding.dre import DREConfig
from core.encoding.study import EncodingStopped, EncodingStudy

from encoding_helpers import one_thread

TINY = DREConfig(meg_init=10, hidden=16, subject_dim=4, n_epochs=2, batch_size=16, lr=5e-3)


@pytest.fixture(scope="module")
def result(reading_small):
    study = EncodingStudy(TINY, ablations=("no_init", "no_subject"), n_examples=4)
    with one_thread():
        return study.run(reading_small)


def test_result_layout(result, reading_small):
    assert list(result["model"].values) == ["dre", "trf", "rtrf", "no_init", "no_subject"]
    assert result["r"].dims == ("model", "subject", "time", "channel")
    assert result["predicted"].dims == ("model", "example", "channel", "time")
    assert result["actual"].dims == ("example", "channel", "time")
    assert result["r_drop"].dims == ("feature", "subject", "time", "channel")
    assert list(result["feature"].values) == ["word_freq", "word_length", "meg", "subject"]
    assert json.loads(result.attrs["dre_config"])["hidden"] == 16
    assert result.attrs["truth_latency_word_freq"] == reading_small.attrs["truth_latency_word_freq"]
    # METHODS 3.1's artefact rejection ran (the simulated reading holds no artefact epoch)
    assert json.loads(result.attrs["rejected_epochs"]) == {"train": 0, "valid": 0, "test": 0}
    assert result.attrs["reject_threshold"] == 16.0
    # scores are the post-onset means of the maps
    r = result["r"].sel(model="trf").sel(time=slice(0, None))
    assert float(result["score"].sel(model="trf")) == pytest.approx(float(np.nanmean(r.values)))
    # the examples are real test epochs: predicted and actual in the same units
    assert float(result["actual"].std()) > 0
    assert np.all(np.isfinite(result["predicted"].values))


def test_examples_keep_their_subject(result, reading_small):
    from core.encoding import split_epochs

    test = split_epochs(reading_small)["test"]
    subj = test["subject"].values.astype(str)
    # each stored example's subject is the one whose test epoch it is (same actual data)
    for k in range(result.sizes["example"]):
        s = str(result["example_subject"].values[k])
        assert s in set(subj)
        match = [i for i in np.flatnonzero(subj == s)
                 if np.allclose(test["meg"].values[i], result["actual"].values[k])]
        assert match, f"example {k} is not a test epoch of subject {s}"


def test_stop_flag_ends_the_run_without_a_result(reading_small):
    import threading

    calls = []
    flag = threading.Event()

    def progress(msg):
        calls.append(msg)
        if msg.startswith("dre epoch"):
            flag.set()  # the user presses Stop during the first DRE epoch

    study = EncodingStudy(TINY, baselines=("trf",), ablations=())
    with one_thread(), pytest.raises(EncodingStopped, match="while fitting dre"):
        study.run(reading_small, progress=progress, stop=flag)
    assert not any(m.startswith("fitting trf") for m in calls)  # nothing ran after the stop
    with pytest.raises(EncodingStopped, match="before fitting dre"):
        study.run(reading_small, stop=lambda: True)


def test_netcdf_round_trip(result, tmp_path):
    path = tmp_path / "enc.nc"
    result.to_netcdf(path, engine="h5netcdf")
    back = xr.load_dataset(path, engine="h5netcdf")
    xr.testing.assert_allclose(back["r"], result["r"])


def test_bad_options():
    with pytest.raises(UnitScopeError, match="Allowed values are 'trf' and 'rtrf', but got 'ols'"):
        EncodingStudy(baselines=("ols",))
    with pytest.raises(UnitScopeError, match="'no_inits'.*Did you mean 'no_init'"):
        EncodingStudy(ablations=("no_inits",))


def test_cli_encode(tmp_path, capsys):
    out = tmp_path / "enc.nc"
    code = main(["encode", "--data", "synthetic-reading", "--subjects", "2", "--words", "150",
                 "--epochs", "1", "--hidden", "8", "--baselines", "trf", "--out", str(out),
                 "--threads", "1", "--reject", "20"])
    assert code == 0
    text = capsys.readouterr().out
    assert "dre: post-onset mean r" in text and "trf: post-onset mean r" in text
    assert "importance word_length" in text and f"wrote {out}" in text
    ds = xr.load_dataset(out, engine="h5netcdf")
    assert list(ds["model"].values) == ["dre", "trf"]
    assert ds.attrs["reject_threshold"] == 20.0
    dre, trf = float(ds["score"].sel(model="dre")), float(ds["score"].sel(model="trf"))
    # one pass over 2 x 150 words: the DRE seldom beats the ridge, and is then said to have learnt little
    assert (f"note: the DRE scores below the TRF baseline (r {dre:.3f} vs {trf:.3f})" in text) == (dre <= trf)


def test_cli_encode_errors(tmp_path, capsys):
    assert main(["encode", "--data", "synthetic-readin", "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "Unknown data 'synthetic-readin'" in err and "Did you mean 'synthetic-reading'" in err
    assert main(["encode", "--data", str(tmp_path / "missing.nc")]) == 2
    assert "No such file" in capsys.readouterr().err
    bad = tmp_path / "bad.nc"
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(bad)
    assert main(["encode", "--data", str(bad)]) == 2
    assert "lacks the 'meg' variable" in capsys.readouterr().err


def test_artefact_epochs_dropped_are_counted_in_the_result_and_said_in_the_encoding_view(reading_small):
    from dashboard.views.encoding import _epochs_text

    data = reading_small.copy(deep=True)
    late = np.argsort(data["onset_time"].values)[-3:]  # test epochs (the split is chronological)
    data["meg"].values[late, :, 40:] += 300 * float(np.abs(data["meg"].values).std())
    study = EncodingStudy(DREConfig(meg_init=10, hidden=8, subject_dim=2, n_epochs=1, batch_size=16),
                          baselines=(), importance=False, n_examples=0)
    said = []
    with one_thread():
        result = study.run(data, progress=said.append)
    dropped = json.loads(result.attrs["rejected_epochs"])
    assert dropped["test"] >= 1 and dropped["train"] == 0 and sum(dropped.values()) <= 3
    assert any(m.startswith(f"dropped 0 train, 0 valid, {dropped['test']} test epochs") for m in said), said
    text = _epochs_text(result.attrs["n_epochs"], result.attrs["rejected_epochs"])
    assert text.endswith(f"artefact epochs dropped: train 0, valid 0, test {dropped['test']}")
    assert "dropped" not in _epochs_text(result.attrs["n_epochs"], '{"train": 0, "valid": 0, "test": 0}')


def test_a_dre_that_does_not_beat_the_linear_baselines_is_said_to_have_learnt_little():
    from core.cautions import dre_note
    from dashboard.views.encoding import score_html

    note = dre_note({"dre": 0.039, "trf": 0.181, "rtrf": 0.201})
    assert note.startswith("the DRE scores below the RTRF baseline (r 0.039 vs 0.201): it has learnt no more")
    assert dre_note({"dre": 0.284, "trf": 0.155, "rtrf": 0.257}) == ""  # the shipped result
    assert dre_note({"dre": 0.1}) == "" and dre_note({"trf": 0.1, "rtrf": 0.2}) == ""  # nothing to compare
    assert dre_note({"dre": 0.1, "trf": float("nan")}) == ""
    assert "us-dre-note" in score_html({"dre": 0.039, "trf": 0.181})
    assert "us-dre-note" not in score_html({"dre": 0.284, "trf": 0.155, "rtrf": 0.257})
