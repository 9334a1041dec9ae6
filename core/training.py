"""Training loop: progress callback, cooperative stop, early stopping, atomic checkpoints.

Loss: MSE on the z-scored target (regression) or cross-entropy (labels). Optimiser: Adam with
PyTorch's other defaults, as in Hammer et al.'s set-up (METHODS.md 1.5), at a learning rate
per decoder (:data:`DEFAULT_LR`: Deep4 1e-3, Shallow 4e-3). Early stopping
watches the validation block: Pearson r for regression, loss for labels [A] (with few trials
balanced accuracy moves in coarse steps). The best state is kept and restored at the end.

A training in progress writes ``checkpoint.partial.pt`` (:data:`PARTIAL_FILE`) in its run
folder, never the run's ``model.pt`` / ``config.json`` / ``checkpoint.pt``: a complete run
stays whole until the new one is committed (:meth:`core.workspace.Workspace.save`), and an
interrupted one is that file alone, which ``resume`` continues. One process at a time writes
a run folder (:func:`run_lock`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ._files import atomic_target, atomic_write_bytes
from ._validation import UnitScopeError, check_option, ensure_int
from .metrics import score
# (the options and file names live in .train_config, torch-free; imported from here as before)
from .train_config import CHECKPOINT_FILE, DEFAULT_LR, LOCK_FILE, PARTIAL_FILE, TrainConfig

__all__ = ["DEFAULT_LR", "TrainConfig", "TrainResult", "train", "set_seeds", "resolve_device", "configure_threads",
           "atomic_write_bytes", "atomic_write_json", "atomic_write_netcdf", "save_state", "load_state", "predict",
           "print_progress", "json_default", "CHECKPOINT_FILE", "PARTIAL_FILE", "LOCK_FILE", "resume_checkpoint",
           "checkpoint_summary", "commit_checkpoint", "run_lock", "lock_holder", "training_by", "held_interrupt",
           "TrainingInterrupted"]

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list = field(default_factory=list)  # one dict per epoch
    best_epoch: int = -1
    best_valid: float = float("nan")
    stopped: bool = False          # stopped by the user
    early_stopped: bool = False
    seconds: float = 0.0


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (a ``KeyboardInterrupt``) during :func:`train`, raised once the model holds the
    best epoch's weights so far in eval mode [A] (a notebook's Ctrl-C left the half-trained
    weights of the epoch under way, in training mode, and the completed epochs nowhere).
    ``result`` is the :class:`TrainResult` of the completed epochs (``stopped`` True). Being a
    ``KeyboardInterrupt``, it ends a script or command as Ctrl-C does."""

    def __init__(self, result: "TrainResult"):
        super().__init__()
        self.result = result


