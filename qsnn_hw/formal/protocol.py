"""Bounded proof of the stream protocol of a small layer engine (issue 15, part 4).

:class:`ProtocolProof` wraps one :class:`~qsnn_hw.hdl.engine.LayerEngine` with spike
input (the first layer of a spike-input core) and checks, for every input sequence and
every back-pressure pattern, the rules of docs/hardware.md ("Stream formats"), cycle by
cycle from reset for ``depth`` cycles (Yosys' own SAT solver, ``sat -seq``, no external
solver):

Environment (assumed): the input source keeps ``valid`` and the payload stable until the
beat is accepted (AXI-stream); the beats, ``start`` and the output's ``ready`` are free
in every cycle.

Properties (asserted in every cycle; each is a named output ``ok_<name>`` of the
wrapper, so a counterexample says which one failed and when):

* ``out_stable``: the output stream follows valid/ready: once ``valid`` is high without
  ``ready`` it stays high with the same payload in the next cycle.
* ``event_order``: every event the engine takes (an accumulate run ``m``, or an end of
  timestep) is the oldest accepted valid beat not yet taken, with the same address, or
  the same ``last`` (a shadow queue of the accepted valid beats; invalid beats are not
  in it, so an event made of an invalid beat, a duplicated, reordered or invented event
  fails here, and so does a lost one as soon as any later event is taken).
* ``buffer_bound``: at most two accepted beats wait (the front end's skid buffer): a
  source that keeps sending sees ``ready`` fall instead of a beat being lost.
* ``weight_reads``: each taken spike event reads exactly the G weight words ``m*G + g``,
  g = 0..G-1, in order, one per cycle, and no read happens without an event.
* ``error_only_after_invalid``: ``error`` is never high unless an invalid beat (address
  >= M, or ``last`` on a spike beat) was accepted before.
* ``error_before_next_event``: once an invalid beat was accepted, ``error`` is high by
  the time the engine takes any later event (the beat is dropped, and flagged).
* ``fifo_no_overflow``: the update never writes a word into a full output FIFO.
* ``eot_response``: every end of timestep the engine takes puts its end-of-timestep word
  into the output FIFO within ``eot_latency`` cycles, in order and with its ``last``
  (steps queued, answered by the FIFO's eot writes; none without a step).
* ``eot_order``: the j-th end-of-timestep word written into the FIFO carries the
  ``last`` of the j-th ``eot`` beat accepted on the input, which came before it.
* ``spike_words``: every other word written has a non-zero mask within the layer's
  lanes, a group < G, groups strictly increasing within a timestep, and is written while
  an end of timestep taken is not yet answered.
* ``fifo_order``: every word on the output is the oldest word written into the FIFO and
  not yet output (nothing lost, repeated or reordered); with ``eot_order`` the j-th
  end-of-timestep word on the output is the j-th input ``eot``'s, so ``last`` appears
  only after the sample's last beat.

The LIF datapaths are replaced by :class:`HavocDatapath` (free spikes): the protocol does
not depend on the values, and the accumulator arithmetic drops out. Each property is its
own solver run (together they take much longer, as one formula).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import Assert, Assume, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..contract import IntLayer
from ..hdl.engine import LayerEngine
from ..hdl.lif import LIFDatapath
from .datapath import ProofError, find_yosys, run_sat

PROPERTIES = ("out_stable", "event_order", "buffer_bound", "weight_reads",
              "error_only_after_invalid", "error_before_next_event", "fifo_no_overflow",
              "eot_response", "eot_order", "spike_words", "fifo_order")


DEFAULT_DEPTH = 24
DEFAULT_EOT_LATENCY = 16


def tiny_layer() -> IntLayer:
    """The default layer under proof: M = 3 inputs (so address 3 of the 2-bit field is
    invalid), N = 2 neurons, 2-bit state codes, 2-bit weights."""
    return IntLayer(np.array([[1, -1, 1], [1, 1, -1]]), 2, 1, 1, "subtract", None, 0,
                    np.array([-1, 0, 1, 3]))


class _Queue:
    """A formal-only shadow FIFO of ``depth`` registers of ``width`` bits: ``push``
    ``data`` at the tail, ``pop`` the head, both in one cycle allowed (pop first)."""

    def __init__(self, m, name, width, depth, push, data, pop):
        self.depth = depth
        self.slots = [Signal(width, name=f"{name}_q{i}") for i in range(depth)]
        self.count = Signal(range(depth + 1), name=f"{name}_count")
        self.head = self.slots[0]
        after_pop = self.count - pop
        for i, slot in enumerate(self.slots):
            shifted = Mux(pop, self.slots[i + 1] if i + 1 < depth else 0, slot)
            m.d.sync += slot.eq(Mux(push & (after_pop == i), data, shifted))
        full = self.count == depth
        m.d.sync += self.count.eq(Mux(push & ~(full & ~pop), after_pop + 1, after_pop))
        self.full = full


class HavocDatapath(LIFDatapath):
    """Stands in for a LIF datapath in the protocol proof (the engine is built with it:
    ``LayerEngine(..., datapath=HavocDatapath)``): the same members and latency, its
    spike a free input of the harness (``havoc``) in every cycle and its new state 0.
    The update's slots, alignment and FIFO writes do not depend on what the datapath
    computes, so every spike pattern the real datapath can produce is among the ones
    the solver tries (and the proof need not carry the accumulator and LIF arithmetic,
    which :mod:`.datapath` proves on its own)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.havoc = Signal(name="havoc_spike")

    def elaborate(self, platform):
        m = Module()
        if self.quantizer is not None:   # elaborated, its outputs unused (Yosys drops it)
            m.submodules.quantizer = self.quantizer
        m.d.comb += self.spike.eq(self.havoc)
        return m


