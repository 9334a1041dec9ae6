"""``unitscope import``: a decoder trained outside UnitScope, as a run folder.

For model inspection: the weights of a braindecode Deep4Net / ShallowFBCSPNet (its
``state_dict()``, loaded with ``weights_only=True``) go into the decoder UnitScope builds for
the given data, are measured on the valid and test blocks, and are written as a run folder
that ``unitscope probe / occlude / prune / deconv / report`` and the app (Data & model, a run
folder under the data root) open like one trained here. See
:meth:`core.workspace.Workspace.load_weights`.
"""
from __future__ import annotations

from pathlib import Path

from .._validation import UnitScopeError
from ._common import check_out_dir, metric_cautions, on_count, per_class_line
from .train import add_data_args, create_workspace, data_spec


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="make a run folder of a braindecode decoder trained elsewhere (its state dict)")
    p.add_argument("weights", help="state dict file (torch.save(model.state_dict(), path), skorch f_params)")
    add_data_args(p)
    p.add_argument("--out", required=True, help="run folder to write (config.json, model.pt); a folder that holds "
                                                "a run already is refused")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from ..training import TrainConfig, run_lock

    out = check_out_dir(args.out)  # said before the data are read
    if (out / "config.json").is_file():  # [A] refused: the run there would be lost, its checkpoint left behind
        raise UnitScopeError(f"--out {str(out)!r} holds a run already (unitscope info {out} describes it): import "
                             "into a new folder. The weights imported would replace that run's, and its "
                             "checkpoint.pt would no longer fit them.")
    cfg = TrainConfig()
    if args.model is not None:
        cfg.model = args.model
    if args.n_times is not None:
        cfg.n_times = args.n_times
    weights = Path(args.weights)
    if not weights.is_file():
        raise FileNotFoundError(f"No weights file {str(weights)!r}.")
    from ..workspace import check_state_file

    check_state_file(weights)  # said before the data are read
    with run_lock(out):  # a training into --out meanwhile is refused, and refuses this
        ws = create_workspace(args, data_spec(args), cfg)
        ws.load_weights(weights)
        ws.save(out)
    m = ws.metrics
    name = "pearson_r" if ws.task == "regression" else "balanced_accuracy"
    print(f"test {name} {m['test']:.4f}{on_count(m, 'test')} (valid {m['valid']:.4f}{on_count(m, 'valid')}) "
          f"with the weights of {weights.name}; wrote {args.out} (next: unitscope probe {args.out}, or open it "
          "in the app)")
    if per_class_line(m):
        print(f"test trials called right, per class: {per_class_line(m)}")
    for text in metric_cautions(ws.task, m):
        print(f"caution: {text}", file=sys.stderr)
    return 0
