"""NIR in and out: networks from snnTorch (and any tool that writes NIR) become qsnn-hw
artifacts, and artifacts become NIR graphs that carry their quantization.

NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) describes continuous-time
neurons; the discrete-time meaning used here is snnTorch's (``snntorch.export_nir``): a
``LIF(tau, r, v_leak, v_threshold, v_reset)`` stepped every ``dt`` is

    v[t] = beta * v[t-1] + (dt * r / tau) * I[t] - theta * z[t-1],   beta = 1 - dt / tau

(snnTorch writes ``tau = dt / (1 - beta)`` and ``r = tau / dt``, so the input factor
``dt * r / tau`` is 1, with ``dt = 1e-4``). ``IF(r, v_threshold, v_reset)`` is the same
with ``beta = 1``. What NIR leaves open -- ``dt``, the reset mechanism, the reset delay --
is an :class:`ImportOptions` field with snnTorch's defaults. docs/interop.md has the
mapping table.

Import (:func:`import_nir`): a chain ``Input -> (Linear | Affine) -> (LIF | IF) -> ... ->
Output`` becomes a float network, quantized post-training by the trainer's own export
(:func:`qsnn_hw.train.export.deploy`) with the options' widths. A graph written by
:func:`export_nir` carries the integer model in its metadata and is rebuilt exactly.

Export (:func:`export_nir`): each layer as ``Affine`` (or ``Linear``) and ``LIF`` (``IF``
for ``beta = 1``) in membrane units -- weights ``W * 2**frac_bits``, bias and threshold
as the integers, input in whole input steps -- so a float NIR consumer runs the integer
model up to the leak's rounding and the state quantizer, which, with every other integer
of the contract, are in the node metadata (key ``qsnn_hw``, a JSON string).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .artifact import Artifact
from .contract import IntLayer, IntNetwork

DT = 1e-4                     # snnTorch's export_nir time step
META_KEY = "qsnn_hw"
META_FORMAT = 1
RESETS = ("subtract", "zero")
SUPPORTED = ("Input", "Linear", "Affine", "LIF", "IF", "Output")


class InteropError(ValueError):
    """A NIR graph that cannot become (or come from) a qsnn-hw network; the message
    names the node, its kind or the parameter, and what is supported."""


# ---- export -------------------------------------------------------------------------

def export_nir(art: Artifact):
    """The artifact as a ``nir.NIRGraph`` (module docstring): exact integers in metadata."""
    import nir

    net = art.network
    nodes = {"input": nir.Input({"input": np.array([net.n_in])})}
    edges, prev = [], "input"
    for i, layer in enumerate(net.layers):
        w = layer.weight.astype(np.float64) * float(1 << layer.frac_bits)
        fc_meta = {META_KEY: json.dumps({"layer": i, "frac_bits": layer.frac_bits,
                                         "unit": "membrane units per input step"})}
        if layer.bias is None:
            nodes[f"fc{i}"] = nir.Linear(w, metadata=fc_meta)
        else:
            nodes[f"fc{i}"] = nir.Affine(w, layer.bias.astype(np.float64), metadata=fc_meta)
        n = layer.n_out
        beta = layer.beta_num / 2.0 ** layer.beta_shift
        lif_meta = {META_KEY: json.dumps({
            "layer": i, "threshold": layer.threshold, "beta_num": layer.beta_num,
            "beta_shift": layer.beta_shift, "reset": layer.reset, "mem_bits": layer.mem_bits,
            "levels": None if layer.levels is None else [int(v) for v in layer.levels],
            "leak": "round half up: (beta_num * u + 2**(beta_shift-1)) >> beta_shift",
            "initial_state": "0, or the level nearest 0 when states are quantized"})}
        thr = np.full(n, float(layer.threshold))
        if beta == 1.0:
            nodes[f"lif{i}"] = nir.IF(np.ones(n), thr, np.zeros(n), metadata=lif_meta)
        else:
            tau = np.full(n, DT / (1.0 - beta))
            nodes[f"lif{i}"] = nir.LIF(tau, tau / DT, np.zeros(n), thr, np.zeros(n),
                                       metadata=lif_meta)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output({"output": np.array([net.n_out])})
    edges.append((prev, "output"))
    meta = {META_KEY: json.dumps({
        "format": META_FORMAT, "input_bits": net.input_bits, "dt": DT,
        "config": art.config, "metadata": art.metadata, "layer_info": art.layer_info})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(art: Artifact, path) -> Path:
    """:func:`export_nir` written to ``path`` atomically (a temporary file beside it,
    then a rename)."""
    import os
    import tempfile

    import nir
    path = Path(path)
    graph = export_nir(art)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)      # as a plain open() would (mkstemp gives 0600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# ---- reading a graph ----------------------------------------------------------------

def read_graph(path):
    """``nir.read`` with one clear error for a missing, damaged or foreign file."""
    import nir
    path = Path(path)
    if not path.is_file():
        raise InteropError(f"{path}: no such file")
    try:   # shapes are checked here, layer by layer, with messages naming the node
        return nir.read(path, type_check=False)
    except Exception as exc:   # h5py and nir raise many kinds; all mean "not a NIR file"
        raise InteropError(f"{path}: not a readable NIR file ({type(exc).__name__}: "
                           f"{exc}); give a .nir file written by nir.write") from None


def _chain(graph) -> list[tuple[str, object]]:
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


def _pairs(order) -> list[tuple[str, object, str, object]]:
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


def _n_in(order) -> int:
    shape = np.asarray(order[0][1].input_type["input"]).ravel()
    return int(np.prod(shape)) if shape.size else 0


# ---- import -------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportOptions:
    """How a foreign NIR graph is read and quantized.

    Semantics NIR leaves open (defaults: snnTorch's ``Leaky``): ``dt`` (s), ``reset``
    (``subtract`` or ``zero``; snnTorch writes neither into the graph). The reset is
    decided by the previous step's spike (snnTorch's default ``reset_delay=True``).
    Quantization: ``weight_bits`` / ``weight_scheme`` (per-tensor), ``state_bits``
    (0 = a saturating membrane, else a level table of ``state_family``), ``frac_bits`` /
    ``mem_bits`` (-1 = automatic, as the trainer's export), ``beta_shift``;
    ``input_bits`` (1 = spikes; b > 1: direct values ``k / (2**b - 1)``)."""

    dt: float = DT
    reset: str = "subtract"
    weight_bits: int = 16
    weight_scheme: str = "symmetric"
    state_bits: int = 0
    state_family: str = "exponential"
    frac_bits: int = -1
    mem_bits: int = -1
    beta_shift: int = 12
    input_bits: int = 1

    def __post_init__(self):
        from ._check import check_choice, check_float, check_int
        check_float("dt", self.dt, 0.0, None, lo_open=True)
        check_choice("reset", self.reset, RESETS)
        check_int("weight_bits", self.weight_bits, 2, 16)
        check_int("state_bits", self.state_bits, 0, 8)
        check_int("frac_bits", self.frac_bits, -1, 32)
        check_int("mem_bits", self.mem_bits, -1, 32)
        check_int("beta_shift", self.beta_shift, 0, 24)
        check_int("input_bits", self.input_bits, 1, 16)


def _uniform(name: str, node_name: str, values, what: str) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise InteropError(f"node {node_name!r}: {name} must be finite numbers, got {v}")
    if np.ptp(v) > 1e-9 * max(1.0, float(np.max(np.abs(v)))):
        raise InteropError(f"node {node_name!r}: {name} differs between neurons "
                           f"({v.min():g} .. {v.max():g}); {what}")
    return float(v[0])


def _float_layer(fc_name, fc, nr_name, nr, n_in: int, dt: float):
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


def import_nir(path, options: ImportOptions | None = None, *, dataset: dict | None = None
               ) -> Artifact:
    """The artifact of the NIR graph at ``path``. A qsnn-hw graph is rebuilt exactly;
    any other is quantized post-training with ``options``. ``dataset``: TrainConfig
    fields (dataset, timesteps, encoding, ...) to record, so that ``verify`` and ``flow``
    know the data the network runs on."""
    graph = read_graph(path)
    meta = graph.metadata.get(META_KEY) if isinstance(graph.metadata, dict) else None
    if meta is not None:
        return _rebuild(graph, meta)
    return _quantize(graph, options or ImportOptions(), str(path), dataset or {})


def _meta(node, name: str) -> dict:
    try:
        return json.loads(str(node.metadata[META_KEY]))
    except (KeyError, TypeError, ValueError):
        raise InteropError(f"node {name!r} of a qsnn-hw graph has no readable "
                           f"{META_KEY!r} metadata") from None


def _rebuild(graph, meta) -> Artifact:
    """The exact artifact of a graph written by :func:`export_nir`."""
    try:
        top = json.loads(str(meta))
    except ValueError:
        raise InteropError(f"the graph's {META_KEY!r} metadata is not JSON") from None
    if top.get("format") != META_FORMAT:
        raise InteropError(f"the graph's {META_KEY!r} metadata has format "
                           f"{top.get('format')!r}; this qsnn-hw reads {META_FORMAT}")
    layers = []
    for fc_name, fc, nr_name, nr in _pairs(_chain(graph)):
        fm, nm = _meta(fc, fc_name), _meta(nr, nr_name)
        w = np.asarray(fc.weight, dtype=np.float64) / float(1 << int(fm["frac_bits"]))
        wi = np.rint(w)
        if not np.array_equal(wi, w):
            raise InteropError(f"node {fc_name!r}: weights are not whole multiples of "
                               f"2**frac_bits: the graph was changed after export")
        bias = None
        if type(fc).__name__ == "Affine":
            bias = np.rint(np.asarray(fc.bias, dtype=np.float64)).astype(np.int64)
        levels = None if nm["levels"] is None else np.asarray(nm["levels"], np.int64)
        try:
            layers.append(IntLayer(wi.astype(np.int64), nm["threshold"], nm["beta_num"],
                                   nm["beta_shift"], nm["reset"], bias, fm["frac_bits"],
                                   levels, nm["mem_bits"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InteropError(f"node {nr_name!r}: {exc}") from None
    net = IntNetwork(tuple(layers), input_bits=int(top["input_bits"]))
    return Artifact(net, top.get("config") or {}, top.get("metadata") or {},
                    top.get("layer_info") or [])


def float_layers(path, dt: float = DT) -> tuple[int, list]:
    """A foreign graph's float network: ``(n_in, [(W, b or None, beta), ...])`` with
    every threshold 1 (thresholds and the neurons' input factor folded into W and b, see
    :func:`_float_layer`). What ``qsnn-hw train --init`` starts from."""
    order = _chain(read_graph(path))
    n_in = _n_in(order)
    layers, m = [], n_in
    for fc_name, fc, nr_name, nr in _pairs(order):
        w, b, beta, _ = _float_layer(fc_name, fc, nr_name, nr, m, dt)
        layers.append((w, b, beta))
        m = w.shape[0]
    return n_in, layers


def _quantize(graph, opts: ImportOptions, source: str, dataset: dict) -> Artifact:
    """A foreign graph: float layers -> the trainer's post-training export."""
    from .train.config import LayerConfig, TrainConfig
    from .train.export import deploy
    from .train.model import SNN
    from .train.surrogate import SpikeFunction

    order = _chain(graph)
    n_in = _n_in(order)
    floats, lcs = [], []
    m = n_in
    for fc_name, fc, nr_name, nr in _pairs(order):
        w, b, beta, theta = _float_layer(fc_name, fc, nr_name, nr, m, opts.dt)
        floats.append((w, b, beta))
        lcs.append(LayerConfig(
            w.shape[0], bias=b is not None, beta=beta, threshold=theta, reset=opts.reset,
            weight_mode="ptq", weight_bits=opts.weight_bits,
            weight_scheme=opts.weight_scheme,
            state_mode="ptq" if opts.state_bits else "none",
            state_bits=opts.state_bits or 4, state_family=opts.state_family))
        m = w.shape[0]
    fields = dict(layers=tuple(lcs), input_bits=max(opts.input_bits, 1),
                  frac_bits=opts.frac_bits, mem_bits=opts.mem_bits,
                  beta_shift=opts.beta_shift, encoding="direct" if opts.input_bits > 1
                  else "rate")
    fields.update(dataset)
    try:
        cfg = TrainConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise InteropError(str(exc)) from None
    model = SNN(n_in, lcs, SpikeFunction("atan"), beta_shift=opts.beta_shift,
                dtype=np.float64)
    for i, (w, b, beta) in enumerate(floats):
        model.params[f"layer{i}.weight"] = w
        model.params[f"layer{i}.beta"] = np.asarray(beta)
        if b is not None:
            model.params[f"layer{i}.bias"] = b
    scale = 1.0 / ((1 << opts.input_bits) - 1) if opts.input_bits > 1 else 1.0
    net, infos = deploy(model, cfg, scale, opts.input_bits)
    metadata = {"imported_from": source, "import_options": asdict(opts),
                "semantics": {"dt": opts.dt, "reset": opts.reset, "reset_delay": True,
                              "threshold": "each neuron's membrane scaled by 1/v_threshold",
                              "input_factor": "dt * r / tau (LIF), r (IF), folded into W"}}
    return Artifact(net, cfg.to_dict() if dataset else {}, metadata, infos)
