"""Verification of generated cores against the integer golden model, as a library.

One entry point, :func:`verify_core`, runs a network's core (built with a
:class:`~qsnn_hw.hdl.config.CoreConfig`) on a batch of inputs in Amaranth's simulator,
Icarus or Verilator and compares every layer's spikes and states at every timestep, the
counts, the predictions and the error flag with :func:`qsnn_hw.golden.simulate`. Used by
``qsnn-hw verify``, ``qsnn-hw flow`` and the tests.

Modules: :mod:`.stimulus` (input beats), :mod:`.compare` (the one comparison),
:mod:`.trace` (trace-port activity -> golden shapes), :mod:`.amaranth` (the Amaranth
runner), :mod:`.bundle` / :mod:`.harness` (Verilog harness bundles), :mod:`.cocotb_tb`
(the cocotb testbench), :mod:`.runner` (Icarus/Verilator via cocotb-test),
:mod:`.check` (a bundle core's trace -> report).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..contract import IntNetwork
from ..hdl.config import CoreConfig

SIMULATORS = ("icarus", "verilator", "amaranth")


def verify_core(net: IntNetwork, x, config: CoreConfig | None = None, *, sim: str,
                build_dir=None, seed: int = 0, gaps: float = 0.2, name: str = "core",
                describe: str = "", verbose: bool = False) -> dict:
    """Simulate ``x`` (B, T, M) on the core of ``net`` built with ``config`` in ``sim``
    (``"icarus"``, ``"verilator"`` or ``"amaranth"``) and compare with the golden model.

    ``build_dir`` (cocotb simulators): where the bundle and build go (required there);
    ``seed``: randomized event order and back-pressure; ``gaps``: probability of idle
    cycles before an input beat. Returns the comparison report (:func:`.compare.compare`)
    plus ``sim``, ``config``, ``sim_wall_s``, ``cycles_per_s`` and ``waveform``. Its
    ``cycles`` (:func:`.compare.compare`) are each sample's cycles from ``start`` to the
    result, summed: the same definition on every simulator. ``verbose`` (cocotb
    simulators): their output on stdout instead of ``sim.log`` in the build directory."""
    from ..golden import check_inputs
    config = CoreConfig() if config is None else config
    config.check(net)
    x = check_inputs(net, x)
    if sim == "amaranth":
        rep = _verify_amaranth(net, x, config, seed, gaps)
    elif sim in ("icarus", "verilator"):
        if build_dir is None:
            raise ValueError(f"sim={sim!r} needs a build_dir")
        rep = _verify_cocotb(sim, net, x, config, seed, gaps, Path(build_dir), name,
                             describe, verbose)
    else:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}; got {sim!r}")
    rep.update(sim=sim, config=config.to_dict())
    return rep


def _verify_amaranth(net, x, config, seed, gaps) -> dict:
    from .. import progress
    from ..golden import simulate
    from .amaranth import run_core
    from .compare import compare

    with progress.bar(len(x), "verify on amaranth", "samples",
                      stage="building the simulation") as bar:

        def on_sample(n):
            if n == 0:
                bar.stage("simulating")
            bar.set(n)
        t0 = time.perf_counter()
        run = run_core(net, x, config, rng=np.random.default_rng(seed), gaps=gaps,
                       on_sample=on_sample)
        wall = time.perf_counter() - t0
        bar.stage("comparing with the golden model")
        rep = compare(net, simulate(net, x, trace=True), run.observed)
    rep.update(sim_wall_s=wall, cycles_per_s=rep["cycles"] / wall if wall > 0 else None,
               waveform=None)
    return rep


def _verify_cocotb(sim, net, x, config, seed, gaps, build_dir: Path, name, describe,
                   verbose=False) -> dict:
    from .. import progress
    from .bundle import CoreCase, write_bundle
    from .runner import run_bundle

    case = CoreCase(name, net, x, config, seed=seed, valid_gap=gaps, describe=describe)
    with progress.bar(len(x), f"verify on {sim}", "samples",
                      stage="writing the Verilog bundle") as bar:
        bundle = write_bundle([case], build_dir / "bundle")
        rep = run_bundle(sim, bundle, build_dir / sim, opt="-O2", progress=bar,
                         verbose=verbose)
    core = rep["cores"][0]
    core.update(sim_wall_s=rep["sim_wall_s"], cycles_per_s=rep["cycles_per_s"],
                build_and_run_s=rep["total_s"], waveform=rep.get("waveform"))
    if rep.get("timeout"):
        core["ok"] = False
    return core
