"""The trained digits model (``rtl/digits.qsnn``) on its whole test split under Icarus and
Verilator (cocotb), bit-exact against the golden model. A file of its own so the two
longest simulations run beside the rest of the suite (pytest-xdist, one file per worker).

All 360 test samples under both simulators (``QSNN_DIGITS_SAMPLES_VERILATOR``,
``QSNN_DIGITS_SAMPLES_ICARUS``); Icarus splits them over ``QSNN_ICARUS_JOBS`` (default 2)
simulations running side by side.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.verify.bundle import CoreCase, write_bundle
from qsnn_hw.verify.compare import format_report as _format
from qsnn_hw.verify.runner import SIMULATORS, run_bundle, simulator_available

pytestmark = [pytest.mark.sim,
              pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")]

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "rtl" / "digits.qsnn"
DIGITS_LANES = [64, 10]
# Icarus runs the digits core at ~1-1.5 s per sample (4-state, one always block per
# register), so its share of the split runs as QSNN_ICARUS_JOBS simulations side by side.
DIGITS_SAMPLES = {"verilator": int(os.environ.get("QSNN_DIGITS_SAMPLES_VERILATOR", "360")),
                  "icarus": int(os.environ.get("QSNN_DIGITS_SAMPLES_ICARUS", "360"))}
DIGITS_JOBS = {"verilator": 1, "icarus": int(os.environ.get("QSNN_ICARUS_JOBS", "2"))}


def _failures(report) -> str:
    return "\n".join(_format(c, c["core"], c["describe"]) for c in report["cores"]
                     if not c["ok"]) + (f"\nwaveform: {report.get('waveform')}"
                                        if report.get("waveform") else "")


# ---- the trained digits model, whole test split -------------------------------------------

@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory):
    if not DIGITS.exists():
        pytest.skip(f"{DIGITS.relative_to(ROOT)} is not checked in yet")
    from qsnn_hw.artifact import load_artifact
    from qsnn_hw.commands.verify import dataset_inputs

    art = load_artifact(DIGITS)
    x, _ = dataset_inputs(art, None)
    gold = simulate(art.network, x)
    assert x.shape[0] == 360
    out = tmp_path_factory.mktemp("digits")
    bundles = {}
    for sim, n in DIGITS_SAMPLES.items():
        edges = np.linspace(0, n, DIGITS_JOBS[sim] + 1).astype(int)
        bundles[sim] = []
        for j, (lo, hi) in enumerate(pairwise(edges)):
            case = CoreCase("digits", art.network, x[lo:hi], CoreConfig(lanes=DIGITS_LANES),
                            seed=5 + j,
                            describe=f"{DIGITS.name}, test samples {lo}..{hi - 1}")
            bundles[sim].append((lo, hi, write_bundle([case], out / f"bundle_{sim}_{j}")))
    return bundles, gold, x


@pytest.mark.parametrize("sim", SIMULATORS)
def test_digits_model_test_split_bit_exact(sim, digits_bundle, tmp_path):
    if not simulator_available(sim):
        pytest.skip(f"{sim} is not installed")
    bundles, gold, x = digits_bundle
    n = DIGITS_SAMPLES[sim]

    def run(job):
        j, (lo, hi, bundle) = job
        return lo, hi, run_bundle(sim, bundle, tmp_path / f"build_{sim}_{j}", opt="-O1")

    # Each simulation is its own process; the threads only wait for them.
    with ThreadPoolExecutor(max_workers=len(bundles[sim])) as pool:
        results = list(pool.map(run, enumerate(bundles[sim])))
    predictions = np.full(n, -1)
    for lo, hi, report in results:
        core = report["cores"][0]
        assert report["ok"], _failures(report)
        assert core["samples"] == hi - lo and core["timesteps"] == x.shape[1]
        assert core["mismatch_counts"]["counts"] == 0
        predictions[lo:hi] = core["predictions"]
        print(f"{sim}: digits samples {lo}..{hi - 1}, {report['cycles']} cycles, "
              f"{report['cycles_per_s']:.0f} cycles/s")
    assert np.array_equal(predictions, gold.predictions[:n])
