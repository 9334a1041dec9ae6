"""``unitscope info`` of result files: what a probe, pruning curves, kernels or an encoding
study that UnitScope wrote holds (:func:`result_info`), which command wrote it
(:func:`result_kind`), and what keeps a run folder's results from describing its decoder
(:func:`result_notes`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._validation import UnitScopeError
from ._common import json_text

__all__ = ["result_info", "result_kind", "result_notes", "other_code_note", "RESULT_KINDS", "KIND_NAMES", "WRITERS", "holds_text"]


def _reported(name: str) -> bool:
    """Whether ``unitscope report`` reads a run folder's file (probe.nc, prune_curves.nc,
    deconv_*.nc), leaving it out when made for other weights."""
    return name in ("probe.nc", "prune_curves.nc") or (name.startswith("deconv_") and name.endswith(".nc"))


def _redo(name: str, attrs: dict, run_dir: Path) -> str:
    """The command that makes a run folder's pruning curves or kernels again, for its decoder."""
    if name == "prune_curves.nc":
        return f"unitscope prune {run_dir} --curve"
    # deconv_<signal>[_<block>][_masked].nc, as unitscope deconv names it
    stem = name[:-len(".nc")].removesuffix("_masked")
    block = next((b for b in ("train", "valid", "all") if stem.endswith(f"_{b}")), None)
    return (f"unitscope deconv {run_dir} --signal {attrs.get('signal', 'SIGNAL')}"
            + (f" --block {block}" if block else "") + (" --mask FILE" if name.endswith("_masked.nc") else ""))


def result_notes(run_dir: Path, files) -> list[str]:
    """What keeps the result files of a run folder that ``unitscope report`` reads (``files``:
    names) from describing its decoder, in words, one note each: a probe.nc of the weights
    trained before or of other probing code; the other results (pruning curves, kernels) made
    for the weights trained before, which the report leaves out. Each file's weights are
    judged as the report judges them (:func:`core.probing._base.stale_probe`: a file without
    ``model_hash`` is taken as given). Reads the files' attrs and the weights (model.pt), not
    the data; [] when nothing is to be said."""
    import xarray as xr

    from ..probing._base import stale_probe
    from ..workspace import load_run_model

    run_dir = Path(run_dir)
    notes, attrs = [], {}
    for name in (f for f in files if _reported(f)):
        try:
            with xr.open_dataset(run_dir / name, engine="h5netcdf") as f:
                attrs[name] = dict(f.attrs)
        except Exception as exc:  # noqa: BLE001 - a file that cannot be read is said, not raised
            notes.append(f"{name} cannot be read ({exc.__class__.__name__})")
    made_for = {name: a for name, a in attrs.items() if "model_hash" in a}
    if not made_for:
        return notes
    m = json.loads((run_dir / "config.json").read_text())["model"]
    try:
        model = load_run_model(run_dir, m)
    except UnitScopeError as exc:  # unreadable, or weights of another architecture: the loader's words
        return notes + [str(exc).splitlines()[0]]
    why = {name: stale_probe(xr.Dataset(attrs=a), model) for name, a in made_for.items()}
    probe = why.pop("probe.nc", "")  # "code": the same weights, other probing code (only a probe says)
    if probe == "weights":
        notes.append(f"probe.nc was made for the weights trained before: unitscope probe {run_dir} probes these")
    elif probe == "code":
        notes.append(other_code_note("probe.nc", run_dir))
    before = [name for name, w in why.items() if w == "weights"]
    if before:
        redo = list(dict.fromkeys(_redo(name, made_for[name], run_dir) for name in before))
        notes.append(f"{', '.join(before)} {'was' if len(before) == 1 else 'were'} made for the weights trained "
                     f"before, so unitscope report leaves {'it' if len(before) == 1 else 'them'} out: "
                     f"{' and '.join(redo)} remake{'s' if len(redo) == 1 else ''} "
                     f"{'it' if len(before) == 1 else 'them'} for these")
    return notes


def other_code_note(name, run_dir) -> str:
    """The words for a probe result of these weights computed by other probing code."""
    return f"{name} was computed by other probing code (an earlier UnitScope): unitscope probe {run_dir} updates it"


RESULT_KINDS = {"probe": "unitscope probe", "pruning_curve": "unitscope prune --curve", "dunl": "unitscope deconv",
                "encoding": "unitscope encode"}  # kind -> the command that writes it
