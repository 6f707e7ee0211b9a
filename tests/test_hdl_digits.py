"""The generated core on the trained reference digits model (rtl/digits.qsnn), in
Amaranth's simulator, bit-exact against the golden model on a slice of the test set."""

import os
from pathlib import Path

import numpy as np
import pytest

from qsnn_hw.artifact import load_artifact
from qsnn_hw.data import load_dataset
from qsnn_hw.golden import simulate
from qsnn_hw.hdl.reference import REFERENCE_CONFIG
from qsnn_hw.train.encoding import encode
from qsnn_hw.verify.amaranth import run_core

ARTIFACT = Path(__file__).resolve().parents[1] / "rtl" / "digits.qsnn"
SLICE = int(os.environ.get("QSNN_DIGITS_SLICE", "4"))


@pytest.mark.sim
def test_digits_slice_bit_exact():
    art = load_artifact(ARTIFACT)
    cfg = art.config
    data = load_dataset(cfg["dataset"], timesteps=cfg["timesteps"], seed=cfg["data_seed"])
    x = encode(data.x_test[:SLICE], cfg["encoding"], cfg["timesteps"],
               cfg["input_bits"]).golden_input()
    gold = simulate(art.network, x)
    hw = run_core(art.network, x, REFERENCE_CONFIG, rng=np.random.default_rng(0),
                  gaps=0.2)
    assert not hw.error
    for layer in range(len(art.network.layers)):
        for b in range(SLICE):
            diff = np.argwhere(hw.spikes[layer][b] != gold.spikes[layer][b])
            assert diff.size == 0, f"sample {b} layer {layer}: first mismatch (t, neuron) = " \
                                   f"{tuple(diff[0])}"
        assert np.array_equal(hw.final_codes[layer], gold.final_codes[layer])
    assert np.array_equal(hw.counts, gold.counts)
    assert np.array_equal(hw.predictions, gold.predictions)
    # The slice is not degenerate: the hidden layer spikes and outputs differ per sample.
    assert 0 < gold.spikes[0].mean() < 1 and len(set(gold.predictions.tolist())) > 1