def set_seeds(seed: int) -> torch.Generator:
    """Seed torch's global generator (used by dropout) and return a local generator."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present; ``"cuda"`` without a GPU is an error."""
    check_option("device", device, ("auto", "cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise UnitScopeError("device='cuda' was requested but no CUDA GPU is available; use 'cpu' or 'auto'.")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def configure_threads(n_threads: int | None = None) -> int:
    """Set torch's intra-op threads (default: all cores, at most 8) and return the number."""
    if n_threads is not None:  # (0 or -3 became 1 without a word)
        n = ensure_int("n_threads", n_threads)
        if n < 1:
            raise UnitScopeError(f"--threads {n}: give at least 1 thread (torch's intra-op threads).")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def atomic_write_netcdf(ds, path: Path) -> None:
    """Write an xarray Dataset/DataArray to netCDF (h5netcdf) atomically."""
    with atomic_target(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def print_progress(info: dict) -> None:
    """A ``progress`` callback for :func:`train` (``Workspace.train(progress=print_progress)``):
    one line per epoch, with its losses and validation metric; the per-batch reports and the
    history each epoch's report carries (``print`` printed them all) are left out."""
    if not info.get("end_of_epoch"):
        return
    print(f"epoch {int(info['epoch']) + 1}/{info['n_epochs']}: train loss {info['train_loss']:.4f}, valid loss "
          f"{info['valid_loss']:.4f}, valid metric {info['valid_metric']:.4f} ({info['seconds']:.1f} s so far)", flush=True)


def json_default(obj):
    """What :func:`json.dumps` cannot write, as JSON: numpy integers stay integers (an
    ``np.int64(10)`` epoch count written as 10.0 could not be trained again), numpy floats and
    bools, arrays as lists, paths as text; anything else is refused by name."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} {obj!r} cannot be written as JSON")


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, default=json_default).encode())


def save_state(path: Path, state: dict) -> None:
    """``torch.save`` a dict of tensors/numbers atomically."""
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: Path) -> dict:
    """Load a checkpoint with ``weights_only=True``: nothing is unpickled or evaluated."""
    path = Path(path)
    if not path.is_file():
        raise UnitScopeError(f"Checkpoint {str(path)!r} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated or unsafe pickle
        if "Weights only load failed" in str(exc):  # (torch's 8 lines advise weights_only=False: not here)
            raise UnitScopeError(
                f"Cannot read checkpoint {str(path)!r}: it holds Python objects beside tensors (a whole model saved "
                "with torch.save(model), or a training state of another program), and UnitScope reads tensors "
                "only: load it where it was made and save its state dict (torch.save(model.state_dict(), path)).",
            ) from None
        raise UnitScopeError(f"Cannot read checkpoint {str(path)!r}: {exc}") from exc


def resume_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``resume`` continues in ``run_dir``: an interrupted training's
    (:data:`PARTIAL_FILE`), else the complete run's (:data:`CHECKPOINT_FILE`), else None."""
    for name in (PARTIAL_FILE, CHECKPOINT_FILE):
        path = Path(run_dir) / name
        if path.is_file():
            return path
    return None


def checkpoint_summary(path: str | Path) -> dict:
    """What a training checkpoint holds, without building a model: ``epochs`` (done),
    ``history``, ``best_epoch`` (0-based), ``best_valid``, and ``record`` (the data spec, model
    and training config it was trained with, as :meth:`core.workspace.Workspace.run_record`
    gives them; None in checkpoints written before they were kept)."""
    state = load_state(path)
    if not isinstance(state, dict) or "epoch" not in state:
        raise UnitScopeError(f"{str(path)!r} is not a UnitScope training checkpoint (no 'epoch' entry).")
    try:
        record = json.loads(state["run"]) if "run" in state else None
        history = json.loads(state.get("history", "[]"))
    except (TypeError, ValueError) as exc:
        raise UnitScopeError(f"Corrupt training checkpoint {str(path)!r}: {exc}") from exc
    return {"epochs": int(state["epoch"]) + 1, "history": history, "best_epoch": int(state.get("best_epoch", -1)),
            "best_valid": float(state.get("best_valid", float("nan"))), "record": record}


def commit_checkpoint(run_dir: str | Path) -> None:
    """Make the finished training's :data:`PARTIAL_FILE` the run's :data:`CHECKPOINT_FILE`
    (an atomic rename; nothing when there is none)."""
    partial = Path(run_dir) / PARTIAL_FILE
    if partial.is_file():
        os.replace(partial, Path(run_dir) / CHECKPOINT_FILE)


@contextlib.contextmanager
def held_interrupt():
    """Hold a Ctrl-C (SIGINT) that comes during the block until it ends, then raise it: the
    files of a run are replaced together or not at all. Outside the main thread (where Python
    takes no signals) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)  # (None: not set from Python)
        if caught and previous is not signal.SIG_IGN:
            if callable(previous):
                previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
            else:
                raise KeyboardInterrupt


_HELD: dict[str, list] = {}  # lock file (resolved) -> [thread ident, depth], the locks this process holds
_HELD_GUARD = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # another user's process
        return True
    except (ProcessLookupError, OverflowError, ValueError):  # none, or no possible pid
        return False
    return True


def lock_holder(run_dir: str | Path) -> dict | None:
    """Who holds the lock of ``run_dir``: ``{"pid", "host", "since", "alive"}`` (``alive``:
    True, False, or None for a process of another host), or None when it is not locked."""
    path = Path(run_dir) / LOCK_FILE
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        text = ""
    info = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        info[key.strip()] = value.strip()
    try:
        pid = int(info.get("pid", ""))
    except ValueError:
        pid = -1
    host = info.get("host", "")
    alive = (_pid_alive(pid) if pid > 0 else False) if host in ("", socket.gethostname()) else None
    return {"pid": pid, "host": host, "since": info.get("since", ""), "alive": alive}


def training_by(run_dir: str | Path) -> str:
    """``"pid 123"`` (``"pid 123 on host h"``) of the process whose lock says it trains into
    ``run_dir`` now (one of this host that has ended does not), or "" ."""
    holder = lock_holder(run_dir)
    if not holder or holder["alive"] is False:
        return ""
    return f"pid {holder['pid']}" + (f" on host {holder['host']}" if holder["alive"] is None else "")


def _lock_text() -> str:
    return (f"pid={os.getpid()}\nhost={socket.gethostname()}\n"
            f"since={time.strftime('%Y-%m-%d %H:%M:%S')}\n")


@contextlib.contextmanager
def run_lock(run_dir: str | Path):
    """Hold ``run_dir``'s lock (:data:`LOCK_FILE`, created only when absent, holding this pid
    and host) for the block, making the folder when it does not exist (and removing it again when
    the block leaves it empty). A lock of a process of this host that has ended is taken over;
    a live one is refused with a UnitScopeError naming its pid. Re-entrant in the thread that
    holds it (the CLI locks before reading data, then ``Workspace.train`` and ``save`` lock)."""
    run_dir = Path(run_dir)
    made = []
    for p in (run_dir, *run_dir.parents):
        if p.exists():
            break
        made.append(p)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnitScopeError(f"Cannot make the run folder {str(run_dir)!r}: {exc.strerror or exc}.") from exc
    path = run_dir / LOCK_FILE
    key = str(path.resolve())
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held[0] == me:
            held[1] += 1
    if held is not None and held[0] == me:
        try:
            yield
        finally:
            with _HELD_GUARD:
                held[1] -= 1
        return
    if held is not None:
        raise UnitScopeError(f"The run folder {str(run_dir)!r} is being written by another thread of this process "
                             f"(pid {os.getpid()}): wait for its training to end, or write another folder.")
    _take_lock(path, run_dir)
    with _HELD_GUARD:
        _HELD[key] = [me, 1]
    try:
        yield
    finally:
        with _HELD_GUARD:
            _HELD.pop(key, None)
        with contextlib.suppress(OSError):
            if path.read_text().startswith(f"pid={os.getpid()}\n"):
                path.unlink()
        for p in made:  # the folders this lock made, when nothing was written into them
            with contextlib.suppress(OSError):
                p.rmdir()


def _create_lock(path: Path) -> None:
    """Create ``path`` holding :func:`_lock_text`, whole or not at all (FileExistsError when it
    exists): written beside it, then hard-linked to its name, which fails when the name is taken
    (``O_EXCL`` and a write, where hard links are not supported, could show another process an
    empty lock for a moment)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(_lock_text())
        os.chmod(tmp, 0o644)  # (mkstemp's 0600: other users' trainings read whose lock it is)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w") as fh:
                fh.write(_lock_text())
    finally:
        os.unlink(tmp)


def _take_lock(path: Path, run_dir: Path) -> None:
    for _ in range(3):
        try:
            _create_lock(path)
        except FileExistsError:
            holder = lock_holder(run_dir)
            if holder is None:
                continue  # released meanwhile
            if holder["alive"] is False or holder["pid"] == os.getpid():  # (this pid: left by an earlier crash)
                logger.info("taking over the lock of %s left by pid %s, which has ended", run_dir, holder["pid"])
                with contextlib.suppress(FileNotFoundError):
                    if lock_holder(run_dir) == holder:  # not taken by another process meanwhile
                        path.unlink()
                continue
            where = f" on host {holder['host']}" if holder["alive"] is None else ""
            since = f" since {holder['since']}" if holder["since"] else ""
            raise UnitScopeError(
                f"The run folder {str(run_dir)!r} is being written by another process (pid {holder['pid']}{where}"
                f"{since}): two trainings into one folder would lose one of them. Wait for it to end, or write "
                f"another folder (--out). If no such process runs, delete {str(path)!r}.")
        except OSError as exc:
            raise UnitScopeError(f"Cannot write the run folder {str(run_dir)!r}: {exc.strerror or exc}.") from exc
        return
    raise UnitScopeError(f"Could not take the lock {str(path)!r} of the run folder {str(run_dir)!r}: other "
                         "processes keep taking it; write another folder.")


@torch.no_grad()
def predict(model: nn.Module, X: np.ndarray, *, batch_size: int = 64, device=None) -> np.ndarray:
    """Model outputs for windows X (W, C, T) in eval mode, in batches; training mode restored."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        outs = [model(torch.as_tensor(X[i:i + batch_size], device=device)).cpu().numpy()
                for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0,))


def _loss_fn(task: str):
    return nn.MSELoss() if task == "regression" else nn.CrossEntropyLoss()


def _evaluate(model, data, block, task, device, loss_fn) -> tuple[float, float]:
    X, y = data.eval_set(block)
    out = predict(model, X, device=device)
    if task == "regression":
        pred = out[:, 0, :]  # (W, n_preds)
        loss = float(np.mean((pred - y) ** 2))
    else:
        loss = float(loss_fn(torch.as_tensor(out), torch.as_tensor(y)).item())
        pred = out
    return loss, score(task, pred, y)


def train(
    model: nn.Module,
    data,
    config: TrainConfig,
    *,
    progress: Callable[[dict], None] | None = None,
    stop: threading.Event | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    record: dict | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data`` (ContinuousData or TrialData).

    Parameters
    ----------
    model : torch.nn.Module
        A decoder from :func:`core.models.build_model`.
    data : ContinuousData | TrialData
    config : TrainConfig
    progress : callable, optional
        Called after every batch with a dict (``epoch``, ``batch``, ``n_batches``, ``fraction``,
        ``train_loss``) and after every epoch with validation results added (``valid_loss``,
        ``valid_metric``, ``history``).
    stop : threading.Event, optional
        Checked every batch; when set, training ends after restoring the best state.
    checkpoint_dir : path, optional
        Run folder for ``checkpoint.partial.pt`` (:data:`PARTIAL_FILE`: model, best state,
        optimiser, epoch, ``record``; written atomically every epoch). The run's own files are
        left as they are: the caller commits the finished training (:func:`commit_checkpoint`;
        ``Workspace.train`` does, with ``model.pt`` and ``config.json``). Without ``resume``, a
        partial checkpoint left there is discarded first.
    resume : bool
        Continue from the folder's :func:`resume_checkpoint` (an interrupted training's, else
        the complete run's ``checkpoint.pt``) when it has one.
    record : dict, optional
        What the training is of (JSON-able: data spec, model and training config), kept in
        the checkpoint so that a resume on other data or another decoder can be refused.

    Returns
    -------
    result : TrainResult

    Raises
    ------
    TrainingInterrupted
        On Ctrl-C (``KeyboardInterrupt``): the model then holds the best epoch's weights so far
        (its weights before training when no epoch was completed), in eval mode, and the
        exception's ``result`` the completed epochs.
    """
    config.validate()
    task = data.task
    device = resolve_device(config.device)
    model.to(device)
    gen = set_seeds(config.seed)
    rng = np.random.default_rng(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.max_epochs)
             if config.scheduler == "cosine" else None)
    loss_fn = _loss_fn(task)
    result = TrainResult()
    start_epoch = 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ckpt = Path(checkpoint_dir) / PARTIAL_FILE if checkpoint_dir else None
    start = resume_checkpoint(checkpoint_dir) if resume and checkpoint_dir else None
    if ckpt is not None and not resume:
        ckpt.unlink(missing_ok=True)  # an earlier interrupted training: this one starts over
    if start is not None:
        state = load_state(start)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and "scheduler" in state:
            sched.load_state_dict(state["scheduler"])
        best_state = state["best_model"]
        start_epoch = int(state["epoch"]) + 1
        result.history = json.loads(state["history"])
        result.best_epoch = int(state["best_epoch"])
        result.best_valid = float(state["best_valid"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        logger.info("resumed from %s at epoch %d", start, start_epoch)
    del gen
    t0 = time.perf_counter()
    better = (lambda a, b: a > b) if task == "regression" else (lambda a, b: a < b)
    try:  # (Ctrl-C: the best state so far goes back into the model, see TrainingInterrupted)
        for epoch in range(start_epoch, config.max_epochs):
            model.train()
            order = data.train_epoch(rng)
            batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
            losses = []
            for b, idx in enumerate(batches):
                if stop is not None and stop.is_set():
                    result.stopped = True
                    break
                X, y = data.batch(np.sort(idx))
                X = torch.as_tensor(X, device=device)
                y = torch.as_tensor(y, device=device)
                opt.zero_grad()
                out = model(X)
                loss = loss_fn(out[:, 0, :] if task == "regression" else out, y)
                loss.backward()
                opt.step()
                losses.append(float(loss.item()))
                if progress is not None:
                    progress({"epoch": epoch, "n_epochs": config.max_epochs, "batch": b + 1,
                              "n_batches": len(batches), "train_loss": losses[-1],
                              "fraction": (epoch + (b + 1) / len(batches)) / config.max_epochs})
            if result.stopped and not losses:
                break
            if sched is not None and not result.stopped:
                sched.step()
            model.eval()
            v_loss, v_metric = _evaluate(model, data, "valid", task, device, loss_fn)
            rec = {"epoch": epoch, "train_loss": float(np.mean(losses)), "valid_loss": v_loss,
                   "valid_metric": v_metric, "seconds": time.perf_counter() - t0}
            result.history.append(rec)
            crit = v_metric if task == "regression" else v_loss
            if result.best_epoch < 0 or (np.isfinite(crit) and better(crit, result.best_valid)):
                result.best_epoch, result.best_valid = epoch, crit
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            logger.info("epoch %d: train %.4f valid loss %.4f metric %.4f", epoch, rec["train_loss"], v_loss, v_metric)
            if ckpt is not None:
                save_state(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                  "scheduler": sched.state_dict() if sched is not None else {},
                                  "best_model": best_state, "epoch": epoch,
                                  "best_epoch": result.best_epoch, "best_valid": result.best_valid,
                                  "history": json.dumps(result.history),
                                  "numpy_rng": json.dumps(rng.bit_generator.state),
                                  "torch_rng": torch.get_rng_state(),
                                  **({"run": json.dumps(record, default=json_default)} if record is not None else {})})
            if progress is not None:
                progress({**rec, "n_epochs": config.max_epochs, "fraction": (epoch + 1) / config.max_epochs,
                          "history": list(result.history), "end_of_epoch": True})
            if result.stopped:
                break
            if epoch - result.best_epoch >= config.patience:
                result.early_stopped = True
                break
    except KeyboardInterrupt:
        model.load_state_dict(best_state)
        model.eval()
        result.stopped, result.seconds = True, time.perf_counter() - t0
        raise TrainingInterrupted(result) from None
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result
