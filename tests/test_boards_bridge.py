"""The UART bridge end to end in Amaranth's simulator: a host model drives the RX pin at
the bit rate (a few clocks per bit to stay fast), decodes what comes back on TX with its
own bit sampler, and checks the replies against the golden model for several samples.
"""

import numpy as np
import pytest

from qsnn_hw.boards import protocol as P
from qsnn_hw.boards.bridge import UartBridge
from qsnn_hw.boards.uart import UARTRx
from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.testing import random_inputs, random_network

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


async def send_byte(ctx, pin, byte: int, divisor: int):
    """8N1, LSB first, each bit held ``divisor`` clocks (the host side, written out)."""
    for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
        ctx.set(pin, level)
        await ctx.tick().repeat(divisor)


def tx_monitor(pin, divisor: int, out: list):
    """Background process decoding the TX pin: find the start edge, sample mid-bit."""
    async def monitor(ctx):
        async def after(n):
            for _ in range(n):
                (_, _, level) = await ctx.tick().sample(pin)
            return level
        while True:
            (_, _, level) = await ctx.tick().sample(pin)
            if level:
                continue
            await after(divisor // 2)
            byte = 0
            for i in range(8):
                byte |= await after(divisor) << i
            assert await after(divisor) == 1, "stop bit low"
            out.append(byte)
    return monitor


async def read_bytes(ctx, got: list, n: int, limit: int = 2_000_000):
    for _ in range(limit):
        if len(got) >= n:
            out = got[:n]
            del got[:n]
            return bytes(out)
        await ctx.tick()
    raise AssertionError(f"only {len(got)} of {n} reply bytes")


def hand_encode(net, xs) -> bytes:
    """The sample as bytes, written from the protocol description (not the encoder):
    spike input streamed (spike addresses, then an end of timestep, every timestep);
    direct input static (the M values once, then T end-of-timestep beats)."""
    field = max(1, (net.n_in - 1).bit_length()) if net.input_bits == 1 else net.input_bits
    width = field + 2
    nbytes = (width + 7) // 8
    out = [0xA5]
    for t in range(xs.shape[0]):
        if net.input_bits == 1:
            beats = [int(a) for a in np.flatnonzero(xs[t])]
        else:
            beats = [int(v) for v in xs[0]] if t == 0 else []
        beats.append((1 << field) | ((t == xs.shape[0] - 1) << (field + 1)))
        for b in beats:
            out += [(b >> (8 * k)) & 0xFF for k in range(nbytes)]
    return bytes(out)


@pytest.mark.sim
@pytest.mark.parametrize("sizes,divisor,input_bits", [([12, 9, 5], 4, 1), ([300, 6, 3], 5, 1),
                                                     ([10, 7, 4], 4, 4)])
def test_bridge_samples_match_golden(sizes, divisor, input_bits):
    """Spike input streamed, direct input static (CoreConfig's default for each)."""
    rng = np.random.default_rng(sum(sizes))
    net = random_network(rng, sizes=sizes, input_bits=input_bits, state_bits=4)
    x = random_inputs(rng, net, 4, 3, density=0.15)
    x[1] = 0                                    # an all-silent sample
    gold = simulate(net, x)
    bridge = UartBridge(net, CoreConfig(lanes=2, count_bits=16), divisor=divisor)
    fr = bridge.framing
    got, replies = [], []

    async def host(ctx):
        ctx.set(bridge.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        await send_byte(ctx, bridge.rx, 0x00, divisor)   # idle noise is ignored
        for b in bytes([P.CMD_IDENT]):
            await send_byte(ctx, bridge.rx, b, divisor)
        replies.append(await read_bytes(ctx, got, P.Framing.IDENT_BYTES))
        for b in range(x.shape[0]):
            data = hand_encode(net, x[b])
            assert data == P.encode_sample(net, x[b], fr)
            for byte in data:
                await send_byte(ctx, bridge.rx, byte, divisor)
            replies.append(await read_bytes(ctx, got, fr.reply_bytes))
            assert ctx.get(bridge.prediction) == gold.predictions[b]

    run_simulation(bridge, [host], [tx_monitor(bridge.tx, divisor, got)], name="bridge")
    ident = P.decode_ident(replies[0])
    assert ident == {"model_id": P.model_id(net), "beat_bytes": fr.beat_bytes,
                     "n_out": net.n_out, "count_bytes": 2, "ram_weights": False,
                     "weights_loaded": True, "static_input": input_bits > 1,
                     "word_bytes": 0, "load_words": 0}
    for b, raw in enumerate(replies[1:]):
        r = P.decode_reply(raw, fr)
        assert r.status == 0
        assert r.prediction == gold.predictions[b]
        assert list(r.counts) == list(gold.counts[b])
        assert r.cycles > 0
    assert not got, "unexpected extra bytes"


@pytest.mark.sim
def test_uart_rx_bytes_and_framing_error():
    """RX decodes what a host sends (including 0x00 and 0xFF); a low stop bit is a
    framing error, not a byte."""
    from amaranth.hdl import Module
    divisor = 6
    m = Module()
    m.submodules.rx = rx = UARTRx(divisor)
    received, errors = [], []

    async def host(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(10)
        for b in (0x00, 0xFF, 0x5A, 0xA5):
            await send_byte(ctx, rx.rx, b, divisor)
        for level in [0] * 9 + [0]:                 # stop bit low
            ctx.set(rx.rx, level)
            await ctx.tick().repeat(divisor)
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(4 * divisor)

    async def watch(ctx):
        async for _, _, v, d, fe in ctx.tick().sample(rx.valid, rx.data, rx.frame_error):
            if v:
                received.append(d)
            if fe:
                errors.append(1)

    run_simulation(m, [host], [watch], name="uart")
    assert received == [0x00, 0xFF, 0x5A, 0xA5]
    assert errors == [1]


@pytest.mark.parametrize("bad", [0, 3, 2.5, True])
def test_divisor_validation(bad):
    with pytest.raises(ValueError, match="divisor"):
        UARTRx(bad)


class SimulatedPort:
    """A serial port whose other end is the bridge gateware in Amaranth's simulator: the
    host code of ``qsnn-hw run`` (BoardLink) talks to the real RTL, byte by byte."""

    def __init__(self, bridge, divisor: int):
        from amaranth.hdl import ClockDomain, Module
        from amaranth.sim import Simulator
        self.to_board, self.from_board = [], []
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.bridge = bridge
        self.sim = Simulator(m)
        self.sim.add_clock(1e-8)
        to_board = self.to_board

        async def host(ctx):
            ctx.set(bridge.rx, 1)
            while True:
                if to_board:
                    await send_byte(ctx, bridge.rx, to_board.pop(0), divisor)
                else:
                    await ctx.tick()

        self.sim.add_testbench(host, background=True)
        self.sim.add_process(tx_monitor(bridge.tx, divisor, self.from_board))
        self.now = 0.0

    def write(self, data: bytes):
        self.to_board.extend(data)

    def read(self, n: int, limit_cycles: int = 2_000_000):
        step = 2000
        for _ in range(limit_cycles // step):
            if len(self.from_board) >= n:
                break
            self.now += step * 1e-8
            self.sim.run_until(self.now)
        out = bytes(self.from_board[:n])
        del self.from_board[:n]
        return out


@pytest.mark.sim
def test_run_host_code_against_simulated_bridge():
    """``qsnn-hw run``'s BoardLink + run_samples against the bridge RTL: identify (which
    also sets the 1-byte counter framing of 5-bit counters), then samples vs golden."""
    from qsnn_hw.commands.run import BoardLink, run_samples
    rng = np.random.default_rng(11)
    net = random_network(rng, sizes=[10, 6, 4], input_bits=1, state_bits=4)
    x = random_inputs(rng, net, 3, 4, density=0.25)
    bridge = UartBridge(net, CoreConfig(lanes=3, count_bits=5), divisor=4)
    link = BoardLink(SimulatedPort(bridge, 4), net)
    assert link.identify()["count_bytes"] == 1
    r = run_samples(link, x, simulate(net, x).predictions, clock_mhz=100.0)
    assert r["bit_exact"] and r["status"] == 0 and r["board_accuracy"] == 1.0
