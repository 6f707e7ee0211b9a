"""The one simulation harness of the gateware (Amaranth's simulator, no external tools).

:func:`run_simulation` sets up the clock and, when ``GENERATE_VCDS`` is set, dumps a VCD
waveform (into ``$QSNN_VCD_DIR``, default ``vcd/``). Every gateware test uses it.

:func:`run_core` runs a whole :class:`NetworkTop` on a batch of inputs and returns what
the golden model returns (spikes per layer and timestep, final codes/membranes, counts,
predictions) plus cycle stamps, so tests and ``bench/hw_cycles.py`` compare in bulk.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from ..contract import IntNetwork
from ..golden import check_inputs
from ._util import unpack_lanes
from .top import NetworkTop

CLOCK_PERIOD = 1e-8
_vcd_names: dict[str, int] = {}


class SimTimeout(RuntimeError):
    """The design did not respond within the cycle budget (a deadlock)."""


def run_simulation(dut, testbenches=(), processes=(), *, name: str = "sim",
                   period: float = CLOCK_PERIOD) -> None:
    """Simulate ``dut`` with a clock on the ``sync`` domain until every testbench returns.
    ``processes`` run in the background (monitors)."""
    # An explicit sync domain, so purely combinational components get a clock too.
    wrapper = Module()
    wrapper.domains.sync = ClockDomain("sync")
    wrapper.submodules.dut = dut
    sim = Simulator(wrapper)
    sim.add_clock(period)
    for tb in testbenches:
        sim.add_testbench(tb)
    for proc in processes:
        sim.add_process(proc)
    if os.environ.get("GENERATE_VCDS"):
        out = Path(os.environ.get("QSNN_VCD_DIR", "vcd"))
        out.mkdir(parents=True, exist_ok=True)
        # pytest sets PYTEST_CURRENT_TEST: one file per test (and parameter set)
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{test}-{name}" if test else name)
        k = _vcd_names[stem] = _vcd_names.get(stem, -1) + 1  # several per test: keep all
        path = out / (f"{stem}.vcd" if k == 0 else f"{stem}-{k}.vcd")
        with sim.write_vcd(str(path)):
            sim.run()
    else:
        sim.run()


async def wait_until(ctx, cond, *sample, limit: int = 1_000_000):
    """Tick until ``cond`` is high at a clock edge; returns the ``sample`` values there."""
    for _ in range(limit):
        _, _, *vals, c = await ctx.tick().sample(*sample, cond)
        if c:
            return vals
    raise SimTimeout(f"no response within {limit} cycles")


def sample_beats(net: IntNetwork, xs: np.ndarray, rng: np.random.Generator | None = None,
                 layout=None) -> list[int]:
    """Raw input-stream beats of one sample ``xs`` (T, M): spike events (shuffled within
    each timestep when ``rng`` is given) or M values, then an ``eot`` beat per timestep."""
    pos = {name: layout[name].offset for name in ("eot", "last")}
    beats = []
    steps = xs.shape[0]
    for t in range(steps):
        if net.input_bits == 1:
            idx = np.flatnonzero(xs[t])
            if rng is not None:
                idx = rng.permutation(idx)
            beats.extend(int(a) for a in idx)
        else:
            beats.extend(int(v) for v in xs[t])
        beats.append((1 << pos["eot"]) | (int(t == steps - 1) << pos["last"]))
    return beats


@dataclass
class CoreRun:
    """Outputs of :func:`run_core`, shaped like :class:`qsnn_hw.golden.GoldenResult`.

    ``step_cycles[l]``: (B, T) cycle at which layer l finished each timestep;
    ``sample_cycles``: (B,) cycles from ``start`` to ``done``; ``start_cycles``: (B,).
    """

    spikes: list
    final_mem: list
    final_codes: list
    counts: np.ndarray
    predictions: np.ndarray
    error: bool
    step_cycles: list
    start_cycles: np.ndarray
    sample_cycles: np.ndarray


def run_core(net: IntNetwork, x, *, lanes=1, count_bits: int = 16, fifo_depth=None,
             pipelined=None, rng: np.random.Generator | None = None, beats=None,
             gaps: float = 0.0, name: str = "core", limit: int = 2_000_000) -> CoreRun:
    """Run ``x`` (B, T, M) through a :class:`NetworkTop` of ``net`` in Amaranth's simulator.

    ``beats``: optional per-sample lists of raw input beats replacing the ones built from
    ``x`` (error-injection tests); ``rng`` shuffles the event order within timesteps and,
    with ``gaps`` > 0, drops ``valid`` for a random 0-3 cycles before a beat with that
    probability (a bursty source). ``fifo_depth``: per-layer output FIFO depth.
    """
    x = check_inputs(net, x)
    top = NetworkTop(net, lanes=lanes, count_bits=count_bits, fifo_depth=fifo_depth,
                     pipelined=pipelined)
    batch, steps, _ = x.shape
    layout = top.engines[0].in_layout
    if beats is None:
        beats = [sample_beats(net, x[b], rng, layout) for b in range(batch)]
    engines = top.engines
    spikes = [np.zeros((batch, steps, e.n_out), np.uint8) for e in engines]
    step_cycles = [np.full((batch, steps), -1, np.int64) for _ in engines]
    final_states = [np.zeros((batch, e.n_out), np.int64) for e in engines]
    counts = np.zeros((batch, net.n_out), np.int64)
    preds = np.zeros(batch, np.int64)
    start_cyc = np.zeros(batch, np.int64)
    done_cyc = np.zeros(batch, np.int64)
    clock = [0]
    err = [False]
    word_fields = [(e.out_layout["group"].offset, e.out_layout["group"].shape.width,
                    e.out_layout["mask"].offset, e.out_layout["eot"].offset) for e in engines]

    async def monitor(ctx):
        pos = [[0, 0] for _ in engines]  # (sample, timestep) per layer
        probes = []
        for e in engines:
            probes += [e.fifo.w_en, e.fifo.w_data]
        async for _, _, *vals in ctx.tick().sample(*probes):
            clock[0] += 1
            for li, e in enumerate(engines):
                if not vals[2 * li]:
                    continue
                word = vals[2 * li + 1]
                goff, gw, moff, eoff = word_fields[li]
                b, t = pos[li]
                if (word >> eoff) & 1:
                    if b < batch:
                        step_cycles[li][b, t] = clock[0]
                    t += 1
                    if t == steps:
                        b, t = b + 1, 0
                    pos[li] = [b, t]
                elif b < batch:
                    g = (word >> goff) & ((1 << gw) - 1)
                    mask = (word >> moff) & ((1 << e.lanes) - 1)
                    for p in range(e.lanes):
                        if mask >> p & 1:
                            spikes[li][b, t, g * e.lanes + p] = 1

    async def testbench(ctx):
        ev = top.events
        payload = ev.payload.as_value()
        res = top.results.payload
        ctx.set(top.results.ready, 1)
        for b in range(batch):
            await wait_until(ctx, ~top.busy, limit=limit)
            ctx.set(top.start, 1)
            await ctx.tick()
            ctx.set(top.start, 0)
            start_cyc[b] = clock[0]
            ctx.set(ev.valid, 1)
            for raw in beats[b]:
                if gaps and rng.random() < gaps:
                    ctx.set(ev.valid, 0)
                    for _ in range(int(rng.integers(1, 4))):
                        await ctx.tick()
                    ctx.set(ev.valid, 1)
                ctx.set(payload, raw)
                await wait_until(ctx, ev.ready, limit=limit)
            ctx.set(ev.valid, 0)
            (raw_res,) = await wait_until(ctx, top.results.valid, res.as_value(), limit=limit)
            done_cyc[b] = clock[0]
            rl = res.shape()
            pf, cf = rl["prediction"], rl["counts"]
            preds[b] = (raw_res >> pf.offset) & ((1 << pf.shape.width) - 1)
            counts[b] = unpack_lanes(raw_res >> cf.offset, count_bits, net.n_out, False)
            for li, e in enumerate(engines):
                mem = e.states.memory.data
                vals = []
                for g in range(e.groups):
                    vals += unpack_lanes(ctx.get(mem[g]), e.states.width, e.lanes,
                                         e.states.is_signed)
                final_states[li][b] = vals[:e.n_out]
        err[0] = bool(ctx.get(top.error))

    run_simulation(top, [testbench], [monitor], name=name)
    final_mem, final_codes = [], []
    for layer, st in zip(net.layers, final_states, strict=True):
        if layer.quantized:
            final_codes.append(st)
            final_mem.append(layer.levels[st])
        else:
            final_codes.append(None)
            final_mem.append(st)
    return CoreRun(spikes, final_mem, final_codes, counts, preds, err[0], step_cycles,
                   start_cyc, done_cyc - start_cyc)
