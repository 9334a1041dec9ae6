"""The README's Python examples run as written (a shorter probe only)."""
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(heading_text: str) -> str:
    text = README.read_text()
    start = text.index(heading_text)
    return re.search(r"```python\n(.*?)```", text[start:], flags=re.S).group(1)


def test_the_probing_and_pruning_example_runs_as_written(tmp_path, monkeypatch):
    code = _block_after("Probing and pruning, headless")
    assert code.count("ProbeConfig()") == 2
    code = code.replace("ProbeConfig()", "ProbeConfig(n_iterations=2, n_windows=8, n_null=2)")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile("from core.workspace import Workspace\n" + code, "<README: probing and pruning>", "exec"), namespace)
    ds, curves, drops, ev, masks = (namespace[k] for k in ("ds", "curves", "drops", "ev", "masks"))
    assert (tmp_path / "probe.nc").is_file() and (tmp_path / "mask.json").is_file()
    assert set(np.unique(ds["unit_class_all"].values)) <= {"amplitude", "phase", "bimodal", "insensitive"}
    assert ev.evaluate(masks) < ev.evaluate(ev.new_masks())  # the three silenced units cost some test r
    assert curves.sizes["fraction"] == 4 and drops.sizes["unit"] == 200
    by_need = namespace["by_need"]  # ranked by the validation block's drops, measured on the test block
    assert float(by_need["metric"].sel(order="most", fraction=0.0)) == pytest.approx(ev.baseline, abs=1e-6)
    assert float(by_need["metric"].sel(order="most", fraction=0.1)) < float(by_need["metric"].sel(order="random",
                                                                                                    fraction=0.1))
    from core.pruning import MaskSet

    assert MaskSet.load(tmp_path / "mask.json", model=namespace["ws"].model).pruned("conv_4").tolist() == [1, 2, 5]


def test_the_any_other_decoder_example_runs_as_written():
    code = _block_after("Any other decoder with conv blocks")
    assert code.count('task="classification")') == 1
    code = code.replace('task="classification")', 'task="classification", config=ProbeConfig(n_iterations=2, n_null=2))')
    rng = np.random.default_rng(0)
    namespace = {"X": rng.standard_normal((12, 22, 1000)).astype(np.float32), "y": rng.integers(0, 4, 12)}
    exec(compile("from core.probing import ProbeConfig, probe_units\n" + code, "<README: any other decoder>", "exec"),
         namespace)
    ds = namespace["ds"]
    assert list(dict.fromkeys(ds["layer"].values)) == ["block_1", "block_2", "conv_classifier"]
    assert ds.sizes["unit"] == 16 + 16 + 4 and ds.sizes["channel"] == 22
