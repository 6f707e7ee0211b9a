"""Seeded random core configurations for the RTL regression (``tests/test_sim_core.py``).

The space is the generator sweep's (``tests/test_hdl_top.py``): weight bits 2..16, state
bits 2..8 and unquantized, every level family, the three resets (subtract, zero, clear) and
both rest states (the level nearest 0, exactly 0), lanes 1..16 per layer (N not
a multiple of P included), spike and direct input (2..8 bits), input densities 0, 1 and
in between; categories cycle with the seed so any 16 consecutive seeds cover every state
width, family, reset and input kind. On top: several samples back to back (the per-sample
reset), long samples (T up to 64) and, every sixteenth seed, wide layers (60-120 neurons).
The core configurations ``synth`` builds cycle with the seed too (:data:`CORE_KINDS`):
default, minimal FIFOs, RAM weights, SPRAM weights (SB_SPRAM256KA with Yosys' cell
model) and the pipelined quantizer. Same seed, same configuration (network, inputs, core
configuration and back-pressure).

Run it: ``python -m sim.regression --sim icarus --configs 50 [--seed 0]``.
"""

from __future__ import annotations

import numpy as np

from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import input_schedule, random_inputs, random_network, schedule
from qsnn_hw.verify.bundle import CoreCase
from qsnn_hw.verify.compare import compare, format_report

INPUT_BITS = [1, 1, 2, 8, 1, 4]
# core configurations by seed % 5 (5 is coprime with the 8/16-seed categories above)
CORE_KINDS = [{}, {"fifo_depth": "min"}, {"weight_storage": "ram"},
              {"weight_storage": "spram"}, {"quantizer": "pipelined"}]


def regression_case(seed: int) -> CoreCase:
    rng = np.random.default_rng([seed, 20261122])
    kind = seed % 8
    wide = seed % 16 == 7
    layers = int(rng.integers(1, 4))
    if wide:      # wide and sparse, short (emission time grows with the weight count)
        sizes = [int(rng.integers(80, 160))] + [int(rng.integers(30, 60))
                                                for _ in range(layers - 1)] + [10]
        input_bits = 1
    else:
        sizes = [int(rng.integers(1, 25)) for _ in range(layers + 1)]
        input_bits = INPUT_BITS[seed % len(INPUT_BITS)]
    cat = schedule(seed)
    net = random_network(rng, sizes=sizes, input_bits=input_bits, **cat)
    density = [0.0, 1.0, float(rng.uniform(0.05, 0.6))][seed % 3]
    if wide:
        density = min(density, 0.05)
        samples, steps = 2, 3
    elif kind in (3, 6):   # long samples (seeds 3 and 6 mod 8: every reset within 24 seeds)
        samples, steps = 3, int(rng.integers(32, 65))
    else:
        samples, steps = int(rng.integers(2, 5)), int(rng.integers(1, 12))
    modes = input_schedule(seed)
    x = random_inputs(rng, net, samples, steps, density,
                      static=CoreConfig(**modes).static_input(net))
    # P copies of a 2**n-entry level table and quantizer per layer: the C++ that
    # Verilator compiles grows with P * 2**n, so wide codes get few lanes (P * 2**n <= 256;
    # P = 1..16 is still covered with n <= 4 and unquantized states)
    lanes = [int(rng.integers(1, 1 + min(16, 256 >> (la.state_bits or 0))))
             for la in net.layers]
    config = CoreConfig(lanes=lanes, **CORE_KINDS[seed % len(CORE_KINDS)], **modes)
    describe = (f"sizes={[net.n_in] + [la.n_out for la in net.layers]} "
                f"input_bits={input_bits} state_bits={cat['state_bits']} "
                f"family={cat['family']} reset={cat['reset']} "
                f"density={density:.2f} samples={samples} T={steps}; {config.describe()}")
    return core_case(f"r{seed}", net, x, config, seed, rng, describe)


def core_case(name: str, net, x, config, seed: int, rng, describe: str) -> CoreCase:
    """A regression case with the back-pressure drawn from ``rng`` (input gaps, output
    ready probability), as every regression draws it."""
    return CoreCase(name, net, x, config, seed=seed,
                    valid_gap=float(rng.choice([0.0, 0.2, 0.6])),
                    ready_prob=float(rng.choice([1.0, 0.5, 0.15])), describe=describe)


