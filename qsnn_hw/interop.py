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
Output``, with convolutions first (``Conv2d -> (LIF | IF)``, optionally max pooling written
as ``SumPool2d -> Threshold``, then a ``Flatten`` before the dense layers;
:data:`qsnn_hw.nirgraph.PATTERN`), becomes a float network, quantized post-training by
the trainer's own export (:func:`qsnn_hw.train.export.deploy`) with the options' widths.
A graph written by :func:`export_nir` carries the integer model in its metadata and is
rebuilt exactly.

Export (:func:`export_nir`): each layer as ``Affine`` (or ``Linear``, or ``Conv2d``) and
``LIF`` (``IF`` for ``beta = 1``; a pooled convolution's OR pooling as ``SumPool2d`` and a
``Threshold`` of 0.5) in membrane units -- weights ``W * 2**frac_bits``, bias and threshold
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
from .contract import RESET_MODES as RESETS
from .contract import REST_MODES, IntLayer, IntNetwork
from .nirgraph import (
    DT,
    InteropError,
    chain,
    float_layers,
    float_network,
    layer_nodes,
    read_graph,
)

META_KEY = "qsnn_hw"
META_FORMAT = 1
__all__ = ["DT", "ImportOptions", "InteropError", "export_nir", "float_layers",
           "from_snntorch", "import_nir", "read_graph", "write_nir"]


# ---- export -------------------------------------------------------------------------

