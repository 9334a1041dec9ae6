"""Make the encoding result shipped for the Encoding view: ``python -m dashboard.encoding_demo``.

Runs :class:`core.encoding.EncodingStudy` (DRE with the TRF and ridge-ARX (RTRF) baselines,
permutation importance) on the synthetic reading data set
(:func:`core.encoding.simulate_reading`, ``--subjects`` x ``--words``, seed 0) with the
default :class:`core.encoding.DREConfig` and one torch/BLAS thread, adds the subject of each
stored example epoch (``example_subject``), and writes ``assets/demo-encoding/
synthetic-reading.nc``. [A] To keep the file small (< 3 MB) the maps are stored as int16 with
a per-variable scale (about 1e-4 of their range) and gzip; at screen resolution they are the
same maps. ``--from-file`` shrinks an existing ``unitscope encode`` result instead.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["ENCODING_ASSET", "add_example_subjects", "shrink", "write_small", "make", "main"]

logger = logging.getLogger(__name__)
ENCODING_ASSET = Path(__file__).resolve().parent.parent / "assets" / "demo-encoding" / "synthetic-reading.nc"
_PACKED = ("r", "r_drop", "loss_increase_map", "predicted", "actual")


def add_example_subjects(result: xr.Dataset, data: xr.Dataset) -> xr.Dataset:
    """Add ``example_subject`` (example): the subject of each stored test epoch.

    The study keeps the examples' epoch numbers as the ``example`` coordinate; ``data`` is
    the encoding data set the study ran on.
    """
    subj = data["subject"].sel(epoch=result["example"].values).values.astype(str)
    return result.assign(example_subject=("example", subj))


def shrink(result: xr.Dataset) -> xr.Dataset:
    """A copy with float32 variables and no unused coordinates (values unchanged)."""
    out = result.copy()
    for var in _PACKED:
        if var in out:
            out[var] = out[var].astype(np.float32)
    return out


def write_small(result: xr.Dataset, path) -> Path:
    """Write ``result`` atomically, maps packed as int16 with gzip [A]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    small = shrink(result)
    enc = {}
    for var, da in small.data_vars.items():
        if da.ndim == 0 or da.dtype.kind not in "fiu":
            continue
        enc[var] = {"compression": "gzip", "compression_opts": 6}
        if var in _PACKED:
            lim = float(np.nanmax(np.abs(da.values))) if np.isfinite(da.values).any() else 1.0
            enc[var].update(dtype="int16", scale_factor=np.float32(max(lim, 1e-12) / 32000), add_offset=np.float32(0),
                            _FillValue=np.int16(-32768))
    tmp = path.with_suffix(".tmp")
    small.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
    tmp.replace(path)
    return path


def make(*, n_subjects: int = 6, n_words: int = 600, seed: int = 0, progress=None) -> xr.Dataset:
    """Run the study on the synthetic reading data; returns the result with example subjects."""
    import torch

    from core.encoding import DREConfig, EncodingStudy, simulate_reading
    from core.encoding.study import blas_threads

    data = simulate_reading(n_subjects=n_subjects, n_words=n_words, seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with blas_threads(1):
            t0 = time.perf_counter()
            result = EncodingStudy(DREConfig(), seed=seed).run(data, progress=progress)
    finally:
        torch.set_num_threads(threads)
    result = add_example_subjects(result, data)
    result.attrs.update(data="synthetic-reading", made_by="python -m dashboard.encoding_demo",
                        made_with=json.dumps({"n_subjects": n_subjects, "n_words": n_words, "seed": seed,
                                              "torch_threads": 1, "seconds": round(time.perf_counter() - t0, 1)}))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=6, help="synthetic subjects (default 6)")
    parser.add_argument("--words", type=int, default=600, help="words per subject (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ENCODING_ASSET))
    parser.add_argument("--from-file", help="shrink an existing encoding result instead of fitting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.from_file:
        from core.encoding.results import load_results

        result = load_results(args.from_file)
    else:
        result = make(n_subjects=args.subjects, n_words=args.words, seed=args.seed,
                      progress=lambda msg: logger.info("%s", msg))
    path = write_small(result, args.out)
    logger.info("wrote %s (%.2f MB)", path, path.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
