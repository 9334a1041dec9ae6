"""The command line's messages for what it was not given as it expects: an unknown option, a
run folder that does not exist, a file UnitScope writes given to ``info`` as a recording, the
result files of a run folder trained again."""
from __future__ import annotations

import json
import re

import pytest
import xarray as xr

from core.cli import main


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"unitscope {command}: error:") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder of an untrained shallow decoder on 60 s of the demo (config.json, model.pt)
    and its weights' model_hash."""
    from core.probing._base import model_hash
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(model="shallow", max_epochs=1))
    folder = tmp_path_factory.mktemp("runs") / "s1"
    ws.save(folder)
    return folder, model_hash(ws.model)


# ---- unknown options ----------------------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["train", "--data", "rec.edf", "--out", "x", "--bogus", "5"],
     "unrecognized option '--bogus'. unitscope train --help lists its options."),
    (["train", "--data", "rec.edf", "--out", "x", "--treads", "3"],
     "unrecognized option '--treads'. Did you mean '--threads'?"),
    (["train", "--data", "rec.edf", "--out", "x", "--l_freq=3"],
     "unrecognized option '--l_freq'. Did you mean '--l-freq'?"),
    (["import", "w.pt", "--data", "rec.edf", "--out", "x", "--threads", "1"],
     "unrecognized option '--threads'. It is an option of unitscope train, "),
    (["probe", "runs/x", "--bogus"], "unrecognized option '--bogus'."),
])
def test_an_unknown_option_is_named(argv, expected, capsys):
    """`train ... --bogus 5` said "unrecognized argument '5': give a recording with --data PATH"
    and never named --bogus: the option is named, with the closest valid one."""
    assert main(argv) == 2
    err = _one_line_error(capsys, argv[0])
    assert expected in err
    assert "give a recording with --data" not in err


def test_a_stray_path_still_gets_the_data_hint(capsys):
    assert main(["train", "rec.edf", "--out", "x", "--epochs", "2"]) == 2
    assert "unrecognized argument 'rec.edf': give a recording with --data PATH" in _one_line_error(capsys, "train")


# ---- run folders that do not exist --------------------------------------------------------

@pytest.mark.parametrize("command", [["probe"], ["occlude"], ["prune", "--curve"], ["deconv", "--signal", "output"],
                                     ["report"]])
def test_a_run_folder_that_does_not_exist_is_said_so(command, tmp_path, capsys):
    """It was called "not a UnitScope run folder (no config.json)"; a folder of a close name
    beside it is offered."""
    (tmp_path / "demo").mkdir()
    missing = tmp_path / "dmeo"
    assert main([command[0], str(missing), *command[1:]]) == 2
    err = _one_line_error(capsys, command[0])
    assert f"Run folder {str(missing)!r} does not exist. Did you mean {str(tmp_path / 'demo')!r}?" in err
    assert main([command[0], str(tmp_path / "a" / "b"), *command[1:]]) == 2
    assert (f"Run folder {str(tmp_path / 'a' / 'b')!r} does not exist, nor does the folder "
            f"{str(tmp_path / 'a')!r} above it.") in _one_line_error(capsys, command[0])
    # a recording given in its place ("The output file 'x.edf/probe.nc': 'x.edf' is a file, not a folder")
    (tmp_path / "rec.edf").write_bytes(b"0" * 256)
    assert main([command[0], str(tmp_path / "rec.edf"), *command[1:]]) == 2
    assert (f"{str(tmp_path / 'rec.edf')!r} is a file, not a run folder: unitscope {command[0]} reads the folder "
            f"that unitscope train --out writes") in _one_line_error(capsys, command[0])


def test_a_folder_without_config_keeps_its_message(tmp_path, capsys):
    assert main(["probe", str(tmp_path)]) == 2
    assert "is not a UnitScope run folder (no config.json)" in _one_line_error(capsys, "probe")


# ---- unitscope info on the files UnitScope writes -----------------------------------------

