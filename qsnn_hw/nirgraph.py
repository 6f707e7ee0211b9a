"""Reading NIR graphs into float layers: the part of :mod:`qsnn_hw.interop` the trainer
needs (``qsnn-hw train --init``), kept free of the trainer's imports. The discrete-time
meaning of the nodes is in :mod:`qsnn_hw.interop`'s docstring and docs/interop.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DT = 1e-4                     # snnTorch's export_nir time step
SUPPORTED = ("Input", "Linear", "Affine", "Conv2d", "LIF", "IF", "SumPool2d", "Threshold",
             "Flatten", "Output")


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
                               f"chains of {', '.join(SUPPORTED)} (dense and convolutional LIF "
                               f"layers)")
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


@dataclass(frozen=True)
class LayerNodes:
    """One layer of a chain: its synapses (``Linear``, ``Affine`` or ``Conv2d``), its
    neurons (``LIF`` or ``IF``) and, after a convolution's neurons, an optional OR
    pooling of their spikes (``SumPool2d`` of a K x K window, stride K, then a
    ``Threshold`` in (0, 1): at least one spike in the window; ``pool`` = K)."""

    fc_name: str
    fc: object
    nr_name: str
    nr: object
    pool: int = 1

    @property
    def is_conv(self) -> bool:
        return type(self.fc).__name__ == "Conv2d"


PATTERN = ("Input -> (Conv2d -> LIF|IF [-> SumPool2d -> Threshold]) x L1 [-> Flatten] -> "
           "(Linear|Affine -> LIF|IF) x L2 -> Output")


def _pair(values, name: str, node_name: str) -> tuple[int, int]:
    v = np.asarray(values).ravel()
    if v.size == 1:
        v = np.repeat(v, 2)
    if v.size != 2:
        raise InteropError(f"node {node_name!r}: {name} must be one or two numbers, got "
                           f"{np.asarray(values).tolist()}")
    return int(v[0]), int(v[1])


def _or_pool(pool_name: str, pool, thr_name: str, thr) -> int:
    """K of a ``SumPool2d`` + ``Threshold`` pair that is an OR of K x K spike windows."""
    kh, kw = _pair(pool.kernel_size, "kernel_size", pool_name)
    stride = _pair(pool.stride, "stride", pool_name)
    pad = _pair(pool.padding, "padding", pool_name)
    if kh != kw or stride != (kh, kh) or pad != (0, 0) or kh < 2:
        raise InteropError(f"node {pool_name!r}: pooling must be K x K windows with stride K "
                           f"and no padding, K >= 2 (max pooling of spikes), got kernel "
                           f"{(kh, kw)}, stride {stride}, padding {pad}")
    if type(thr).__name__ != "Threshold":
        raise InteropError(f"node {pool_name!r} (SumPool2d) must be followed by a Threshold "
                           f"in (0, 1) (an OR of the window's spikes), not by a "
                           f"{type(thr).__name__}")
    t = np.asarray(thr.threshold, dtype=np.float64).ravel()
    if t.size == 0 or np.any(t <= 0) or np.any(t >= 1):
        raise InteropError(f"node {thr_name!r}: after a SumPool2d of spikes the Threshold "
                           f"must be in (0, 1), so that one spike in the window fires "
                           f"(max pooling); got {t.min():g} .. {t.max():g}")
    return kh


def _flatten(name: str, node) -> None:
    """A ``Flatten`` of a whole (C, H, W) sample, in NIR's dimensions (no batch axis)."""
    start, end = int(node.start_dim), int(node.end_dim)
    if start != 0 or end not in (-1, 2):
        raise InteropError(f"node {name!r}: Flatten must flatten the whole (C, H, W) "
                           f"output (start_dim 0, end_dim -1), got start_dim {start}, "
                           f"end_dim {end}")


