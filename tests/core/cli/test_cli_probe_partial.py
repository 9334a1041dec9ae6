"""An interrupted ``unitscope probe`` (Ctrl-C) never replaces a complete probe.nc: its partial
result goes to probe.partial.nc beside it, and ``prune`` and ``report`` say when the probe they
use is partial; ``prune`` refuses one stopped before its first iteration."""
from __future__ import annotations

import contextlib
import io
import itertools
import shutil

import pytest
import xarray as xr

from core.cli import main

PROBE = ["--iterations", "4", "--windows", "8", "--threads", "1"]


def _interrupted_after(k: int):
    """``ProbeRun.__iter__`` that raises KeyboardInterrupt (Ctrl-C) after ``k`` iterations."""
    from core.probing._run import ProbeRun

    iterate = ProbeRun.__iter__

    def it(self):
        yield from itertools.islice(iterate(self), k)
        raise KeyboardInterrupt

    return it


def _cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def probed(label_run, tmp_path_factory):
    """A copy of ``label_run`` with a complete probe.nc, then probed again and interrupted after
    one iteration of 4, then once more before any: (run folder, probe.nc's bytes before the
    interruptions, [(exit code, stdout, stderr) of each interrupted probe, whether the second wrote
    a probe.partial.nc])."""
    from core.probing._run import ProbeRun

    run = shutil.copytree(label_run[0], tmp_path_factory.mktemp("partial") / "run")
    rc, _, err = _cli(["probe", str(run), *PROBE])
    assert rc == 0, err
    complete = (run / "probe.nc").read_bytes()
    said = []
    for k in (1, 0):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ProbeRun, "__iter__", _interrupted_after(k))
            if k == 0 and (run / "probe.partial.nc").exists():
                (run / "probe.partial.nc").rename(run / "first.partial.nc")
            said.append(_cli(["probe", str(run), *PROBE]))
    said.append((run / "probe.partial.nc").exists())  # written by the probe interrupted before any iteration
    if (run / "first.partial.nc").exists():
        (run / "first.partial.nc").rename(run / "probe.partial.nc")
    return run, complete, said


def test_an_interrupted_probe_writes_its_partial_result_beside_and_keeps_the_complete_one(probed):
    run, complete, said = probed
    rc, _, err = said[0]
    assert rc == 130
    assert (run / "probe.nc").read_bytes() == complete  # not replaced by the partial result
    assert f"interrupted after 1 of 4 iterations per pass (25%): writing the partial result to {run / 'probe.partial.nc'}" \
        in err and f"{run / 'probe.nc'} was not replaced" in err
    assert "probe.partial.nc holds a probe stopped before its end, after 1 of 4 iterations per pass (25%)" in err
    with xr.open_dataset(run / "probe.partial.nc", engine="h5netcdf") as ds:
        assert ds.attrs["progress"] == 0.25 and ds.attrs["amp_iterations"] == 1 == ds.attrs["phase_iterations"]


def test_a_probe_interrupted_before_its_first_iteration_writes_nothing(probed):
    run, complete, said = probed
    rc, _, err = said[1]
    assert rc == 130 and (run / "probe.nc").read_bytes() == complete
    assert "interrupted before every pass had completed an iteration (0 of 4): nothing written" in err
    assert not said[2]  # no probe.partial.nc either


@pytest.fixture(scope="module")
def never_iterated(probed, tmp_path_factory):
    """A probe result stopped before its first iteration, as the old ``unitscope probe`` wrote
    it over probe.nc on Ctrl-C ("0 of 4 iterations per pass")."""
    from core.probing import ProbeConfig
    from core.probing.pipeline import finish, start_probe, workspace_windows
    from core.training import atomic_write_netcdf
    from core.workspace import Workspace

    ws = Workspace.load(probed[0])
    X, y = workspace_windows(ws, "train")
    run = start_probe(ws.model, X, sfreq=ws.recording.sfreq, config=ProbeConfig(n_iterations=4, n_windows=8), y=y,
                      task=ws.task, ch_names=ws.recording.ch_names)
    path = tmp_path_factory.mktemp("zero") / "probe.nc"
    atomic_write_netcdf(finish(run), path)
    return path


CURVE = ["--curve", "--layer", "conv_time_spat", "--orders", "most", "--fractions", "0,0.5", "--threads", "1"]


def test_prune_refuses_to_rank_by_a_probe_stopped_before_its_first_iteration(probed, never_iterated, tmp_path):
    run = probed[0]
    rc, out, err = _cli(["prune", str(run), *CURVE, "--scores", str(never_iterated), "--out", str(tmp_path / "c.nc")])
    assert rc == 2 and out == "" and not (tmp_path / "c.nc").exists()
    assert f"{str(never_iterated)!r} holds a probe stopped before its end, after 0 of 4 iterations per pass (0%)" in err
    assert f"Run 'unitscope probe {run}' to its end" in err


def test_prune_cautions_when_it_ranks_by_a_partial_probe(probed, tmp_path):
    run = probed[0]
    rc, out, err = _cli(["prune", str(run), *CURVE, "--scores", str(run / "probe.partial.nc"),
                         "--out", str(tmp_path / "c.nc")])
    assert rc == 0, err
    assert ("caution: ranking by probe.partial.nc, a probe stopped before its end, after 1 of 4 iterations per "
            "pass (25%)") in err
    assert "partial: stopped before its end" in out.splitlines()[0]  # "ranked by ..." says it too
    with xr.open_dataset(tmp_path / "c.nc", engine="h5netcdf") as curves:
        assert "partial: stopped before its end, after 1 of 4" in curves.attrs["scores"]