KIND_NAMES = {"probe": "probe", "pruning_curve": "pruning curves", "dunl": "kernels (DUNL)",
              "encoding": "encoding study", "app_pruning": "pruning curves and ablation effects",
              "app_kernels": "kernels (DUNL)"}
WRITERS = {**RESULT_KINDS, "app_pruning": "the app's Export view", "app_kernels": "the app's Export view"}


def result_kind(ds) -> str:
    """Which UnitScope command wrote a result Dataset (its ``method`` attr), or ""."""
    method = str(ds.attrs.get("method", ""))
    if "unit" in ds.dims and ("amp_stat_all" in ds or "phase_stat_all" in ds):
        return "probe"
    if method == "pruning_curve+single_unit_ablation":  # the app's Export: curves of several layers
        return "app_pruning"
    if method == "dunl" and "kernel" not in ds.dims:  # the app's Export: output_*, unit_*, channel_* fits
        return "app_kernels"
    if method in ("pruning_curve", "dunl"):
        return method
    if method.startswith("Deep Recurrent Encoder") or {"score", "model"} <= set(ds.variables):
        return "encoding"
    return ""


def holds_text(ds, lacking: str) -> str:
    """What a result file given for the wrong purpose holds, for a refusal: "holds pruning
    curves, as unitscope prune --curve writes them", or, for no file UnitScope writes, "holds
    no <lacking> (its variables are [...])"."""
    kind = result_kind(ds)
    if kind:
        return f"holds {KIND_NAMES[kind]}, as {WRITERS[kind]} writes them"
    return f"holds no {lacking} (its variables are {sorted(ds.data_vars)})"


def result_info(path: Path, *, as_json: bool) -> int:
    """A result file UnitScope wrote: what it is and holds (no model or data loaded)."""
    from .._files import load_netcdf

    try:
        ds = load_netcdf(path)
    except Exception as exc:  # noqa: BLE001 - xarray's words name its backends, not the file's fault
        raise UnitScopeError(f"{str(path)!r} cannot be read: it is not a netCDF-4 (HDF5) file, as UnitScope "
                             f"writes them, or it is damaged ({exc.__class__.__name__}).") from exc
    kind = result_kind(ds)
    if not kind:
        raise UnitScopeError(
            f"{str(path)!r} is a netCDF file UnitScope did not write (method attr {ds.attrs.get('method')!r}): "
            f"unitscope info describes recordings, run folders, batch folders and the result files of "
            f"{', '.join(RESULT_KINDS.values())}.")
    lines, facts = {"probe": _probe_lines, "pruning_curve": _curve_lines, "dunl": _kernel_lines,
                    "encoding": _encoding_lines, "app_pruning": _app_pruning_lines,
                    "app_kernels": _app_kernel_lines}[kind](ds)
    if as_json:
        print(json_text({"result": str(path), "kind": kind, "written_by": WRITERS[kind], **facts}))
        return 0
    print(f"result     {path}: {KIND_NAMES[kind]}, written by {WRITERS[kind]}")
    for line in lines:
        print(line)
    return 0


def _made_for(ds) -> str:
    a = ds.attrs
    block = a.get("block")
    if block is not None and not isinstance(block, str):  # a deconvolution keeps its block's sample range
        block = "samples {}-{}".format(*np.asarray(block).ravel()[:2])
    parts = [f"weights {a['model_hash']}" if "model_hash" in a else "",
             f"run {a['run_dir']}" if "run_dir" in a else "", f"block {block}" if block is not None else ""]
    return ", ".join(p for p in parts if p)