def test_info_describes_a_pruning_mask(tmp_path, capsys):
    """A --save-mask JSON got MNE's "Unsupported file type (.json). Consider using a dedicated
    reader function"."""
    from core.pruning import MaskSet

    sig = {"kind": "deep4", "n_chans": 8, "n_outputs": 1, "units": {"conv_2": 50, "conv_3": 100, "conv_4": 200}}
    path = MaskSet(sig).prune("conv_4", [1, 2]).prune("conv_2", [7]).save(tmp_path / "m1.json")
    assert main(["info", str(path)]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["mask"] == f"{path}: a pruning mask (unitscope prune --save-mask, the app's Export)"
    assert lines["decoder"] == "deep4, 8 channels, 1 output(s); layers conv_2 50, conv_3 100, conv_4 200"
    assert lines["pruned"] == "3 of 350 units: conv_2 1/50, conv_3 0/100, conv_4 2/200"
    assert lines["units"] == "conv_2: 7"  # conv_4's on the next line
    assert main(["info", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_pruned"] == 3 and s["pruned"] == {"conv_2": [7], "conv_3": [], "conv_4": [1, 2]}


def test_info_points_a_run_folders_own_files_to_the_folder(run_dir, capsys):
    folder, _ = run_dir
    for name, held in (("config.json", "is the configuration of"), ("model.pt", "holds the weights of")):
        assert main(["info", str(folder / name)]) == 2
        err = _one_line_error(capsys, "info")
        assert f"{str(folder / name)!r} {held} the run folder {str(folder)!r}: unitscope info {folder} describes" in err
        assert "Unsupported" not in err


@pytest.mark.parametrize("name, content, expected", [
    ("occ.json", b'{"block": "test"}', "is a JSON file but not a pruning mask"),
    ("report.html", b"<html></html>", "is an HTML page (unitscope report writes them): open it in a browser"),
    ("state.pt", b"\x80\x02", "a decoder's state dict becomes a run folder with unitscope import"),
    ("script.py", b"print(1)\n", "is no recording format UnitScope reads (.py)"),
])
def test_info_says_what_it_describes_for_other_files(name, content, expected, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["info", str(path)]) == 2
    err = _one_line_error(capsys, "info")
    assert expected in err and "unitscope info describes recordings" in err
    assert "Consider using a dedicated reader function" not in err


# ---- a run folder trained again ------------------------------------------------------------

def test_info_names_the_results_made_for_the_weights_before(run_dir, tmp_path, capsys):
    """Only a stale probe.nc was said; the pruning curves and kernels of the weights trained
    before are named too, as those unitscope report leaves out (a file without model_hash is
    taken as given, as the report takes it)."""
    import shutil

    folder, weights = run_dir
    here = shutil.copytree(folder, tmp_path / "run")
    before = "f" * 16
    for name, attrs in (("prune_curves.nc", {"method": "pruning_curve", "model_hash": before}),
                        ("deconv_output_valid.nc", {"method": "dunl", "signal": "output", "model_hash": before}),
                        ("deconv_output.nc", {"method": "dunl", "signal": "output"}),
                        ("deconv_unit_conv_time_spat_3.nc", {"method": "dunl", "signal": "unit:conv_time_spat:3",
                                                             "model_hash": weights})):
        xr.Dataset(attrs=attrs).to_netcdf(here / name, engine="h5netcdf")
    assert main(["info", str(here)]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["note"] == (
        "deconv_output_valid.nc, prune_curves.nc were made for the weights trained before, so unitscope report "
        f"leaves them out: unitscope deconv {here} --signal output --block valid and unitscope prune {here} --curve "
        "remake them for these")
    assert lines["next"] == f"unitscope probe {here}"
    (here / "prune_curves.nc").unlink()
    (here / "deconv_output_valid.nc").unlink()
    assert main(["info", str(here)]) == 0
    assert "note" not in capsys.readouterr().out


def test_info_names_the_results_report_leaves_out(run_dir, tmp_path, capsys):
    """info and report judge a run folder's results alike: the files info names are those the
    report leaves out."""
    import re
    import shutil

    folder, weights = run_dir
    here = shutil.copytree(folder, tmp_path / "run")
    for name, made_for in (("prune_curves.nc", "f" * 16), ("deconv_output.nc", "e" * 16),
                           ("deconv_output_all.nc", weights), ("deconv_output_valid.nc", None)):
        attrs = {"method": "dunl", "signal": "output"} if name.startswith("deconv_") else {"method": "pruning_curve"}
        xr.Dataset(attrs={**attrs, **({"model_hash": made_for} if made_for else {})}).to_netcdf(
            here / name, engine="h5netcdf")
    assert main(["info", str(here)]) == 0
    note = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())["note"]
    assert main(["report", str(here), "--out", str(tmp_path / "report.html")]) == 0
    left_out = re.findall(r"note: \S*/(\S+) was made for the weights trained before: left out of the report",
                          capsys.readouterr().err)
    assert note.startswith(f"{', '.join(sorted(left_out))} were made for the weights trained before")
    assert sorted(left_out) == ["deconv_output.nc", "prune_curves.nc"]


# ---- numbers out of range -------------------------------------------------------------------

@pytest.mark.parametrize("command", ["probe", "occlude", "prune", "deconv"])
@pytest.mark.parametrize("threads", ["0", "-3"])
def test_threads_below_one_are_refused(run_dir, capsys, command, threads):
    """--threads 0 or -3 became 1 without a word."""
    extra = {"probe": [], "occlude": ["--whole", "--channels", "G01"], "prune": ["--layer", "conv_time_spat", "--units", "0"],
             "deconv": ["--signal", "output"]}[command]
    assert main([command, str(run_dir[0]), *extra, "--threads", threads]) == 2
    assert f"--threads {threads}: give at least 1 thread" in _one_line_error(capsys, command)


def test_info_lists_at_most_twenty_event_types_by_name(tmp_path, capsys):
    """A file of thousands of event codes (a malformed BCI2000 header read as codes) printed
    191 KB of types; 20 are named, the rest counted, and --json keeps them all."""
    import mne
    import numpy as np

    raw = mne.io.RawArray(np.zeros((2, 3000)), mne.create_info(["C3", "C4"], 100.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations(np.arange(25) + 1.0, 0.1, [f"code{i}" for i in range(25)]))
    raw.save(tmp_path / "many_raw.fif", verbose="error")
    assert main(["info", str(tmp_path / "many_raw.fif")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("events"))
    assert "code19 x1" in line and "code20" not in line and "... 5 more types (--json lists all)" in line
    assert main(["info", str(tmp_path / "many_raw.fif"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["events"]) == 25


def test_prune_counts_only_the_units_it_masks_anew(label_run, tmp_path, capsys):
    """``--mask`` with units 1 and 2 of a layer, then ``--units 1,2,3`` of it: the line said
    "3 unit(s) masked" where one was (the total said 3)."""
    run = label_run[0]
    mask = tmp_path / "m.json"
    assert main(["prune", str(run), "--layer", "conv_time_spat", "--units", "1,2", "--save-mask", str(mask)]) == 0
    capsys.readouterr()
    assert main(["prune", str(run), "--mask", str(mask), "--layer", "conv_time_spat", "--units", "1,2,3"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("+ conv_time_spat"))
    assert line.startswith("+ conv_time_spat: 1 unit(s) masked (2 of those named were masked already) -> "), line
    assert "total: 3 units masked" in out


def test_deconv_cuts_a_named_band_at_nyquist_as_the_probe_does(edf_like, tmp_path, capsys):
    """At 200 Hz the probe's high gamma is 60-100 Hz; deconv refused channel:C3:high_gamma
    ("lower it below 100 Hz", advice a name cannot follow) and the band 60-100 too."""
    run = tmp_path / "run200"
    assert main(["train", "--data", str(edf_like), "--target", "events:T1,T2", "--tmin", "0", "--tmax", "2",
                 "--sfreq", "200", "--model", "shallow", "--epochs", "1", "--threads", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    out = tmp_path / "hg.nc"
    assert main(["deconv", str(run), "--signal", "channel:C3:high_gamma", "--epochs", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "note: high_gamma is 60-100 Hz at this run's 200 Hz (cut at Nyquist, as the probe cuts it)" in err
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["signal"].endswith(":60-100")
    assert main(["deconv", str(run), "--signal", "channel:C3:60-100", "--epochs", "2",
                 "--out", str(tmp_path / "edges.nc")]) == 0  # edges up to Nyquist: a high-pass
    capsys.readouterr()
    assert main(["deconv", str(run), "--signal", "channel:C3:60-101", "--epochs", "2"]) == 2
    assert "the band must lie below Nyquist (100 Hz)" in _one_line_error(capsys, "deconv")


def test_prune_shows_progress_while_it_measures_single_unit_drops(label_run, tmp_path, capsys):
    """Ranking by ablation measures every unit alone first: the whole network's 375 units took
    over a minute on two cores after one line and no sign of progress."""
    assert main(["prune", str(label_run[0]), "--curve", "--by", "ablation", "--ablation", "--fractions", "0.1",
                 "--orders", "most", "--out", str(tmp_path / "c.nc")]) == 0
    err = capsys.readouterr().err
    ranking = [ln for ln in err.splitlines() if ln.startswith("ranking ")]
    drops = [ln for ln in err.splitlines() if ln.startswith("single-unit drops ")]
    assert ranking and drops, err
    assert any(re.fullmatch(r"ranking \[[#.]+\] \d+/\d+ units of conv_time_spat", ln) for ln in ranking), ranking


def test_prune_ranks_by_the_single_unit_drops_of_a_curves_file_and_refuses_them_with_by_ablation(
        label_run, tmp_path, capsys):
    """A curves file written with --ablation given as --scores: "Score DataArray needs a 'unit'
    dim with 'layer' and 'index' coords" (its drops had lost their layer coordinate); with
    --by ablation the file was left unread without a word."""
    run = label_run[0]
    drops = tmp_path / "drops.nc"
    assert main(["prune", str(run), "--curve", "--ablation", "--fractions", "0.1", "--orders", "random",
                 "--layer", "conv_time_spat", "--out", str(drops)]) == 0
    capsys.readouterr()
    assert main(["prune", str(run), "--curve", "--layer", "conv_time_spat", "--scores", str(drops), "--fractions",
                 "0.1", "--orders", "most,least", "--out", str(tmp_path / "ranked.nc")]) == 0
    capsys.readouterr()
    with xr.open_dataset(tmp_path / "ranked.nc", engine="h5netcdf") as ds:
        assert "single-unit ablation drop" in ds.attrs["scores"]
    assert main(["prune", str(run), "--curve", "--by", "ablation", "--scores", str(drops)]) == 2
    assert "--by ablation measures each unit's drop itself (on --rank-block), so --scores is not read" in \
        _one_line_error(capsys, "prune")
