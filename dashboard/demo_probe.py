"""Make the probe result shipped for the demo: ``python -m dashboard.demo_probe``.

Probes the demo decoder (:meth:`core.workspace.Workspace.demo`) and its untrained control
with the default :class:`core.probing.ProbeConfig`, then writes
``assets/demo-probe/<model>.nc`` and ``<model>-control.nc``. The statistics and classes are
kept as computed; the (unit, channel, freq) maps are averaged into 1 Hz bins and stored
as int8 steps of 1/127 [A], which keeps the files under 5 MB while the maps look the same at screen
resolution. The app uses the files only when their ``model_hash`` matches the decoder.
"""
from __future__ import annotations

import argparse
import copy
import logging
import time
from pathlib import Path

import xarray as xr

from core._files import load_netcdf

from .decoder import PROBE_ASSETS

__all__ = ["shrink", "main"]

logger = logging.getLogger(__name__)


def shrink(ds: xr.Dataset, *, bin_hz: float = 1.0, maps: bool = True) -> xr.Dataset:
    """A small copy of a probe result: maps in ``bin_hz`` bins, or no maps
    (:func:`core.probing.pipeline.bin_maps`)."""
    from core.probing.pipeline import bin_maps

    return bin_maps(ds, bin_hz if maps else None)


def _probe(model, dec, config):
    from core.probing.pipeline import finish, start_probe

    X, y = dec.probe_inputs()
    run = start_probe(model, X, sfreq=dec.sfreq, config=config, y=y, task=dec.task, ch_names=dec.ch_names)
    t0 = time.perf_counter()
    run.run(progress=lambda f: logger.info("probe %.0f%% (%.0f s)", 100 * f, time.perf_counter() - t0))
    return finish(run)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="deep4", choices=["deep4", "shallow"])
    parser.add_argument("--out", default=str(PROBE_ASSETS))
    parser.add_argument("--from-file", help="shrink an existing probe result instead of probing")
    parser.add_argument("--control-file", help="with --from-file: the control's probe result")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_file:
        ds = load_netcdf(args.from_file)
        control = load_netcdf(args.control_file) if args.control_file else None
    else:
        from core.probing.pipeline import ProbeConfig, untrained_twin
        from core.workspace import Workspace

        from .decoder import Decoder

        ws = Workspace.demo(model=args.model)
        dec = Decoder(ws, label="demo")
        config = ProbeConfig()
        ds = _probe(copy.deepcopy(ws.model).eval(), dec, config)
        control = _probe(untrained_twin(ws.model), dec, config)
    for name, d, maps in ((f"{args.model}.nc", ds, True), (f"{args.model}-control.nc", control, False)):
        if d is None:
            continue
        path = out / name
        tmp = path.with_suffix(".tmp")
        small = shrink(d, maps=maps)
        enc = {k: {"compression": "gzip", "compression_opts": 6} for k, v in small.data_vars.items() if v.ndim}
        for var in ("amp_corr", "phase_corr"):  # r in [-1, 1] packed in int8 steps of 1/127 [A]
            if var in small:
                enc[var].update(dtype="int8", scale_factor=1 / 127, add_offset=0.0, _FillValue=-128)
        small.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
        tmp.replace(path)
        logger.info("wrote %s (%.2f MB)", path, path.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
