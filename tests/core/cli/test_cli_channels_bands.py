"""Channel names as ``unitscope info`` matches them (``C3`` is ``C3..``) in occlude and deconv,
and band edges checked before any work."""
from __future__ import annotations

import shutil

import pytest

from core.cli import main


def _error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"unitscope {command}: error:") and err.count("\n") == 1, err
    return err


def test_occlude_matches_names_as_info_does_and_defaults_to_every_channel(label_run, capsys):
    run = label_run[0]
    assert main(["occlude", str(run), "--channels", "c3,C4,Cz..", "--band", "8", "30"]) == 0
    assert "without 8-30 Hz of C3..,C4..,Cz..  " in capsys.readouterr().out
    assert main(["occlude", str(run), "--band", "8", "30"]) == 0
    assert "without 8-30 Hz of all channels  " in capsys.readouterr().out


@pytest.mark.parametrize("band, message", [
    (["30", "8"], "--band 30 8: the band edges are reversed (low edge 30 Hz above the high edge 8 Hz); give the "
                  "low edge first: 8 then 30."),
    (["100", "200"], "--band 100 200: the band must lie below Nyquist (125 Hz) at this run's sampling rate of "
                     "250 Hz, but its high edge is 200 Hz"),
    (["8", "8"], "the band is empty"),
])
def test_occlude_refuses_reversed_edges_and_bands_past_nyquist(label_run, band, message, capsys):
    assert main(["occlude", str(label_run[0]), "--channels", "C3..", "--band", *band]) == 2
    assert message in _error(capsys, "occlude")


@pytest.mark.parametrize("signal, message", [
    ("channel:C3..:30-8", "--signal channel:C3..:30-8: the band edges are reversed"),
    # (a band up to Nyquist is taken: a high-pass)
    ("channel:C3..:100-126", "the band must lie below Nyquist (125 Hz) at this run's sampling rate of 250 Hz, but "
                             "its high edge is 126 Hz; lower it to at most 125 Hz."),
])
def test_deconv_refuses_reversed_edges_and_bands_past_nyquist(label_run, signal, message, capsys):
    assert main(["deconv", str(label_run[0]), "--signal", signal]) == 2
    assert message in _error(capsys, "deconv")


def test_deconv_matches_channel_names_as_info_does(label_run, tmp_path, capsys):
    run = shutil.copytree(label_run[0], tmp_path / "run")
    assert main(["deconv", str(run), "--signal", "channel:c3:8-13", "--epochs", "1"]) == 0
    assert f"wrote {run / 'deconv_channel_C3.._8-13.nc'}" in capsys.readouterr().out
