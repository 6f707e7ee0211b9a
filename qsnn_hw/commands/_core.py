"""The core-configuration flags shared by generate, verify, synth and flow: each one
sets a field of :class:`qsnn_hw.hdl.config.CoreConfig`, and ``--config FILE`` takes the
whole configuration from a board report, a manifest or a configuration JSON instead."""

from __future__ import annotations

from ..errors import UserError
from ..hdl.config import (
    ACCUMULATORS,
    FIFO_KEYWORDS,
    INPUTS,
    QUANTIZERS,
    STORAGES,
    CoreConfig,
    load_config,
)

_FLAGS = {"lanes": "--lanes", "count_bits": "--count-bits", "fifo_depth": "--fifo-depth",
          "quantizer": "--quantizer", "weight_storage": "--weight-storage",
          "input": "--input", "accumulators": "--accumulators"}


def _list(text: str, flag: str, convert):
    items = [t.strip() for t in str(text).split(",")]
    try:
        vals = [convert(t) for t in items]
    except ValueError:
        raise UserError(f"{flag} must be a value or a comma-separated list of values, got "
                        f"{text!r}") from None
    return vals[0] if len(vals) == 1 else tuple(vals)


def _depth(t: str):
    return t if t in FIFO_KEYWORDS else int(t)


def add_core_options(p, *, storage: bool = True, lanes_default: str | None = "1") -> None:
    """Add the core flags to the argparse parser ``p`` (defaults: CoreConfig's)."""
    from ._args import int_range
    g = p.add_argument_group("core configuration (qsnn_hw.hdl.config.CoreConfig)")
    g.add_argument("--config", default=None, metavar="FILE",
                   help="take the whole core configuration from FILE: a build's report.json, "
                        "a generated manifest (NAME.json) or a configuration JSON; excludes "
                        "the flags below")
    g.add_argument("--lanes", default=None,
                   help="parallel lanes P (1-256): one value, or one per layer as P1,P2,... "
                        f"(default {lanes_default or '1'})")
    g.add_argument("--count-bits", type=int_range(1, 32), default=None,
                   help="width of the saturating output spike counters (default 16)")
    g.add_argument("--fifo-depth", default=None,
                   help="output FIFO per layer in spike words: default (two timesteps), min "
                        "(one timestep) or a number, one or one per layer (default: default)")
    g.add_argument("--quantizer", choices=QUANTIZERS, default=None,
                   help="state quantizer: auto (comparators up to 4 code bits, else the "
                        "pipelined search), comparators or pipelined (default auto)")
    g.add_argument("--input", choices=INPUTS, default=None,
                   help="how samples enter the first layer: static (sent once, the input "
                        "current computed once and reused every timestep; the sample must "
                        "be the same at every timestep), streamed (every timestep sent) or "
                        "auto (static for multi-bit direct input, else streamed; default)")
    g.add_argument("--accumulators", default=None,
                   help=f"accumulator banks: {', '.join(ACCUMULATORS)}, one or one per "
                        "layer (double: the update overlaps the next timestep's "
                        "accumulation; auto: single for a static-input layer, else double)")
    if storage:
        g.add_argument("--weight-storage", default=None,
                       help=f"weight storage: {', '.join(STORAGES)}, one or one per layer "
                            "(ram/spram are written through the weight-load port first; "
                            "default rom)")


def core_config(args, net, *, lanes_default=None, count_bits_default=None) -> CoreConfig:
    """The CoreConfig the flags (or ``--config``) describe, checked against ``net``;
    a :class:`UserError` naming the flag otherwise."""
    given = {k: getattr(args, k, None) for k in _FLAGS}
    given = {k: v for k, v in given.items() if v is not None}
    if getattr(args, "config", None):
        if given:
            raise UserError(f"--config gives the whole core configuration; drop "
                            f"{', '.join(_FLAGS[k] for k in given)}")
        try:
            cfg = load_config(args.config)
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"--config: {exc}") from None
        where = f"--config {args.config}"
    else:
        kw = {}
        if "lanes" in given or lanes_default is not None:
            kw["lanes"] = _list(given.get("lanes", lanes_default), "--lanes", int)
        if "count_bits" in given or count_bits_default is not None:
            kw["count_bits"] = given.get("count_bits", count_bits_default)
        if "fifo_depth" in given:
            kw["fifo_depth"] = _list(given["fifo_depth"], "--fifo-depth", _depth)
        if "quantizer" in given:
            kw["quantizer"] = given["quantizer"]
        if "weight_storage" in given:
            kw["weight_storage"] = _list(given["weight_storage"], "--weight-storage", str)
        if "input" in given:
            kw["input"] = given["input"]
        if "accumulators" in given:
            kw["accumulators"] = _list(given["accumulators"], "--accumulators", str)
        try:
            cfg = CoreConfig(**kw)
        except (TypeError, ValueError) as exc:
            raise UserError(_flagged(str(exc))) from None
        where = "the core options"
    try:
        return cfg.check(net)
    except ValueError as exc:
        raise UserError(f"{where} do not fit the model ({len(net.layers)} layers): "
                        f"{_flagged(str(exc))}") from None


def _flagged(msg: str) -> str:
    """CoreConfig's message with its field names spelled as the flags."""
    for field, flag in _FLAGS.items():
        if msg.startswith(field):
            return flag + msg[len(field):]
    return msg