def layer_kinds(net) -> str:
    """``4c3/s1p1pool2 -> dense 10``: each layer's shape (a TaWQ layer's codes, multiplier
    range and shift too), for a case's description."""
    parts = []
    for la in net.layers:
        kind = (f"{la.channels}c{la.kernel[0]}/s{la.stride}p{la.padding}pool{la.pool}"
                if la.is_conv else f"dense {la.n_out}")
        if la.is_tawq:
            kind += (f" tawq({la.tawq_table.shape[0]} codes, mult < "
                     f"{int(la.tawq_mult.max()) + 1}, shift {la.tawq_shift})")
        parts.append(kind)
    return " -> ".join(parts)


def assert_bit_exact(net, x, run, context: str, error: bool = False):
    """A core run (``qsnn_hw.verify.amaranth.run_core``) against the golden model: every
    layer's spikes and states at every timestep, counts, predictions (the package's one
    comparison), the error flag (raised exactly when ``error``), plus the final states as
    the golden model reports them. Returns the golden run."""
    gold = simulate(net, x, trace=True)
    rep = compare(net, gold, run.observed)
    counts = dict(rep["mismatch_counts"])
    assert (counts.pop("error_flag") > 0) == error, f"{context}: error flag"
    assert not any(counts.values()), f"{context}\n{format_report(rep)}"
    for li in range(len(net.layers)):
        np.testing.assert_array_equal(run.spikes[li], gold.spikes[li],
                                      err_msg=f"{context}: spikes of layer {li}")
        np.testing.assert_array_equal(run.final_mem[li], gold.final_mem[li],
                                      err_msg=f"{context}: final membranes of layer {li}")
        if net.layers[li].quantized:
            np.testing.assert_array_equal(run.final_codes[li], gold.final_codes[li],
                                          err_msg=f"{context}: final codes of layer {li}")
    np.testing.assert_array_equal(run.counts, gold.counts, err_msg=f"{context}: counts")
    np.testing.assert_array_equal(run.predictions, gold.predictions,
                                  err_msg=f"{context}: predictions")
    return gold


def assert_bundle_bit_exact(sim: str, bundle, cases, build_dir) -> None:
    """A written bundle of ``cases`` (``qsnn_hw.verify.bundle.write_bundle``) run on the
    HDL simulator ``sim``: every core bit-exact on every sample."""
    from qsnn_hw.verify.runner import run_bundle
    report = run_bundle(sim, bundle, build_dir, opt="-O0")
    assert len(report["cores"]) == len(cases)
    bad = [format_report(c, c["core"], f"seed {c['seed']}; {c['describe']}")
           for c in report["cores"] if not c["ok"]]
    assert report["ok"], "\n".join(bad)
    for core, case in zip(report["cores"], cases, strict=True):
        assert core["samples"] == case.x.shape[0] and core["mismatches"] == 0


def run_main(argv, make_case, prog: str, default_configs: int, prefix: str,
             doc: str | None = None) -> int:
    """The command line of a regression script: ``--sim``, ``--configs``, ``--seed``,
    ``--build-dir``; ``make_case(seed)`` gives one configuration."""
    import argparse
    import tempfile

    from qsnn_hw.verify.bundle import write_bundle
    from qsnn_hw.verify.compare import format_report
    from qsnn_hw.verify.runner import SIMULATORS, run_bundle

    ap = argparse.ArgumentParser(prog=prog, description=doc)
    ap.add_argument("--sim", choices=SIMULATORS, required=True)
    ap.add_argument("--configs", type=int, default=default_configs,
                    help="random configurations")
    ap.add_argument("--seed", type=int, default=0, help="first configuration seed")
    ap.add_argument("--build-dir", default=None, help="default: a temporary directory")
    args = ap.parse_args(argv)
    out = args.build_dir or tempfile.mkdtemp(prefix=prefix)
    cases = [make_case(args.seed + i) for i in range(args.configs)]
    bundle = write_bundle(cases, f"{out}/bundle")
    rep = run_bundle(args.sim, bundle, f"{out}/build_{args.sim}")
    for core in rep["cores"]:
        print(format_report(core, core["core"], core["describe"]))
    print(f"{args.sim}: {sum(c['ok'] for c in rep['cores'])}/{len(rep['cores'])} "
          f"configurations bit-exact, {rep['cycles']} cycles in {rep['total_s']:.1f} s; "
          f"build in {out}")
    return 0 if rep["ok"] else 1


def main(argv=None) -> int:
    return run_main(argv, regression_case, "python -m sim.regression", 50,
                    "qsnn-regression-", __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
