"""Batches of independent runs (recordings, decoders, seeds) on Dask distributed.

Training and probing many subjects, models or seeds is embarrassingly parallel: each run
is one task handed to an existing engine, Dask distributed, on a local cluster by default
or on a lab cluster given its scheduler address. There is no home-made scheduler here:
this module only describes the runs, executes one run in a worker (:func:`run_one`), and
gathers the workers' summaries into one :class:`xarray.Dataset` (dim ``run``).

Each run writes its own folder ``OUT/<name>/`` (``model.pt``, ``config.json`` and, with a
probe, ``probe.nc``), so any run can be opened later with ``Workspace.load`` or the app.
A run that fails (a missing file, a bad target) is reported in the summary's ``error``
variable and does not stop the others.

Dask is an optional dependency: ``pip install "unitscope[distributed]"``.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import xarray as xr

from ._validation import UnitScopeError, check_option, ensure_int
from .metrics import METRIC_NAMES

__all__ = ["BatchRun", "plan_runs", "run_one", "run_batch", "load_batch", "summarise_batch", "run_note",
           "BATCH_FILE", "RUN_NAME_END"]

logger = logging.getLogger(__name__)
BATCH_FILE = "batch.nc"  # the summary a batch folder holds


@dataclass
class BatchRun:
    """One run of a batch: data, training and (optionally) probing options.

    ``probe`` is a :class:`core.probing.ProbeConfig` as a dict (None: no probe), so a run
    travels to a worker as plain data.
    """

    name: str
    data: dict
    train: dict
    probe: dict | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "data": dict(self.data), "train": dict(self.train),
                "probe": None if self.probe is None else dict(self.probe)}


def _stem(source: str) -> str:
    if source == "demo":
        return "demo"
    p = Path(source)
    return p.name if p.is_dir() else p.stem


def _run_source(data: dict) -> str:
    """The recording a run's summary names (:func:`core.io.source_label`)."""
    from .io import source_label

    return source_label(str(data.get("source", "")), data.get("bids"))


def _expand_bids(sources: Sequence[str], bids) -> list[tuple[str, dict | None, str]]:
    """(source, BIDS entities, run-name stem) per recording: a BIDS folder gives one per
    recording matching ``bids``; any other source itself."""
    from .io import bids_recordings, is_bids_root, parse_bids

    want = parse_bids(bids)
    out = []
    for source in sources:
        source = str(source)
        if source != "demo" and is_bids_root(source):
            found = bids_recordings(source, want)
            if not found:
                raise UnitScopeError(f"No EEG/iEEG/MEG recording matching {want or 'anything'} in the BIDS folder "
                                     f"{source!r}.")
            out += [(source, r["entities"], f"{_stem(source)}-{r['label'].split()[0]}") for r in found]
        else:
            if want:
                raise UnitScopeError(f"--bids chooses recordings of BIDS folders; {source!r} is not one "
                                     "(no dataset_description.json).")
            out.append((source, None, _stem(source)))
    return out


# the end of a run's folder name, as plan_runs names it: ``<recording>-<model>-s<seed>``
RUN_NAME_END = re.compile(r"-(deep4|shallow)-s\d+$")


