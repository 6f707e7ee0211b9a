"""Run a grid: one training per (cell, seed), cached on disk, on a local process pool or a
Dask cluster.

Cache: ``OUT/cache/<key>.json`` with ``key`` = SHA-256 of the cell's full
``TrainConfig`` (seed included) and the qsnn-hw version. It is written atomically by the
parent as soon as a run finishes, so an interrupted sweep resumes with the runs it had not
finished (a run cut off mid-training starts again from scratch).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .. import progress as qprogress
from .._check import check_int
from .._io import atomic_write_text
from ..train.config import TrainConfig
from ._worker import init_pool_worker, init_worker
from .grid import Cell

CACHE_FORMAT = 2   # 2: quantization-aware layers train on their deployed grid
# metrics.json keys kept in the cache (and aggregated).
METRIC_KEYS = ("float_accuracy", "fake_quant_accuracy", "quantized_accuracy",
               "golden_accuracy", "spike_agreement", "output_spike_agreement",
               "trained_spike_agreement",
               "wall_time_s", "epochs_run", "best_epoch", "best_val_accuracy",
               "stopped_early")


def cell_key(cfg: TrainConfig) -> str:
    """Cache key: hash of the full config (seed included) and the qsnn-hw version."""
    doc = json.dumps({"config": cfg.to_dict(), "qsnn_hw": __version__, "format": CACHE_FORMAT},
                     sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Task:
    cell: str
    seed: int
    key: str
    config: dict          # TrainConfig.to_dict()
    run_dir: str | None   # keep the training outputs here (None: a temporary directory)


@functools.lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str, timesteps: int, data_seed: int):
    from ..data import load_dataset
    return load_dataset(name, data_dir, timesteps, data_seed)


def train_task(task: Task) -> dict:
    """Train one (cell, seed) with one BLAS thread; returns the metrics to cache. Runs in a
    pool worker, a Dask worker or in-process (where it also limits this process's BLAS to
    one thread)."""
    init_worker()
    from threadpoolctl import threadpool_limits

    from ..train.trainer import Progress, run_training
    cfg = TrainConfig.from_dict(task.config)
    # Not a context manager: threads of one Dask worker would restore each other's limits.
    threadpool_limits(limits=1)
    data = _dataset(cfg.dataset, cfg.data_dir, cfg.timesteps, cfg.data_seed)
    if task.run_dir is None:
        with tempfile.TemporaryDirectory(prefix="qsnn-sweep-") as tmp:
            metrics = run_training(cfg, data, tmp, plots=False, progress=Progress(None))
    else:
        shutil.rmtree(task.run_dir, ignore_errors=True)  # no stale checkpoint
        metrics = run_training(cfg, data, task.run_dir, plots=False,
                               progress=Progress(None))
    return {"cell": task.cell, "seed": task.seed, "key": task.key,
            "metrics": {k: metrics[k] for k in METRIC_KEYS},
            "worker": f"{os.uname().nodename}:{os.getpid()}", "blas_threads": blas_threads()}


def blas_threads() -> list[int]:
    """BLAS/OpenMP thread counts seen by this process (used to test the workers)."""
    from threadpoolctl import threadpool_info
    return [int(p["num_threads"]) for p in threadpool_info()]


def read_cache(path: Path, key: str) -> dict | None:
    """The cached result, or None if missing or unusable (a corrupt file is retrained)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        print(f"sweep: ignoring unreadable cache file {path}; retraining", file=sys.stderr)
        return None
    if not isinstance(doc, dict) or doc.get("key") != key or "metrics" not in doc:
        print(f"sweep: ignoring cache file {path} (wrong key or format); retraining",
              file=sys.stderr)
        return None
    return doc


class SweepProgress:
    """Progress over a sweep's runs (:mod:`qsnn_hw.progress`): a bar of runs done with
    the cells done in its text, the elapsed and the remaining time (estimated from the
    runs trained by this invocation; cached ones take no time), and a line per finished
    run. ``SweepProgress(None)`` is silent."""

    def __init__(self, stream=qprogress.STDERR):
        self.stream = stream
        self._out = None if stream is qprogress.STDERR else stream
        self.total = self.done = self.cached = 0
        self.cells_total, self.per_cell, self.cell_runs = 0, 1, {}
        self._bar = None

    def start(self, n_cells: int, n_seeds: int):
        self.total, self.cells_total, self.per_cell = n_cells * n_seeds, n_cells, n_seeds

    def _cells_done(self) -> int:
        return sum(n >= self.per_cell for n in self.cell_runs.values())

    def begin(self):
        """The cached runs are counted: the bar starts (from them)."""
        if self.stream is None or self._bar is not None:
            return
        if self.cached:
            qprogress.line(f"sweep: {self.cached} of {self.total} runs found in the cache",
                           self._out)
        self._bar = qprogress.bar(self.total, "sweep", "runs", stream=self._out,
                                  initial=self.done)
        self._bar.stage(self._status(), milestone=False)

    def _status(self) -> str:
        return f"{self._cells_done()}/{self.cells_total} cells, {self.cached} cached"

    def step(self, label: str, cached: bool = False, cell: str | None = None):
        self.done += 1
        self.cached += cached
        if cell is not None:
            self.cell_runs[cell] = self.cell_runs.get(cell, 0) + 1
        if self.stream is None or self._bar is None:
            return
        self._bar.stage(self._status(), milestone=False)
        self._bar.update(1)
        qprogress.line(f"sweep: [{self.done}/{self.total}, {self._bar.times()}] {label}",
                       self._out)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


