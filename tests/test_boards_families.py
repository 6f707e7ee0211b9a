"""The FPGA family and board registries (one entry per family / board, unknown names are
errors naming the known ones), and every board top prepared for every board (no tools
run) with deprecation warnings as errors."""

import warnings

import numpy as np
import pytest

from qsnn_hw.boards import build as B
from qsnn_hw.boards.boards import BOARDS, Board
from qsnn_hw.boards.families import FAMILIES, get_family
from qsnn_hw.boards.top import BoardTop
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.testing import random_network


def _small_net():
    return random_network(np.random.default_rng(7), sizes=[16, 8, 4], input_bits=1,
                          weight_bits=4, state_bits=4, family="exponential",
                          reset="subtract", bias=False, frac_bits=0)


def test_unknown_family_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown FPGA family 'gowin'; known: ice40, ecp5"):
        get_family("gowin")
    for call in (lambda: B.bram_blocks(16, 4, "gowin"), lambda: B.resolve_tools("gowin", "yowasp"),
                 lambda: B.parse_reports({"utilization": {}}, None, "gowin", 10.0)):
        with pytest.raises(ValueError, match="unknown FPGA family 'gowin'"):
            call()
    # a board of an unregistered family cannot even be declared
    with pytest.raises(ValueError, match="unknown FPGA family 'gowin'"):
        Board("tangnano", "gowin", "m", "P", "clk27", 27.0, 27.0, (0, 1), (2,))


def test_every_board_has_a_registered_family():
    for board in BOARDS.values():
        assert board.fpga is FAMILIES[board.family]
        # the capacity keys are the ones the family's netlist counts
        assert set(board.capacity) <= set(board.fpga.netlist_cells)


def test_family_entries():
    ice40, ecp5 = FAMILIES["ice40"], FAMILIES["ecp5"]
    assert (ice40.bitstream, ecp5.bitstream) == ("top.bin", "top.bit")
    assert (ice40.bram_bits, ecp5.bram_bits) == (4096, 18432)
    assert [t.env_var for t in ice40.tools] == ["YOSYS", "NEXTPNR_ICE40", "ICEPACK"]
    assert (ice40.synth_opts, ecp5.synth_opts) == ("-dsp", None)
    # an ECP5 carry cell counts as two LUT4s; the iCE40 flip-flops by prefix
    assert ecp5.netlist_usage({"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 4})["luts"] == 16
    assert ice40.netlist_usage({"SB_DFFE": 2, "SB_DFFSR": 1})["ffs"] == 3


def _prepare(board: Board, clock: float) -> tuple[BoardTop, dict]:
    top = BoardTop(_small_net(), board, CoreConfig(lanes=2, count_bits=5), clock_mhz=clock)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        files = dict(board.platform().prepare(top, name="top").files)
    return top, files


@pytest.mark.parametrize("name", list(BOARDS))
def test_every_board_top_elaborates_without_deprecation_warnings(name):
    """Board clock (no PLL) and the default clock (the family's PLL) for every board."""
    board = BOARDS[name]
    for clock in (board.board_mhz, board.default_mhz):
        top, files = _prepare(board, clock)
        rtlil = files["top.il"]
        rtlil = rtlil.decode() if isinstance(rtlil, bytes) else rtlil
        assert (board.fpga.pll_cell in rtlil) == (top.pll is not None)
        assert (top.pll is not None) == (clock != board.board_mhz)