class ProtocolProof(wiring.Component):
    """The proof harness of one spike-input layer engine (module docstring).

    Parameters: ``layer`` (default :func:`tiny_layer`), ``lanes``, ``banks``,
    ``fifo_depth`` (the engine's), ``eot_latency`` (the bound of ``eot_response``),
    ``engine`` (a callable building the engine from the same keywords as
    :class:`LayerEngine`; tests pass mutants).

    Members: the free inputs ``in_valid``, ``in_addr``, ``in_eot``, ``in_last``,
    ``out_ready``, ``start``; the outputs ``in_ready``, ``out_valid``, ``out_word``
    (the output payload), ``error``, ``cycle`` and one ``ok_<name>`` per property."""

    def __init__(self, layer: IntLayer | None = None, *, lanes: int = 1, banks: int = 2,
                 fifo_depth: int | None = None, eot_latency: int = 16, engine=LayerEngine,
                 witness: str | None = None, abstract_datapath: bool = True,
                 properties=PROPERTIES):
        if witness not in (None, "eot", "last", "error"):
            raise ValueError(f"witness must be None, 'eot', 'last' or 'error', got {witness!r}")
        self.witness = witness
        unknown = set(properties) - set(PROPERTIES)
        if unknown:
            raise ValueError(f"unknown properties {sorted(unknown)}")
        self.asserted = tuple(properties) + (("witness",) if witness else ())
        self.properties = PROPERTIES + (("witness",) if witness else ())
        self.layer = tiny_layer() if layer is None else layer
        self.dut = engine(self.layer, lanes=lanes, input_kind="spike", banks=banks,
                          fifo_depth=fifo_depth, trace=True,
                          **({"datapath": HavocDatapath} if abstract_datapath else {}))
        self.eot_latency = int(eot_latency)
        self.havoc = self.dut.datapaths if abstract_datapath else []
        aw = len(self.dut.events.payload.addr)
        out_w = self.dut.out_layout.size
        super().__init__({
            "in_valid": In(1), "in_addr": In(aw), "in_eot": In(1), "in_last": In(1),
            "out_ready": In(1), "start": In(1),
            "in_ready": Out(1), "out_valid": Out(1), "out_word": Out(out_w),
            "error": Out(1), "cycle": Out(6),
            **({"spike_in": In(len(self.havoc))} if self.havoc else {}),
            **{f"ok_{p}": Out(1) for p in self.properties},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        M, G, P = dut.n_in, dut.groups, dut.lanes
        fe, ad, upd = dut.frontend, dut.addressing, dut.update
        ev = fe.event
        inp, out = dut.events, dut.spikes
        m.d.comb += [
            inp.valid.eq(self.in_valid), inp.payload.addr.eq(self.in_addr),
            inp.payload.eot.eq(self.in_eot), inp.payload.last.eq(self.in_last),
            out.ready.eq(self.out_ready), dut.start.eq(self.start),
            self.in_ready.eq(inp.ready), self.out_valid.eq(out.valid),
            self.out_word.eq(out.payload.as_value()), self.error.eq(dut.error),
        ]
        for p, dp in enumerate(self.havoc):
            m.d.comb += dp.havoc.eq(self.spike_in[p])
        cycle = self.cycle
        with m.If(cycle != 63):
            m.d.sync += cycle.eq(cycle + 1)
        ok = {p: getattr(self, f"ok_{p}") for p in self.properties}

        # ---- environment: a source obeying valid/ready ----------------------------------
        held, held_beat = Signal(), Signal(len(self.in_addr) + 2)
        beat = Cat(self.in_addr, self.in_eot, self.in_last)
        m.d.sync += [held.eq(self.in_valid & ~inp.ready), held_beat.eq(beat)]
        m.d.comb += Assume(~held | (self.in_valid & (beat == held_beat)))

        # ---- the output stream: valid/ready -------------------------------------------
        o_held, o_word = Signal(), Signal(len(self.out_word))
        m.d.sync += [o_held.eq(out.valid & ~out.ready), o_word.eq(self.out_word)]
        m.d.comb += ok["out_stable"].eq(~o_held | (out.valid & (self.out_word == o_word)))

        # ---- accepted beats, the shadow queue of events ---------------------------------
        accepted = self.in_valid & inp.ready
        invalid = ~self.in_eot & (self.in_last | (self.in_addr >= M))
        seen_invalid = Signal()          # an invalid beat was accepted (before this cycle)
        bad_pending = Signal()           # ... since the last valid beat was accepted
        with m.If(accepted & invalid):
            m.d.sync += [seen_invalid.eq(1), bad_pending.eq(1)]
        with m.Elif(accepted):
            m.d.sync += bad_pending.eq(0)
        entry = Cat(self.in_addr, self.in_eot, self.in_last, bad_pending)
        q = _Queue(m, "events", len(entry), 4, push=accepted & ~invalid, data=entry,
                   pop=ev.take)
        aw = len(self.in_addr)
        h_addr, h_eot, h_last, h_bad = (q.head[:aw], q.head[aw], q.head[aw + 1],
                                        q.head[aw + 2])
        matches = Mux(ev.eot, h_eot & (h_last == ev.last),
                      ~h_eot & (h_addr == ev.m) & (ad.m == ev.m) & ad.load)
        m.d.comb += [
            ok["event_order"].eq(~ev.take | ((q.count != 0) & matches)),
            ok["buffer_bound"].eq(q.count <= 2),
            ok["error_only_after_invalid"].eq(~dut.error | seen_invalid),
            ok["error_before_next_event"].eq(~(ev.take & (q.count != 0) & h_bad)
                                             | dut.error),
        ]

        # ---- weight reads of each run -------------------------------------------------
        run_m, run_g, run_on = Signal(len(ev.m)), Signal(range(G + 1)), Signal()
        iss = ad.issue
        with m.If(iss.valid):
            m.d.sync += run_g.eq(run_g + 1)
            with m.If(run_g == G - 1):
                m.d.sync += run_on.eq(0)
        with m.If(ad.load):
            m.d.sync += [run_m.eq(ev.m), run_g.eq(0), run_on.eq(1)]
        m.d.comb += ok["weight_reads"].eq(
            (iss.valid == run_on) & (~iss.valid | ((iss.addr == run_m * G + run_g)
                                                   & (iss.group == run_g))))

        # ---- the output FIFO's writes: overflow, eot words answer steps in time --------
        tr = dut.trace
        m.d.comb += ok["fifo_no_overflow"].eq(~tr.word_valid | dut.fifo.w_rdy)
        eot_write = tr.word_valid & tr.word.eot
        steps = _Queue(m, "steps", len(cycle) + 1, 4, push=upd.step,
                       data=Cat(cycle, ev.last), pop=eot_write)
        age = (cycle - steps.head[:len(cycle)])[:len(cycle)]
        m.d.comb += ok["eot_response"].eq(
            ~steps.full
            & ((steps.count == 0) | (age <= self.eot_latency))
            & (~eot_write | ((steps.count != 0) & (tr.word.last == steps.head[-1]))))

        # ---- the words written into the FIFO: eot order, spike words -----------------
        K = 8                              # eot beats recorded (more than fit in depth)
        in_lasts = Signal(K)
        n_in_eot, n_eot_w = Signal(range(K + 1)), Signal(range(K + 1))
        with m.If(accepted & self.in_eot & (n_in_eot != K)):
            m.d.sync += [in_lasts.bit_select(n_in_eot, 1).eq(self.in_last),
                         n_in_eot.eq(n_in_eot + 1)]
        with m.If(eot_write & (n_eot_w != K)):
            m.d.sync += n_eot_w.eq(n_eot_w + 1)
        m.d.comb += ok["eot_order"].eq(
            ~eot_write | ((n_eot_w < n_in_eot)
                          & (tr.word.last == in_lasts.bit_select(n_eot_w, 1))))
        wword = tr.word
        spike_write = tr.word_valid & ~wword.eot
        prev_g, any_g = Signal(len(wword.group)), Signal()
        with m.If(tr.word_valid):
            m.d.sync += [prev_g.eq(wword.group), any_g.eq(~wword.eot)]
        tail = dut.geometry.last_group_lanes
        lane_ok = Mux(wword.group == G - 1, (wword.mask >> tail) == 0, 1) if tail < P \
            else Const(1)
        m.d.comb += ok["spike_words"].eq(
            ~spike_write
            | ((wword.mask != 0) & lane_ok & (wword.group < G)
               & (~any_g | (wword.group > prev_g)) & (steps.count != 0)))

        # ---- the output stream: the FIFO's writes, in order, none lost or repeated ------
        word = out.payload
        shown = out.valid & out.ready
        words = _Queue(m, "words", len(self.out_word), dut.fifo_depth + 1,
                       push=tr.word_valid, data=tr.word.as_value(), pop=shown)
        m.d.comb += ok["fifo_order"].eq(
            ~words.full & (~shown | ((words.count != 0)
                                     & (self.out_word == words.head))))

        if self.witness == "error":
            m.d.comb += ok["witness"].eq(~dut.error)
        elif self.witness:
            m.d.comb += ok["witness"].eq(
                ~(shown & word.eot & (word.last if self.witness == "last" else 1)))
        for p in self.asserted:
            m.d.comb += Assert(ok[p])
        return m


@dataclass
class ProtocolFailure:
    """The first cycle in which a property fails, and the ports until then."""

    cycle: int                     # 0-based cycle after reset
    properties: list[str]          # the properties failing in that cycle
    trace: list[dict] = field(default_factory=list, repr=False)   # ports, cycle by cycle

    def describe(self) -> str:
        return f"cycle {self.cycle}: {', '.join(self.properties)} fails"

    def beats(self) -> str:
        """The accepted input beats and the output words until the failure, one line per
        cycle with any (for a report)."""
        lines = []
        for r in self.trace:
            parts = []
            if r.get("in_valid") and r.get("in_ready"):
                last = " last" if r.get("in_last") else ""
                parts.append(f"in eot{last}" if r.get("in_eot")
                             else f"in addr={r.get('in_addr')}{last}")
            if r.get("out_valid"):
                held = "" if r.get("out_ready") else " (held)"
                parts.append(f"out word={r.get('out_word')}{held}")
            if r.get("error"):
                parts.append("error")
            if r["failing"]:
                parts.append("FAILS " + ", ".join(r["failing"]))
            if parts:
                lines.append(f"cycle {r['cycle']}: " + "; ".join(parts))
        return "\n".join(lines)


@dataclass
class ProtocolResult:
    """The outcome: ``proven`` True (every property checked), or the first ``failure``.
    ``seconds`` per property checked (one solver run each), in order."""

    proven: bool
    depth: int
    seconds: dict
    config: dict
    failure: ProtocolFailure | None = None
    log: str = field(default="", repr=False)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def _script(depth: int, cex: str) -> str:
    return "; ".join([
        "read_rtlil proof.il", "hierarchy -top top", "proc", "flatten", "memory_map",
        "opt_clean", "chformal -lower", "opt", "opt_clean",
        # from reset: every register starts at its init value, rst held low
        f"sat -seq {depth} -prove-asserts -set-assumes -set-init-zero -set rst 0 "
        f"-show-ports -dump_json {cex}",
    ])


def _waves(path: Path) -> dict:
    """WaveJSON of Yosys' ``sat -dump_json``: name -> list of per-step values (ints;
    None where undefined). Column 0 of a wave is the state before step 1."""
    # Yosys writes escaped identifiers' backslashes as they are (not valid JSON)
    doc = json.loads(re.sub(r'\\(?!["\\/bfnrtu])', r"\\\\", path.read_text()))
    out = {}
    for sig in doc["signal"]:
        if not isinstance(sig, dict) or "name" not in sig:
            continue
        wave, data = sig["wave"], sig.get("data", [])
        k, cur, vals = -1, None, []
        for ch in wave:
            if ch == "=" or ch in "23456789":
                k += 1
                cur = data[k] if k < len(data) else None
            elif ch in "01":
                cur = ch
            elif ch != ".":
                cur = None
            known = cur is not None and cur != "" and all(c in "01" for c in cur)
            vals.append(int(cur, 2) if known else None)
        out[sig["name"].lstrip("\\")] = vals
    return out


def _read_failure(path: Path, depth: int, properties) -> ProtocolFailure:
    waves = _waves(path)
    names = ("in_valid", "in_addr", "in_eot", "in_last", "in_ready", "out_valid",
             "out_ready", "out_word", "start", "error")
    trace = []
    for step in range(1, depth + 1):
        row = {"cycle": step - 1}
        for n in names:
            if n in waves and step < len(waves[n]):
                row[n] = waves[n][step]
        row["failing"] = [p for p in properties
                          if step < len(waves.get(f"ok_{p}", []))
                          and waves[f"ok_{p}"][step] == 0]
        trace.append(row)
        if row["failing"]:
            return ProtocolFailure(cycle=step - 1, properties=row["failing"], trace=trace)
    raise ProofError("the counterexample shows no failing property")


def _solve(harness: ProtocolProof, depth: int, yosys: str, timeout: float | None):
    """One solver run: (proven, failure or None, log)."""
    return run_sat(harness, _script(depth, "cex.json"),
                   f"protocol ({', '.join(harness.asserted)})", yosys, timeout,
                   lambda path: _read_failure(path, depth, harness.properties))


def prove_protocol(*, depth: int = DEFAULT_DEPTH, layer: IntLayer | None = None,
                   lanes: int = 1, banks: int = 2, fifo_depth: int | None = None,
                   eot_latency: int = DEFAULT_EOT_LATENCY, engine=LayerEngine,
                   properties=PROPERTIES, witness: str | None = None,
                   yosys: str | None = None, timeout: float | None = None,
                   on_property=None) -> ProtocolResult:
    """Prove the stream protocol of a small spike-input layer engine (default
    :func:`tiny_layer`, one lane, two banks) for ``depth`` cycles from reset (module
    docstring): each of ``properties`` in its own solver run (together they are much
    slower), stopping at the first that fails. ``witness`` instead checks one property
    that must fail (reachability: "eot" / "last", an end-of-timestep word / one with
    ``last`` is output; "error", the flag rises) and reports where.
    ``on_property(name, proven, seconds)`` is called after each run; ``timeout`` is per
    run. Raises :class:`ProofError` when Yosys fails or gives no verdict."""
    yosys = yosys or find_yosys()
    kw = dict(lanes=lanes, banks=banks, fifo_depth=fifo_depth, eot_latency=eot_latency,
              engine=engine)
    runs = [((), witness)] if witness else [((p,), None) for p in properties]
    seconds, logs, failure, config = {}, [], None, None
    for props, wit in runs:
        t0 = time.perf_counter()
        harness = ProtocolProof(layer, properties=props, witness=wit, **kw)
        if config is None:
            dut = harness.dut
            config = dict(n_in=dut.n_in, n_out=dut.n_out, lanes=dut.lanes,
                          groups=dut.groups, banks=banks, fifo_depth=dut.fifo_depth,
                          latency=dut.latency, eot_latency=eot_latency)
        proven, failure, log = _solve(harness, depth, yosys, timeout)
        name = wit and "witness" or props[0]
        seconds[name] = time.perf_counter() - t0
        logs.append(log)
        if on_property is not None:
            on_property(name, proven, seconds[name])
        if not proven:
            break
    return ProtocolResult(proven=failure is None, depth=depth, seconds=seconds,
                          config=config, failure=failure, log="\n".join(logs))