@dataclass
class SweepRun:
    """What one invocation did: results per (cell, seed), which keys it trained."""

    cells: list
    seeds: list
    results: dict = field(default_factory=dict)   # (cell, seed) -> cache document
    trained: list = field(default_factory=list)   # keys trained by this invocation
    reused: list = field(default_factory=list)    # keys found in the cache
    failed: dict = field(default_factory=dict)    # (cell, seed) -> error message
    wall_time_s: float = 0.0


def plan(cells: list[Cell], base: TrainConfig, seeds: list[int], out: Path,
         keep_runs: bool = False) -> list[Task]:
    tasks, keys = [], {}
    for cell in cells:
        for seed in seeds:
            cfg = cell.config(base, seed)
            key = cell_key(cfg)
            if key in keys:
                raise ValueError(f"cells {keys[key]!r} and {cell.name!r} have the same "
                                 f"training config; remove one")
            keys[key] = cell.name
            run_dir = str(out / "runs" / f"{cell.name}-s{seed}") if keep_runs else None
            tasks.append(Task(cell.name, seed, key, cfg.to_dict(), run_dir))
    return tasks


def run_sweep(cells: list[Cell], base: TrainConfig, seeds, out, *, workers: int = 2,
              scheduler: str | None = None, keep_runs: bool = False, progress=None,
              on_result=None) -> SweepRun:
    """Train every (cell, seed) not in ``out/cache`` and return all results.

    workers: local processes (1 = in this process); scheduler: a Dask scheduler address
    (or a ``distributed.Client``) instead of the local pool. on_result(doc): called in the
    parent after each new result is cached (a test hook).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("--seeds must be at least 1")
    for s in seeds:
        check_int("seed", s, 0, 2**32 - 1)
    check_int("workers", workers, 1, 1024)
    if not cells:
        raise ValueError("the grid has no cells")
    out = Path(out)
    cache_dir = out / "cache"
    t0 = time.perf_counter()
    tasks = plan(cells, base, seeds, out, keep_runs)
    run = SweepRun([c.name for c in cells], seeds)
    progress = SweepProgress(None) if progress is None else progress
    progress.start(len(cells), len(seeds))
    todo = []
    for t in tasks:
        doc = read_cache(cache_dir / f"{t.key}.json", t.key)
        if doc is None:
            todo.append(t)
        else:
            run.results[(t.cell, t.seed)] = doc
            run.reused.append(t.key)
            progress.step(f"{t.cell} seed {t.seed} (cached)", cached=True, cell=t.cell)
    progress.begin()

    def finish(t: Task, doc: dict | None, err: BaseException | None):
        if err is not None:
            run.failed[(t.cell, t.seed)] = f"{type(err).__name__}: {err}"
            progress.step(f"{t.cell} seed {t.seed} FAILED: {err}", cell=t.cell)
            return
        doc = {**doc, "config": t.config, "qsnn_hw": __version__}
        atomic_write_text(cache_dir / f"{t.key}.json", json.dumps(doc, indent=1) + "\n")
        run.results[(t.cell, t.seed)] = doc
        run.trained.append(t.key)
        m = doc["metrics"]
        progress.step(f"{t.cell} seed {t.seed}: golden {m['golden_accuracy']:.2%} "
                      f"({m['wall_time_s']:.0f} s)", cell=t.cell)
        if on_result is not None:
            on_result(doc)

    try:
        if todo and scheduler is not None:
            _run_dask(todo, scheduler, finish)
        elif todo and workers == 1:
            for t in todo:
                try:
                    doc = train_task(t)
                except (ValueError, ArithmeticError) as exc:
                    finish(t, None, exc)
                else:
                    finish(t, doc, None)
        elif todo:
            _run_pool(todo, workers, finish)
    finally:
        progress.close()
    run.wall_time_s = time.perf_counter() - t0
    return run


def _run_pool(todo: list[Task], workers: int, finish) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: fresh workers that set their BLAS environment before NumPy loads. Their
    # temporary run directories go under one directory of this process, removed here
    # whatever happens to the workers.
    ctx = multiprocessing.get_context("spawn")
    scratch = tempfile.mkdtemp(prefix="qsnn-sweep-")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                               initializer=init_pool_worker, initargs=(scratch,))
    try:
        futures = {pool.submit(train_task, t): t for t in todo}
        for fut in as_completed(futures):
            _finish_future(fut, futures[fut], finish)
    except BaseException:   # Ctrl-C, SIGTERM, a crashed run: no worker trains on
        _stop_workers(pool)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _stop_workers(pool) -> None:
    """Terminate a process pool's workers now (``shutdown`` alone lets running tasks
    finish, and the interpreter would wait for them at exit)."""
    if hasattr(pool, "terminate_workers"):          # Python >= 3.14
        pool.terminate_workers()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _finish_future(fut, task: Task, finish) -> None:
    """A finished run: its document, or the training error (a bad cell, not a crash)."""
    try:
        doc = fut.result()
    except (ValueError, ArithmeticError) as exc:
        finish(task, None, exc)
    else:
        finish(task, doc, None)


def _run_dask(todo: list[Task], scheduler, finish) -> None:
    from .._extras import need
    need("distributed")
    from distributed import Client, as_completed
    own = not isinstance(scheduler, Client)
    if own:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ValueError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    else:
        client = scheduler
    try:
        futures = client.map(train_task, todo, key=[f"qsnn-train-{t.key}" for t in todo],
                             pure=False)
        by_key = {f.key: t for f, t in zip(futures, todo, strict=True)}
        for fut in as_completed(futures):
            _finish_future(fut, by_key[fut.key], finish)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(futures)
        raise
    finally:
        if own:
            client.close()
