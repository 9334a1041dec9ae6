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
    # the probe's bands within the run's band-pass, as `unitscope probe` (the demo: not band-passed)
    assert code.count("ProbeConfig(bands=ws.probe_bands())") == 1 and code.count("config=config") == 2
    code = code.replace("ProbeConfig(bands=ws.probe_bands())",
                        "ProbeConfig(bands=ws.probe_bands(), n_iterations=2, n_windows=8, n_null=2)")
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


@pytest.fixture(scope="module")
def demo_ws():
    from core.workspace import Workspace

    return Workspace.demo()


def test_the_band_occlusion_example_runs_on_the_demo(demo_ws):
    """Its channels are the demo's (it named C3/C4, which the demo, G01..G32, lacks)."""
    code = _block_after("Several cases at once, with one pass")
    assert code.count('X, y = ws.eval_set("test")\n') == 1
    code = code.replace('X, y = ws.eval_set("test")\n', 'X, y = ws.eval_set("test")\nX, y = X[::4], y[::4]\n')
    namespace = {"ws": demo_ws}
    exec(compile(code, "<README: band occlusion>", "exec"), namespace)
    occluded, reference = namespace["occluded"], namespace["reference"]
    assert set(occluded) == {"high_gamma", "beta", "low_freq", "beta, G14 alone", "G01/G02 (noise), all"}
    assert occluded["high_gamma"] < reference - 0.05  # the decoder reads high gamma
    assert occluded["G01/G02 (noise), all"] == pytest.approx(reference, abs=0.02)


def test_the_deconvolution_example_runs_on_the_demo(demo_ws):
    """As written (a few seconds): the demo's beta channel G14 in 15-25 Hz (it named C3), the
    decoder output, and the envelopes of every channel."""
    code = _block_after("Event-locked kernels (DUNL)")
    namespace = {"ws": demo_ws}
    exec(compile(code, "<README: DUNL>", "exec"), namespace)
    kernels, output, env = namespace["kernels"], namespace["output"], namespace["env"]
    assert kernels.attrs["signal"] == "channel:G14:15-25" and kernels["kernels"].dims == ("kernel", "lag")
    assert kernels["kernel"].values.tolist() == ["movement_onset"] and kernels.sizes["event"] > 10
    assert output.attrs["signal"] == "output" and output.attrs["r2"] > 0.5
    assert output.attrs["lag_start"] <= -0.5 and output.attrs["valid_loss_on"] == "held-out segments"
    assert env.shape == demo_ws.recording.signals.shape


def test_make_demo_runs_what_the_readme_says_it_runs():
    make = (README.parent / "Makefile").read_text()
    command = next(line.strip() for line in make.splitlines() if "panel serve" in line).replace("$(BIN)/", "")
    assert "--address localhost" in command  # this machine only, unless told otherwise
    assert f"`make demo` runs `{command}`" in " ".join(README.read_text().split())


def test_every_methods_section_the_code_cites_is_in_the_shipped_methods():
    """Docstrings cite "METHODS.md 1.7" or "METHODS 3.9.1": docs/METHODS.md is shipped, and
    holds each section cited (a numbered item of a section for a third number)."""
    root = README.parent
    methods = (root / "docs" / "METHODS.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[ .]", methods, flags=re.M))
    cited = set()
    for path in [README, *root.glob("core/**/*.py"), *root.glob("dashboard/**/*.py"), *root.glob("tests/**/*.py")]:
        cited.update(re.findall(r"METHODS(?:\.md)?,? (?:section )?§?(\d+(?:\.\d+)*)", path.read_text()))
    assert len(cited) > 20
    missing = sorted(c for c in cited if ".".join(c.split(".")[:2]) not in sections)
    assert not missing, f"cited but not in docs/METHODS.md: {missing}"