def _probe_lines(ds) -> tuple[list[str], dict]:
    from ..probing._base import code_version
    from ..probing.stats import sensitivity_peak
    from .probe import class_lines, validity_text

    a = ds.attrs
    site = {"conv": "before BatchNorm (conv output, as the seed paper)", "nonlin": "after the nonlinearity"}
    layers = [str(x) for x in dict.fromkeys(ds["layer"].values)]
    counts = {layer: int((ds["layer"].values == layer).sum()) for layer in layers}
    done = float(a.get("progress", 1.0))
    lines = [f"probe      {a.get('method', '?')}, units read {site.get(a.get('site'), a.get('site', '?'))}"
             + (" (untrained control)" if int(a.get("untrained", 0)) else ""),
             f"data       {int(a.get('n_windows', 0))} windows of {int(a.get('n_times', 0))} samples at "
             f"{float(a.get('sfreq', float('nan'))):g} Hz, {ds.sizes.get('channel', 0)} channels; "
             f"{int(a.get('amp_iterations', 0))} of {int(a.get('amp_n_iterations', 0))} iterations per pass"
             + ("" if done >= 1 else f" (stopped at {done:.0%})"),
             "bands      " + ", ".join(f"{b} {float(lo):g}-{float(hi):g} Hz" for b, lo, hi in
                                      zip(ds["band"].values, ds["band_lo"].values, ds["band_hi"].values)),
             f"units      {ds.sizes['unit']}: " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    made = _made_for(ds)
    if made:
        lines.append(f"made for   {made}")
    if a.get("code_version") and a["code_version"] != code_version():
        lines.append(f"note       computed by other probing code ({a['code_version']}; this UnitScope's is "
                     f"{code_version()}): unitscope probe RUN_DIR computes it again")
    if "unit_class_all" in ds:
        lines += [f"classes    {line}" if i == 0 else f"           {line}" for i, line in enumerate(class_lines(ds))]
    lines.append(f"validity   {validity_text(ds)}")
    facts = {"site": a.get("site"), "n_units": int(ds.sizes["unit"]), "units_per_layer": counts,
             "n_windows": int(a.get("n_windows", 0)), "progress": done, "most_sensitive": {}}
    weighted = a.get("resolution", "band") == "band"
    for kind, prefix in (("amplitude", "amp"), ("phase", "phase")):
        var = f"{prefix}_stat_all"
        if var not in ds:
            continue
        top = [str(u) for u in ds["unit"].values[np.argsort(-np.nan_to_num(ds[var].values, nan=-np.inf))[:3]]]
        peaks = [sensitivity_peak(ds, u, prefix) if weighted else _bin_peak(ds, u, prefix) for u in top]
        facts["most_sensitive"][kind] = [{"unit": u, **p} for u, p in zip(top, peaks)]
        lines.append(f"{'top ' + ('amp' if kind == 'amplitude' else kind):<11}" + ", ".join(
            f"{u} {p['score']:.3f} ({'all channels' if p['shared'] else p['channel']}, {p['band'].replace('_', ' ')})"
            for u, p in zip(top, peaks)))
    lines.append("           (sensitivity: a unit's largest |band-mean r| x sqrt(bins in the band) over channels "
                 "and bands)" if weighted else "           (sensitivity: a unit's largest |r| over channels and bins)")
    return lines, facts


def _bin_peak(ds, unit: str, prefix: str) -> dict:
    """Where the sensitivity of a ``resolution="freq"`` probe comes from: its statistic is the
    largest single-bin |r| over channels and bins (``score``, as ranked), found in the maps
    (``{prefix}_corr``) at a channel and a frequency (``band``: "12.5 Hz"); without maps
    (--no-maps), the band of the largest band mean (:func:`core.probing.stats.sensitivity_peak`)
    names where. [A] The largest band mean was printed as the score: values that were not the
    ones the list was ranked by (0.061 for a statistic of 0.556), in no visible order."""
    from ..probing.stats import sensitivity_peak

    score = float(ds[f"{prefix}_stat_all"].sel(unit=unit))
    maps = f"{prefix}_corr"
    if maps not in ds:
        return {**sensitivity_peak(ds, unit, prefix), "score": score}
    r = np.nan_to_num(ds[maps].sel(unit=unit).values.astype(np.float64))  # (channel, freq)
    c, f = np.unravel_index(int(np.argmax(np.abs(r))), r.shape)
    return {"channel": str(ds["channel"].values[c]), "band": f"{float(ds['freq'].values[f]):.1f} Hz",
            "r": float(r[c, f]), "bins": 1, "score": score,
            "shared": prefix == "phase" and ds.attrs.get("phase_variant") == "shared"}


def _curve_lines(ds) -> tuple[list[str], dict]:
    from .prune import curve_lines

    made = _made_for(ds)
    facts = {"metric": ds.attrs.get("metric"), "baseline": float(ds.attrs["baseline"]),
             "orders": [str(o) for o in ds["order"].values], "fractions": ds["fraction"].values.tolist(),
             "curves": {str(o): ds["metric"].sel(order=o).values.tolist() for o in ds["order"].values}}
    return ([f"made for   {made}"] if made else []) + curve_lines(ds), facts


def _kernel_lines(ds) -> tuple[list[str], dict]:
    from .deconv import summary_lines

    a = ds.attrs
    lines = [f"signal     {a.get('signal', '?')}, {a.get('likelihood', '?')} likelihood, {ds.sizes.get('event', 0)} "
             f"events, {ds.sizes.get('kernel', 0)} kernel(s) of {ds.sizes.get('lag', 0) * float(a.get('bin_seconds', 0)):.2f} s"
             + (f", refit under a mask ({a['refit']})" if a.get("refit") else "")]
    made = _made_for(ds)
    if made:
        lines.append(f"made for   {made}")
    facts = {"signal": a.get("signal"), "r2": float(a.get("r2", float("nan"))),
             "kernels": [str(k) for k in ds["kernel"].values], "n_events": int(ds.sizes.get("event", 0))}
    return lines + summary_lines(ds), facts


def _encoding_lines(ds) -> tuple[list[str], dict]:
    from .encode import result_lines

    a = ds.attrs
    sizes = ", ".join(f"{ds.sizes[d]} {d}s" for d in ("subject", "channel", "feature") if d in ds.sizes)
    lines = [f"study      {a.get('method', '?')}; data {a.get('data', a.get('data_source', '?'))} ({sizes})"]
    facts = {"models": [str(m) for m in ds["model"].values],
             "score": {str(m): float(ds["score"].sel(model=m)) for m in ds["model"].values}}
    return lines + result_lines(ds), facts


def _mask_text(pruned: dict) -> str:
    """A session's mask ({layer: [units]}, as the app's exports keep it) in a few words."""
    return (", ".join(f"{k} {len(v)}" for k, v in pruned.items()) or "nothing") + " pruned"


def _app_pruning_lines(ds) -> tuple[list[str], dict]:
    """The app's pruning export: the session's mask and metric, each layer's curves, the
    largest single-unit drops."""
    from .prune import curve_lines, drops_line

    a = ds.attrs
    pruned = json.loads(a.get("session_pruned", "{}") or "{}")
    lines = [f"decoder    {a.get('decoder', '?')}; {a.get('metric', 'metric')} {float(a.get('metric_unpruned', np.nan)):.4f}"
             f" unpruned, {float(a.get('metric_pruned', np.nan)):.4f} with the session's mask ({_mask_text(pruned)})"]
    facts = {"metric_unpruned": float(a.get("metric_unpruned", np.nan)), "session_pruned": pruned, "curves": {}}
    if "metric" in ds and "layer" in ds["metric"].dims:
        for layer in ds["layer"].values:
            sub = ds[[v for v in ("metric", "random_lo", "random_hi") if v in ds]].sel(layer=layer)
            sub.attrs = {"block": "test", "metric": a.get("metric", "metric"), "baseline": a.get("metric_unpruned"),
                         "scores": a.get("by", "?"), "layers": str(layer)}
            lines += curve_lines(sub)
            facts["curves"][str(layer)] = {str(o): sub["metric"].sel(order=o).values.tolist()
                                           for o in sub["order"].values}
    if "ablation_drop" in ds:
        lines.append(f"ablation   {ds['ablation_drop'].sizes.get('unit', 0)} units; {drops_line(ds['ablation_drop'])}")
    return lines, facts


def _app_kernel_lines(ds) -> tuple[list[str], dict]:
    """The app's kernels export: each fit (decoder output, unit, input channel) as deconv prints it."""
    from .deconv import summary_lines

    lines, facts = [], {"fits": {}}
    pruned = json.loads(ds.attrs.get("pruned", "{}") or "{}")
    lines.append(f"mask       v{ds.attrs.get('mask_version', '?')}: {_mask_text(pruned)}")
    for name in ("output", "unit", "channel"):
        if f"{name}_kernels" not in ds:
            continue
        own = [v for v in ds.variables if str(v).startswith(f"{name}_")]
        sub = ds[[v for v in own if v in ds.data_vars]]
        sub = sub.rename({v: str(v)[len(name) + 1:] for v in sub.variables if str(v).startswith(f"{name}_")})
        sub.attrs = {"r2": float(ds.attrs.get(f"{name}_r2", np.nan))}
        signal = ds.attrs.get(f"{name}_signal", name)
        lines.append(f"signal     {signal}")
        lines += [f"           {line}" for line in summary_lines(sub)]
        facts["fits"][str(signal)] = {"r2": sub.attrs["r2"], "kernels": [str(k) for k in sub["kernel"].values]}
    return lines, facts