def plan_runs(sources: Sequence[str], *, target: str | None = None, models: Sequence[str] = ("deep4",),
              seeds: Sequence[int] | None = None, max_epochs: int | None = None,
              duration: float | None = None, probe: dict | None = None, bids=None) -> list[BatchRun]:
    """Every combination of recording x decoder x seed, as :class:`BatchRun` s.

    Parameters
    ----------
    sources : sequence of str
        ``"demo"``, recording paths (any format :func:`core.io.read_recording` reads) or BIDS
        folders, each of which gives one run per recording (those matching ``bids``).
    target : str | None
        As ``DataSpec.target`` (a channel, ``events`` or ``events:T1,T2``); None for the demo.
    models : sequence of {"deep4", "shallow"}
    seeds : sequence of int | None
        Training seeds (default: the training default only).
    max_epochs : int | None
        Override of ``TrainConfig.max_epochs``.
    duration : float | None
        Length of the demo recording in seconds (default 600).
    probe : dict | None
        :class:`core.probing.ProbeConfig` options; when given (``{}`` for the defaults),
        every run is probed after training.
    bids : dict | str | None
        BIDS entities choosing recordings of the BIDS folders (:func:`core.io.parse_bids`:
        ``"task=reach"``, ``"sub-01"``); None: all of them.

    Returns
    -------
    runs : list of BatchRun
        Named ``<recording>-<model>-s<seed>`` (a BIDS folder's: ``<folder>-sub-01_run-1-<model>-s<seed>``).
    """
    from .probing import ProbeConfig
    from .training import TrainConfig
    from .workspace import DataSpec

    if not sources:
        raise UnitScopeError("No recordings given: pass 'demo' or at least one recording path.")
    models = list(models)
    if not models:
        raise UnitScopeError("No decoders given: pass deep4 and/or shallow.")
    for m in models:
        check_option("model", m, ("deep4", "shallow"))
    seeds = [TrainConfig.seed] if seeds is None or len(seeds) == 0 else [ensure_int("seed", s) for s in seeds]
    probe_cfg = None if probe is None else ProbeConfig(**probe).validate().to_dict()
    runs, names = [], set()
    for (source, entities, stem), model, seed in itertools.product(_expand_bids(sources, bids), models, seeds):
        spec = DataSpec(source=source, target=target, bids=entities)
        if duration is not None:
            spec.duration = float(duration)
        train = TrainConfig(model=model, seed=int(seed))
        if max_epochs is not None:
            train.max_epochs = ensure_int("max_epochs", max_epochs)
        train.validate()
        name = f"{stem}-{model}-s{seed}"
        if name in names:
            raise UnitScopeError(f"Two runs would share the folder {name!r}: recordings need distinct file names "
                                 f"(given {list(sources)}).")
        names.add(name)
        runs.append(BatchRun(name, spec.to_dict(), train.to_dict(), probe_cfg))
    return runs


def run_one(run: dict, out_dir: str, *, threads: int = 1) -> dict:
    """Train (and probe) one run; executed in a Dask worker, usable on its own.

    Parameters
    ----------
    run : dict
        :meth:`BatchRun.to_dict`.
    out_dir : str
        The batch folder; the run writes ``out_dir/<name>/``.
    threads : int
        Torch intra-op threads for this run (one per worker thread is the sensible default).

    Returns
    -------
    summary : dict
        name, source, model, seed, task, valid, test (held-out metrics), epochs, n_test (its
        windows or trials), n_test_classes (-1 for a trace), train_seconds, run_dir, and with a probe ``probe_seconds`` and ``class_fractions``
        ({layer: {class: fraction}}).
    """
    from .probing import ProbeConfig, class_fractions, probe_units
    from .probing.pipeline import workspace_windows
    from .training import TrainConfig, atomic_write_netcdf, configure_threads
    from .workspace import DataSpec, Workspace

    configure_threads(threads)
    run_dir = Path(out_dir) / run["name"]
    ws = Workspace.create(DataSpec.from_record(run["data"]), TrainConfig.from_dict(run["train"]))
    t0 = time.perf_counter()
    ws.train(run_dir=run_dir)
    summary = {"name": run["name"], "source": _run_source(run["data"]), "model": run["train"]["model"],
               "seed": int(run["train"]["seed"]), "task": ws.task, "valid": float(ws.metrics["valid"]),
               "test": float(ws.metrics["test"]), "epochs": int(ws.metrics["epochs"]),
               "n_test": int(ws.metrics.get("n_test", -1)), "n_test_classes": int(ws.metrics.get("n_test_classes", -1)),
               "train_seconds": time.perf_counter() - t0, "run_dir": str(run_dir)}
    if run.get("probe") is not None:
        t0 = time.perf_counter()
        X, y = workspace_windows(ws, "train")
        ds = probe_units(ws.model, X, sfreq=ws.recording.sfreq, config=ProbeConfig(**run["probe"]), y=y,
                         task=ws.task, ch_names=ws.recording.ch_names)
        ds.attrs["run_dir"] = str(run_dir.resolve())
        atomic_write_netcdf(ds, run_dir / "probe.nc")
        frac = class_fractions(ds)
        summary["probe_seconds"] = time.perf_counter() - t0
        summary["class_fractions"] = {str(layer): {str(c): float(frac.sel(layer=layer, **{"class": c}))
                                                   for c in frac["class"].values}
                                      for layer in frac["layer"].values}
    return summary


