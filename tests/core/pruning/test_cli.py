"""``unitscope prune RUN_DIR``: units mode, curves as netCDF, bad input exits 2 with one line."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xarray as xr

from core.cli import main
from core.cli.prune import parse_units


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from core.training import TrainConfig
    from core.workspace import DataSpec, Workspace

    ws = Workspace.create(DataSpec(duration=60.0), TrainConfig(n_times=600))
    return ws.save(tmp_path_factory.mktemp("run"))


def test_units_mode_prints_changes_and_saves_the_mask(run_dir, tmp_path, capsys):
    mask = tmp_path / "mask.json"
    rc = main(["prune", str(run_dir), "--layer", "conv_3", "--units", "1,2,5-7", "--layer", "conv_4", "--units", "0",
               "--save-mask", str(mask), "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"\+ conv_3: 5 unit\(s\) masked -> -?\d\.\d{4} \([+-]\d\.\d{4}\)", out)
    assert "total: 6 units masked" in out
    assert json.loads(mask.read_text())["pruned"]["conv_3"] == [1, 2, 5, 6, 7]
    assert main(["prune", str(run_dir), "--mask", str(mask)]) == 0
    assert "with 6 units masked" in capsys.readouterr().out


@pytest.mark.slow
def test_finetune_after_pruning(run_dir, capsys):
    rc = main(["prune", str(run_dir), "--layer", "conv_4", "--units", "0-99", "--finetune", "--epochs", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and re.search(r"fine-tune \(\d+ steps\): -?\d\.\d{4} -> -?\d\.\d{4}", out)


def test_curve_mode_writes_netcdf(run_dir, tmp_path, capsys):
    scores = xr.Dataset({"amp_stat_all": ("unit", np.linspace(0, 1, 375)),
                         "phase_stat_all": ("unit", np.linspace(1, 0, 375))},
                        coords={"layer": ("unit", ["conv_time_spat"] * 25 + ["conv_2"] * 50 + ["conv_3"] * 100
                                          + ["conv_4"] * 200),
                                "index": ("unit", np.r_[np.arange(25), np.arange(50), np.arange(100), np.arange(200)])})
    scores.to_netcdf(tmp_path / "probe.nc", engine="h5netcdf")
    out_nc = tmp_path / "curves.nc"
    rc = main(["prune", str(run_dir), "--curve", "--layer", "conv_4", "--scores", str(tmp_path / "probe.nc"),
               "--fractions", "0,0.5", "--repeats", "2", "--ablation", "--out", str(out_nc)])
    out = capsys.readouterr().out
    assert rc == 0 and "ranked by probe.nc (either, max)" in out and f"wrote {out_nc}" in out
    assert "random 95% band of 2 orders (too few to mean much)" in out  # a band of 2 orders is said to be one
    with xr.open_dataset(out_nc, engine="h5netcdf") as ds:
        assert list(ds["order"].values) == ["most", "least", "random"]
        assert ds["metric"].shape == (3, 2) and ds.sizes["unit"] == 200
        assert ds.attrs["layers"] == "conv_4" and ds.attrs["by"] == "either"
        np.testing.assert_allclose(ds["metric"].sel(fraction=0.0), ds.attrs["baseline"], atol=1e-6)


def test_a_probe_of_other_weights_is_refused_and_one_of_other_code_noted(run_dir, tmp_path, capsys):
    """A run folder trained again keeps its old probe.nc: ranking by it would rank other units."""
    from core.probing import ProbeConfig, probe_units
    from core.probing._base import model_hash
    from core.workspace import Workspace

    ws = Workspace.load(run_dir)
    X = ws.windows("train")[:8]
    ds = probe_units(ws.model, X, sfreq=ws.recording.sfreq, config=ProbeConfig(n_iterations=1, n_windows=8, n_null=1))
    argv = ["prune", str(run_dir), "--curve", "--layer", "conv_4", "--fractions", "0,0.5", "--orders", "most,least",
            "--scores", str(tmp_path / "probe.nc"), "--out", str(tmp_path / "c.nc")]
    ds.to_netcdf(tmp_path / "probe.nc", engine="h5netcdf")
    assert main(argv) == 0 and "other probing code" not in capsys.readouterr().err
    ds.attrs["code_version"] = "0123456789ab"  # an earlier UnitScope's probe
    ds.to_netcdf(tmp_path / "probe.nc", engine="h5netcdf")
    assert main(argv) == 0
    assert "note: probe.nc was computed by other probing code (an earlier UnitScope)" in capsys.readouterr().err
    ds.attrs["model_hash"] = "f" * 16
    assert ds.attrs["model_hash"] != model_hash(ws.model)
    ds.to_netcdf(tmp_path / "probe.nc", engine="h5netcdf")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "was made for other weights than the decoder in" in err and err.count("\n") == 1


def test_curves_ranked_by_each_units_own_ablation_drop(run_dir, tmp_path, capsys):
    """The drops that rank the units are measured on the validation block, the curves on the
    test block: ranked on the block they then measure, the units follow its noise."""
    from core.pruning import MaskEvaluator, ablation_effects
    from core.workspace import Workspace

    out_nc = tmp_path / "curves.nc"
    rc = main(["prune", str(run_dir), "--curve", "--layer", "conv_3", "--by", "ablation", "--fractions", "0,0.1",
               "--orders", "most,least", "--out", str(out_nc)])
    captured = capsys.readouterr()
    assert rc == 0 and "ranked by single-unit ablation drop on the valid block" in captured.out
    ws = Workspace.load(run_dir)
    ev_valid = MaskEvaluator(ws.model, *ws.eval_set("valid"), task=ws.task)
    ev = MaskEvaluator(ws.model, *ws.eval_set("test"), task=ws.task)
    drop = np.nan_to_num(ablation_effects(ev_valid, layers="conv_3").values)
    assert not np.allclose(drop, np.nan_to_num(ablation_effects(ev, layers="conv_3").values))
    most, least = np.argsort(-drop, kind="stable")[:10], np.argsort(drop, kind="stable")[:10]
    with xr.open_dataset(out_nc, engine="h5netcdf") as ds:
        assert float(ds["metric"].sel(order="most", fraction=0.0)) == pytest.approx(ev.baseline, abs=1e-6)
        for order, units in (("most", most), ("least", least)):
            assert float(ds["metric"].sel(order=order, fraction=0.1)) == pytest.approx(
                ev.evaluate(ev.new_masks().prune("conv_3", [int(u) for u in units])), abs=1e-6)
    # measured on the validation block, ranked on the test block; never ranked where measured
    assert main(["prune", str(run_dir), "--curve", "--layer", "conv_3", "--by", "ablation", "--block", "valid",
                 "--fractions", "0,0.1", "--orders", "most", "--out", str(out_nc)]) == 0
    assert "ablation drop on the test block" in capsys.readouterr().out
    assert main(["prune", str(run_dir), "--curve", "--by", "ablation", "--rank-block", "test"]) == 2
    assert "--rank-block test is the measured block" in capsys.readouterr().err
    assert main(["prune", str(run_dir), "--curve", "--rank-block", "valid"]) == 2
    assert "it goes with --by ablation" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["--layer", "conv_5", "--units", "1"], r"Unknown layer 'conv_5'"),
    (["--layer", "conv_2", "--units", "50"], r"Unit index 50 is out of range for layer 'conv_2', which has 50 units"),
    (["--layer", "conv_2", "--units", "a,b"], "Invalid unit list 'a,b'"),
    (["--units", "1"], "--units needs --layer"),
    ([], "Nothing to do"),
    (["--curve", "--by", "phase"], "needs the probe results"),
])
def test_bad_input_exits_2_with_one_line(run_dir, capsys, argv, match):
    rc = main(["prune", str(run_dir)] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("unitscope prune: error:") and err.count("\n") == 1
    assert re.search(match, err)


def test_mask_of_another_architecture_is_refused(run_dir, tmp_path, capsys):
    from core.models import build_model
    from core.pruning import MaskSet

    other = MaskSet.for_model(build_model("shallow", n_chans=32, n_outputs=1, n_times=600)).save(tmp_path / "m.json")
    assert main(["prune", str(run_dir), "--mask", str(other)]) == 2
    assert "saved for shallow" in capsys.readouterr().err


def test_parse_units():
    assert parse_units("3, 1-3,9") == [3, 1, 2, 3, 9]


def test_a_decoder_at_chance_gets_a_caution(run_dir, tmp_path, capsys):
    """The same decoder with its output's sign as it is and flipped: one has a test r above 0,
    the other below; only the one below is said to decode at chance (curves and units alike)."""
    import shutil

    import torch

    from core.pruning import MaskEvaluator
    from core.workspace import Workspace

    ws = Workspace.load(run_dir)
    r = MaskEvaluator(ws.model, *ws.eval_set("test"), task=ws.task).baseline
    flipped = shutil.copytree(run_dir, tmp_path / "flipped")
    state = torch.load(flipped / "model.pt", weights_only=True)
    for key in ("final_layer.conv_classifier.weight", "final_layer.conv_classifier.bias"):
        state[key] = -state[key]  # the output negated: test r becomes -r
    torch.save(state, flipped / "model.pt")
    above, below = (run_dir, flipped) if r > 0 else (flipped, run_dir)
    curve = ["--curve", "--layer", "conv_4", "--fractions", "0,0.5", "--orders", "random", "--repeats", "2"]
    assert main(["prune", str(below), *curve, "--out", str(tmp_path / "a.nc")]) == 0
    err = capsys.readouterr().err
    assert f"caution: the unpruned decoder's test pearson_r is {-abs(r):.4f}, not above chance (0)" in err
    assert main(["prune", str(below), "--layer", "conv_4", "--units", "1"]) == 0
    assert "not above chance" in capsys.readouterr().err
    assert main(["prune", str(above), *curve, "--out", str(tmp_path / "b.nc")]) == 0
    assert "caution" not in capsys.readouterr().err
    # removing a band of the decoder at chance: the same caution (stdout stays one JSON object)
    assert main(["occlude", str(below), "--band", "8", "30", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["reference"] == pytest.approx(-abs(r), abs=1e-4)
    assert (f"caution: the decoder's test pearson_r is {-abs(r):.4f}, not above chance (0): what removing a band "
            "changes says nothing") in err
    assert main(["occlude", str(above), "--band", "8", "30"]) == 0
    assert "caution" not in capsys.readouterr().err


def test_a_curve_to_every_unit_pruned_prints_undefined_not_nan(run_dir, tmp_path, capsys):
    """With every unit of conv_4 pruned the output is a constant and Pearson r undefined: the
    table printed 'nan' with no word; it prints '-' and says why."""
    assert main(["prune", str(run_dir), "--curve", "--layer", "conv_4", "--fractions", "0,1", "--orders", "most",
                 "--repeats", "2", "--out", str(tmp_path / "c.nc")]) == 0
    out = capsys.readouterr().out
    last = [line for line in out.splitlines() if line.strip().startswith("1.00")][0]
    assert last.split()[1:] == ["-"] and "nan" not in out  # the one order asked for
    assert "-: undefined: the decoder's output does not vary" in out
    assert np.isnan(xr.load_dataset(tmp_path / "c.nc")["metric"].sel(fraction=1.0).values).all()
    # info --json is strict JSON: the undefined point is null (a bare NaN is refused by JSON readers)
    assert main(["info", str(tmp_path / "c.nc"), "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text
    import json

    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in info --json"))
