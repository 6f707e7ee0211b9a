"""The cycle model of the core (docs/hardware.md, "Cycle model"): when every layer takes
each input event and end of timestep, and when it writes each spike word, derived from
the engine's rules. Exact against the gateware (tests/test_hdl_cycles.py) while no output
FIFO is full and the input source never pauses; a full FIFO only delays the real core, so
the model is then a lower bound.

One layer engine (G = ceil(N/P) groups, L the LIF datapath latency):

* a beat is offered the cycle after the previous one is consumed (or when it arrives);
  a direct value of 0 is consumed in that cycle without an event;
* an input event is taken when offered and the addressing is free: it then issues its
  n weight words, one per cycle (dense: n = G; a convolution: its valid kernel taps
  times CG, :meth:`~.geometry.LayerGeometry.event_issues`), and the next event may be
  taken in the cycle of its last issue (back to back, P synaptic operations per cycle);
  an event with n = 0 (a convolution's input that no output sees) frees the addressing
  the cycle after it is taken. With one accumulator bank an event also waits until the
  update of the previous timestep has issued its G reads;
* an end of timestep is taken when offered, the addressing is free and the previous
  update has issued its G reads (its end slot); the update then begins once the last
  sum of its bank is written (4 cycles after that bank's last issue), reads one group per
  cycle from the next cycle on, and issues its end slot after the G reads; a group's
  spike word is written L + 1 cycles after its read (a pooled word: its window's last
  position's). For G < L the next update starts at least L + 1 cycles after the
  previous one (its state reads follow the writes);
* a static layer's sample is its input beats once, then T end-of-timestep beats; its
  later updates read the same bank (no events, no drain).

:func:`network_cycles` chains the layers (a spike word written into a FIFO reaches the
next layer's front end :data:`WORD_DELAY` cycles later) and adds the argmax scan.
:func:`bandwidth_bound` is the weight-memory bound of :mod:`qsnn_hw` cores, computed
from the events alone (no schedule).
"""

from __future__ import annotations

import numpy as np

from .geometry import LayerGeometry

# Measured on the gateware (tests/test_hdl_cycles.py checks the model against it):
FIRST_BEAT = 2       # start -> first input beat offered to layer 0
DRAIN = 4            # a bank's last weight issue -> its update may begin
WORD_DELAY = 3       # spike word written into a FIFO -> offered to the next layer
RESULT_OVERHEAD = 4  # last end-of-timestep word of the last layer -> result, + N_out
CLEAR_DONE = 1       # reset -> accumulators zeroed after G + CLEAR_DONE cycles
CONSTANTS = ("FIRST_BEAT", "DRAIN", "WORD_DELAY", "RESULT_OVERHEAD", "CLEAR_DONE")


class _Layer:
    """The running state of one layer engine (cycles are absolute)."""

    def __init__(self, geom: LayerGeometry):
        self.g = geom
        self.bank = 0
        self.addr_free = 0                # first cycle the addressing takes an event
        self.last_issue = [-10, -10]      # last weight issue into each bank
        self.upd_free = 0                 # first cycle the update takes an end of timestep
        self.prev_start = -10 ** 9        # issue start of the previous update
        self.done = -1                    # cycle the previous beat was consumed

    def run(self, beats, arrive, accept_from):
        """Schedule one sample's beats: ``beats`` a list of ("ev" | "skip" | "eot",
        reuse, n) (n: an event's weight words), ``arrive`` the earliest cycle each can be
        offered. Returns the update slots' datapath-output cycles (T, G) and the
        end-of-timestep writes (T,)."""
        g = self.g
        G, L = g.groups, g.latency
        groups, ends = [], []
        for (kind, reuse, n), at in zip(beats, arrive, strict=True):
            offer = max(at, self.done + 1)
            if kind == "skip":
                self.done = offer
                continue
            if kind == "ev":
                take = max(offer, self.addr_free, accept_from)
                if g.banks == 1:
                    take = max(take, self.upd_free)
                self.addr_free = take + max(n, 1)
                if n:
                    self.last_issue[self.bank] = take + n
                self.done = take
                continue
            take = max(offer, self.addr_free, self.upd_free, accept_from)
            bank = self.bank ^ 1 if (reuse and g.banks == 2) else self.bank
            begin = max(take + 1, self.last_issue[bank] + DRAIN, self.prev_start + G)
            if G < L:
                begin = max(begin, self.prev_start + L)
            start = begin + 1
            self.prev_start, self.upd_free = start, start + G
            groups.append(start + np.arange(G) + 1 + L)
            ends.append(start + G + 1 + L)
            if g.banks == 2 and not reuse:
                self.bank ^= 1
            self.done = take
        return np.array(groups).reshape(-1, G), np.array(ends)


