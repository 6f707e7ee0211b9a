"""Weight placement for synthesis (``plan_weights``: block-RAM ROMs, SPRAM RAMs, or
automatic), its fit errors, and a real iCEBreaker build with SPRAM weights."""

import json

import numpy as np
import pytest

from qsnn_hw.artifact import Artifact, save_artifact
from qsnn_hw.boards import build as B
from qsnn_hw.boards.boards import get_board
from qsnn_hw.cli import main
from qsnn_hw.contract import IntNetwork
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import random_conv_network, random_network, random_tawq_layer

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


def test_auto_counts_the_block_ram_of_the_rest_of_the_core():
    """The weights alone fit the UP5K's 30 block RAMs, but not with the accumulators,
    states and FIFOs of a 1024-neuron layer: auto moves the largest layer to SPRAM."""
    net = _net([16, 1024, 10])
    cfg = CoreConfig(lanes=1)
    info = B.plan_weights(net, cfg, UP5K)
    # 16 x 1024 4-bit words = 16 blocks of 1024 x 4, 1024 x 10 = 10 blocks: 26 <= 30
    assert [la["depth"] for la in info["layers"]] == [16 * 1024, 1024 * 10]
    assert sum(UP5K.fpga.bram_blocks(la["depth"], 4) for la in info["layers"]) == 26
    # layer 0 alone: two banks of 1024 accumulators, 1024 4-bit states (1 block) and a
    # FIFO memory of 2 * 1024 words (default depth 2049) of 13 bits (2048 x 2: 7 blocks)
    mems = {m["name"]: (m["depth"], m["width"]) for m in B.core_memories(net, cfg)}
    assert mems["layer 0 states"] == (1024, 4)
    assert mems["layer 0 FIFO"] == (2048, 13)
    assert info["core_bram_blocks"] >= 1 + 7 + 2 * 2
    assert info["storage"] == ["spram", "rom"] and info["weight_bram_blocks"] == 10
    assert info["core_bram_blocks"] + info["weight_bram_blocks"] <= 30
    # bram mode still places every layer in block RAM (its check is the weights')
    assert B.plan_weights(net, cfg, UP5K, "bram")["storage"] == ["rom", "rom"]


def test_core_memories_of_a_convolution_include_its_decode_rom():
    rng = np.random.default_rng(3)
    net = random_conv_network(rng, in_shape=(2, 6, 6), convs=1, dense=[4], input_bits=1)
    names = [m["name"] for m in B.core_memories(net, CoreConfig(lanes=2))]
    # streamed spike input: two accumulator banks per layer
    assert names == ["layer 0 accumulators", "layer 0 accumulators", "layer 0 states",
                     "layer 0 FIFO", "layer 0 decode", "layer 1 accumulators",
                     "layer 1 accumulators", "layer 1 states", "layer 1 FIFO",
                     "UART receive FIFO"]
    decode = B.core_memories(net, CoreConfig(lanes=2))[4]
    assert decode["depth"] == 2 * 6 * 6    # one entry per input index


def test_core_memories_of_a_tawq_layer_include_its_multipliers():
    """A TaWQ layer's per-(timestep, channel) multiplier ROM takes block RAM beside the
    codes: T x G words of P multipliers (the width of the largest)."""
    rng = np.random.default_rng(4)
    base = _net([16, 64, 10])
    layer = random_tawq_layer(rng, base.layers[0], 8, mult_bits=10)
    net = IntNetwork((layer, base.layers[1]), input_bits=1)
    mems = {m["name"]: (m["depth"], m["width"]) for m in
            B.core_memories(net, CoreConfig(lanes=2))}
    mult_bits = int(layer.tawq_mult.max()).bit_length()
    assert mems["layer 0 TaWQ multipliers"] == (8 * 32, 2 * mult_bits)
    assert "layer 1 TaWQ multipliers" not in mems

