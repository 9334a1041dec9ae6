"""Options are checked before any data are read or anything computed, and said in the options'
own names: an output path that cannot be written, a seed out of range, deconv's bin and kernel
lengths, a mask of another decoder, a fine-tune of 0 epochs, pruning-curve options. And the
pruning-curve table's footnote on "-" only where a cell shows one."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from core.cli import main


@pytest.fixture()
def no_data(monkeypatch):
    """Reading a run folder's data fails the test: the option had to be refused before."""
    from core import workspace

    def refuse(*a, **kw):
        raise AssertionError("the data were read before the option was refused")

    monkeypatch.setattr(workspace.Workspace, "load", refuse)


@pytest.mark.parametrize("command", [
    ["probe"], ["prune", "--curve"], ["deconv", "--signal", "output"], ["report"]])
def test_an_out_that_is_a_folder_is_refused_before_the_data_are_read(command, label_run, tmp_path, no_data,
                                                                     capsys):
    rc = main([command[0], str(label_run[0]), *command[1:], "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"unitscope {command[0]}: error: --out {str(tmp_path)!r} is a folder")
    example = "report.html" if command[0] == "report" else "result.nc"  # the file name it suggests
    assert repr(str(tmp_path / example)) in err


def test_encode_refuses_an_out_folder_before_making_its_data(tmp_path, monkeypatch, capsys):
    from core.cli import encode

    def refuse(*a, **kw):
        raise AssertionError("the data were made before --out was refused")

    monkeypatch.setattr(encode, "load_data", refuse)
    assert main(["encode", "--data", "synthetic-reading", "--quick", "--out", str(tmp_path)]) == 2
    assert f"--out {str(tmp_path)!r} is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["probe"], ["prune", "--curve"], ["report"]])
def test_an_out_inside_a_file_is_refused_before_the_data_are_read(command, label_run, tmp_path, no_data, capsys):
    (tmp_path / "afile").write_text("")
    out = tmp_path / "afile" / "result.nc"
    rc = main([command[0], str(label_run[0]), *command[1:], "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{str(tmp_path / 'afile')!r} is a file, not a folder" in err


@pytest.fixture()
def read_only(monkeypatch, tmp_path):
    """``tmp_path / "ro"``, a folder in which no file can be made (as a folder of another user
    is; root writes anywhere, so the refusal is the file system's, made here)."""
    import tempfile

    ro = tmp_path / "ro"
    ro.mkdir()
    made = tempfile.TemporaryFile

    def refuse(*a, dir=None, **kw):
        if dir is not None and str(dir).startswith(str(ro)):
            raise PermissionError(13, "Permission denied")
        return made(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    return ro


@pytest.mark.parametrize("command", [
    ["probe"], ["prune", "--curve"], ["deconv", "--signal", "output"], ["report"],
    ["prune", "--layer", "conv_2", "--units", "1", "--save-mask"]])
def test_an_out_in_a_folder_one_cannot_write_to_is_refused_before_the_data_are_read(
        command, label_run, read_only, no_data, capsys):
    """A probe (prune curves, kernels) into a folder one cannot write to was computed in full,
    then lost: "[Errno 13] Permission denied: '.../.p.nc.b00zskvh.tmp'"."""
    out = read_only / "sub" / "result.nc"  # (a folder that does not exist yet: the one above is tried)
    option = [] if command[-1] == "--save-mask" else ["--out"]
    rc = main([command[0], str(label_run[0]), *command[1:], *option, str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"{str(out)!r}: cannot write in the folder {str(read_only)!r} (Permission denied)" in err, err


def test_the_default_out_beside_a_run_one_cannot_write_to_is_refused_first(label_run, tmp_path, monkeypatch,
                                                                         capsys):
    import tempfile

    run = tmp_path / "run"
    shutil.copytree(label_run[0], run)
    made = tempfile.TemporaryFile

    def refuse(*a, dir=None, **kw):
        if dir is not None and str(dir) == str(run):
            raise PermissionError(13, "Permission denied")
        return made(*a, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    for command in (["probe"], ["prune", "--curve"]):
        assert main([command[0], str(run), *command[1:]]) == 2
        assert f"cannot write in the folder {str(run)!r}" in capsys.readouterr().err


def test_encode_refuses_an_out_it_cannot_write_before_making_its_data(read_only, monkeypatch, capsys):
    from core.cli import encode

    monkeypatch.setattr(encode, "load_data", lambda *a, **kw: pytest.fail("the data were made first"))
    assert main(["encode", "--data", "synthetic-reading", "--quick", "--out", str(read_only / "e.nc")]) == 2
    assert "cannot write in the folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["probe"], ["prune", "--curve"], ["deconv", "--signal", "output"]])
@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5"])
def test_a_seed_out_of_range_is_an_option_error(command, seed, label_run, no_data, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command[0], str(label_run[0]), *command[1:], "--seed", seed])
    assert exc.value.code == 2
    assert "argument --seed: expected a whole number from 0 to 4294967295" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--bin-seconds", "5"], "Invalid value for --kernel-seconds: a kernel spans at least one bin (--bin-seconds 5), "
                             "got 2; give a longer --kernel-seconds or a shorter --bin-seconds."),
    (["--bin-seconds", "0"], "Invalid value for --bin-seconds: expected a bin width of more than 0 s, got 0."),
    (["--kernel-seconds", "0.01"], "Invalid value for --kernel-seconds"),
    (["--lag-start", "nan"], "Invalid value for --lag-start"),
    (["--epochs", "0"], "--epochs 0: give at least 1 epoch."),
])
def test_deconv_says_its_numbers_in_the_options_names_before_the_data_are_read(argv, message, label_run, no_data,
                                                                             capsys):
    assert main(["deconv", str(label_run[0]), "--signal", "channel:C3:8-13", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "_seconds" not in err


def test_deconv_refuses_a_bin_shorter_than_a_sample_in_the_options_names(label_run, capsys):
    assert main(["deconv", str(label_run[0]), "--signal", "channel:C3:8-13", "--bin-seconds", "0.001"]) == 2
    assert ("Invalid value for --bin-seconds: a bin holds at least one sample, 0.004 s at this run's sampling rate "
            "of 250 Hz, got 0.001.") in capsys.readouterr().err


def test_deconv_refuses_a_mask_of_another_decoder_before_the_fit(label_run, tmp_path, monkeypatch, capsys):
    from core.deconv.apply import EventDeconvolution
    from core.pruning import MaskSet
    from core.workspace import ASSETS_DIR, Workspace

    other = MaskSet.for_model(Workspace.load(ASSETS_DIR / "demo-deep4").model).save(tmp_path / "deep4_mask.json")

    def no_fit(*a, **kw):
        raise AssertionError("the unmasked fit ran before the mask was refused")

    monkeypatch.setattr(EventDeconvolution, "run", no_fit)
    run = shutil.copytree(label_run[0], tmp_path / "run")
    assert main(["deconv", str(run), "--signal", "channel:C3:8-13", "--mask", str(other)]) == 2
    assert "This mask was saved for" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--layer", "conv_time_spat", "--units", "1", "--finetune", "--epochs", "0"],
     "Invalid value for --epochs: the fine-tune needs at least 1 epoch, got 0."),
    (["--curve", "--finetune"], "--finetune fine-tunes the decoder with the units of --layer NAME --units LIST"),
    (["--layer", "conv_time_spat", "--units", "1", "--out", "c.nc"], "--out names the file of the pruning curves"),
    (["--curve", "--repeats", "0"], "Invalid value for --repeats: the random order needs at least 1 draw, got 0."),
    (["--curve", "--fractions", "0,2"], "Invalid --fractions '0,2': fractions of the units pruned lie from 0 to 1, "
                                        "got 2."),
    (["--curve", "--orders", "mots"], "Invalid --orders 'mots': expected a comma-separated list of most, least, "
                                      "random, got 'mots'. Did you mean 'most'?"),
])
def test_prune_options_are_refused_before_the_data_are_read(argv, message, label_run, no_data, capsys):
    assert main(["prune", str(label_run[0]), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_prune_refuses_a_mask_of_another_decoder_before_the_data_are_read(label_run, tmp_path, no_data, capsys):
    from core.pruning import MaskSet
    from core.workspace import ASSETS_DIR, load_run_model

    mcfg = json.loads((ASSETS_DIR / "demo-deep4" / "config.json").read_text())["model"]
    other = MaskSet.for_model(load_run_model(ASSETS_DIR / "demo-deep4", mcfg)).save(tmp_path / "deep4_mask.json")
    assert main(["prune", str(label_run[0]), "--mask", str(other)]) == 2
    assert "This mask was saved for" in capsys.readouterr().err


def _curves(metric: np.ndarray) -> xr.Dataset:
    """Regression pruning curves of one layer (order most, least; three fractions)."""
    return xr.Dataset({"metric": (("order", "fraction"), metric)},
                      coords={"order": ["most", "least"], "fraction": [0.0, 0.5, 1.0]},
                      attrs={"metric": "pearson_r", "baseline": 0.2, "block": "test", "layers": "conv_4",
                             "scores": "probe.nc"})


def test_the_curve_tables_dash_footnote_is_printed_only_when_a_cell_shows_a_dash():
    from core.cli.prune import curve_lines

    negative = curve_lines(_curves(np.array([[0.2, -0.05, -0.1], [0.2, 0.1, -0.02]])))
    assert "  -0.0500" in "\n".join(negative)
    assert not any(line.startswith("-:") for line in negative)  # "-0.05" is no undefined cell
    undefined = curve_lines(_curves(np.array([[0.2, -0.05, np.nan], [0.2, 0.1, np.nan]])))
    assert undefined[-1].startswith("-: undefined: the decoder's output does not vary")


def test_report_kernels_of_a_label_decoder_are_refused_before_the_data_are_read(label_run, tmp_path, no_data,
                                                                             capsys):
    """``report --kernels`` on a label run read the data, then aborted the whole report with
    "Deconvolving a decoder's signals needs a dense (continuous-target) decoder"."""
    rc = main(["report", str(label_run[0]), "--kernels", "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and "--kernels fits DUNL kernels of a dense decoder's output" in err and "leave out --kernels" in err
    assert not (tmp_path / "r.html").exists()