def layer_nodes(order) -> list[LayerNodes]:
    """The layers of a chain (:func:`chain`), checked against :data:`PATTERN`."""
    body = order[1:-1]
    kinds = [type(node).__name__ for _, node in body]

    def bad(why: str):
        return InteropError(f"the chain is {' -> '.join(['Input', *kinds, 'Output'])}: "
                            f"{why}; qsnn-hw runs {PATTERN}")

    layers: list[LayerNodes] = []
    flat = False
    i = 0
    while i < len(body):
        name, node = body[i]
        kind = kinds[i]
        if kind == "Flatten":
            if not layers or not layers[-1].is_conv or flat:
                raise bad(f"Flatten {name!r} must follow a convolutional layer, once")
            _flatten(name, node)
            flat = True
            i += 1
            continue
        if kind not in ("Linear", "Affine", "Conv2d"):
            raise bad(f"{kind} {name!r} where synapses (Linear, Affine, Conv2d) belong")
        if kind == "Conv2d" and layers and not layers[-1].is_conv:
            raise bad(f"convolution {name!r} after a dense layer")
        if i + 1 >= len(body) or kinds[i + 1] not in ("LIF", "IF"):
            raise bad(f"{kind} {name!r} must be followed by LIF or IF neurons")
        pool = 1
        nxt = i + 2
        if kind == "Conv2d" and nxt < len(body) and kinds[nxt] == "SumPool2d":
            if nxt + 1 >= len(body):
                raise bad(f"SumPool2d {body[nxt][0]!r} must be followed by a Threshold")
            pool = _or_pool(*body[nxt], *body[nxt + 1])
            nxt += 2
        layers.append(LayerNodes(name, node, *body[i + 1], pool))
        i = nxt
    if not layers:
        raise bad("no layer")
    return layers


def input_shape(order) -> tuple[int, ...]:
    """The Input node's shape: ``(M,)``, or ``(C, H, W)`` for images (``(H, W)`` is read
    as one channel)."""
    shape = tuple(int(v) for v in np.asarray(order[0][1].input_type["input"]).ravel())
    if len(shape) == 2:
        shape = (1, *shape)
    if not shape or len(shape) not in (1, 3) or min(shape) < 1:
        raise InteropError(f"the Input node's shape must be (M,) or (C, H, W), got {shape}")
    return shape


def input_size(order) -> int:
    return int(np.prod(input_shape(order)))


def _uniform(name: str, node_name: str, values, what: str) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise InteropError(f"node {node_name!r}: {name} must be finite numbers, got {v}")
    if np.ptp(v) > 1e-9 * max(1.0, float(np.max(np.abs(v)))):
        raise InteropError(f"node {node_name!r}: {name} differs between neurons "
                           f"({v.min():g} .. {v.max():g}); {what}")
    return float(v[0])


def _per_channel(name: str, node_name: str, values, shape: tuple) -> np.ndarray:
    """A neuron parameter given once, per channel or per neuron of ``shape`` ((N,) or
    (C, H, W)), as one value per channel (per neuron for a dense layer); a convolution's
    neurons share their channel's kernel, so their values must agree within a channel."""
    v = np.asarray(values, dtype=np.float64).ravel()
    c, n = shape[0], int(np.prod(shape))
    if v.size == 1:
        return np.full(c, v[0])
    if v.size == c:
        return v
    if v.size != n:
        raise InteropError(f"node {node_name!r}: {v.size} values of {name} for "
                           f"{'x'.join(map(str, shape))} neurons (give 1, {c} or {n})")
    per = v.reshape(c, -1)
    if np.any(np.ptp(per, axis=1) > 1e-9 * np.maximum(1.0, np.max(np.abs(per), axis=1))):
        raise InteropError(f"node {node_name!r}: {name} differs within a channel; the "
                           f"neurons of a convolution share their channel's kernel, so "
                           f"{name} may vary per channel only")
    return per[:, 0]


