"""``unitscope occlude``: band occlusion of a saved run, headless; bands that a band-passed run's
filter removed are refused (occlude, deconv), and ones reaching outside its pass-band cautioned."""
import json

import pytest

from core.cli import main
from core.workspace import ASSETS_DIR

RUN = ASSETS_DIR / "demo-deep4"


def test_roles_and_channels_match_the_engine(capsys):
    from core.probing.validity import band_occlusions, role_cases
    from core.workspace import Workspace

    assert main(["occlude", str(RUN), "--roles", "--channels", "G07,G08", "--whole", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ws = Workspace.load(RUN)
    X, y = ws.eval_set("test")
    cases = {"all frequencies of G07,G08": ([6, 7], None), **{f"{r} band": c for r, c in role_cases(ws.recording.signals).items()}}
    occluded, ref = band_occlusions(ws.model, X, y, sfreq=ws.recording.sfreq, cases=cases)
    assert out["reference"] == pytest.approx(ref, abs=1e-4) and list(out["occluded"]) == list(cases)
    for k, v in occluded.items():
        assert out["occluded"][k] == pytest.approx(v, abs=1e-4)
        assert out["drop"][k] == pytest.approx(ref - v, abs=2e-4)
    assert out["drop"]["high_gamma band"] > 0.05 and abs(out["drop"]["beta band"]) < 0.01
    assert main(["occlude", str(RUN), "--channels", "G03", "--band", "60", "90"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("test pearson_r: 0.9") and lines[1].startswith("without 60-90 Hz of G03  0.9")


@pytest.mark.parametrize("argv, message", [
    (["--channels", "G99", "--band", "1", "4"], "Channels ['G99'] are not inputs of the decoder"),
    (["--channels", "G01"], "Give --band LO HI (Hz) or --whole with --channels"),
    (["--channels", "G01", "--band", "8", "4"], "the band edges are reversed"),
    ([], "Nothing to do"),
    (["--channels", "G01", "--band", "130", "140"], "below Nyquist (125 Hz)"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(["occlude", str(RUN), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("unitscope occlude: error:")


@pytest.fixture(scope="module")
def bandpassed_run(edf_like, tmp_path_factory):
    """A shallow decoder of T1 vs T2 on ``edf_like`` band-passed at 8-30 Hz (train --l-freq 8
    --h-freq 30), trained one epoch."""
    out = tmp_path_factory.mktemp("runs") / "bandpassed"
    assert main(["train", "--data", str(edf_like), "--target", "events:T1,T2", "--tmin", "0", "--tmax", "2",
                 "--model", "shallow", "--epochs", "1", "--threads", "1", "--l-freq", "8", "--h-freq", "30",
                 "--out", str(out)]) == 0
    return out


def test_occlude_refuses_a_band_the_runs_filter_removed(bandpassed_run, capsys):
    capsys.readouterr()
    assert main(["occlude", str(bandpassed_run), "--band", "1", "4", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unitscope occlude: error: --band 1 4: the band 1-4 Hz lies outside "
                                               "this run's band-pass (8-30 Hz)")
    assert err[0].endswith("give a band within 8-30 Hz.")


def test_occlude_cautions_on_a_band_reaching_outside_the_runs_band_pass(bandpassed_run, capsys):
    capsys.readouterr()
    assert main(["occlude", str(bandpassed_run), "--band", "4", "10", "--threads", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert ("caution: --band 4 10: the band 4-10 Hz reaches outside this run's band-pass (8-30 Hz): only 8-10 Hz "
            "of it is in the data the decoder saw") in err
    assert json.loads(out)["metric"] == "balanced_accuracy"  # stdout stays one JSON object
    assert main(["occlude", str(bandpassed_run), "--band", "8", "13", "--threads", "1"]) == 0
    assert "band-pass" not in capsys.readouterr().err  # within it: nothing said


def test_deconv_refuses_a_band_the_runs_filter_removed_before_the_fit(bandpassed_run, monkeypatch, capsys):
    from core.deconv.apply import EventDeconvolution

    def no_fit(*a, **kw):
        raise AssertionError("the band was fitted before it was refused")

    monkeypatch.setattr(EventDeconvolution, "run", no_fit)
    capsys.readouterr()
    assert main(["deconv", str(bandpassed_run), "--signal", "channel:C3:delta"]) == 2
    assert ("--signal channel:C3:delta: the band 1-4 Hz lies outside this run's band-pass (8-30 Hz)"
            in capsys.readouterr().err)


def test_deconv_cautions_on_a_band_reaching_outside_the_runs_band_pass(bandpassed_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["deconv", str(bandpassed_run), "--signal", "channel:C3:4-10", "--epochs", "1",
                 "--out", str(tmp_path / "d.nc")]) == 0
    assert ("caution: --signal channel:C3:4-10: the band 4-10 Hz reaches outside this run's band-pass (8-30 Hz)"
            in capsys.readouterr().err)


def test_a_run_resampled_up_refuses_bands_the_recording_never_held(edf_like, tmp_path, capsys):
    """--sfreq above the recording's rate is said at training; occlude then refuses a band
    above the recording's own Nyquist frequency, as a band-pass run refuses a filtered band."""
    out = tmp_path / "up"
    assert main(["train", "--data", str(edf_like), "--target", "events:T1,T2", "--tmin", "0", "--tmax", "2",
                 "--model", "shallow", "--epochs", "1", "--threads", "1", "--sfreq", "500", "--out", str(out)]) == 0
    assert ("caution: --sfreq 500 resamples the recording up from 250 Hz: it holds nothing above 125 Hz, so probe, "
            "occlude and deconv keep their bands below 125 Hz") in capsys.readouterr().err
    assert main(["occlude", str(out), "--band", "150", "200", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert ("--band 150 200: the band 150-200 Hz lies outside the band the recording holds (below 125 Hz: it was "
            "sampled at 250 Hz and resampled up for this run): the recording never held it") in err
    assert err.strip().endswith("it measures nothing; give a band below 125 Hz.")
