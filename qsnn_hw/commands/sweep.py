"""Train an ablation grid over several seeds (cached, resumable) and write tables and bar
charts.

  qsnn-hw sweep --grid squat --seeds 3 --out runs/ablation
  qsnn-hw sweep --grid my_grid.toml --seeds 2 --epochs 20 --out runs/mine
  qsnn-hw sweep --grid squat --scheduler tcp://10.0.0.5:8786 --out runs/ablation

Finished runs are cached in OUT/cache (keyed by the full config, the seed and the qsnn-hw
version): run the same command again after an interruption and only the missing runs train.
A finished sweep's report in OUT (results.json) is replaced only with ``--force``; the
cached runs are reused either way (their key is the whole configuration).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from ._args import add_quiet, auto_or, float_range, int_range
from ._out import add_force, check_out


def _seeds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (the number of seeds), "
                                         f"got {value}")
    return value


def _hidden(text: str) -> tuple:
    if text.strip() in ("", "none"):
        return ()
    parse = int_range(1, 1 << 16)
    return tuple(parse(p.strip()) for p in text.split(","))


def register(subparsers) -> None:
    from ..data import DATASETS
    from ..train.config import TrainConfig
    d = TrainConfig()
    p = subparsers.add_parser(
        "sweep", help="train an ablation grid over seeds (cached) and tabulate it",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="squat",
                   help="built-in grid name (squat: the SQUAT paper's grid) or a .json / "
                        ".toml grid file (default: squat)")
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="dataset (default: digits)")
    p.add_argument("--data-dir", default="", help="directory of downloaded dataset files")
    p.add_argument("--seeds", type=_seeds, default=3,
                   help="number of seeds per cell: seeds 0..N-1 (+ --seed-offset); default 3")
    p.add_argument("--seed-offset", type=int_range(0, 2**31), default=0,
                   help="first seed (default 0)")
    p.add_argument("--out", required=True, help="output directory (cache, tables, plots)")
    g = p.add_argument_group("executor")
    g.add_argument("--workers", type=int_range(1, 1024), default=2,
                   help="local worker processes, one BLAS thread each (1 = in this "
                        "process); default 2")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="Dask scheduler address (e.g. tcp://host:8786): run on that cluster "
                        "instead of the local pool; workers need qsnn-hw installed and must "
                        "see --data-dir")
    g = p.add_argument_group("training overrides for every cell (default: the trainer's, "
                             "or the grid file's 'base')")
    g.add_argument("--epochs", type=int_range(1, 100000), default=None,
                   help=f"epochs per run (trainer default {d.epochs})")
    g.add_argument("--patience", type=int_range(1, 100000), default=None,
                   help=f"early-stopping patience (trainer default {d.patience})")
    g.add_argument("--hidden", type=_hidden, default=None,
                   help="hidden layer sizes, comma list (trainer default "
                        f"{','.join(str(lc.size) for lc in d.layers[:-1])})")
    g.add_argument("--arch", default=None, metavar="SPEC",
                   help="the whole network of every cell as an --arch string, e.g. "
                        "8c3p1-16c3p1s2-10 (qsnn-hw train --help); instead of --hidden")
    g.add_argument("--timesteps", type=int_range(1, 10000), default=None,
                   help=f"timesteps T (trainer default {d.timesteps})")
    g.add_argument("--batch-size", type=int_range(1, 65536), default=None,
                   help="samples per training batch for every cell (default: the trainer's, 64)")
    g.add_argument("--lr", type=auto_or(float_range(0, 10, lo_open=True)), default=None,
                   help="Adam learning rate for every cell, or auto (1e-3 for cells at 2 bits "
                        "or fewer, else 3e-3; the default)")
    g.add_argument("--max-train-samples", type=int_range(0, 1 << 31), default=None,
                   help="train on at most N samples per epoch (0 = all)")
    g = p.add_argument_group("output")
    g.add_argument("--keep-runs", action="store_true",
                   help="keep each run's artifact and metrics in OUT/runs/<cell>-s<seed>")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG bar charts")
    add_force(g, "a finished sweep's tables and charts")
    add_quiet(g)
    p.set_defaults(func=run)


def build_base(args, n_classes: int):
    """The base TrainConfig: the trainer's defaults with the dataset and its number of
    classes. (The CLI overrides go into every cell, over a grid file's 'base'.)"""
    from ..train.config import TrainConfig
    d = TrainConfig()
    return replace(d, dataset=args.dataset, data_dir=args.data_dir,
                   layers=d.layers[:-1] + (replace(d.layers[-1], size=n_classes),))


def cli_overrides(args) -> dict:
    over = {}
    for name in ("epochs", "patience", "timesteps", "batch_size", "lr", "max_train_samples"):
        value = getattr(args, name)
        if value is not None:
            over[name] = value
    if args.hidden is not None:
        over["hidden"] = args.hidden
    if args.arch is not None:
        over["arch"] = args.arch
    return over


def run(args) -> int:
    from .. import __version__
    from ..data import load_dataset
    from ..progress import line
    from ..sweep import SweepProgress, resolve_grid, run_sweep, write_report
    from ..sweep.grid import Cell

    out = check_out(args.out, outputs=("results.json",), force=args.force)
    cells = resolve_grid(args.grid)
    over = cli_overrides(args)
    cells = [Cell(c.name, c.layer, {**c.train, **over}, c.tags) for c in cells]
    data = load_dataset(args.dataset, args.data_dir, args.timesteps or 16, 0)
    base = build_base(args, data.n_classes)
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
    from ..train.arch import geometry
    for c in cells:  # validate every cell, network shape included, before any training
        try:
            cfg = c.config(base, seeds[0])
            geometry(cfg.layers, data.n_in, data.image_shape, f"dataset {args.dataset}")
        except ValueError as exc:
            raise ValueError(f"--grid {args.grid}: cell {c.name!r}: {exc}") from None
    from .._extras import need
    if not args.no_plots:
        need("matplotlib")         # before any training: the charts come last
    if args.scheduler:
        need("distributed")
    progress = SweepProgress()     # silent with --quiet
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else \
        f"{args.workers} local worker(s)"
    line(f"sweep: {len(cells)} cells x {len(seeds)} seeds on {where}; cache "
         f"{out / 'cache'}")
    t0 = time.time()
    res = run_sweep(cells, base, seeds, out, workers=args.workers, scheduler=args.scheduler,
                    keep_runs=args.keep_runs, progress=progress)
    meta = {"qsnn_hw": __version__, "grid": args.grid, "dataset": args.dataset,
            "seeds": f"{seeds[0]}..{seeds[-1]}", "cells": len(cells),
            "overrides": over or "none",
            "runs trained / reused": f"{len(res.trained)} / {len(res.reused)}",
            "sweep wall time (s)": f"{time.time() - t0:.1f}",
            "executor": args.scheduler or f"{args.workers} local worker(s)"}
    written = write_report(out, cells, res.results, seeds, meta, plots=not args.no_plots)
    print(f"sweep: trained {len(res.trained)}, reused {len(res.reused)} in "
          f"{res.wall_time_s:.1f} s; wrote {', '.join(p.name for p in written)} in {out}",
          file=sys.stderr)
    if res.failed:
        for (cell, seed), msg in sorted(res.failed.items()):
            print(f"sweep: {cell} seed {seed} failed: {msg}", file=sys.stderr)
        return 1
    return 0
