"""Reading NIR graphs into float layers: the part of :mod:`qsnn_hw.interop` the trainer
needs (``qsnn-hw train --init``), kept free of the trainer's imports. The discrete-time
meaning of the nodes is in :mod:`qsnn_hw.interop`'s docstring and docs/interop.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DT = 1e-4                     # snnTorch's export_nir time step
SUPPORTED = ("Input", "Linear", "Affine", "LIF", "IF", "Output")


class InteropError(ValueError):
    """A NIR graph that cannot become (or come from) a qsnn-hw network; the message
    names the node, its kind or the parameter, and what is supported."""


def read_graph(path):
    """``nir.read`` with one clear error for a missing, damaged or foreign file."""
    from ._extras import need
    nir = need("nir")
    path = Path(path)
    if not path.is_file():
        raise InteropError(f"{path}: no such file")
    try:   # shapes are checked here, layer by layer, with messages naming the node
        return nir.read(path, type_check=False)
    except Exception as exc:   # h5py and nir raise many kinds; all mean "not a NIR file"
        raise InteropError(f"{path}: not a readable NIR file ({type(exc).__name__}: "
                           f"{exc}); give a .nir file written by nir.write") from None


def chain(graph) -> list[tuple[str, object]]:
    """The graph's nodes in order, for a simple chain from one Input to one Output."""
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED:
            raise InteropError(f"node {name!r} is a {kind}: not supported; qsnn-hw runs "
                               f"chains of {', '.join(SUPPORTED)} (dense LIF layers)")
    succ: dict = {}
    pred: dict = {}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise InteropError(f"edge {a!r} -> {b!r} names a node the graph does not have")
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    inputs = [n for n, node in nodes.items() if type(node).__name__ == "Input"]
    if len(inputs) != 1:
        raise InteropError(f"the graph has {len(inputs)} Input nodes; qsnn-hw needs one")
    order, seen, cur = [], set(), inputs[0]
    while True:
        seen.add(cur)
        order.append((cur, nodes[cur]))
        nxt = succ.get(cur, [])
        if type(nodes[cur]).__name__ == "Output":
            if nxt:
                raise InteropError(f"Output node {cur!r} has outgoing edges")
            break
        if len(nxt) != 1:
            raise InteropError(f"node {cur!r} feeds {len(nxt)} nodes; qsnn-hw runs chains "
                               f"(each node feeding exactly one)")
        # every node on the chain has one input, so the walk never comes back to one:
        # recurrence (a cycle) shows up here as a node with two inputs
        if len(pred.get(nxt[0], [])) != 1:
            raise InteropError(f"node {nxt[0]!r} has {len(pred[nxt[0]])} inputs (a merge, "
                               f"a skip connection or recurrence): not supported; qsnn-hw "
                               f"runs feed-forward chains")
        cur = nxt[0]
    if len(seen) != len(nodes):
        rest = sorted(set(nodes) - seen)
        raise InteropError(f"nodes {rest} are not on the path from the Input to the Output")
    return order


def layer_pairs(order) -> list[tuple[str, object, str, object]]:
    """``(fc name, fc node, neuron name, neuron node)`` per layer; checks the pattern."""
    body = order[1:-1]
    kinds = [type(node).__name__ for _, node in body]
    if not body or len(body) % 2 or any(
            k not in ("Linear", "Affine") for k in kinds[0::2]) or any(
            k not in ("LIF", "IF") for k in kinds[1::2]):
        raise InteropError(f"the chain is {' -> '.join(['Input', *kinds, 'Output'])}; "
                           f"qsnn-hw needs Input -> (Linear|Affine -> LIF|IF) x L -> Output")
    return [(body[k][0], body[k][1], body[k + 1][0], body[k + 1][1])
            for k in range(0, len(body), 2)]


def input_size(order) -> int:
    shape = np.asarray(order[0][1].input_type["input"]).ravel()
    return int(np.prod(shape)) if shape.size else 0


def _uniform(name: str, node_name: str, values, what: str) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise InteropError(f"node {node_name!r}: {name} must be finite numbers, got {v}")
    if np.ptp(v) > 1e-9 * max(1.0, float(np.max(np.abs(v)))):
        raise InteropError(f"node {node_name!r}: {name} differs between neurons "
                           f"({v.min():g} .. {v.max():g}); {what}")
    return float(v[0])


def float_layer(fc_name, fc, nr_name, nr, n_in: int, dt: float):
    """``(W, b or None, beta, theta)`` of one layer in float, the neuron's input factor and
    per-neuron thresholds folded into ``W`` and ``b`` (exact in float: the membrane of
    neuron n is scaled by 1 / theta_n, which leaves every spike unchanged)."""
    w = np.asarray(fc.weight, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != n_in:
        raise InteropError(f"node {fc_name!r}: weight shape {w.shape} does not take "
                           f"{n_in} inputs")
    b = np.asarray(fc.bias, dtype=np.float64) if type(fc).__name__ == "Affine" else None
    n = w.shape[0]
    kind = type(nr).__name__
    thr = np.asarray(nr.v_threshold, dtype=np.float64).ravel()
    r = np.asarray(nr.r, dtype=np.float64).ravel()
    if thr.size != n or r.size != n:
        raise InteropError(f"node {nr_name!r}: {thr.size} neurons after {fc_name!r}'s {n}")
    if np.any(np.asarray(nr.v_reset) != 0):
        raise InteropError(f"node {nr_name!r}: v_reset must be 0 (the contract resets to "
                           f"0 or subtracts the threshold), got {np.asarray(nr.v_reset)}")
    if kind == "LIF":
        if np.any(np.asarray(nr.v_leak) != 0):
            raise InteropError(f"node {nr_name!r}: v_leak must be 0 (the contract leaks "
                               f"towards 0), got {np.asarray(nr.v_leak)}")
        tau = np.asarray(nr.tau, dtype=np.float64).ravel()
        if np.any(tau < dt):
            raise InteropError(f"node {nr_name!r}: tau {tau.min():g} is below dt {dt:g}: "
                               f"beta = 1 - dt/tau would be <= 0; give the right --dt")
        beta = 1.0 - dt / _uniform("tau", nr_name, tau, "the contract has one leak per "
                                   "layer (beta = 1 - dt/tau)")
        gain = dt * r / tau
    else:                                            # IF: no leak, v += r * I
        beta, gain = 1.0, r
    if np.any(thr <= 0):
        raise InteropError(f"node {nr_name!r}: v_threshold must be > 0, got {thr.min():g}")
    scale = gain / thr                    # membrane in units of each neuron's threshold
    w = w * scale[:, None]
    if b is not None:
        b = b * scale
    return w, b, beta, 1.0


def float_layers(path, dt: float = DT) -> tuple[int, list]:
    """A foreign graph's float network: ``(n_in, [(W, b or None, beta), ...])`` with
    every threshold 1 (thresholds and the neurons' input factor folded into W and b, see
    :func:`float_layer`). What ``qsnn-hw train --init`` starts from."""
    order = chain(read_graph(path))
    n_in = input_size(order)
    layers, m = [], n_in
    for fc_name, fc, nr_name, nr in layer_pairs(order):
        w, b, beta, _ = float_layer(fc_name, fc, nr_name, nr, m, dt)
        layers.append((w, b, beta))
        m = w.shape[0]
    return n_in, layers