def _run_task(run: dict, out_dir: str, *, threads: int = 1) -> dict:
    """:func:`run_one` as a Dask task: a user error (a UnitScopeError, a missing or unreadable
    file) comes back as the summary's ``error`` (``"UnitScopeError: ..."``, its first line), not
    as a failed task, which Dask's worker logs with its traceback before the batch says why."""
    try:
        return run_one(run, out_dir, threads=threads)
    except (UnitScopeError, FileNotFoundError, PermissionError) as exc:
        return {"name": run["name"], "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}


def _client(scheduler: str | None, n_workers: int | None, threads_per_worker: int, processes: bool,
            timeout: float):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise UnitScopeError('Batches need Dask distributed: pip install "unitscope[distributed]".') from exc
    if scheduler:
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise UnitScopeError(f"Could not reach the Dask scheduler {scheduler!r} within {timeout:g} s "
                                 f"({type(exc).__name__}); expected an address like tcp://host:8786.") from exc
    if not logger.isEnabledFor(logging.INFO):  # Dask's scheduler and nannies report at INFO level
        logging.getLogger("distributed").setLevel(logging.WARNING)
    n = n_workers or max(1, (os.cpu_count() or 1) // threads_per_worker)
    # [A] Dask's own web dashboard is off (its Bokeh server would clash with the app's)
    cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=processes,
                           dashboard_address=None, silence_logs=logging.WARNING)
    return Client(cluster)


def _close(client, scheduler: str | None) -> None:
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None and scheduler is None:
        cluster.close()


def _summary_dataset(summaries: list[dict], names: list[str]) -> xr.Dataset:
    by_name = {s["name"]: s for s in summaries}
    get = lambda key, default=np.nan: [by_name[n].get(key, default) for n in names]  # noqa: E731
    ds = xr.Dataset(
        {"valid": ("run", np.asarray(get("valid"), float)), "test": ("run", np.asarray(get("test"), float)),
         "epochs": ("run", np.asarray(get("epochs", -1), int)),
         "n_test": ("run", np.asarray(get("n_test", -1), int)),
         "n_test_classes": ("run", np.asarray(get("n_test_classes", -1), int)),
         "train_seconds": ("run", np.asarray(get("train_seconds"), float)),
         "error": ("run", np.asarray(get("error", ""), dtype=str))},
        coords={"run": names, "source": ("run", get("source", "")), "model": ("run", get("model", "")),
                "seed": ("run", np.asarray(get("seed", -1), int)), "task": ("run", get("task", "")),
                "run_dir": ("run", get("run_dir", ""))},
    )
    fr = [by_name[n].get("class_fractions") for n in names]
    if any(f is not None for f in fr):
        layers = list(dict.fromkeys(layer for f in fr if f for layer in f))
        classes = ["amplitude", "phase", "bimodal", "insensitive"]
        arr = np.full((len(names), len(layers), len(classes)), np.nan)
        for i, f in enumerate(fr):
            for j, layer in enumerate(layers):
                for k, c in enumerate(classes):
                    if f and layer in f:
                        arr[i, j, k] = f[layer].get(c, np.nan)
        ds["class_fraction"] = (("run", "layer", "class"), arr)
        ds = ds.assign_coords(layer=layers, **{"class": classes})
        ds["probe_seconds"] = ("run", np.asarray(get("probe_seconds"), float))
    ds["test"].attrs["long_name"] = "held-out metric (Pearson r or balanced accuracy)"
    return ds


def run_batch(runs: Sequence[BatchRun], out_dir: str | Path, *, scheduler: str | None = None,
              n_workers: int | None = None, threads_per_worker: int = 1, processes: bool = True,
              timeout: float = 10.0, progress: Callable[[dict], None] | None = None) -> xr.Dataset:
    """Run every :class:`BatchRun` on Dask distributed and gather their summaries.

    Parameters
    ----------
    runs : sequence of BatchRun
        From :func:`plan_runs` (or built by hand); names must be unique.
    out_dir : str or Path
        Batch folder: one sub-folder per run and ``batch.nc`` (the returned summary). With a
        remote scheduler it must be a path the workers can write (a shared file system).
    scheduler : str | None
        Address of a running Dask scheduler (``tcp://host:8786``); None starts a local
        cluster of ``n_workers`` worker processes.
    n_workers : int | None
        Local workers (default: cores // threads_per_worker).
    threads_per_worker : int
        Threads per local worker; each run uses this many torch threads.
    processes : bool
        Local workers as processes (default). ``False`` runs them as threads of this
        process (for tests and small jobs; concurrent runs then share torch's global
        random generator and are not reproducible).
    timeout : float
        Seconds to wait for a remote scheduler.
    progress : callable, optional
        Called with ``{"done", "n", "name", "error"}`` as each run finishes.

    Returns
    -------
    summary : xarray.Dataset
        Dim ``run`` (the run names) with coords source, model, seed, task, run_dir and
        variables valid, test, epochs, train_seconds, error (empty when the run succeeded);
        with probes also ``class_fraction`` (run, layer, class) and ``probe_seconds``.
        Also written atomically to ``out_dir/batch.nc``.
    """
    from .training import atomic_write_netcdf

    runs = list(runs)
    if not runs:
        raise UnitScopeError("The batch is empty: plan at least one run.")
    names = [r.name for r in runs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UnitScopeError(f"Run names must be unique; repeated: {dupes}.")
    threads_per_worker = ensure_int("threads_per_worker", threads_per_worker)
    if threads_per_worker < 1:
        raise UnitScopeError(f"{threads_per_worker=} must be at least 1.")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnitScopeError(f"Cannot create the batch folder {str(out)!r}: {exc.strerror or exc}.") from exc
    if not os.access(out, os.W_OK):
        raise UnitScopeError(f"The batch folder {str(out)!r} is not writable.")
    out_s = str(out.resolve())
    summaries, interrupted = [], False
    client = _client(scheduler, n_workers, threads_per_worker, processes, timeout)
    try:
        from dask.distributed import as_completed

        futures = {client.submit(_run_task, r.to_dict(), out_s, threads=threads_per_worker, pure=False,
                                 key=f"unitscope-{r.name}-{time.time_ns()}"): r for r in runs}
        for k, fut in enumerate(as_completed(futures), start=1):
            r = futures[fut]
            try:
                s = fut.result()
                err = s.get("error", "")
            except Exception as exc:  # noqa: BLE001 - one failed run must not stop the batch
                err = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if err:
                # (progress says it: a second line, a log's, for each failure is noise on the terminal)
                logger.log(logging.INFO if progress is not None else logging.WARNING, "run %s failed: %s", r.name, err)
                s = {"name": r.name, "source": _run_source(r.data), "model": r.train.get("model", ""),
                     "seed": r.train.get("seed", -1), "error": err}
            summaries.append(s)
            if progress is not None:
                progress({"done": k, "n": len(runs), "name": r.name, "error": err})
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        # after Ctrl-C, the tasks cancelled and the workers stopped are Dask's warnings: the caller
        # says what was left
        quiet = logging.getLogger("distributed")
        level = quiet.level
        if interrupted:
            quiet.setLevel(logging.CRITICAL)
        try:
            _close(client, scheduler)
        finally:
            quiet.setLevel(level)
    ds = _summary_dataset(summaries, names)
    ds.attrs.update({"scheduler": scheduler or "local", "n_runs": len(runs),
                     "n_failed": int(sum(bool(s.get("error")) for s in summaries))})
    atomic_write_netcdf(ds, out / BATCH_FILE)
    return ds


def load_batch(folder: str | Path) -> xr.Dataset:
    """The summary (``batch.nc``) of a batch folder written by :func:`run_batch`."""
    from ._files import load_netcdf

    path = Path(folder) / BATCH_FILE
    if not path.is_file():
        raise UnitScopeError(f"{str(folder)!r} is not a batch folder: it holds no {BATCH_FILE} "
                             "(written by 'unitscope batch').")
    try:
        ds = load_netcdf(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise UnitScopeError(f"Cannot read {str(path)!r}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    missing = [k for k in ("test", "error") if k not in ds] + [k for k in ("model", "source") if k not in ds.coords]
    if "run" not in ds.dims or missing:
        raise UnitScopeError(f"{str(path)!r} is not a batch summary: expected dim 'run' and {missing or 'its'} "
                             "variables (test, error, model, source).")
    return ds


def run_note(ds: xr.Dataset, run) -> str:
    """What to keep in mind when reading run ``run``'s test metric, or "": at or below chance,
    not clearly above it, on few trials (:func:`core.cautions.chance_note`, ``trials_note``),
    undefined. A batch written before the test block's trial counts were kept says only what
    it can (a correlation at or below 0)."""
    from .cautions import chance_note, trials_note

    row = ds.sel(run=run)
    if str(row["error"].values):
        return ""
    task, test = str(row["task"].values), float(row["test"].values)
    n = int(row["n_test"].values) if "n_test" in row else -1
    k = int(row["n_test_classes"].values) if "n_test_classes" in row else -1
    if task == "classification":
        if test == test and k < 1:
            return ""  # (no class count kept: no chance level to compare with)
        notes = [chance_note(task, test, k, n if n > 0 else None), trials_note(task, n if n > 0 else None)]
    else:
        notes = [chance_note("regression", test)]
    return "; ".join(t for t in notes if t)


def summarise_batch(ds: xr.Dataset) -> dict:
    """Held-out metrics and unit classes of a batch, per recording and decoder.

    Parameters
    ----------
    ds : xarray.Dataset
        A batch summary (:func:`run_batch`, :func:`load_batch`).

    Returns
    -------
    summary : dict
        ``groups``: one dict per (source, model) in the order the runs first name them, with
        ``source``, ``model``, ``finished`` (the names of its runs that finished), ``metric`` (its
        name), ``notes`` (finished run -> :func:`run_note`, for those with one), ``n``, ``n_failed``,
        and the test metric's ``mean``, ``sd`` (ddof 1; NaN for one run), ``min``, ``max`` over
        the runs that finished; ``failed``: run name -> its error, for the runs that failed;
        ``fractions``: None (no finished run was probed), or a DataArray (model, layer,
        class) of the mean class fraction over each model's finished, probed runs (NaN for a
        model with none), and ``fractions_sd`` (the same, sd over runs).
    """
    ok = np.asarray([str(e) == "" for e in ds["error"].values])
    test = np.asarray(ds["test"].values, float)
    sources = [str(v) for v in ds["source"].values]
    models = [str(v) for v in ds["model"].values]
    groups = []
    for src, model in dict.fromkeys(zip(sources, models)):
        sel = np.array([(a, b) == (src, model) for a, b in zip(sources, models)])
        vals = test[sel & ok & np.isfinite(test)]
        finished = [str(r) for r in ds["run"].values[sel & ok]]
        tasks = {str(t) for t, here in zip(ds["task"].values, sel & ok) if here} if "task" in ds.coords else set()
        groups.append({"source": src, "model": model, "finished": finished,
                       "metric": METRIC_NAMES.get(tasks.pop(), "metric") if len(tasks) == 1 else "metric",
                       "notes": {r: note for r in finished if (note := run_note(ds, r))},
                       "n": int(sel.sum()), "n_failed": int((sel & ~ok).sum()),
                       "mean": float(vals.mean()) if len(vals) else float("nan"),
                       "sd": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                       "min": float(vals.min()) if len(vals) else float("nan"),
                       "max": float(vals.max()) if len(vals) else float("nan")})
    failed = {str(r): str(e) for r, e, good in zip(ds["run"].values, ds["error"].values, ok) if not good}
    out = {"groups": groups, "failed": failed, "fractions": None, "fractions_sd": None}
    if "class_fraction" in ds and np.isfinite(ds["class_fraction"].values[ok]).any():
        frac = ds["class_fraction"].where(xr.DataArray(ok, dims="run"))
        names = list(dict.fromkeys(models))
        means, sds = [], []
        for model in names:
            f = frac.isel(run=np.flatnonzero(np.asarray(models) == model))
            means.append(f.mean("run", skipna=True))
            sds.append(f.std("run", ddof=1, skipna=True) if f.sizes["run"] > 1 else xr.full_like(f.isel(run=0), np.nan))
        model_dim = xr.DataArray(names, dims="model", name="model")
        keep = ["layer", "class"]  # the per-run coords (source, seed, ...) do not describe a mean
        out["fractions"], out["fractions_sd"] = (
            xr.concat([a.reset_coords(drop=True).assign_coords({k: a[k] for k in keep}) for a in parts],
                      dim=model_dim, coords="minimal", compat="override")
            for parts in (means, sds))
    return out

