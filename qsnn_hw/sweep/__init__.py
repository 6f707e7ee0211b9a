"""Ablation sweeps: train a grid of quantization configurations over several seeds, cache
every run on disk, and report paper-shaped tables and bar charts.

* ``grid``: the SQUAT paper's grid and user grid files (JSON / TOML);
* ``runner``: the cache and the executors (local process pool, Dask cluster);
* ``report``: mean / std over seeds, tables (markdown, CSV), bar charts (PNG).

The command line is ``qsnn-hw sweep`` (``qsnn_hw/commands/sweep.py``); docs/ablation.md.
"""

from .grid import Cell, load_grid_file, parse_grid, resolve_grid, squat_grid
from .report import mean_std, summarize, write_report
from .runner import SweepProgress, SweepRun, cell_key, run_sweep, train_task

__all__ = ["Cell", "load_grid_file", "parse_grid", "resolve_grid", "squat_grid", "mean_std",
           "summarize", "write_report", "SweepProgress", "SweepRun", "cell_key", "run_sweep",
           "train_task"]
