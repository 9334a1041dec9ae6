"""A BIDS folder of several recordings from the command line: listed, one chosen, all batched."""
import json

import pytest

from core.cli import main


def test_info_lists_the_recordings_and_describes_the_chosen_one(bids_study, capsys):
    assert main(["info", str(bids_study), "--bids", "sub-02_run-2"]) == 0
    out = capsys.readouterr().out
    assert ("bids       3 recording(s): sub-01_task-reach_run-1 (eeg), sub-02_task-reach_run-1 (eeg), "
            "sub-02_task-reach_run-2 (eeg)") in out
    assert "shown      sub-02_task-reach_run-2 (eeg): sub-02/eeg/sub-02_task-reach_run-2_eeg.vhdr" in out
    assert "(another: --bids sub-01_task-reach_run-1)" in out and "channels   3: C3, C4, Cz" in out
    assert "labels     --target events\n" in out  # two event types: one label target
    assert main(["info", str(bids_study), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["bids_recordings"]) == 3 and info["bids_chosen"]["entities"]["subject"] == "01"
    # a choice that matches nothing, an unknown entity, --bids on a plain file: one line, exit 2
    assert main(["info", str(bids_study), "--bids", "sub-09"]) == 2
    assert "No EEG/iEEG/MEG recording matching {'subject': '09'}" in capsys.readouterr().err
    assert main(["info", str(bids_study), "--bids", "colour=red"]) == 2
    assert "Unknown BIDS entity 'colour'" in capsys.readouterr().err
    vhdr = next(bids_study.rglob("*.vhdr"))
    assert main(["info", str(vhdr), "--bids", "sub-01"]) == 2
    assert "is not one (no dataset_description.json)" in capsys.readouterr().err


def test_train_on_a_chosen_recording_keeps_the_choice_in_the_run(bids_study, tmp_path, capsys):
    from core.workspace import Workspace

    out = tmp_path / "run"
    assert main(["train", "--data", str(bids_study), "--bids", "subject=02,run=2", "--target", "events:left,right",
                 "--tmax", "1.5", "--model", "shallow", "--epochs", "1", "--out", str(out), "--threads", "1"]) == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["bids"] == {"subject": "02", "run": "2"}
    ws = Workspace.load(out)  # reopened on the same recording
    assert ws.spec.bids == {"subject": "02", "run": "2"}
    assert "sub-02_task-reach_run-2_eeg." in ws.recording.signals.attrs["source"]
    # the run's summary and report name the recording, not only the folder
    assert main(["info", str(out)]) == 0
    assert f"data       {bids_study} [sub-02_run-2] (classification" in capsys.readouterr().out
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert f"{bids_study} [sub-02_run-2]" in (tmp_path / "r.html").read_text()


def test_batch_plans_one_run_per_recording_of_a_bids_folder(bids_study, tmp_path):
    pytest.importorskip("dask.distributed")
    from core.batch import plan_runs, run_batch

    runs = plan_runs([str(bids_study)], target="events:left,right", models=["shallow"], seeds=[1], max_epochs=1)
    assert [r.name for r in runs] == ["study-sub-01_task-reach_run-1-shallow-s1", "study-sub-02_task-reach_run-1-shallow-s1",
                                      "study-sub-02_task-reach_run-2-shallow-s1"]
    assert runs[2].data["bids"] == {"subject": "02", "task": "reach", "run": "2", "datatype": "eeg"}
    chosen = plan_runs([str(bids_study)], target="events:left,right", models=["shallow"], seeds=[1], max_epochs=1,
                       bids="run-2")
    assert [r.name for r in chosen] == ["study-sub-02_task-reach_run-2-shallow-s1"]
    for r in runs:
        r.data["tmax"] = 1.5
    ds = run_batch(runs[:2], tmp_path / "b", n_workers=1, processes=False)
    assert ds.attrs["n_failed"] == 0
    assert list(ds["source"].values) == [f"{bids_study} [sub-01_task-reach_run-1 (eeg)]",
                                         f"{bids_study} [sub-02_task-reach_run-1 (eeg)]"]