def _input_beats(x_sample: np.ndarray, input_bits: int, static: bool, issues):
    """Layer 0's beats of one sample (T, M) in the order stimulus.sample_beats sends
    them without shuffling (spikes: ascending index); ``issues``: the weight words of
    each input's event (:meth:`~.geometry.LayerGeometry.event_issues`)."""
    steps = x_sample.shape[0]
    beats = []
    for t in range(steps):
        if not static or t == 0:
            row = x_sample[t]
            if input_bits == 1:
                beats += [("ev", False, int(issues[m])) for m in np.flatnonzero(row)]
            else:
                beats += [("ev", False, int(issues[m])) if v else ("skip", False, 0)
                          for m, v in enumerate(row)]
        beats.append(("eot", static and t > 0, 0))
    return beats


def hardware_spikes(spikes: np.ndarray, geom: LayerGeometry) -> np.ndarray:
    """A layer's output spikes (..., n_out), contract order, as the lanes of its spike
    words (..., OG*P) (a convolution's hardware order; padding lanes 0)."""
    order = geom.out_order()
    hw = np.zeros(spikes.shape[:-1] + (order.size,), spikes.dtype)
    ok = order >= 0
    hw[..., ok] = spikes[..., order[ok]]
    return hw


def _word_beats(spikes: np.ndarray, geom: LayerGeometry, nxt: LayerGeometry, slots, ends):
    """The next layer's beats from this layer's spikes (T, N) and datapath-output cycles
    (T, G): one event per set bit of each non-zero word (groups ascending, lowest lane
    first), then the end of timestep; with arrival cycles."""
    beats, arrive = [], []
    steps = spikes.shape[0]
    P = geom.lanes
    hw = hardware_spikes(spikes, geom)
    emit = geom.emit_slots()
    issues = nxt.event_issues()
    for t in range(steps):
        for gi in range(geom.out_groups):
            for p in np.flatnonzero(hw[t, gi * P:(gi + 1) * P]):
                beats.append(("ev", False, int(issues[gi * P + p])))
                arrive.append(slots[t, emit[gi]] + WORD_DELAY)
        beats.append(("eot", False, 0))
        arrive.append(ends[t] + WORD_DELAY)
    return beats, arrive


def schedule(net, x: np.ndarray, spikes: list, geoms: list[LayerGeometry], *,
             starts=None) -> dict:
    """The modelled schedule of samples ``x`` (B, T, M) with the golden ``spikes``.

    ``starts``: the cycle of each sample's ``start`` (default: samples back to back,
    each started the cycle after the previous result, the first at cycle 1). Returns
    ``{"sample_cycles" (B,), "starts" (B,), "results" (B,), "step_ends" [l] (B, T)}``:
    cycles from ``start`` to the result, and when each layer wrote its end-of-timestep
    words."""
    x = np.asarray(x)
    batch, steps, _ = x.shape
    layers = [_Layer(gm) for gm in geoms]
    res = np.zeros(batch, np.int64)
    st = np.zeros(batch, np.int64)
    step_ends = [np.zeros((batch, steps), np.int64) for _ in geoms]
    prev_result = 0
    for b in range(batch):
        s0 = int(starts[b]) if starts is not None else prev_result + 1
        st[b] = s0
        beats = _input_beats(x[b], net.input_bits, geoms[0].static,
                             geoms[0].event_issues())
        arrive = [s0 + FIRST_BEAT] * len(beats)
        for li, (lay, gm) in enumerate(zip(layers, geoms, strict=True)):
            groups, ends = lay.run(beats, arrive, gm.groups + CLEAR_DONE)
            step_ends[li][b] = ends
            if li + 1 < len(layers):
                beats, arrive = _word_beats(np.asarray(spikes[li][b]), gm, geoms[li + 1],
                                            groups, ends)
        res[b] = ends[-1] + net.n_out + RESULT_OVERHEAD
        prev_result = res[b]
    return {"sample_cycles": res - st, "starts": st, "results": res,
            "step_ends": step_ends}


def network_cycles(net, x: np.ndarray, spikes: list, geoms: list[LayerGeometry]
                   ) -> np.ndarray:
    """Per-sample cycles from ``start`` to the result, samples back to back."""
    return schedule(net, x, spikes, geoms)["sample_cycles"]


def contract_issues(geom: LayerGeometry) -> np.ndarray:
    """(layer n_in,) the weight words an event of each contract input index issues."""
    order = geom.in_order()
    out = np.zeros(int(order.max()) + 1 if order.size else 0, np.int64)
    ok = order >= 0
    out[order[ok]] = geom.event_issues()[ok]
    return out


def bandwidth_bound(net, x: np.ndarray, spikes: list, geoms: list[LayerGeometry]
                    ) -> np.ndarray:
    """The weight-memory bandwidth bound per sample (B,), from the events alone: every
    input event reads its weight words once (dense: G; a convolution: its valid kernel
    taps times CG; a static layer's input once per sample), P synaptic operations per
    cycle, plus G update cycles per layer and timestep, summed over the layers."""
    x = np.asarray(x)
    steps = x.shape[1]
    first = x != 0
    if geoms[0].static:
        first[:, 1:] = False
    active = [first] + [np.asarray(s) != 0 for s in spikes[:-1]]
    return sum((a * contract_issues(gm)).sum(axis=(1, 2)) + steps * gm.groups
               for a, gm in zip(active, geoms, strict=True))
