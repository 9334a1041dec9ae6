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


def test_the_report_of_a_label_decoder_draws_its_confusion_matrix(label_run, tmp_path, capsys):
    """A label decoder's report drew no figure of its decoding (the regression's predicted
    trace has no counterpart for trials): it now draws the confusion matrix of the test
    trials, classes in natural order, as the app does."""
    import re

    import numpy as np

    from core.report import ReportContent
    from core.report_figures import confusion_counts
    from core.workspace import Workspace

    run, _, _ = label_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    capsys.readouterr()
    ws = Workspace.load(run)
    pred, true = ws.predict("test")
    text = out.read_text()
    assert f"Confusion matrix of the {len(true)} test trials." in text
    decoder_section = text.split("<h2>Decoder and metric</h2>", 1)[1].split("<h2>", 1)[0]
    assert re.search(r'<img src="data:image/png;base64,[^"]+"', decoder_section)
    assert "Confusion matrix of the" in decoder_section
    content = ReportContent.from_workspace(ws)
    names, cm = confusion_counts(content.prediction)
    assert names == ["T1", "T2"] and cm.sum() == len(true)
    guess = np.asarray(pred).argmax(axis=1)
    for i, p in enumerate(names):  # rows predicted, columns true
        for j, t in enumerate(names):
            k_p, k_t = list(ws.data.classes).index(p), list(ws.data.classes).index(t)
            assert cm[i, j] == int(np.sum((guess == k_p) & (np.asarray(true) == k_t)))


def test_confusion_counts_order_trigger_codes_as_numbers():
    from core.report_figures import confusion_counts

    names, cm = confusion_counts({"classes": ["128", "16", "2"], "true": [0, 1, 2, 2], "pred": [0, 2, 2, 1]})
    assert names == ["2", "16", "128"]
    # rows predicted, columns true: 2 was predicted for a 2 and a 16, 16 for a 2, 128 for the 128
    assert cm.tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_the_reports_confusion_matrix_ticks_whole_trials(monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from core import report_figures as report

    drawn = []
    monkeypatch.setattr(report, "figure_png", lambda fig, **kw: drawn.append(fig) or "")
    report.confusion_fig({"classes": ["T1", "T2"], "true": [0, 0, 0, 1, 1], "pred": [0, 0, 0, 1, 0]})
    fig = drawn[-1]
    FigureCanvasAgg(fig).draw()
    ticks = [t.get_text() for t in fig.axes[-1].get_yticklabels()]  # the colour bar's
    assert ticks and all(t.lstrip("−-").isdigit() for t in ticks), ticks  # not 0.5, 1.5, 2.5


def test_the_report_of_a_one_class_test_block_says_the_metric_is_not_measured_as_info_does():
    """A test block of one class gave a balanced accuracy of 1.000 that the report called "the
    decoder has learnt nothing", where ``unitscope info`` says it is not measured."""
    from core.cautions import ONE_CLASS
    from core.cli._common import metric_cautions
    from core.report import ReportContent, render_report

    content = ReportContent(decoder={"kind": "shallow", "task": "classification", "metric_name": "balanced accuracy",
                                     "metrics": {"test": 1.0}, "chance": ONE_CLASS}, metric_before=1.0)
    text = render_report(content)
    info = metric_cautions("classification", {"test": 1.0, "n_test": 20, "n_test_classes": 1})
    assert info == [f"test balanced_accuracy 1.0000 is {ONE_CLASS}: what the decoder learnt is not measured"]
    assert f"test balanced accuracy 1.000 is {ONE_CLASS}: what the decoder learnt is not measured" in text
    assert "learnt nothing" not in text
