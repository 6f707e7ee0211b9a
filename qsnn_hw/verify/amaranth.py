"""Run a whole core in Amaranth's simulator and observe it through its trace ports.

:func:`run_core` builds a :class:`~qsnn_hw.hdl.top.NetworkTop` with ``trace=True``,
writes RAM/SPRAM weights through ``weight_load`` first when the configuration has them,
drives the input stream (optionally shuffled and bursty), records every spike word,
state write and result, and returns them in golden shapes (:class:`CoreRun`) for
:func:`.compare.compare`. Nothing here reads a name inside the core's hierarchy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import IntNetwork
from ..golden import check_inputs
from ..hdl.config import CoreConfig
from ..hdl.layouts import spike_word_layout
from ..hdl.sim_util import run_simulation, wait_until
from ..hdl.top import NetworkTop
from .compare import Observed
from .stimulus import batch_beats
from .trace import RawTrace, rebuild


@dataclass
class CoreRun:
    """Outputs of :func:`run_core`. ``observed``: the :class:`.compare.Observed` for
    :func:`.compare.compare`; ``spikes``, ``counts``, ``predictions``, ``final_codes``,
    ``final_mem``: as :class:`qsnn_hw.golden.GoldenResult`; ``error``: the sticky flag at
    the end; ``step_cycles[l]`` (B, T): the cycle at which layer l closed each timestep;
    ``start_cycles`` (B,); ``sample_cycles`` (B,): cycles from ``start`` to the result."""

    observed: Observed
    spikes: list
    final_mem: list
    final_codes: list
    counts: np.ndarray
    predictions: np.ndarray
    error: bool
    step_cycles: list
    start_cycles: np.ndarray
    sample_cycles: np.ndarray


def run_core(net: IntNetwork, x, config: CoreConfig | None = None, *,
             rng: np.random.Generator | None = None, beats=None, gaps: float = 0.0,
             name: str = "core", limit: int = 2_000_000, on_sample=None) -> CoreRun:
    """Run ``x`` (B, T, M) through the core of ``net`` built with ``config``.

    ``beats``: optional per-sample lists of raw input beats replacing the ones built from
    ``x`` (error-injection tests); ``rng`` shuffles the event order within timesteps and,
    with ``gaps`` > 0, drops ``valid`` for 1-3 cycles before a beat with that probability
    (a bursty source). ``on_sample(n)``: called when the simulation starts (n = 0) and
    after each sample's result (n samples done), e.g. to draw progress."""
    x = check_inputs(net, x)
    config = CoreConfig() if config is None else config
    top = NetworkTop(net, config, trace=True)
    batch, steps, _ = x.shape
    if beats is None:
        beats = batch_beats(net, x, rng, static=config.static_input(net))
    drv = _Driver(top, batch, steps, beats, rng, gaps, limit, on_sample)
    run_simulation(top, [drv.testbench], [drv.monitor], name=name)
    obs = rebuild(top.geometry, config.count_bits, drv.raw, batch, steps)
    final_mem, final_codes = [], []
    for layer, st in zip(net.layers, obs.states, strict=True):
        last = st[:, -1, :]
        final_codes.append(last if layer.quantized else None)
        final_mem.append(layer.levels[last] if layer.quantized else last)
    starts = np.array(drv.raw.starts, np.int64)
    return CoreRun(obs, obs.spikes, final_mem, final_codes, obs.counts, obs.predictions,
                   bool(obs.errors.any()), drv.step_cycles, starts,
                   obs.sample_cycles if obs.sample_cycles is not None
                   else np.zeros(batch, np.int64))


class _Driver:
    """The testbench (weights, starts, input beats, results) and the monitor (trace
    ports) of one :func:`run_core` simulation; fills :attr:`raw` and
    :attr:`step_cycles`."""

    def __init__(self, top, batch, steps, beats, rng, gaps, limit, on_sample=None):
        self.top, self.batch, self.steps = top, batch, steps
        self.on_sample = on_sample or (lambda n: None)
        self.beats, self.rng, self.gaps, self.limit = beats, rng, gaps, limit
        self.raw = RawTrace.empty(len(top.engines))
        self.step_cycles = [np.full((batch, steps), -1, np.int64) for _ in top.engines]
        self.clock = 0

    async def monitor(self, ctx):
        top, n = self.top, len(self.top.engines)
        eot_bits = [spike_word_layout(e.out_groups, e.lanes)["eot"].offset for e in top.engines]
        probes = []
        for i in range(n):
            t = getattr(top.trace, f"layer{i}")
            probes += [t.word_valid, t.word.as_value(), t.state_en, t.state_addr,
                       t.state_data.as_value()]
        seen = [0] * n
        async for _, _, *vals in ctx.tick().sample(*probes):
            self.clock += 1
            for li in range(n):
                wv, word, se, sa, sd = vals[5 * li:5 * li + 5]
                if wv:
                    self.raw.words[li].append(word)
                    if (word >> eot_bits[li]) & 1:
                        k = seen[li]
                        if k < self.batch * self.steps:
                            self.step_cycles[li][k // self.steps, k % self.steps] = self.clock
                        seen[li] = k + 1
                if se:
                    self.raw.states[li].append((sa, sd))

    async def load_weights(self, ctx):
        """RAM/SPRAM layers: every packed word through ``weight_load``, one per cycle."""
        top, ld = self.top, self.top.weight_load
        for li in top.loadable:
            e = top.engines[li]
            ctx.set(ld.layer, li)
            # the engine's own matrix (after a convolution: its hardware column order)
            for addr, word in enumerate(e.weights.words()):
                ctx.set(ld.addr, addr)
                ctx.set(ld.data, word)
                ctx.set(ld.en, 1)
                await ctx.tick()
        ctx.set(ld.en, 0)

    async def testbench(self, ctx):
        top, limit = self.top, self.limit
        ev = top.events
        payload, res = ev.payload.as_value(), top.results.payload.as_value()
        if top.loadable:
            await self.load_weights(ctx)
        ctx.set(top.results.ready, 1)
        self.on_sample(0)
        for b in range(self.batch):
            await wait_until(ctx, ~top.busy, limit=limit)
            ctx.set(top.start, 1)
            await ctx.tick()
            ctx.set(top.start, 0)
            self.raw.starts.append(self.clock)
            ctx.set(ev.valid, 1)
            for word in self.beats[b]:
                if self.gaps and self.rng.random() < self.gaps:
                    ctx.set(ev.valid, 0)
                    for _ in range(int(self.rng.integers(1, 4))):
                        await ctx.tick()
                    ctx.set(ev.valid, 1)
                ctx.set(payload, int(word))
                await wait_until(ctx, ev.ready, limit=limit)
            ctx.set(ev.valid, 0)
            (word, err) = await wait_until(ctx, top.results.valid, res, top.error,
                                           limit=limit)
            self.raw.results.append((self.clock, int(err), int(word)))
            self.on_sample(b + 1)
