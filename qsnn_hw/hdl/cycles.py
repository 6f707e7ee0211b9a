"""The cycle model of the core (docs/hardware.md, "Cycle model").

One layer, one timestep, input always available::

    cycles = E*G + G + L + 4 + 3*[E > 0]

E input events (spikes; for a direct-input layer E = M, every value is a dense
multiply-accumulate), G = ceil(N/P) groups, L the LIF datapath latency (3 register
stages, plus 1 for the comparator quantizer or n for the pipelined search). The
accumulate phase does P synaptic operations in each of its E*G cycles; the update phase
takes G cycles plus L + 4 (update start, read latency, end-of-timestep word, phase
switch), plus 3 after a timestep with events (the accumulate pipeline's last sums).

A network overlaps its layers: layer l accumulates timestep t while layer l-1 updates
t. :func:`network_cycles` evaluates the schedule with that overlap; per sample add
``N_out + 3`` for the argmax scan (two stages) and the result handshake.
"""

from __future__ import annotations

import numpy as np

from .geometry import LayerGeometry

# Measured on the gateware (tests/test_hdl_cycles.py checks the model against it):
STEP_OVERHEAD = 4          # cycles per timestep beyond E*G + G + L
ACC_DRAIN = 3              # the accumulate pipeline's last sums, when there were events
FORMULA = f"E*G + G + L + {STEP_OVERHEAD} + {ACC_DRAIN}*[E > 0]"
WORD_DELAY = 3             # upstream update issue -> first word usable downstream
EOT_DELAY = 2              # upstream end-of-timestep word -> downstream eot accepted
RESULT_OVERHEAD = 3        # last eot -> argmax scan start, its compare stage, the result


def step_cycles(events, geom: LayerGeometry):
    """Cycles of one layer timestep with ``events`` input events (array-friendly)."""
    events = np.asarray(events)
    return (events * geom.groups + geom.groups + geom.latency + STEP_OVERHEAD
            + ACC_DRAIN * (events > 0))


def network_cycles(events: list, geoms: list[LayerGeometry], *, after_reset: bool = True
                   ) -> np.ndarray:
    """Per-sample cycles from ``start`` to ``done``, samples back to back.

    ``events[l]``: (B, T) input events of layer l per timestep (layer 0: spikes in, or M
    for direct input; layer l > 0: spikes of layer l-1). Returns (B,) cycles.
    """
    batch, steps = np.asarray(events[0]).shape
    total = np.zeros(batch, np.int64)
    for b in range(batch):
        prev_end = None  # end of each timestep of the upstream layer
        prev_upd = None
        for li, geom in enumerate(geoms):
            ev = np.asarray(events[li])[b]
            end, upd = np.zeros(steps, np.int64), np.zeros(steps, np.int64)
            # after reset each engine first zeroes its G accumulator words
            last = geom.groups if (b == 0 and after_reset) else 0
            for t in range(steps):
                tail = geom.groups + geom.latency + STEP_OVERHEAD + ACC_DRAIN * (ev[t] > 0)
                if prev_end is None:
                    acc_end = last + ev[t] * geom.groups
                else:
                    acc_start = max(last, prev_upd[t] + WORD_DELAY)
                    acc_end = max(acc_start + ev[t] * geom.groups, prev_end[t] + EOT_DELAY)
                end[t] = acc_end + tail
                upd[t] = acc_end
                last = end[t]
            prev_end, prev_upd = end, upd
        total[b] = prev_end[-1] + geoms[-1].n_out + RESULT_OVERHEAD
    return total


def layer_events(net, x: np.ndarray, spikes: list) -> list[np.ndarray]:
    """Input events per layer and timestep, (B, T) each, from inputs and golden spikes."""
    first = np.count_nonzero(x, axis=2) if net.input_bits == 1 else \
        np.full(x.shape[:2], net.n_in, np.int64)
    return [first] + [s.sum(axis=2, dtype=np.int64) for s in spikes[:-1]]
