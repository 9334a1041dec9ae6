"""``unitscope report`` of a label decoder says which events and trials it decodes, in words."""
from __future__ import annotations

from core.cli import main


def test_the_report_of_a_label_decoder_names_its_events_and_trials(label_run, tmp_path, capsys):
    run, _, _ = label_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text()
    assert "labels of the events T1, T2 (trials 0 to 2 s from each onset)" in text
    assert "<td>eeg 32</td>" in text and "<td>T1 9, T2 10</td>" in text
    assert "{&#x27;" not in text and "{'" not in text  # no Python dict printed