def export_nir(art: Artifact):
    """The artifact as a ``nir.NIRGraph`` (module docstring): exact integers in metadata."""
    from ._extras import need
    nir = need("nir")

    net = art.network
    for i, layer in enumerate(net.layers):
        if layer.is_tawq:
            raise InteropError(f"layer {i} is a TaWQ layer (time-varying ternary weights), "
                               f"which NIR cannot express")
    first = net.layers[0]
    nodes = {"input": nir.Input({"input": np.array(first.in_shape if first.is_conv
                                                   else [net.n_in])})}
    edges, prev = [], "input"

    def link(name, node):
        nonlocal prev
        nodes[name] = node
        edges.append((prev, name))
        prev = name

    for i, layer in enumerate(net.layers):
        w = layer.weight.astype(np.float64) * float(1 << layer.frac_bits)
        fc_meta = {"layer": i, "frac_bits": layer.frac_bits,
                   "unit": "membrane units per input step"}
        if layer.is_conv:
            fc_meta.update(in_shape=list(layer.in_shape), bias=layer.bias is not None)
            bias = (np.zeros(w.shape[0]) if layer.bias is None
                    else layer.bias.astype(np.float64))
            link(f"fc{i}", nir.Conv2d(layer.in_shape[1:], w, layer.stride, layer.padding, 1,
                                      1, bias, metadata=_tag(fc_meta)))
        else:
            if i and net.layers[i - 1].is_conv:       # channel-major, as the contract reads
                link(f"flatten{i}", nir.Flatten({"input": np.array(net.layers[i - 1]
                                                                   .out_shape)}, 0, -1))
            if layer.bias is None:
                link(f"fc{i}", nir.Linear(w, metadata=_tag(fc_meta)))
            else:
                link(f"fc{i}", nir.Affine(w, layer.bias.astype(np.float64),
                                          metadata=_tag(fc_meta)))
        shape = layer.conv_shape if layer.is_conv else (layer.n_out,)
        beta = layer.beta_num / 2.0 ** layer.beta_shift
        lif_meta = _tag({
            "layer": i, "threshold": layer.threshold, "beta_num": layer.beta_num,
            "beta_shift": layer.beta_shift, "reset": layer.reset, "rest": layer.rest,
            "mem_bits": layer.mem_bits,
            "levels": None if layer.levels is None else [int(v) for v in layer.levels],
            "leak": "round half up: (beta_num * u + 2**(beta_shift-1)) >> beta_shift",
            "initial_state": "0; with rest 'level' and quantized states the level "
                             "nearest 0"})
        thr = np.full(shape, float(layer.threshold))
        zeros = np.zeros(shape)
        if beta == 1.0:
            link(f"lif{i}", nir.IF(np.ones(shape), thr, zeros, metadata=lif_meta))
        else:
            tau = np.full(shape, DT / (1.0 - beta))
            link(f"lif{i}", nir.LIF(tau, tau / DT, zeros, thr, zeros, metadata=lif_meta))
        if layer.is_conv and layer.pool > 1:
            # max pooling of spikes = at least one spike in the window: a sum, then a
            # threshold between 0 and 1
            k = np.array([layer.pool, layer.pool])
            link(f"pool{i}", nir.SumPool2d(k, k, np.zeros(2, dtype=np.int64)))
            link(f"or{i}", nir.Threshold(np.full(layer.out_shape, 0.5)))
    last = net.layers[-1]
    link("output", nir.Output({"output": np.array(last.out_shape if last.is_conv
                                                  else [net.n_out])}))
    meta = {META_KEY: json.dumps({
        "format": META_FORMAT, "input_bits": net.input_bits, "dt": DT,
        "config": art.config, "metadata": art.metadata, "layer_info": art.layer_info})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _tag(meta: dict) -> dict:
    return {META_KEY: json.dumps(meta)}


def write_nir(art: Artifact, path) -> Path:
    """:func:`export_nir` written to ``path`` atomically (a temporary file beside it,
    then a rename)."""
    import os
    import tempfile

    from ._extras import need
    nir = need("nir")
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


# ---- import -------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportOptions:
    """How a foreign NIR graph is read and quantized.

    Semantics NIR leaves open (defaults: snnTorch's ``Leaky``): ``dt`` (s), ``reset``
    (the contract's ``subtract``, ``zero`` or ``clear``; snnTorch writes none of them into
    the graph, and its ``reset_mechanism="zero"`` is ``clear``), ``rest`` (the membrane at
    a sample's start: ``zero``, exactly 0 as snnTorch, or ``level``, the level nearest 0).
    The reset is decided by the previous step's spike (snnTorch's ``reset_delay=True``).
    Quantization: ``weight_bits`` / ``weight_scheme`` (per-tensor), ``state_bits``
    (0 = a saturating membrane, else a level table of ``state_family``), ``frac_bits`` /
    ``mem_bits`` (-1 = automatic, as the trainer's export), ``beta_shift``;
    ``input_bits`` (1 = spikes; b > 1: direct values ``k / (2**b - 1)``)."""

    dt: float = DT
    reset: str = "subtract"
    rest: str = "zero"
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
        check_choice("rest", self.rest, REST_MODES)
        check_int("weight_bits", self.weight_bits, 2, 16)
        check_int("state_bits", self.state_bits, 0, 8)
        check_int("frac_bits", self.frac_bits, -1, 32)
        check_int("mem_bits", self.mem_bits, -1, 32)
        check_int("beta_shift", self.beta_shift, 0, 24)
        check_int("input_bits", self.input_bits, 1, 16)


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


def _pair_value(values, name: str) -> int:
    v = np.asarray(values).ravel()
    if v.size == 0 or np.any(v != v[0]):
        raise InteropError(f"node {name!r}: stride and padding must be the same on both "
                           f"axes, got {v.tolist()}")
    return int(v[0])


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
    for ln in layer_nodes(chain(graph)):
        fc_name, fc, nr_name = ln.fc_name, ln.fc, ln.nr_name
        fm, nm = _meta(fc, fc_name), _meta(ln.nr, nr_name)
        w = np.asarray(fc.weight, dtype=np.float64) / float(1 << int(fm["frac_bits"]))
        wi = np.rint(w)
        if not np.array_equal(wi, w):
            raise InteropError(f"node {fc_name!r}: weights are not whole multiples of "
                               f"2**frac_bits: the graph was changed after export")
        bias, conv = None, {}
        if type(fc).__name__ == "Affine" or (ln.is_conv and fm.get("bias")):
            bias = np.rint(np.asarray(fc.bias, dtype=np.float64)).astype(np.int64)
        if ln.is_conv:
            conv = dict(in_shape=tuple(fm.get("in_shape") or ()), pool=ln.pool,
                        stride=_pair_value(fc.stride, fc_name),
                        padding=_pair_value(fc.padding, fc_name))
        levels = None if nm["levels"] is None else np.asarray(nm["levels"], np.int64)
        try:
            layers.append(IntLayer(wi.astype(np.int64), nm["threshold"], nm["beta_num"],
                                   nm["beta_shift"], nm["reset"], bias, fm["frac_bits"],
                                   levels, nm["mem_bits"], nm.get("rest", "level"), **conv))
        except (KeyError, TypeError, ValueError) as exc:
            raise InteropError(f"node {nr_name!r}: {exc}") from None
    net = IntNetwork(tuple(layers), input_bits=int(top["input_bits"]))
    return Artifact(net, top.get("config") or {}, top.get("metadata") or {},
                    top.get("layer_info") or [])


def _quantize(graph, opts: ImportOptions, source: str, dataset: dict) -> Artifact:
    """A foreign graph: float layers -> the trainer's post-training export."""
    from .train.config import LayerConfig, TrainConfig
    from .train.export import deploy
    from .train.model import SNN
    from .train.surrogate import SpikeFunction

    shape, floats = float_network(graph, opts.dt)
    lcs = []
    for w, b, beta, geo in floats:
        conv = {} if geo is None else {k: geo[k] for k in ("kernel", "stride", "padding",
                                                           "pool")}
        lcs.append(LayerConfig(
            w.shape[0], bias=b is not None, beta=beta, threshold=1.0, reset=opts.reset,
            rest=opts.rest,
            weight_mode="ptq", weight_bits=opts.weight_bits,
            weight_scheme=opts.weight_scheme,
            state_mode="ptq" if opts.state_bits else "none",
            state_bits=opts.state_bits or 4, state_family=opts.state_family, **conv))
    fields = dict(layers=tuple(lcs), input_bits=max(opts.input_bits, 1),
                  frac_bits=opts.frac_bits, mem_bits=opts.mem_bits,
                  beta_shift=opts.beta_shift, encoding="direct" if opts.input_bits > 1
                  else "rate")
    fields.update(dataset)
    try:
        cfg = TrainConfig(**fields)
    except (TypeError, ValueError) as exc:
        raise InteropError(str(exc)) from None
    model = SNN(int(np.prod(shape)), lcs, SpikeFunction("atan"),
                beta_shift=opts.beta_shift, dtype=np.float64,
                in_shape=shape if len(shape) == 3 else None)
    for i, (w, b, beta, _) in enumerate(floats):
        model.params[f"layer{i}.weight"] = w
        model.params[f"layer{i}.beta"] = np.asarray(beta)
        if b is not None:
            model.params[f"layer{i}.bias"] = b
    scale = 1.0 / ((1 << opts.input_bits) - 1) if opts.input_bits > 1 else 1.0
    net, infos = deploy(model, cfg, scale, opts.input_bits)
    metadata = {"imported_from": source, "import_options": asdict(opts),
                "semantics": {"dt": opts.dt, "reset": opts.reset, "rest": opts.rest,
                              "reset_delay": True,
                              "threshold": "each neuron's membrane scaled by 1/v_threshold",
                              "input_factor": "dt * r / tau (LIF), r (IF), folded into W"}}
    return Artifact(net, cfg.to_dict() if dataset else {}, metadata, infos)


def from_snntorch(net, n_inputs, options: ImportOptions | None = None, *,
                  dataset: dict | None = None) -> Artifact:
    """An snnTorch ``nn.Sequential`` (``Linear`` / ``Conv2d`` / ``Flatten`` and
    ``init_hidden=True`` ``Leaky`` modules with per-neuron ``beta`` / ``threshold``
    tensors) as an artifact; ``n_inputs``: the input size, or its ``(C, H, W)`` shape for
    a convolutional network. Exported
    with snnTorch's own ``export_to_nir`` (needs torch, snntorch and nirtorch), then
    :func:`import_nir`. ``options`` default to snnTorch's semantics; for a network using
    ``reset_mechanism="zero"`` give ``ImportOptions(reset="clear")`` (the graph does not
    say which reset the network used)."""
    import os
    import tempfile

    from ._extras import need
    nir = need("nir")
    try:
        import torch
        from snntorch.export_nir import export_to_nir
    except ImportError as exc:
        raise InteropError(f"from_snntorch needs torch, snntorch and nirtorch installed "
                           f"({exc}); or export to NIR where they are and use import_nir") \
            from None
    shape = (int(n_inputs),) if np.ndim(n_inputs) == 0 else tuple(int(v) for v in n_inputs)
    graph = export_to_nir(net, torch.zeros(1, *shape), ignore_dims=[0])
    for module in net.modules():          # the export ran a forward pass: reset states
        if hasattr(module, "reset_mem"):
            module.reset_mem()
    fd, tmp = tempfile.mkstemp(suffix=".nir")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        return import_nir(tmp, options, dataset=dataset)
    finally:
        os.unlink(tmp)