def test_the_report_says_when_its_probe_is_partial(probed, tmp_path):
    run = probed[0]
    rc, _, err = _cli(["report", str(run), "--probe", str(run / "probe.partial.nc"), "--out", str(tmp_path / "r.html")])
    assert rc == 0, err
    assert "holds a probe stopped before its end, after 1 of 4 iterations per pass (25%)" in err
    text = (tmp_path / "r.html").read_text()
    assert "the probe result is partial, stopped before its end, after 1 of 4 iterations per pass (25%)" in text
    rc, _, err = _cli(["report", str(run), "--out", str(tmp_path / "r2.html")])  # the complete probe.nc
    assert rc == 0 and "is partial" not in (tmp_path / "r2.html").read_text()


def test_report_refuses_a_probe_without_maps_for_units_and_a_file_that_is_no_probe(probed, tmp_path):
    """A probe saved with --no-maps drew a traceback into the report's units section (exit 0),
    and pruning curves given as --probe were called "computed by other probing code"."""
    run = probed[0]
    with xr.open_dataset(run / "probe.nc", engine="h5netcdf") as f:
        probe = f.load()
    unit = str(probe["unit"].values[0])
    probe.drop_vars(["amp_corr", "phase_corr"]).to_netcdf(tmp_path / "nomaps.nc", engine="h5netcdf")
    rc, _, err = _cli(["report", str(run), "--probe", str(tmp_path / "nomaps.nc"), "--units", unit,
                       "--out", str(tmp_path / "r.html")])
    assert rc == 2 and "was saved without its channel x frequency maps (unitscope probe --no-maps)" in err, err
    assert "Traceback" not in err and not (tmp_path / "r.html").exists()
    rc, _, err = _cli(["report", str(run), "--probe", str(tmp_path / "nomaps.nc"), "--out", str(tmp_path / "r.html")])
    assert rc == 0, err  # without --units it is reported
    curves = xr.Dataset({"metric": ("fraction", [0.5, 0.4])}, coords={"fraction": [0.0, 0.1]},
                        attrs={"method": "pruning_curve"})
    curves.to_netcdf(tmp_path / "curves.nc", engine="h5netcdf")
    rc, _, err = _cli(["report", str(run), "--probe", str(tmp_path / "curves.nc"), "--out", str(tmp_path / "r2.html")])
    assert rc == 2 and "--probe takes a probe result" in err and "holds pruning curves" in err, err
    assert "other probing code" not in err and not (tmp_path / "r2.html").exists()
    xr.Dataset({"speed": ("time", [0.1, 0.2])}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    rc, _, err = _cli(["report", str(run), "--probe", str(tmp_path / "other.nc"), "--out", str(tmp_path / "r3.html")])
    assert rc == 2 and f"{str(tmp_path / 'other.nc')!r} holds no probe (its variables are ['speed'])" in err, err


def test_info_of_a_probe_by_bins_prints_the_statistic_it_ranks_by(label_run, tmp_path):
    """``--resolution freq``: info printed each top unit's largest band mean under a legend
    naming the largest single-bin |r| (0.061 for a statistic of 0.556), in no visible order."""
    import json
    import re

    out = tmp_path / "bins.nc"
    rc, _, err = _cli(["probe", str(label_run[0]), *PROBE, "--resolution", "freq", "--out", str(out)])
    assert rc == 0, err
    rc, text, err = _cli(["info", str(out)])
    assert rc == 0, err
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        for prefix, label in (("amp", "top amp"), ("phase", "top phase")):
            line = next(ln for ln in text.splitlines() if ln.startswith(label))
            shown = re.findall(r"(\S+/\d+) ([\d.]+) \((\S+), ([\d.]+) Hz\)", line)
            assert len(shown) == 3, line
            for unit, score, channel, hz in shown:
                assert float(score) == pytest.approx(float(ds[f"{prefix}_stat_all"].sel(unit=unit)), abs=5e-4)
                r = ds[f"{prefix}_corr"].sel(unit=unit, channel=channel).sel(freq=float(hz), method="nearest")
                assert abs(float(r)) == pytest.approx(float(score), abs=5e-4)  # where it is, in the maps
            assert [float(s) for _, s, _, _ in shown] == sorted((float(s) for _, s, _, _ in shown), reverse=True)
    rc, text, _ = _cli(["info", str(out), "--json"])
    top = json.loads(text)["most_sensitive"]["amplitude"][0]
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert top["score"] == pytest.approx(float(ds["amp_stat_all"].max()), abs=1e-6)


def test_a_probe_without_a_null_says_that_no_unit_is_classified(label_run, tmp_path):
    """``--null 0`` wrote a probe without unit classes and printed no class lines, without a word."""
    out = tmp_path / "nonull.nc"
    rc, _, err = _cli(["probe", str(label_run[0]), *PROBE, "--null", "0", "--out", str(out)])
    assert rc == 0, err
    assert "note: with --null 0 there is no permutation null, so no unit is tested or classified" in err
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert "unit_class_all" not in ds and "amp_stat_all" in ds
