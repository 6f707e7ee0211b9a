"""Same seed, same bytes, across a change of the trainer: short training runs in many modes,
each printed as the sha256 of its ``model.qsnn`` and of its float parameters and loss
history (the float path's results are not all visible in a quantized artifact).

Run it on the commit before a change and after it (one thread: OMP_NUM_THREADS=1); every
line must be the same. Digits, 2 epochs of 300 samples, T = 8: seconds in all.

    python bench/train_hashes.py [--only NAME ...] > hashes.txt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from qsnn_hw import progress as qprogress
from qsnn_hw.data import load_dataset
from qsnn_hw.train import trainer
from qsnn_hw.train.arch import parse_arch
from qsnn_hw.train.config import LayerConfig, TrainConfig

Q4 = dict(weight_mode="qat", weight_bits=4, state_mode="squat", state_bits=4)


def _dense(hidden: dict, out: dict | None = None) -> tuple:
    return LayerConfig(32, **hidden), LayerConfig(10, **(hidden if out is None else out))


def _conv(arch: str, **kw) -> tuple:
    return tuple(LayerConfig(**shape, **kw) for shape in parse_arch(arch))


# name -> TrainConfig changes
RUNS = {
    "float": dict(layers=_dense({})),
    "float-zero-reset": dict(layers=_dense(dict(reset="zero"))),
    "float-clear-reset": dict(layers=_dense(dict(reset="clear"))),
    "float-bias-learn-beta": dict(layers=_dense(dict(bias=True, learn_beta=True))),
    "float-rate": dict(layers=_dense({}), encoding="rate"),
    "float-mse-fast-sigmoid": dict(layers=_dense({}), loss="mse", surrogate="fast_sigmoid"),
    "q4-exponential": dict(layers=_dense(Q4)),
    "q4-exponential-zero-reset": dict(layers=_dense(dict(Q4, reset="zero"))),
    "q4-exponential-clear-reset": dict(layers=_dense(dict(Q4, reset="clear"))),
    "q4-bias-learn-beta": dict(layers=_dense(dict(Q4, bias=True, learn_beta=True))),
    "q4-rate": dict(layers=_dense(Q4), encoding="rate"),
    "q4-latency": dict(layers=_dense(Q4), encoding="latency"),
    "q2-exponential": dict(layers=_dense(dict(Q4, weight_bits=2, state_bits=2))),
    "q4-uniform": dict(layers=_dense(dict(Q4, state_family="uniform"))),
    "q8-snntorch-triangular": dict(layers=_dense(dict(Q4, state_bits=8,
                                                      state_family="snntorch")),
                                   surrogate="triangular"),
    "qat-weights-only": dict(layers=_dense(dict(weight_mode="qat", weight_bits=4))),
    "squat-states-only": dict(layers=_dense(dict(state_mode="squat", state_bits=4))),
    "ptq": dict(layers=_dense(dict(weight_mode="ptq", state_mode="ptq"))),
    "float-warmup-then-q4": dict(layers=_dense(Q4), float_epochs=1),
    "conv-float-bn": dict(layers=_conv("4c3b-mp2-8c3p1b-10")),
    "conv-q4": dict(layers=_conv("4c3-mp2-8c3p1s2-10", **Q4)),
    "conv-q4-rate": dict(layers=_conv("4c3-mp2-10", **Q4), encoding="rate"),
}


def run(name: str, data, root: Path) -> str:
    cfg = replace(TrainConfig(timesteps=8, epochs=2, max_train_samples=300, batch_size=64),
                  **RUNS[name])
    out = root / name
    done = trainer.train_to_dir(cfg, data, out, progress=trainer.Progress(None), plots=False)
    artifact = hashlib.sha256((out / "model.qsnn").read_bytes()).hexdigest()[:16]
    h = hashlib.sha256()
    for key in sorted(done.model.params):
        h.update(key.encode() + np.ascontiguousarray(done.model.params[key]).tobytes())
    h.update(json.dumps(done.state.history, sort_keys=True).encode())
    return f"{name:<28} model.qsnn {artifact}  params+history {h.hexdigest()[:16]}"


def bench_steps(mode: str) -> str:
    """Three training steps of bench/train_speed.py's network (784-256-10, T = 25, batch
    128): the shapes the benchmark times, where BLAS may take other paths than above."""
    from train_speed import BATCH, MODES, N_IN, N_OUT, qsnn_step
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (BATCH, N_IN)) / 255).astype(np.float32)
    y = rng.integers(0, N_OUT, BATCH)
    step, model = qsnn_step(MODES[mode][0], x, y, with_model=True)
    for _ in range(3):
        step()
    h = hashlib.sha256()
    for key in sorted(model.params):
        h.update(key.encode() + np.ascontiguousarray(model.params[key]).tobytes())
    return f"bench {mode:<22} params {h.hexdigest()[:16]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(RUNS), help="these runs only")
    args = ap.parse_args(argv)
    qprogress.set_quiet(True)
    data = load_dataset("digits")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or RUNS:
            print(run(name, data, Path(tmp)), flush=True)
    if not args.only:
        from train_speed import MODES
        for mode in MODES:
            print(bench_steps(mode), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
