"""Weight placement for synthesis (``plan_weights``: block-RAM ROMs, SPRAM RAMs, or
automatic), its fit errors, and a real iCEBreaker build with SPRAM weights."""

import json

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.boards import build as B
from qsnn_hw.boards.boards import get_board
from qsnn_hw.cli import main
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import random_network

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
UP5K = get_board("icebreaker")
P41 = CoreConfig(lanes=(4, 1))


def _net(sizes, seed=0):
    return random_network(np.random.default_rng(seed), sizes=sizes, input_bits=1,
                          weight_bits=4, state_bits=4, family="exponential",
                          reset="subtract", bias=False, frac_bits=0)


@pytest.fixture(scope="module")
def mnist():
    return _net([784, 128, 10])


def test_mnist_shape_goes_to_spram_with_four_lanes(mnist):
    info = B.plan_weights(mnist, P41, UP5K)          # auto
    assert info["storage"] == ["spram", "rom"] and info["spram_layers"] == [0]
    # 784 x 32 words of 4 x 4 bits = 25,088 16-bit words = 2 SPRAMs (16K x 16 each)
    assert info["layers"][0]["depth"] == 25088 and info["layers"][0]["width"] == 16
    assert info["weight_spram_blocks"] == 2 and info["spram_blocks"] == 4
    # layer 1: 128 x 10 4-bit words as a ROM, 1024 x 4 per EBR
    assert info["weight_bram_blocks"] == 2 and info["weight_bits"] == 406528
    # everything in SPRAM: layer 1 (1,280 x 4 bits) takes a whole SPRAM of its own
    assert B.plan_weights(mnist, P41, UP5K, "spram")["weight_spram_blocks"] == 3


def test_small_network_stays_in_block_ram():
    info = B.plan_weights(_net([16, 8, 4]), CoreConfig(lanes=2), UP5K)
    assert info["storage"] == ["rom", "rom"] and info["weight_spram_blocks"] == 0


def test_narrow_words_waste_spram_and_the_error_says_which_lanes(mnist):
    """P = 1: 4-bit words, one per 16-bit SPRAM address: 100,352 words = 7 SPRAMs."""
    with pytest.raises(B.DesignTooLarge) as e:
        B.plan_weights(mnist, CoreConfig(lanes=(1, 1)), UP5K)
    msg = str(e.value)
    assert "need 7 SB_SPRAM256KA" in msg and "of 4, 3 too many" in msg
    assert "layer 0: --lanes 4 packs 4 x 4-bit weights" in msg and "(~2 SPRAMs)" in msg


def test_too_large_for_all_of_the_spram():
    net = _net([2000, 300, 10], seed=1)    # 2000 x 300 x 4 bits = 2.4 Mbit > 1 Mbit
    with pytest.raises(B.DesignTooLarge) as e:
        B.plan_weights(net, CoreConfig(lanes=(4, 2)), UP5K)
    msg = str(e.value)
    # layer 0: 2000 x 75 = 150,000 16-bit words = 10 SPRAMs
    assert "need 10 SB_SPRAM256KA" in msg and "6 too many" in msg
    assert "2,400,000 bits exceed the 1,048,576 bits of SPRAM by 129 %" in msg


def test_bram_and_spram_modes_say_what_to_change(mnist):
    with pytest.raises(B.DesignTooLarge, match="need 100 blocks.*--weights auto or spram"):
        B.plan_weights(mnist, CoreConfig(lanes=(1, 1)), UP5K, "bram")
    with pytest.raises(B.DesignTooLarge, match="ulx3s-85f has no SPRAM"):
        B.plan_weights(mnist, P41, get_board("ulx3s-85f"), "spram")
    # ECP5: auto never picks SPRAM; the 85F's block RAM holds the MNIST shape
    assert B.plan_weights(mnist, P41, get_board("ulx3s-85f"))["storage"] == ["rom"] * 2
    with pytest.raises(ValueError, match="weights must be one of auto, bram, spram"):
        B.plan_weights(mnist, P41, UP5K, "flash")


def test_synth_cli_refuses_before_any_tool(tmp_path, mnist, capsys):
    model = save_artifact(tmp_path / "mnist.qsnn", Artifact(mnist))
    assert main(["synth", str(model), "--board", "icebreaker", "--lanes", "1,1",
                 "--out", str(tmp_path / "b")]) == 2
    assert "need 7 SB_SPRAM256KA" in capsys.readouterr().err
    assert main(["synth", str(model), "--board", "icebreaker", "--weights", "bram",
                 "--out", str(tmp_path / "b")]) == 2
    assert "--weights auto or spram" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.synth
@pytest.mark.slow
def test_small_build_with_spram_weights(tmp_path):
    """A small network with every layer's weights in SPRAM builds for the iCEBreaker:
    nextpnr places the SB_SPRAM256KA cells and timing passes."""
    net = _net([16, 8, 4], seed=7)
    out = tmp_path / "icebreaker"
    config, _ = B.resolve_weights(net, CoreConfig(lanes=4), "icebreaker", "spram")
    rep = B.synthesize(net, "icebreaker", out, config, clock_mhz=16)
    assert rep["weights"]["storage"] == ["spram", "spram"]
    # layer 0: 16 x 2 words of 16 bits; layer 1: 8 x 1 words: one SPRAM each
    assert rep["weights"]["weight_spram_blocks"] == 2
    assert rep["resources"]["spram"]["used"] == 2
    assert rep["resources"]["spram"]["available"] == 4
    assert rep["timing_pass"], rep["fmax"]
    assert json.loads((out / "report.json").read_text())["weights"]["spram_layers"] == [0, 1]
    assert "in SPRAM (2 of 4 SB_SPRAM256KA" in (out / "report.md").read_text()
