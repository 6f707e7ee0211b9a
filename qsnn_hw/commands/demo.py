"""``qsnn-hw demo``: the integer pipeline on a small built-in network, no data needed.

Builds a seeded 64-32-10 network through the real quantizers (4-bit symmetric weights,
4-bit threshold-centred exponential states), writes it as an artifact, reloads it, runs
the golden model on seeded Poisson spike inputs and prints the derived hardware widths.
"""

from __future__ import annotations

import json
import time

import numpy as np

from .._io import atomic_write_text
from ..artifact import Artifact, load_artifact, save_artifact
from ..contract import IntLayer, IntNetwork, beta_to_fixed
from ..golden import simulate
from ..quant import exponential_levels, levels_to_fixed_point, quantize_symmetric
from ._args import positive_int, probability
from ._out import check_out


def build_demo_network(seed: int = 0, weight_bits: int = 4, state_bits: int = 4) -> Artifact:
    rng = np.random.default_rng(seed)
    sizes = [64, 32, 10]
    layers, info = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        qt = quantize_symmetric(rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_out, n_in)), weight_bits)
        unit = float(qt.scale)  # membrane unit: one weight step (spike inputs)
        theta = 0.5  # threshold in float units
        frac_bits = 4
        table = exponential_levels(state_bits, threshold=theta)
        levels = levels_to_fixed_point(table, frac_bits, unit)
        threshold = int(np.floor(theta / unit * 2 ** frac_bits + 0.5))
        layers.append(IntLayer(qt.signed, threshold, beta_to_fixed(0.9, 8), 8, "subtract",
                               frac_bits=frac_bits, levels=levels))
        info.append({"weight_scale": unit, "threshold_float": theta,
                     "levels_float": table.tolist()})
    config = {"kind": "demo", "seed": seed, "sizes": sizes, "weight_bits": weight_bits,
              "state_bits": state_bits, "state_levels": "exponential", "beta": 0.9}
    return Artifact(IntNetwork(tuple(layers)), config, {"note": "random weights"}, info)


def run(args) -> int:
    out = check_out(args.out)
    start = time.perf_counter()
    path = save_artifact(out / "demo.qsnn", build_demo_network(args.seed))
    art = load_artifact(path)
    net = art.network
    rng = np.random.default_rng(args.seed + 1)
    x = (rng.random((args.samples, args.timesteps, net.n_in)) < args.density).astype(np.int64)
    res = simulate(net, x)
    print(f"qsnn-hw demo: {args.samples} samples x {args.timesteps} timesteps, "
          f"input spike density {args.density}")
    print(f"{'layer':>5} {'N':>4} {'M':>4} {'w bits':>6} {'state':>7} {'thr':>6} "
          f"{'thr code':>8} {'I width':>7} {'v width':>7} {'spike rate':>10}")
    summary = []
    for i, (layer, s) in enumerate(zip(net.layers, res.spikes, strict=True)):
        im = net.layer_input_max(i)
        row = dict(layer=i, neurons=layer.n_out, inputs=layer.n_in, weight_bits=layer.weight_bits,
                   state_bits=layer.state_bits, threshold=layer.threshold,
                   threshold_code=layer.threshold_code, current_width=layer.current_width(im),
                   update_width=layer.update_width(im), spike_rate=float(s.mean()))
        summary.append(row)
        print(f"{i:>5} {layer.n_out:>4} {layer.n_in:>4} {layer.weight_bits:>6} "
              f"{str(layer.state_bits) + '-bit':>7} {layer.threshold:>6} "
              f"{layer.threshold_code:>8} {row['current_width']:>7} {row['update_width']:>7} "
              f"{row['spike_rate']:>10.3f}")
    hist = np.bincount(res.predictions, minlength=net.n_out)
    print(f"predictions per class: {hist.tolist()}")
    report = {"artifact": str(path), "layers": summary, "predictions": hist.tolist(),
              "seconds": round(time.perf_counter() - start, 3)}
    atomic_write_text(out / "demo.json", json.dumps(report, indent=2) + "\n")
    print(f"wrote {path} and {out / 'demo.json'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the integer golden model on a built-in network",
                       description=__doc__)
    p.add_argument("--out", default="out/demo", help="output directory (default: out/demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--samples", type=positive_int, default=32, help="samples (default: 32)")
    p.add_argument("--timesteps", type=positive_int, default=25, help="timesteps (default: 25)")
    p.add_argument("--density", type=probability, default=0.3,
                   help="input spike probability per timestep, in [0, 1] (default: 0.3)")
    p.set_defaults(func=run)

