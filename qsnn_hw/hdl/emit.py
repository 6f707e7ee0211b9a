"""Verilog emission: one IntNetwork -> one Verilog file (memories initialized from the
weights, biases and level tables) plus a JSON manifest (parameters, ports, stream
formats, memory bits per component, cycle model). Same network and options -> the same
bytes: no source locations, no timestamps, sorted JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from .. import __version__
from .._io import atomic_write_text
from ..contract import IntNetwork
from . import cycles
from .config import CoreConfig
from .top import NetworkTop

MANIFEST_VERSION = 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be a Verilog identifier (letters, digits, _; not starting "
                         f"with a digit; at most 64 characters), got {name!r}")
    return name


def _layout_fields(layout) -> dict:
    return {name: {"offset": f.offset, "width": f.width} for name, f in layout}


def _conv_entry(layer, g) -> dict:
    """A convolutional layer's shape and hardware order (docs/hardware.md, "Convolution
    engine"); ``neurons`` above counts its output spikes (after pooling)."""
    return {"in_shape": list(layer.in_shape), "kernel": list(layer.kernel),
            "stride": layer.stride, "padding": layer.padding, "pool": layer.pool,
            "channels": layer.channels, "conv_shape": list(layer.conv_shape),
            "out_shape": list(layer.out_shape), "states": layer.n_neurons,
            "channel_groups": g.channel_groups, "out_groups": g.out_groups,
            "weight_depth": g.weight_depth,
            "order": "group (y*W + x)*CG + cg, lane p = channel cg*P + p"}


def _tawq_entry(layer, g) -> dict:
    """A TaWQ layer's codes, table and multipliers (docs/hardware.md, "TaWQ layers");
    ``widths.weight`` above is then the code width, ``widths.accumulator`` the ternary
    sums'."""
    return {"timesteps": g.tawq_steps, "codes": g.tawq_codes, "code_bits": g.weight_width,
            "mult_bits": g.mult_width, "mult_rows": g.mult_steps,
            "shift": layer.tawq_shift}


def manifest(top: NetworkTop, name: str) -> dict:
    """The JSON-able description of a generated core (see docs/hardware.md)."""
    net = top.net
    layers = []
    for i, (layer, e) in enumerate(zip(net.layers, top.engines, strict=True)):
        g = e.geometry
        layers.append({
            "index": i, "neurons": layer.n_out, "inputs": layer.n_in, "lanes": g.lanes,
            "groups": g.groups, "input_kind": e.input_kind, "input_bits": g.input_bits,
            "reset": layer.reset, "threshold": layer.threshold,
            "beta_num": layer.beta_num, "beta_shift": layer.beta_shift,
            "frac_bits": layer.frac_bits, "bias": layer.bias is not None,
            "state": ({"kind": "code", "bits": layer.state_bits,
                       "threshold_code": layer.threshold_code, "rest_code": layer.rest_code}
                      if layer.quantized else {"kind": "membrane", "bits": layer.mem_bits}),
            "widths": {"weight": g.weight_width, "accumulator": g.acc_width,
                       "update": layer.update_width(net.layer_input_max(i)),
                       "bias": g.bias_width, "level": g.level_width},
            "quantizer": {"latency": g.quantizer_latency,
                          "kind": g.quantizer_kind}
            if layer.quantized else None,
            "fifo_depth": g.fifo_depth,
            "memory_bits": g.memory_bits(),
            "datapath_latency": g.latency,
            "accumulator_banks": g.banks, "static_input": g.static,
            **({"conv": _conv_entry(layer, g)} if layer.is_conv else {}),
            **({"tawq": _tawq_entry(layer, g)} if layer.is_tawq else {}),
        })
    ports = []
    for path, member, _ in top.signature.flatten(top):
        ports.append({"name": "__".join(str(p) for p in path),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "width": Shape.cast(member.shape).width})
    total = sum(sum(layer["memory_bits"].values()) for layer in layers)
    return {
        "format": "qsnn-hw-core-manifest", "version": MANIFEST_VERSION, "name": name,
        "generator": {"qsnn_hw": __version__, "amaranth": amaranth.__version__},
        "network": {"inputs": net.n_in, "outputs": net.n_out, "input_bits": net.input_bits,
                    "layers": len(net.layers)},
        "count_bits": top.count_bits,
        "core": top.config.to_dict(),
        "clock_domain": {"clock": "clk", "reset": "rst (synchronous, active high)"},
        "ports": ports,
        "streams": {
            "events": {"fields": _layout_fields(top.engines[0].in_layout),
                       "kind": top.engines[0].input_kind},
            "results": {"fields": _layout_fields(top.results.payload.shape())},
        },
        "layers": layers,
        "memory_bits_total": total,
        "cycle_model": {
            "schedule": "qsnn_hw.hdl.cycles.schedule (docs/hardware.md, Cycle model)",
            "constants": {k: getattr(cycles, k) for k in cycles.CONSTANTS},
        },
    }


class TargetDevice:
    """Elaboration target for Verilog that keeps a device's primitives (no build flow):
    :class:`~.weight_memory.WeightMemory` reads ``device`` to instantiate SB_SPRAM256KA
    for ``"spram"`` storage on an iCE40 UltraPlus, as a board build does."""

    def __init__(self, device: str):
        self.device = device


def generate(net: IntNetwork, config: CoreConfig | None = None, *,
             name: str = "qsnn_core", trace: bool = False,
             device: str | None = None) -> tuple[str, dict]:
    """Return ``(verilog_text, manifest)`` for ``net`` built with ``config`` (a
    :class:`~.config.CoreConfig`; default ``CoreConfig()``). ``trace``: add the
    observation ports (:func:`.layouts.trace_signature`; simulation only). ``device``:
    elaborate for that FPGA device (e.g. ``"iCE40UP5K"``: SPRAM weights as
    SB_SPRAM256KA instances) instead of generic memories."""
    if not isinstance(net, IntNetwork):
        raise TypeError(f"net must be an IntNetwork, got {type(net).__name__}")
    check_name(name)
    top = NetworkTop(net, config, trace=trace)
    info = manifest(top, name)
    text = verilog.convert(top, name=name, emit_src=False,
                           platform=None if device is None else TargetDevice(device))
    return text, info


def write_core(net: IntNetwork, out_dir, config: CoreConfig | None = None, *,
               name: str = "qsnn_core", extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.v`` and ``<out_dir>/<name>.json`` atomically.
    ``extra``: more JSON-able manifest entries (e.g. the source artifact)."""
    text, info = generate(net, config, name=name)
    if extra:
        info.update(extra)
    out = Path(out_dir)
    v = atomic_write_text(out / f"{name}.v", text)
    j = atomic_write_text(out / f"{name}.json",
                          json.dumps(info, indent=2, sort_keys=True) + "\n")
    return v, j
