"""``unitscope occlude``: band occlusion of a saved run, headless."""
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