def _conv_geometry(name: str, fc, in_shape) -> dict:
    """``{kernel, stride, padding, out}`` of a ``Conv2d`` node on ``in_shape`` (C, H, W),
    within what the contract and the trainer run."""
    w = np.asarray(fc.weight)
    if in_shape is None or len(in_shape) != 3:
        raise InteropError(f"node {name!r}: a convolution needs a (C, H, W) input; it reads "
                           f"{in_shape}")
    if w.ndim != 4 or w.shape[1] != in_shape[0]:
        raise InteropError(f"node {name!r}: weight shape {w.shape} does not take "
                           f"{in_shape[0]} input channels")
    k = w.shape[2]
    if w.shape[3] != k:
        raise InteropError(f"node {name!r}: kernel {w.shape[2]}x{w.shape[3]}: qsnn-hw "
                           f"builds square kernels")
    if int(fc.groups) != 1 or _pair(fc.dilation, "dilation", name) != (1, 1):
        raise InteropError(f"node {name!r}: groups {fc.groups} and dilation "
                           f"{np.asarray(fc.dilation).tolist()}: only groups 1 and "
                           f"dilation 1 are supported")
    sh, sw = _pair(fc.stride, "stride", name)
    if sh != sw or sh not in (1, 2):
        raise InteropError(f"node {name!r}: stride ({sh}, {sw}); qsnn-hw runs stride 1 or "
                           f"2, the same on both axes")
    pad = fc.padding
    if isinstance(pad, str):
        if pad == "same" and (sh != 1 or k % 2 == 0):
            raise InteropError(f"node {name!r}: padding 'same' needs stride 1 and an odd "
                               f"kernel here; give the padding as a number")
        pad = 0 if pad == "valid" else (k - 1) // 2
    ph, pw = _pair(pad, "padding", name)
    if ph != pw or not 0 <= ph < k:
        raise InteropError(f"node {name!r}: padding ({ph}, {pw}); qsnn-hw pads the same on "
                           f"both axes, less than the kernel ({k})")
    _, h, wd = in_shape
    if h + 2 * ph < k or wd + 2 * ph < k:
        raise InteropError(f"node {name!r}: kernel {k} does not fit the input {in_shape} "
                           f"with padding {ph}")
    out = (w.shape[0], (h + 2 * ph - k) // sh + 1, (wd + 2 * ph - k) // sh + 1)
    return dict(kernel=k, stride=sh, padding=ph, out=out)


def float_layer(layer: LayerNodes, in_shape: tuple, dt: float):
    """``(W, b or None, beta, geometry)`` of one layer in float, the neuron's input factor
    and thresholds folded into ``W`` and ``b`` (exact in float: the membrane of neuron n
    is scaled by 1 / theta_n, which leaves every spike unchanged; a convolution's
    thresholds may differ per channel only). ``in_shape``: the layer's input, ``(M,)`` or
    ``(C, H, W)``. ``geometry``: None for a dense layer, else ``{kernel, stride,
    padding, pool, in_shape, out}`` (``out``: the output spikes' (C, H, W) after pooling)."""
    fc_name, fc, nr_name, nr = layer.fc_name, layer.fc, layer.nr_name, layer.nr
    w = np.asarray(fc.weight, dtype=np.float64)
    geo = None
    if layer.is_conv:
        geo = _conv_geometry(fc_name, fc, in_shape)
        shape = geo["out"]
        c, ho, wo = shape
        geo.update(pool=layer.pool, in_shape=tuple(in_shape),
                   out=(c, ho // layer.pool, wo // layer.pool))
        if layer.pool > min(ho, wo):
            raise InteropError(f"node {layer.fc_name!r}: pooling {layer.pool} x "
                               f"{layer.pool} is larger than its {ho} x {wo} output")
        b = np.asarray(fc.bias, dtype=np.float64).ravel()
        if b.size != c:
            raise InteropError(f"node {fc_name!r}: bias has {b.size} values for {c} "
                               f"channels")
        if not np.any(b):                 # snnTorch's exporter writes zeros for no bias
            b = None
    else:
        n_in = int(np.prod(in_shape))
        if w.ndim != 2 or w.shape[1] != n_in:
            raise InteropError(f"node {fc_name!r}: weight shape {w.shape} does not take "
                               f"{n_in} inputs")
        shape = (w.shape[0],)
        b = np.asarray(fc.bias, dtype=np.float64) if type(fc).__name__ == "Affine" else None
    kind = type(nr).__name__
    thr = _per_channel("v_threshold", nr_name, nr.v_threshold, shape)
    r = _per_channel("r", nr_name, nr.r, shape)
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
        tau = _uniform("tau", nr_name, tau, "the contract has one leak per layer "
                       "(beta = 1 - dt/tau)")
        beta = 1.0 - dt / tau
        gain = dt * r / tau
    else:                                            # IF: no leak, v += r * I
        beta, gain = 1.0, r
    if np.any(thr <= 0):
        raise InteropError(f"node {nr_name!r}: v_threshold must be > 0, got {thr.min():g}")
    scale = gain / thr                    # membrane in units of each neuron's threshold
    w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    if b is not None:
        b = b * scale
    return w, b, beta, geo


def float_network(graph, dt: float = DT):
    """``(input shape, [(W, b or None, beta, geometry), ...])`` of a foreign graph, every
    threshold 1 (:func:`float_layer`)."""
    order = chain(graph)
    shape = input_shape(order)
    layers = []
    for layer in layer_nodes(order):
        w, b, beta, geo = float_layer(layer, shape, dt)
        layers.append((w, b, beta, geo))
        shape = geo["out"] if geo is not None else (w.shape[0],)
    return input_shape(order), layers


def float_layers(path, dt: float = DT) -> tuple[int, list]:
    """A foreign graph's float network: ``(n_in, [(W, b or None, beta, geometry), ...])``
    with every threshold 1 (:func:`float_layer`; ``geometry`` None for a dense layer).
    What ``qsnn-hw train --init`` starts from."""
    shape, layers = float_network(read_graph(path), dt)
    return int(np.prod(shape)), layers
