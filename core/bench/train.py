"""``unitscope bench train``: Deep4 on the demo, against ridge and braindecode's EEGRegressor.

Keys: model, epochs, train_seconds, seconds_per_epoch, test_r, ridge_test_r, shallow_test_r
(ShallowFBCSPNet trained with the same options, for the "within 0.1 of Deep4" target),
braindecode_seconds_per_epoch (braindecode's own EEGRegressor (skorch) training the same
architecture on the same crops, batch size and optimiser, with the same validation pass per
epoch, timed in this run), peak_rss_mb, torch_threads, device.
"""
from __future__ import annotations

import resource
import time

import torch


def _braindecode_seconds_per_epoch(ws, n_epochs: int) -> float:
    from braindecode import EEGRegressor
    from skorch.helper import predefined_split
    from torch.utils.data import TensorDataset

    from ..models import build_model

    cfg = ws.model.unitscope_config
    model = build_model(cfg["kind"], n_chans=cfg["n_chans"], n_outputs=1, n_times=cfg["n_times"],
                        seed=ws.config.seed)
    data = ws.data
    Xtr, ytr = data.batch(data.window_starts("train"))
    Xva, yva = data.eval_set("valid")
    valid = TensorDataset(torch.as_tensor(Xva), torch.as_tensor(yva[:, None, :]))
    reg = EEGRegressor(model, criterion=torch.nn.MSELoss, optimizer=torch.optim.Adam, optimizer__lr=ws.config.learning_rate,
                       batch_size=ws.config.batch_size, max_epochs=n_epochs, train_split=predefined_split(valid),
                       iterator_train__shuffle=True, iterator_train__drop_last=False,  # same crops as ours
                       verbose=0, device="cpu", callbacks=[])
    t0 = time.perf_counter()
    reg.fit(Xtr, ytr[:, None, :])
    return (time.perf_counter() - t0) / n_epochs


def run(*, quick: bool = False, progress=None) -> dict:
    from ..baselines import ridge_baseline
    from ..training import TrainConfig, resolve_device
    from ..workspace import DataSpec, Workspace

    say = progress or (lambda m: None)
    spec = DataSpec(duration=120.0) if quick else DataSpec()
    cfg = TrainConfig(max_epochs=2 if quick else TrainConfig.max_epochs)
    ws = Workspace.create(spec, cfg)
    say(f"training deep4 on {spec.duration:.0f} s of demo, up to {cfg.max_epochs} epochs")
    t0 = time.perf_counter()
    result = ws.train()
    train_seconds = time.perf_counter() - t0
    n_epochs = len(result.history)
    say(f"test r {ws.metrics['test']:.3f} after {n_epochs} epochs; ridge baseline")
    ridge = ridge_baseline(ws.data, ws.recording.sfreq)
    say("shallow decoder on the same blocks")
    shallow = Workspace.create(spec, TrainConfig(model="shallow", max_epochs=cfg.max_epochs))
    shallow.train()
    say("braindecode EEGRegressor timing")
    bd = _braindecode_seconds_per_epoch(ws, 1 if quick else 3)
    return {
        "model": "deep4",
        "epochs": n_epochs,
        "train_seconds": round(train_seconds, 2),
        "seconds_per_epoch": round(train_seconds / max(n_epochs, 1), 3),
        "test_r": round(float(ws.metrics["test"]), 4),
        "ridge_test_r": round(ridge["test_r"], 4),
        "shallow_test_r": round(float(shallow.metrics["test"]), 4),
        "braindecode_seconds_per_epoch": round(bd, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
        "device": resolve_device("auto").type,
        "quick": quick,
    }
