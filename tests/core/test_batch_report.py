"""A batch's summary, report and info, from a batch.nc of known values (no Dask needed)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core._validation import UnitScopeError
from core.batch import _summary_dataset, load_batch, summarise_batch
from core.cli import main
from core.report import render_batch_report
from core.training import atomic_write_netcdf


def _fractions(amp: float) -> dict:
    return {"conv_2": {"amplitude": amp, "phase": 1 - amp, "bimodal": 0.0, "insensitive": 0.0},
            "conv_4": {"amplitude": 2 * amp, "phase": 0.0, "bimodal": 1 - 2 * amp, "insensitive": 0.0}}


def _runs() -> list[dict]:
    base = {"task": "regression", "epochs": 3, "train_seconds": 10.0}
    return [
        {**base, "name": "a-deep4-s1", "source": "a.edf", "model": "deep4", "seed": 1, "valid": 0.5, "test": 0.60,
         "class_fractions": _fractions(0.1)},
        {**base, "name": "a-deep4-s2", "source": "a.edf", "model": "deep4", "seed": 2, "valid": 0.5, "test": 0.70,
         "class_fractions": _fractions(0.3)},
        {**base, "name": "a-deep4-s3", "source": "a.edf", "model": "deep4", "seed": 3, "valid": 0.5, "test": 0.80,
         "class_fractions": _fractions(0.2)},
        {**base, "name": "a-shallow-s1", "source": "a.edf", "model": "shallow", "seed": 1, "valid": 0.4,
         "test": 0.50, "class_fractions": _fractions(0.4)},
        {"name": "<b>-shallow-s1", "source": "<b>.edf", "model": "shallow", "seed": 1,
         "error": "UnitScopeError: <b>.edf does not exist"},
    ]


@pytest.fixture
def batch_dir(tmp_path):
    runs = _runs()
    ds = _summary_dataset(runs, [r["name"] for r in runs])
    ds.attrs.update(scheduler="local", n_runs=len(runs), n_failed=1)
    atomic_write_netcdf(ds, tmp_path / "batch.nc")
    return tmp_path


def test_summary_per_recording_and_decoder(batch_dir):
    s = summarise_batch(load_batch(batch_dir))
    g = {(x["source"], x["model"]): x for x in s["groups"]}
    deep4 = g[("a.edf", "deep4")]
    assert deep4["n"] == 3 and deep4["n_failed"] == 0
    assert deep4["mean"] == pytest.approx(0.7) and deep4["sd"] == pytest.approx(0.1)  # ddof 1
    assert (deep4["min"], deep4["max"]) == (pytest.approx(0.6), pytest.approx(0.8))
    shallow = g[("a.edf", "shallow")]
    assert shallow["mean"] == pytest.approx(0.5) and np.isnan(shallow["sd"])  # one run: no sd
    failed = g[("<b>.edf", "shallow")]
    assert failed["n"] == failed["n_failed"] == 1 and np.isnan(failed["mean"])
    frac, sd = s["fractions"], s["fractions_sd"]
    assert list(frac["model"].values) == ["deep4", "shallow"]
    assert float(frac.sel(model="deep4", layer="conv_2", **{"class": "amplitude"})) == pytest.approx(0.2)
    assert float(sd.sel(model="deep4", layer="conv_4", **{"class": "amplitude"})) == pytest.approx(0.2)
    # the failed run (NaN fractions) does not enter the shallow mean
    assert float(frac.sel(model="shallow", layer="conv_2", **{"class": "amplitude"})) == pytest.approx(0.4)
    np.testing.assert_allclose(frac.sum("class").values, 1.0)


def test_batch_report_and_info_from_the_cli(batch_dir, capsys):
    assert main(["report", str(batch_dir)]) == 0
    assert "batch report of 5 runs written to" in capsys.readouterr().out
    html = (batch_dir / "report.html").read_text()
    assert "<script" not in html and "http" not in html.split("</style>", 1)[1]  # self-contained
    assert "&lt;b&gt;.edf" in html and "<b>.edf" not in html  # file names escaped
    assert "undefined" not in html  # a failed run's missing numbers read "-"
    assert re.search(r"<td>deep4</td><td>pearson_r</td><td>3</td><td>0</td><td>0\.700</td><td>0\.100</td>"
                     r"<td>0\.600 \.\. 0\.800</td>", html)
    assert html.count("data:image/png;base64,") == 2  # the metrics and the class fractions
    assert "0.20 ± 0.10" in html  # deep4, conv_2, amplitude
    assert html.count("<td>deep4</td><td>conv_") == 2  # one row per layer and decoder
    assert main(["info", str(batch_dir)]) == 0
    out = capsys.readouterr().out
    assert "5 runs, 1 failed, probed" in out and "a.edf deep4: test pearson_r 0.7000 ± 0.1000 over 3 run(s)" in out
    assert "caution" not in out and "Caution" not in html  # every finished run above chance
    assert "failed     <b>-shallow-s1: UnitScopeError" in out
    assert main(["info", str(batch_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_runs"] == 5 and info["groups"][0]["mean"] == pytest.approx(0.7)


def test_batch_bad_input(batch_dir, tmp_path_factory, capsys):
    assert main(["report", str(batch_dir), "--units", "conv_2/1"]) == 2
    assert "--units report(s) one run" in capsys.readouterr().err
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(UnitScopeError, match="not a batch folder: it holds no batch.nc"):
        load_batch(empty)
    (empty / "batch.nc").write_bytes(b"not netcdf")
    with pytest.raises(UnitScopeError, match="Cannot read"):
        load_batch(empty)
    html = render_batch_report(load_batch(batch_dir).isel(run=[0, 4]))  # shallow's one run failed
    assert html.count("data:image/png") == 2 and "<td>shallow</td><td>conv_2</td>" not in html
    html = render_batch_report(load_batch(batch_dir).isel(run=[4]))  # every run failed: tables, no figures
    assert "data:image/png" not in html and "UnitScopeError" in html


def test_a_batch_says_which_runs_test_metric_means_little(tmp_path, capsys):
    """Each run's own `info` cautioned a label decoder at chance or on few trials, but the
    batch's lines, its info and its report gave the bare number ("test 0.500"). They now name
    the metric and say, run by run, what unitscope info says; a batch.nc written before the
    trial counts were kept still reads (its runs get what can be said without them)."""
    base = {"task": "classification", "epochs": 2, "train_seconds": 1.0, "source": "x.edf", "model": "shallow",
            "valid": 0.5}
    runs = [{**base, "name": "at-chance", "seed": 1, "test": 0.5, "n_test": 4, "n_test_classes": 2},
            {**base, "name": "lucky", "seed": 2, "test": 0.102, "n_test": 147, "n_test_classes": 12},
            {**base, "name": "good", "seed": 3, "test": 0.9, "n_test": 100, "n_test_classes": 2}]
    ds = _summary_dataset(runs, [r["name"] for r in runs])
    ds.attrs.update(scheduler="local", n_runs=3, n_failed=0)
    atomic_write_netcdf(ds, tmp_path / "batch.nc")
    group = summarise_batch(load_batch(tmp_path))["groups"][0]
    assert group["metric"] == "balanced_accuracy" and set(group["notes"]) == {"at-chance", "lucky"}
    assert group["notes"]["at-chance"] == "at or below chance, 1/2 = 0.500; on 4 test trials: very uncertain"
    assert group["notes"]["lucky"].startswith("not clearly above chance, 1/12 = 0.083, one-sided binomial p = 0.24")
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "x.edf shallow: test balanced_accuracy 0.5007 ± 0.3990 over 3 run(s)" in out
    assert "caution    at-chance: test at or below chance, 1/2 = 0.500; on 4 test trials" in out
    assert "caution    lucky: test not clearly above chance" in out and "good:" not in out
    html = render_batch_report(load_batch(tmp_path))
    assert "Caution: the test metric of 2 of 3 finished run(s) means little" in html
    assert "<td>4</td><td>2</td><td>1.0</td><td>-</td><td>at or below chance, 1/2 = 0.500; on 4 test trials" in html
    old = ds.drop_vars(["n_test", "n_test_classes"])  # a batch.nc of an earlier UnitScope
    atomic_write_netcdf(old, tmp_path / "old" / "batch.nc")
    assert summarise_batch(load_batch(tmp_path / "old"))["groups"][0]["notes"] == {}
    assert "<td>-</td><td>2</td>" in render_batch_report(load_batch(tmp_path / "old"))
